// SpecPacker: packs JobSpecs as msgpack maps (job_id first, as ZWQ_DEFINE_MAP lists it), and a
// spec that differs from the last one it packed only in its job_id as that one's bytes with the
// new id: a run of alike jobs (Client::run_many of one kernel, 10^5 one-point jobs) is packed
// field by field once, then copied. The bytes are the same as msgpack::pack(spec) gives.
//
// Error model: none; packing a well-formed JobSpec does not fail (bad_alloc aside). Not
// thread-safe; cheap to make (one per message, or one kept by its owner).
#pragma once

#include <cstdint>
#include <string>

#include "zwq/messages.hpp"

namespace zwq {

class SpecPacker {
 public:
  // Appends `spec`'s encoding to `out`. True if it was the last packed spec's bytes after the id.
  bool pack(const JobSpec& spec, std::string& out);

  // Specs longer than this encoded are not kept for reuse (nor are specs with parameter sets,
  // which never repeat: the sets differ from job to job).
  static constexpr std::size_t kMaxKeptBytes = 4096;

 private:
  JobSpec last_;              // the last spec packed in full (job_id: the last one packed)
  std::uint32_t fields_ = 0;  // its map's field count
  std::string rest_;          // its bytes after the job_id (empty: none to reuse)
};

}  // namespace zwq
