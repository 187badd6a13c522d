// sample_sum_job(): a sum job with a dataset, a range and a parameter, for the tests of the codec
// and of the fast decoders (what they read must equal what the usual decoding reads).
#pragma once

#include <string>

#include "zwq/messages.hpp"

namespace zwq::test {

inline JobSpec sample_sum_job(const std::string& id) {
  JobSpec j;
  j.job_id = id;
  j.kernel = "sum";
  j.input = DatasetRef{"shm:data", DType::kF32, 128, 1000};
  j.first = 5;
  j.count = 900;
  j.slice_size = 64;
  j.params.set("mode", std::string("fast"));
  return j;
}

}  // namespace zwq::test
