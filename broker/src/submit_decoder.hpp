// read_submit_many: decodes a SubmitManyReq the way most of them come — jobs that differ only in
// their job_id, as Client::submit_many sends a run_many of one kernel — without building
// msgpack-c's object tree for each job, which was most of the broker's cost of reading them.
//
// A job whose map starts with its job_id, and whose fields after it are the same bytes as those
// of the job before it (the same number of them), is that job with its own id; any other job is
// decoded the usual way (msgpack-c, with the codec's limits).
//
// Error model: it never fails. It takes only a well-formed frame [version, SubmitManyReq, corr,
// {jobs: [...]}] (the body's one key "jobs", at most proto::kMaxBatchJobs jobs, nothing after).
// For anything else it returns nothing, and the caller decodes the frame the usual way
// (decode_envelope, decode_body), which also gives the error of a bad one: both ways read the same
// jobs (tests/broker/submit_decoder_test.cpp). The jobs' own checks (check_job_spec) are the
// caller's, as for decode_body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "zwq/messages.hpp"

namespace zwq::broker {

struct DecodedSubmitMany {
  std::uint64_t corr = 0;
  msg::SubmitManyReq req;
  std::uint64_t copied = 0;  // jobs read as a copy of the one before (for tests)
};

std::optional<DecodedSubmitMany> read_submit_many(const void* data, std::size_t size);

}  // namespace zwq::broker
