// ZWQ_DEFINE_MAP: msgpack-c's MSGPACK_DEFINE_MAP with a decoder that does not allocate.
//
// The wire format is the same (a map from field names to values; packing is msgpack-c's own).
// msgpack-c decodes such a map by first copying every key into a std::map<std::string, ...>,
// one heap allocation per key of every struct of every message; for workers taking one-slice Tasks
// messages that was the largest cost (docs/BENCHMARKS.md, "What got zwq here"). This decoder
// matches the keys against the field names in place instead. What it accepts is what
// MSGPACK_DEFINE_MAP accepts: unknown keys are ignored, missing ones leave the field as it was, a
// key that is not a string is a msgpack::type_error, and of repeated keys the first counts. A
// field whose value does not convert is a FieldTypeError (a msgpack::type_error) that names it,
// with the fields that enclose it ("job.input.dtype"), and what it takes.
#pragma once

#include <cstdint>
#include <cstring>
#include <msgpack.hpp>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace zwq::detail {

// What a field of type T takes, for a message: "an unsigned integer below 2^32".
template <typename T>
std::string expected_kind() {
  if constexpr (std::is_same_v<T, bool>) {
    return "a bool";
  } else if constexpr (std::is_enum_v<T>) {
    return "one of its numbers";
  } else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
    return sizeof(T) == 8 ? "an unsigned integer"
                          : "an unsigned integer below 2^" + std::to_string(8 * sizeof(T));
  } else if constexpr (std::is_integral_v<T>) {
    return "an integer of " + std::to_string(8 * sizeof(T)) + " bits";
  } else if constexpr (std::is_floating_point_v<T>) {
    return "a number";
  } else if constexpr (std::is_same_v<T, std::string>) {
    return "a string";
  } else {
    return "";
  }
}

// A field that did not convert: its path from the outermost struct and what it takes.
class FieldTypeError : public msgpack::type_error {
 public:
  FieldTypeError(std::string_view field, std::string expected)
      : path_(field), expected_(std::move(expected)) {
    update();
  }
  // Called by each enclosing struct on the way out.
  void within(std::string_view outer) {
    path_ = std::string(outer) + "." + path_;
    update();
  }
  const std::string& path() const { return path_; }
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  void update() {
    what_ = "field '" + path_ + "'" +
            (expected_.empty() ? " has the wrong type" : " must be " + expected_);
  }
  std::string path_;
  std::string expected_;
  std::string what_;
};

// The (name, field) pairs of one struct, as MSGPACK_DEFINE_MAP_IMPL lists them.
template <typename... Args>
class FieldMap {
 public:
  static_assert(sizeof...(Args) % 2 == 0, "names and fields come in pairs");
  static constexpr std::size_t kFields = sizeof...(Args) / 2;
  static_assert(kFields <= 64, "at most 64 fields (one bit each)");

  explicit FieldMap(Args&... args) : a_(args...) {}

  void unpack(const msgpack::object& o) const {
    if (o.type != msgpack::type::MAP) throw msgpack::type_error();
    std::uint64_t seen = 0;
    for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
      const msgpack::object_kv& kv = o.via.map.ptr[i];
      if (kv.key.type != msgpack::type::STR) throw msgpack::type_error();
      match(kv.key.via.str, kv.val, seen, std::make_index_sequence<kFields>{});
    }
  }

 private:
  template <std::size_t... I>
  void match(const msgpack::object_str& key, const msgpack::object& val, std::uint64_t& seen,
             std::index_sequence<I...>) const {
    (void)(... || field<I>(key, val, seen));
  }

  // True when `key` names field I (converted unless an earlier key named it already).
  template <std::size_t I>
  bool field(const msgpack::object_str& key, const msgpack::object& val,
             std::uint64_t& seen) const {
    using Name = std::remove_reference_t<std::tuple_element_t<2 * I, std::tuple<Args...>>>;
    static_assert(std::is_array_v<Name>, "field names are string literals");
    constexpr std::size_t len = std::extent_v<Name> - 1;  // a string literal's length
    const auto& name = std::get<2 * I>(a_);
    if (key.size != len || std::memcmp(key.ptr, name, len) != 0) return false;
    constexpr std::uint64_t bit = std::uint64_t{1} << I;
    if ((seen & bit) == 0) {
      seen |= bit;
      auto& out = std::get<2 * I + 1>(a_);
      try {
        msgpack::v1::type::convert_helper(val, out);
      } catch (FieldTypeError& e) {
        e.within(std::string_view(name, len));
        throw;
      } catch (const msgpack::type_error&) {
        throw FieldTypeError(std::string_view(name, len),
                             expected_kind<std::remove_reference_t<decltype(out)>>());
      }
    }
    return true;
  }

  std::tuple<Args&...> a_;
};

template <typename... Args>
FieldMap<Args...> make_field_map(Args&... args) {
  return FieldMap<Args...>(args...);
}

}  // namespace zwq::detail

// Use in place of MSGPACK_DEFINE_MAP, with the same arguments.
#define ZWQ_DEFINE_MAP(...)                                                                       \
  template <typename Packer>                                                                      \
  void msgpack_pack(Packer& msgpack_pk) const {                                                   \
    msgpack::type::make_define_map MSGPACK_DEFINE_MAP_IMPL(__VA_ARGS__).msgpack_pack(msgpack_pk); \
  }                                                                                               \
  void msgpack_unpack(const msgpack::object& msgpack_o) {                                         \
    ::zwq::detail::make_field_map MSGPACK_DEFINE_MAP_IMPL(__VA_ARGS__).unpack(msgpack_o);         \
  }                                                                                               \
  template <typename MSGPACK_OBJECT>                                                              \
  void msgpack_object(MSGPACK_OBJECT* msgpack_o, msgpack::zone& msgpack_z) const {                \
    msgpack::type::make_define_map MSGPACK_DEFINE_MAP_IMPL(__VA_ARGS__)                           \
        .msgpack_object(msgpack_o, msgpack_z);                                                    \
  }
