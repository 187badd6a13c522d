// zwq array create|fill|rm|info|sum: shared arrays in /dev/shm.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>

#include "array_fill.hpp"
#include "cli.hpp"

namespace zwq::cli {

namespace {

struct ArrayArgs {
  std::string name;
  std::string dtype;
  std::uint64_t count = 0;
  std::string pattern = "zero";
  double value = 0;
  std::uint64_t seed = 0;
  bool json = false;
  CLI::Option* pattern_opt = nullptr;  // --fill / --pattern, as given
  CLI::Option* value_opt = nullptr;
  CLI::Option* seed_opt = nullptr;
};

// The pattern to fill with: --value alone means const and --seed alone random; a --value or
// --seed that the named pattern would ignore is refused, not dropped.
std::optional<Pattern> pattern_of(const ArrayArgs& a, int& code) {
  const bool named = a.pattern_opt != nullptr && *a.pattern_opt;
  const bool value = a.value_opt != nullptr && *a.value_opt;
  const bool seed = a.seed_opt != nullptr && *a.seed_opt;
  std::string name = a.pattern;
  if (!named && value != seed) name = value ? "const" : "random";
  auto pattern = parse_pattern(name);
  if (!pattern) {
    code = usage_error("unknown pattern '" + name + "' (zero arange random const)");
    return std::nullopt;
  }
  if ((value && *pattern != Pattern::kConst) || (seed && *pattern != Pattern::kRandom)) {
    code = usage_error(std::string(value ? "--value" : "--seed") + " needs the " +
                       (value ? "const" : "random") + " pattern, not '" + name + "'");
    return std::nullopt;
  }
  return pattern;
}

// Why `value` cannot be stored in `dtype` as it is ("" when it can): an integer dtype takes
// integers in its range (that a double holds exactly), as NumPy refuses 300 for uint8.
std::string unfit_value(DType dtype, double value) {
  if (dtype == DType::kF32 || dtype == DType::kF64) {
    const bool fits = dtype == DType::kF64 || std::isnan(value) || std::isinf(value) ||
                      std::fabs(value) <= std::numeric_limits<float>::max();
    return fits ? "" : "--value " + format_short(value) + " overflows f32";
  }
  double lo = 0, hi = 255;
  const char* range = "0 to 255";
  if (dtype == DType::kI32) {
    lo = -2147483648.0, hi = 2147483647.0;
    range = "-2147483648 to 2147483647";
  } else if (dtype == DType::kI64) {  // the integers a double (--value) holds exactly
    lo = -9007199254740992.0, hi = 9007199254740992.0;
    range = "-2^53 to 2^53, as --value is read as a double";
  }
  if (std::trunc(value) == value && value >= lo && value <= hi) return "";
  return "--value " + format_short(value) + " is not an integer that " +
         std::string(dtype_name(dtype)) + " holds (" + range + ")";
}

// Accepts NAME or shm:NAME; arrays live in /dev/shm only.
std::optional<std::string> shm_name(const std::string& arg) {
  std::string name = arg.rfind("shm:", 0) == 0 ? arg.substr(4) : arg;
  if (name.empty() || name.find('/') != std::string::npos || name.find(':') != std::string::npos) {
    return std::nullopt;
  }
  return name;
}

// Parses the name and the optional --dtype shared by several subcommands.
bool parse_common(const ArrayArgs& a, std::string& name, std::optional<DType>& dtype, int& code) {
  auto n = shm_name(a.name);
  if (!n) {
    code = usage_error("'" + a.name + "' is not a shared array name (NAME or shm:NAME)");
    return false;
  }
  name = *n;
  if (!a.dtype.empty()) {
    dtype = parse_dtype(a.dtype);
    if (!dtype) {
      code = usage_error("unknown dtype '" + a.dtype + "' (f32 f64 i32 i64 u8)");
      return false;
    }
  }
  return true;
}

int run_create(const ArrayArgs& a) {
  std::string name;
  std::optional<DType> dtype;
  int code = kExitOk;
  if (!parse_common(a, name, dtype, code)) return code;
  if (!dtype) return usage_error("--dtype is required");
  auto pattern = pattern_of(a, code);
  if (!pattern) return code;
  if (*pattern == Pattern::kConst) {
    if (const std::string why = unfit_value(*dtype, a.value); !why.empty()) return usage_error(why);
  }
  auto seg = ShmSegment::create(name, *dtype, a.count);
  if (!seg.ok()) return report(seg.error());
  fill(seg.value(), *pattern, a.value, a.seed);
  seg.value().release();  // the point of `zwq array create` is that the array stays
  std::cout << "shm:" << name << " " << dtype_name(*dtype) << " " << a.count << "\n";
  return kExitOk;
}

int run_fill(const ArrayArgs& a) {
  std::string name;
  std::optional<DType> dtype;
  int code = kExitOk;
  if (!parse_common(a, name, dtype, code)) return code;
  if (!*a.pattern_opt && !*a.value_opt && !*a.seed_opt) {
    return usage_error("say what to fill with: --pattern, --value or --seed");
  }
  auto pattern = pattern_of(a, code);
  if (!pattern) return code;
  auto seg = ShmSegment::open(name, dtype);
  if (!seg.ok()) return report(seg.error());
  if (*pattern == Pattern::kConst) {
    const std::string why = unfit_value(seg.value().dtype(), a.value);
    if (!why.empty()) return usage_error(why);
  }
  fill(seg.value(), *pattern, a.value, a.seed);
  return kExitOk;
}

int run_rm(const ArrayArgs& a) {
  std::string name;
  std::optional<DType> dtype;
  int code = kExitOk;
  if (!parse_common(a, name, dtype, code)) return code;
  if (Status s = ShmSegment::remove(name); !s.ok()) return report(s.error());
  return kExitOk;
}

int run_info(const ArrayArgs& a) {
  std::string name;
  std::optional<DType> dtype;
  int code = kExitOk;
  if (!parse_common(a, name, dtype, code)) return code;
  auto seg = ShmSegment::open(name, dtype);
  if (!seg.ok()) return report(seg.error());
  const ShmSegment& s = seg.value();
  if (a.json) {
    nlohmann::json j{{"name", name},
                     {"uri", "shm:" + name},
                     {"path", s.path()},
                     {"dtype", std::string(dtype_name(s.dtype()))},
                     {"count", s.size()},
                     {"bytes", s.bytes()},
                     {"byte_offset", s.byte_offset()}};
    std::cout << j.dump() << std::endl;
  } else {
    std::cout << "shm:" << name << "  dtype " << dtype_name(s.dtype()) << "  count " << s.size()
              << "  bytes " << s.bytes();
    if (s.byte_offset() != 0)
      std::cout << "  after a .npy header of " << s.byte_offset() << " bytes";
    std::cout << "  (" << s.path() << ")\n";
  }
  return kExitOk;
}

int run_sum(const ArrayArgs& a) {
  std::string name;
  std::optional<DType> dtype;
  int code = kExitOk;
  if (!parse_common(a, name, dtype, code)) return code;
  auto seg = ShmSegment::open(name, dtype);
  if (!seg.ok()) return report(seg.error());
  const long double sum = reference_sum(seg.value());
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17Lg", sum);
  if (a.json) {
    std::cout << nlohmann::json{{"name", name},
                                {"sum", static_cast<double>(sum)},
                                {"count", seg.value().size()}}
                     .dump()
              << std::endl;
  } else {
    std::cout << buf << "\n";
  }
  return kExitOk;
}

CLI::App* add_leaf(CLI::App* parent, Commands& commands, const char* name, const char* help,
                   int (*run)(const ArrayArgs&), std::shared_ptr<ArrayArgs>& args) {
  args = std::make_shared<ArrayArgs>();
  CLI::App* cmd = parent->add_subcommand(name, help);
  cmd->add_option("name", args->name, "Array name: NAME or shm:NAME (/dev/shm/NAME)")->required();
  auto a = args;
  commands.push_back({cmd, [a, run] { return run(*a); }});
  return cmd;
}

}  // namespace

void add_array_commands(CLI::App& app, Commands& commands) {
  CLI::App* array = app.add_subcommand("array", "Create, fill, inspect and remove /dev/shm arrays");
  array->require_subcommand(1);
  std::shared_ptr<ArrayArgs> a;

  CLI::App* cmd =
      add_leaf(array, commands, "create",
               "Create /dev/shm/NAME and its .zwq-meta sidecar (kept until `rm`)", run_create, a);
  cmd->add_option("--dtype", a->dtype, "f32 f64 i32 i64 u8")->required();
  cmd->add_option("--count,-n", a->count, "Number of elements")->required()->check(kNotNegative);
  a->pattern_opt = cmd->add_option("--fill", a->pattern,
                                   "zero (default; const with --value, random with --seed), "
                                   "arange, random or const");
  a->value_opt = cmd->add_option("--value", a->value, "The value of --fill const");
  a->seed_opt = cmd->add_option("--seed", a->seed, "Seed of --fill random (splitmix64)");

  cmd = add_leaf(array, commands, "fill", "Overwrite an array with a pattern", run_fill, a);
  a->pattern_opt = cmd->add_option("--pattern", a->pattern,
                                   "zero, arange, random or const (const with --value, random "
                                   "with --seed)");
  a->value_opt = cmd->add_option("--value", a->value, "The value of --pattern const");
  a->seed_opt = cmd->add_option("--seed", a->seed, "Seed of --pattern random (splitmix64)");
  cmd->add_option("--dtype", a->dtype, "Dtype, if the file records none (sidecar or .npy header)");

  add_leaf(array, commands, "rm", "Remove /dev/shm/NAME and its sidecar", run_rm, a);

  cmd = add_leaf(array, commands, "info", "Print an array's dtype, count and bytes", run_info, a);
  cmd->add_option("--dtype", a->dtype, "Dtype, if the file records none (sidecar or .npy header)");
  cmd->add_flag("--json", a->json, "Print JSON");

  cmd = add_leaf(array, commands, "sum", "Sum an array here, in long double (a reference)", run_sum,
                 a);
  cmd->add_option("--dtype", a->dtype, "Dtype, if the file records none (sidecar or .npy header)");
  cmd->add_flag("--json", a->json, "Print JSON");
}

}  // namespace zwq::cli
