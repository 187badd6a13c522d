#include "wire.hpp"

#include <msgpack.hpp>
#include <string_view>

#include "zwq/codec.hpp"
#include "zwq/protocol.hpp"

namespace zwq::broker {

namespace {

void pack_key(msgpack::packer<msgpack::sbuffer>& pk, std::string_view key) {
  pk.pack_str(static_cast<std::uint32_t>(key.size()));
  pk.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
}

// The envelope of a Tasks frame, up to its body map of `fields` entries.
void pack_tasks_header(msgpack::packer<msgpack::sbuffer>& pk, std::uint32_t fields) {
  pack_frame_head(pk, proto::MsgType::kTasks, 0);
  pk.pack_map(fields);
}

}  // namespace

void encode_tasks(msgpack::sbuffer& out, std::uint64_t epoch, const std::string& spec_bytes,
                  std::uint64_t ref, const std::vector<SliceRun>& runs) {
  out.clear();
  msgpack::packer<msgpack::sbuffer> pk(out);
  pack_tasks_header(pk, ref != 0 ? 4 : 3);
  pack_key(pk, "epoch");
  pk.pack(epoch);
  pack_key(pk, "job");
  out.write(spec_bytes.data(), spec_bytes.size());  // already one msgpack object
  pack_key(pk, "runs");
  pk.pack(runs);
  if (ref != 0) {
    pack_key(pk, "ref");
    pk.pack(ref);
  }
}

void encode_tasks_by_ref(msgpack::sbuffer& out, std::uint64_t ref,
                         const std::vector<SliceRun>& runs) {
  out.clear();
  msgpack::packer<msgpack::sbuffer> pk(out);
  pack_tasks_header(pk, 2);
  pack_key(pk, "ref");
  pk.pack(ref);
  pack_key(pk, "runs");
  pk.pack(runs);
}

std::uint64_t peek_corr(const void* data, std::size_t size) {
  if (size > proto::kMaxFrameBytes) return 0;
  try {
    std::size_t off = 0;
    msgpack::object_handle h = unpack_limited(static_cast<const char*>(data), size, off);
    const msgpack::object& o = h.get();
    if (o.type != msgpack::type::ARRAY || o.via.array.size < 3) return 0;
    const msgpack::object& corr = o.via.array.ptr[2];
    return corr.type == msgpack::type::POSITIVE_INTEGER ? corr.via.u64 : 0;
  } catch (...) {
    return 0;
  }
}

}  // namespace zwq::broker
