// BrokerOptions that cannot work are refused before anything is bound.
#include <catch2/catch.hpp>
#include <string>

#include "zwq/broker.hpp"
#include "zwq/status.hpp"

using zwq::BrokerOptions;

namespace {

// The SetupError message of a Broker made with `o`, or "" if it was made.
std::string refusal(const BrokerOptions& o) {
  try {
    zwq::Broker broker(o, nullptr);
    return "";
  } catch (const zwq::SetupError& e) {
    return e.what();
  }
}

}  // namespace

TEST_CASE("broker refuses a liveness of 1, which its workers' late heartbeats cannot meet",
          "[broker]") {
  BrokerOptions o;
  o.liveness = 1;
  CHECK(refusal(o).find("liveness") != std::string::npos);
  o.liveness = 2;
  CHECK(refusal(o).empty());
}

TEST_CASE("broker refuses a zero pipeline depth or batch target", "[broker]") {
  BrokerOptions depth;
  depth.pipeline_depth = 0;
  CHECK(refusal(depth).find("pipeline_depth") != std::string::npos);
  BrokerOptions target;
  target.batch_target_us = 0;
  CHECK(refusal(target).find("batch_target_us") != std::string::npos);
}
