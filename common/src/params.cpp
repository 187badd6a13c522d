#include "zwq/params.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace zwq {

double Params::get_double(const std::string& name, double fallback) const {
  auto it = values.find(name);
  if (it == values.end()) return fallback;
  if (const auto* i = std::get_if<std::int64_t>(&it->second)) return static_cast<double>(*i);
  if (const auto* d = std::get_if<double>(&it->second)) return *d;
  return fallback;
}

std::int64_t Params::get_int(const std::string& name, std::int64_t fallback) const {
  auto it = values.find(name);
  if (it == values.end()) return fallback;
  if (const auto* i = std::get_if<std::int64_t>(&it->second)) return *i;
  if (const auto* d = std::get_if<double>(&it->second)) return static_cast<std::int64_t>(*d);
  return fallback;
}

std::string Params::get_string(const std::string& name, const std::string& fallback) const {
  auto it = values.find(name);
  if (it == values.end()) return fallback;
  if (const auto* s = std::get_if<std::string>(&it->second)) return *s;
  return fallback;
}

Result<std::pair<std::string, ParamValue>> Params::parse_assignment(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "parameter '" + text + "' is not of the form name=value");
  }
  std::string name = text.substr(0, eq);
  std::string raw = text.substr(eq + 1);
  if (!raw.empty()) {
    char* end = nullptr;
    errno = 0;
    const long long i = std::strtoll(raw.c_str(), &end, 10);
    if (errno == 0 && *end == '\0') return std::pair{name, ParamValue{static_cast<std::int64_t>(i)}};
    errno = 0;
    const double d = std::strtod(raw.c_str(), &end);
    if (*end == '\0') {
      // ERANGE: an overflow (1e400) is refused; an underflow (1e-310) is a subnormal or 0, taken
      // as Python's float() takes it.
      if (errno == ERANGE && std::isinf(d)) {
        return make_error(ErrorCode::kInvalidArgument,
                          "parameter '" + name + "': " + raw + " is out of the range of a double");
      }
      return std::pair{name, ParamValue{d}};
    }
  }
  return std::pair{name, ParamValue{raw}};
}

}  // namespace zwq
