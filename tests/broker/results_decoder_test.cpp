// read_results: Results messages read as decode<msg::Results> reads them, and anything else left
// to the usual decoding.
#include "results_decoder.hpp"

#include <catch2/catch.hpp>
#include <msgpack.hpp>

#include "hand_frame.hpp"
#include "zwq/codec.hpp"

using namespace zwq;
using zwq::broker::read_results;
using zwq::test::hand_frame;

namespace {

SliceOutcome outcome(std::uint64_t slice, Partial p) {
  SliceOutcome o;
  o.slice = slice;
  o.attempt = 2;
  o.partial = std::move(p);
  return o;
}

msg::Results sample() {
  msg::Results m;
  m.epoch = 0xfedcba9876543210ULL;
  m.worker_id = "w-1";
  m.job_id = "job.7";
  m.slowest_us = 1234567;
  Partial sum{.combiner = Combiner::kSum, .n = 1000, .hi = 1.5e300, .lo = -2.5e-20};
  Partial hist{.combiner = Combiner::kHistogram, .n = 9, .bins = {1, 0, 7, 1ULL << 40}};
  Partial gather{.combiner = Combiner::kGather, .n = 3, .bytes = std::string("a\0b\xff", 4)};
  Partial exact{.combiner = Combiner::kExactSum, .n = 4, .hi = 1e200, .lo = 1.0};
  exact.terms = {-1e-300, 3e-250};  // the components beyond hi and lo
  m.items = {outcome(0, sum), outcome(1ULL << 40, hist), outcome(5, gather), outcome(9, exact)};
  SliceOutcome failed = outcome(6, Partial{});
  failed.code = ErrorCode::kKernelFailed;
  failed.message = "the kernel said no";
  m.items.push_back(failed);
  return m;
}

void check_same(const msg::Results& a, const msg::Results& b) {
  CHECK(a.epoch == b.epoch);
  CHECK(a.worker_id == b.worker_id);
  CHECK(a.job_id == b.job_id);
  CHECK(a.slowest_us == b.slowest_us);
  REQUIRE(a.items.size() == b.items.size());
  for (std::size_t i = 0; i < a.items.size(); ++i) {
    INFO("item " << i);
    CHECK(a.items[i].slice == b.items[i].slice);
    CHECK(a.items[i].attempt == b.items[i].attempt);
    CHECK(a.items[i].code == b.items[i].code);
    CHECK(a.items[i].message == b.items[i].message);
    CHECK(a.items[i].partial == b.items[i].partial);
  }
}

// The four keys of sample() other than items, packed.
void pack_head(msgpack::packer<msgpack::sbuffer>& pk) {
  const msg::Results m = sample();
  pk.pack(std::string("epoch"));
  pk.pack(m.epoch);
  pk.pack(std::string("worker_id"));
  pk.pack(m.worker_id);
  pk.pack(std::string("job_id"));
  pk.pack(m.job_id);
  pk.pack(std::string("slowest_us"));
  pk.pack(m.slowest_us);
}

// A frame of sample()'s head and one item that `item` packs.
template <typename Item>
std::string one_item(Item item) {
  return hand_frame(proto::MsgType::kResults, 5, [&](auto& pk) {
    pack_head(pk);
    pk.pack(std::string("items"));
    pk.pack_array(1);
    item(pk);
  });
}

}  // namespace

TEST_CASE("results decoder reads a Results message as decode does", "[broker]") {
  const std::string f = encode(sample());
  auto fast = read_results(f.data(), f.size());
  auto slow = decode<msg::Results>(f.data(), f.size());
  REQUIRE(fast);
  REQUIRE(slow.ok());
  check_same(*fast, slow.value());
  check_same(*fast, sample());
}

TEST_CASE("results decoder reads doubles that msgpack packed as integers", "[broker]") {
  msg::Results m = sample();
  // Whole numbers (msgpack-c packs them as ints), negative ones of every width, and others.
  const std::vector<double> values = {0.0,   1.0,   -1.0,         -100.0, -40000.0,
                                      -3e9,  -1e18, 4294967296.0, 1e19,   0.5,
                                      -0.25, 1e300, -1e300,       127.0,  -32.0};
  m.items.clear();
  for (std::size_t i = 0; i < values.size(); ++i) {
    m.items.push_back(
        outcome(i, Partial{.combiner = Combiner::kSum, .n = 1, .hi = values[i], .lo = -values[i]}));
  }
  const std::string f = encode(m);
  auto fast = read_results(f.data(), f.size());
  auto slow = decode<msg::Results>(f.data(), f.size());
  REQUIRE(fast);
  REQUIRE(slow.ok());
  check_same(*fast, slow.value());
  check_same(*fast, m);
}

