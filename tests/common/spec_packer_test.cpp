// SpecPacker and encode(SubmitManyReq): the bytes msgpack-c writes for each spec, with a spec
// alike but for its id copied from the one before.
#include "zwq/spec_packer.hpp"

#include <catch2/catch.hpp>
#include <msgpack.hpp>
#include <string>
#include <vector>

#include "sample_job.hpp"
#include "zwq/codec.hpp"

using namespace zwq;
using zwq::test::sample_sum_job;

namespace {

std::string msgpack_bytes(const JobSpec& spec) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, spec);
  return std::string(buf.data(), buf.size());
}

}  // namespace

TEST_CASE("spec packer writes msgpack-c's bytes and copies a spec alike but for its id",
          "[common]") {
  std::vector<JobSpec> specs;
  specs.push_back(sample_sum_job("a"));
  specs.push_back(sample_sum_job("b"));
  specs.push_back(sample_sum_job("an-id-longer-than-thirty-one-characters"));  // a str 8 id
  specs.push_back(sample_sum_job("c"));
  specs.back().params.set("extra", 1);  // another parameter: packed in full
  specs.push_back(specs.back());
  specs.back().job_id = "d";
  specs.push_back(specs.back());
  specs.back().job_id = "e";
  specs.back().count = 901;  // another range: packed in full
  JobSpec sets = sample_sum_job("s1");
  sets.param_sets = {Params{}, Params{}};
  sets.param_sets[0].set("x", 1);
  specs.push_back(sets);
  sets.job_id = "s2";
  specs.push_back(sets);  // alike, but jobs of parameter sets are never copied
  JobSpec large = sample_sum_job("l1");
  large.params.set("blob", std::string(SpecPacker::kMaxKeptBytes, 'x'));
  specs.push_back(large);
  large.job_id = "l2";
  specs.push_back(large);  // alike, but too long to keep
  specs.push_back(sample_sum_job("f"));
  specs.push_back(sample_sum_job("g"));

  const std::vector<bool> copied = {false, true,  true,  false, true,  false,
                                    false, false, false, false, false, true};
  REQUIRE(copied.size() == specs.size());
  SpecPacker packer;
  std::string all;
  std::string expected;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    INFO("spec " << i << ": " << specs[i].job_id);
    std::string one;
    CHECK(packer.pack(specs[i], one) == copied[i]);
    CHECK(one == msgpack_bytes(specs[i]));
    packer.pack(specs[i], all);  // appends (and is alike the spec just packed)
    expected += msgpack_bytes(specs[i]);
  }
  CHECK(all == expected);
}

TEST_CASE("a SubmitManyReq encodes to msgpack-c's bytes and decodes to its jobs", "[common]") {
  msg::SubmitManyReq m;
  for (const char* id : {"a", "b", "c"}) m.jobs.push_back(sample_sum_job(id));
  m.jobs.push_back(sample_sum_job("d"));
  m.jobs.back().kernel = "mean";
  m.jobs.push_back(JobSpec{});  // no id: the broker names it

  // The frame as the generic encode writes it: the struct packed by msgpack-c.
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(4);
  pk.pack(proto::kVersion);
  pk.pack(static_cast<std::uint8_t>(msg::SubmitManyReq::kType));
  pk.pack(std::uint64_t{99});
  pk.pack(m);
  const std::string frame = encode(m, 99);
  CHECK(frame == std::string(buf.data(), buf.size()));

  auto back = decode<msg::SubmitManyReq>(frame.data(), frame.size());
  REQUIRE(back.ok());
  CHECK(back.value().jobs == m.jobs);
  const std::string empty = encode(msg::SubmitManyReq{}, 1);
  auto none = decode<msg::SubmitManyReq>(empty.data(), empty.size());
  REQUIRE(none.ok());
  CHECK(none.value().jobs.empty());
}
