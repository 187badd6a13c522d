#include "job.hpp"

namespace zwq::broker {

JobStatus Job::status(TimePoint now) const {
  JobStatus st;
  st.job_id = spec.job_id;
  st.kernel = spec.kernel;
  st.state = state;
  st.total = collector.total();
  st.done = collector.covered();
  st.inflight = final() ? 0 : collector.leased();
  st.retried = retried;
  st.discarded = collector.discarded();
  st.elapsed_ms = millis_between(submitted, final() ? finished : now);
  st.error_code = error_code;
  st.error = error;
  return st;
}

JobResult Job::full_result() const {
  JobResult r = result;
  if (state == JobState::kDone && collector.combiner() == Combiner::kGather) {
    r.gathered = collector.gathered();
  }
  return r;
}

}  // namespace zwq::broker