TEST_CASE("results decoder reads an empty Results message", "[broker]") {
  msg::Results m = sample();
  m.items.clear();
  const std::string f = encode(m);
  auto fast = read_results(f.data(), f.size());
  REQUIRE(fast);
  check_same(*fast, m);
}

TEST_CASE("results decoder leaves to decode what it cannot take", "[broker]") {
  const std::string good = encode(sample());
  REQUIRE(read_results(good.data(), good.size()));
  // An item's first four fields: [7, attempt, code, ""], in an array of `fields`.
  auto item_head = [](auto& pk, std::uint32_t fields, std::uint64_t attempt = 1,
                      unsigned code = 0) {
    pk.pack_array(fields);
    pk.pack(7u);
    pk.pack(attempt);
    pk.pack(code);
    pk.pack(std::string());
  };
  auto item_of = [&](auto& pk, std::uint64_t attempt, unsigned code, unsigned combiner) {
    item_head(pk, 5, attempt, code);
    pk.pack_array(7);
    pk.pack(combiner);
    pk.pack(1u);
    pk.pack(3.5);
    pk.pack(0.0);
    pk.pack(0u);
    pk.pack_array(0);
    pk.pack(std::string());
  };
  // An item whose 8-element partial is packed up to its terms, which the caller packs.
  auto partial_before_terms = [&](auto& pk) {
    item_head(pk, 5);
    pk.pack_array(8);
    for (int i = 0; i < 5; ++i) pk.pack(1u);
    pk.pack_array(0);
    pk.pack(std::string());
  };
  // sample()'s head, items as `pack_items` packs them and, with `extra`, one key more.
  auto with_items = [&](auto pack_items, const char* extra = nullptr) {
    return hand_frame(proto::MsgType::kResults, extra ? 6 : 5, [&](auto& pk) {
      pack_head(pk);
      pk.pack(std::string("items"));
      pack_items(pk);
      if (extra) {
        pk.pack(std::string(extra));
        pk.pack(1u);
      }
    });
  };
  auto no_items = [](auto& pk) { pk.pack_array(0); };
  struct Case {
    const char* what;
    std::string frame;
    bool decode_accepts;  // what decode<msg::Results> says of it
  };
  const std::vector<Case> cases = {
      {"another message type", encode(msg::WorkerHeartbeat{.worker_id = "w", .epoch = 1}), false},
      {"an unknown key", with_items(no_items, "extra"), true},
      {"a missing key", hand_frame(proto::MsgType::kResults, 4, [&](auto& pk) { pack_head(pk); }),
       true},
      {"a repeated key", with_items(no_items, "epoch"), true},
      {"an item of four fields", one_item([&](auto& pk) { item_head(pk, 4); }), true},
      {"a partial of six fields", one_item([&](auto& pk) {
         item_head(pk, 5);
         pk.pack_array(6);
         for (int i = 0; i < 6; ++i) pk.pack(1u);
       }),
       false},
      {"an unknown error code", one_item([&](auto& pk) { item_of(pk, 1, 200, 1); }), false},
      {"an unknown combiner", one_item([&](auto& pk) { item_of(pk, 1, 0, 0); }), false},
      {"an attempt beyond 32 bits",
       one_item([&](auto& pk) { item_of(pk, std::uint64_t{1} << 32, 0, 1); }), false},
      {"more items than the frame has bytes",
       with_items([](auto& pk) { pk.pack_array(std::uint32_t{1} << 20); }), false},
      {"a partial of nine fields", one_item([&](auto& pk) {
         item_head(pk, 5);
         pk.pack_array(9);
         for (int i = 0; i < 9; ++i) pk.pack(1u);
       }),
       false},
      {"more terms than the frame has bytes", one_item([&](auto& pk) {
         partial_before_terms(pk);
         pk.pack_array(std::uint32_t{1} << 20);
       }),
       false},
      {"a term that is not a number", one_item([&](auto& pk) {
         partial_before_terms(pk);
         pk.pack_array(1);
         pk.pack(std::string("x"));
       }),
       false},
      {"more bins than the frame has bytes", one_item([&](auto& pk) {
         item_head(pk, 5);
         pk.pack_array(7);
         for (int i = 0; i < 5; ++i) pk.pack(1u);
         pk.pack_array(std::uint32_t{1} << 20);
       }),
       false},
      {"another version",
       hand_frame(
           proto::MsgType::kResults, 4, [&](auto& pk) { pack_head(pk); }, 2),
       false},
      {"trailing bytes", good + std::string(1, '\0'), false},
      {"a cut frame", good.substr(0, good.size() - 1), false},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    CHECK_FALSE(read_results(c.frame.data(), c.frame.size()));
    CHECK(decode<msg::Results>(c.frame.data(), c.frame.size()).ok() == c.decode_accepts);
  }
}
