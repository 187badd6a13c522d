// ZWQ_DEFINE_MAP decodes what MSGPACK_DEFINE_MAP decodes, the same way, without its key copies.
#include "zwq/msgpack_map.hpp"

#include <catch2/catch.hpp>
#include <msgpack.hpp>
#include <string>
#include <vector>

namespace {

struct Ours {
  std::string name = "unset";
  std::uint64_t count = 7;
  std::vector<int> values;
  ZWQ_DEFINE_MAP(name, count, values)
};

struct Theirs {
  std::string name = "unset";
  std::uint64_t count = 7;
  std::vector<int> values;
  MSGPACK_DEFINE_MAP(name, count, values)
};

// A map of `pairs` written by `write` (keys and values in turn).
template <typename Write>
msgpack::object_handle map_of(std::uint32_t pairs, Write write) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(pairs);
  write(pk);
  return msgpack::unpack(buf.data(), buf.size());
}

template <typename T>
T decoded(const msgpack::object_handle& h) {
  return h.get().as<T>();
}

}  // namespace

TEST_CASE("field map decodes what msgpack's define_map packed, and msgpack's reads ours",
          "[common][codec]") {
  Ours ours{"a", 3, {1, 2}};
  msgpack::sbuffer buf;
  msgpack::pack(buf, ours);
  auto h = msgpack::unpack(buf.data(), buf.size());
  const Theirs theirs = decoded<Theirs>(h);
  CHECK(theirs.name == "a");
  CHECK(theirs.count == 3);
  CHECK(theirs.values == std::vector<int>{1, 2});
  const Ours back = decoded<Ours>(h);
  CHECK(back.name == "a");
  CHECK(back.count == 3);
  CHECK(back.values == std::vector<int>{1, 2});
}

TEST_CASE(
    "field map ignores unknown keys, keeps missing fields and takes the first of a repeated "
    "key, as define_map does",
    "[common][codec]") {
  auto h = map_of(4, [](auto& pk) {
    pk.pack(std::string("count"));
    pk.pack(11);
    pk.pack(std::string("from_the_future"));
    pk.pack(std::string("x"));
    pk.pack(std::string("count"));
    pk.pack(12);
    pk.pack(std::string("countx"));  // a longer key sharing a field's name as prefix
    pk.pack(13);
  });
  const Ours ours = decoded<Ours>(h);
  const Theirs theirs = decoded<Theirs>(h);
  CHECK(ours.count == 11);
  CHECK(ours.count == theirs.count);
  CHECK(ours.name == "unset");
  CHECK(ours.values.empty());
}

TEST_CASE("field map rejects a non-map, a key that is not a string and a field of the wrong type",
          "[common][codec]") {
  msgpack::sbuffer buf;
  msgpack::pack(buf, 5);
  auto not_map = msgpack::unpack(buf.data(), buf.size());
  CHECK_THROWS_AS(decoded<Ours>(not_map), msgpack::type_error);

  auto int_key = map_of(1, [](auto& pk) {
    pk.pack(1);
    pk.pack(2);
  });
  CHECK_THROWS_AS(decoded<Ours>(int_key), msgpack::type_error);
  CHECK_THROWS_AS(decoded<Theirs>(int_key), msgpack::type_error);

  auto wrong_type = map_of(1, [](auto& pk) {
    pk.pack(std::string("count"));
    pk.pack(std::string("many"));
  });
  CHECK_THROWS_AS(decoded<Ours>(wrong_type), msgpack::type_error);

  auto late_int_key = map_of(2, [](auto& pk) {  // a good field first, then a bad key
    pk.pack(std::string("count"));
    pk.pack(3);
    pk.pack(4);
    pk.pack(5);
  });
  CHECK_THROWS_AS(decoded<Ours>(late_int_key), msgpack::type_error);
  CHECK_THROWS_AS(decoded<Theirs>(late_int_key), msgpack::type_error);
}

TEST_CASE(
    "field map ignores a repeated key's later value even when it has the wrong type, as "
    "define_map does",
    "[common][codec]") {
  auto h = map_of(2, [](auto& pk) {
    pk.pack(std::string("count"));
    pk.pack(9);
    pk.pack(std::string("count"));
    pk.pack(std::string("not a number"));
  });
  CHECK(decoded<Theirs>(h).count == 9);
  CHECK(decoded<Ours>(h).count == 9);
}
