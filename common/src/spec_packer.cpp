#include "zwq/spec_packer.hpp"

#include <cstring>
#include <msgpack.hpp>
#include <string_view>

#include "zwq/msgpack_reader.hpp"

namespace zwq {
namespace {

// What msgpack packs a spec into: a buffer on the stack, spilling into a string only past it. A
// spec is some thirty small writes (keys, values); appended to a string one by one they cost
// more than the copying itself (8 % of the broker's time on one-slice jobs).
class PackBuffer {
 public:
  void write(const char* data, std::size_t n) {
    if (spill_.empty() && n <= sizeof buf_ - used_) {
      std::memcpy(buf_ + used_, data, n);
      used_ += n;
      return;
    }
    if (spill_.empty()) spill_.assign(buf_, used_);
    spill_.append(data, n);
  }
  std::string_view view() const {
    return spill_.empty() ? std::string_view(buf_, used_) : std::string_view(spill_);
  }

 private:
  char buf_[512];
  std::size_t used_ = 0;
  std::string spill_;
};

}  // namespace

bool SpecPacker::pack(const JobSpec& spec, std::string& out) {
  last_.job_id = spec.job_id;
  if (!rest_.empty() && last_ == spec) {
    PackBuffer head;
    msgpack::packer<PackBuffer> pk(head);
    pk.pack_map(fields_);
    pk.pack(std::string_view("job_id"));
    pk.pack(spec.job_id);
    out.reserve(out.size() + head.view().size() + rest_.size());  // one allocation, not two
    out.append(head.view());
    out.append(rest_);
    return true;
  }
  PackBuffer packed;
  msgpack::pack(packed, spec);
  const std::string_view bytes = packed.view();
  out.append(bytes);
  rest_.clear();
  MsgpackReader r(bytes.data(), bytes.size());
  std::string_view key, id;
  if (spec.param_sets.empty() && bytes.size() <= kMaxKeptBytes && r.map(fields_) && r.str(key) &&
      key == "job_id" && r.str(id) && id == spec.job_id) {
    last_ = spec;  // first: if it throws, no rest is kept to reuse with a stale spec
    rest_.assign(r.here(), r.left());
  }
  return false;
}

}  // namespace zwq
