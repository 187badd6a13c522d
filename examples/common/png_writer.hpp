// Writes an 8-bit palette PNG with libpng: the Mandelbrot example's picture.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

namespace zwq::example {

using Rgb = std::array<std::uint8_t, 3>;

// Writes `pixels` (width * height palette indices, row by row) to `path` with `palette`.
// Returns an empty string on success, else why it failed.
std::string write_palette_png(const std::string& path, std::span<const std::uint8_t> pixels,
                              std::uint32_t width, std::uint32_t height,
                              std::span<const Rgb, 256> palette);

}  // namespace zwq::example
