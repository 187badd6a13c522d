// BrokerOptions that cannot work are refused before anything is bound.
#include <catch2/catch.hpp>
#include <string>

#include "journal.hpp"
#include "scheduler.hpp"
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

// The broker builds its scheduler's options from BrokerOptions; the scheduler's own defaults are
// what its tests and docs describe. A default changed in one place only would go unnoticed.
TEST_CASE("broker options and scheduler options have the same defaults", "[broker]") {
  const BrokerOptions b;
  const zwq::broker::SchedulerOptions s;
  CHECK(b.heartbeat_ms == s.heartbeat_ms);
  CHECK(b.liveness == s.liveness);
  CHECK(b.default_slice_size == s.limits.default_slice_size);
  CHECK(b.max_slices_per_job == s.limits.max_slices_per_job);
  CHECK(b.max_finished_jobs == s.max_finished_jobs);
  CHECK(b.max_finished_slices == s.max_finished_slices);
  CHECK(b.lease_floor_ms == s.lease_floor_ms);
  CHECK(b.lease_factor == s.lease_factor);
  CHECK(b.lease_first_ms == s.lease_first_ms);
  CHECK(b.max_lost_attempts == s.max_lost_attempts);
  CHECK(b.batch_target_us == s.batch_target_us);
  CHECK(b.pipeline_depth == s.pipeline_depth);
  CHECK(b.max_batch == s.max_batch);
}

TEST_CASE("broker options and journal options have the same defaults", "[broker]") {
  const BrokerOptions b;
  const zwq::broker::JournalOptions j;
  CHECK(b.journal_flush_ms == j.flush_ms);
  CHECK(b.journal_fsync_ms == j.fsync_ms);
  CHECK(b.journal_rewrite_bytes == j.rewrite_bytes);
  CHECK(b.max_finished_jobs == j.max_finished);
}
