// read_results: decodes the Results messages the broker takes from its workers without building
// msgpack-c's object tree, which was a quarter of the broker's loop when each Results carried a
// few thousand one-slice outcomes.
//
// Error model: it never fails. It takes only a well-formed Results message of the shape zwq's
// workers write (the body's keys epoch, worker_id, job_id, items and slowest_us, each once, in any
// order; each item [slice, attempt, code, message, partial] and each partial of its seven
// fields) that check_message accepts. For anything else it returns nothing, and the caller
// decodes the frame the usual way (decode_envelope, decode_body), which also gives the error of a
// bad one: both ways accept the same messages and read them alike
// (tests/broker/results_decoder_test.cpp).
#pragma once

#include <cstddef>
#include <optional>

#include "zwq/messages.hpp"

namespace zwq::broker {

std::optional<msg::Results> read_results(const void* data, std::size_t size);

}  // namespace zwq::broker
