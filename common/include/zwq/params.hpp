// Kernel parameters: a msgpack map of name -> integer, float or string.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>

#include "zwq/status.hpp"

namespace zwq {

using ParamValue = std::variant<std::int64_t, double, std::string>;

class Params {
 public:
  std::map<std::string, ParamValue> values;

  bool has(const std::string& name) const { return values.count(name) != 0; }
  void set(const std::string& name, ParamValue v) { values[name] = std::move(v); }
  // Numeric lookups convert between int and float; a string or absent value gives `fallback`.
  double get_double(const std::string& name, double fallback) const;
  std::int64_t get_int(const std::string& name, std::int64_t fallback) const;
  std::string get_string(const std::string& name, const std::string& fallback) const;
  // Parses "k=v": v becomes an integer if it reads as one, else a double, else a string.
  static Result<std::pair<std::string, ParamValue>> parse_assignment(const std::string& text);
  bool operator==(const Params&) const = default;
};

}  // namespace zwq
