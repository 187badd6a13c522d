#include "png_writer.hpp"

#include <png.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

namespace zwq::example {

std::string write_palette_png(const std::string& path, std::span<const std::uint8_t> pixels,
                              std::uint32_t width, std::uint32_t height,
                              std::span<const Rgb, 256> palette) {
  if (pixels.size() != static_cast<std::size_t>(width) * height) {
    return "the picture has " + std::to_string(pixels.size()) + " pixels, not width * height";
  }
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) return "cannot create " + path + ": " + std::strerror(errno);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (png == nullptr || info == nullptr) {
    png_destroy_write_struct(&png, nullptr);
    std::fclose(file);
    return "libpng could not start";
  }
  // libpng reports errors by longjmp; nothing with a destructor lives across this point.
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(file);
    return "libpng failed writing " + path;
  }
  png_init_io(png, file);
  png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_color colours[256];
  for (int i = 0; i < 256; ++i) colours[i] = {palette[i][0], palette[i][1], palette[i][2]};
  png_set_PLTE(png, info, colours, 256);
  png_set_compression_level(png, 9);
  png_write_info(png, info);
  for (std::uint32_t row = 0; row < height; ++row) {
    png_write_row(png, pixels.data() + static_cast<std::size_t>(row) * width);
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  if (std::fclose(file) != 0) return "cannot write " + path + ": " + std::strerror(errno);
  return {};
}

}  // namespace zwq::example
