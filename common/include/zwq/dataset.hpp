// Datasets: raw little-endian arrays in /dev/shm or on a (shared) filesystem.
//
// A dataset is named "shm:NAME" (the file /dev/shm/NAME) or by a path ("/data/x.f32",
// "file:/data/x.f32"). Its elements start at `byte_offset` (so .npy files work: their header is
// skipped). A small sidecar file "PATH.zwq-meta", written by zwq::SharedArray and `zwq array
// create`, records the dtype and element count so that a wrong dtype is caught; .npy headers are
// read for the same purpose. Plain raw files carry no dtype and are taken as the job says.
#pragma once

#include <cstdint>
#include <msgpack.hpp>
#include <optional>
#include <string>

#include "zwq/dtype.hpp"
#include "zwq/msgpack_map.hpp"
#include "zwq/status.hpp"

// Declared before any struct that packs a DType: MSGPACK_DEFINE's unpack is not a template.
MSGPACK_ADD_ENUM(zwq::DType);

namespace zwq {

struct DatasetRef {
  std::string uri;                // "shm:NAME" or a path; empty = no dataset
  DType dtype = DType::kNone;     // element type
  std::uint64_t byte_offset = 0;  // where element 0 starts in the file
  std::uint64_t length = 0;       // elements available from byte_offset (filled in by probe)
  // Where the file is, for a file in /dev/shm (zwq/placement.hpp); empty for a file that every
  // worker host reads at the same path (a shared filesystem). The client stamps it
  // (stamp_memory()); the broker then sends the job only to workers that can read it
  // (in_memory_of()), and a worker that cannot refuses it rather than read a file of the same
  // name in its own memory.
  std::string host;    // for people: the host name
  std::string memory;  // for routing: that host's memory_id(); empty from an older client

  bool present() const { return !uri.empty(); }
  bool operator==(const DatasetRef&) const = default;
  ZWQ_DEFINE_MAP(uri, dtype, byte_offset, length, host, memory)
};

// "shm:NAME" -> "/dev/shm/NAME"; "file:P" -> "P"; anything else is taken as a path.
// Fails (kInvalidArgument) on an empty name or a shm name containing '/' (or "." or "..").
Result<std::string> dataset_path(const std::string& uri);
// The check dataset_path makes, without making the path (no allocation unless it fails).
Status check_dataset_uri(std::string_view uri);

// Why elements of `d` cannot be read where it says they start: "" when they can, else a message
// naming the dataset ("'shm:x': byte offset 3 is not a multiple of the f64 element size (8)").
// A dataset with no dtype is not judged here.
std::string misaligned(const DatasetRef& d);

// What a probe learned about a dataset file.
struct DatasetInfo {
  std::string path;
  std::uint64_t file_bytes = 0;
  std::optional<DType> recorded_dtype;          // from a .npy header or a .zwq-meta sidecar
  std::optional<std::uint64_t> recorded_count;  // the elements they say it holds
  std::uint64_t header_bytes = 0;               // .npy header length (suggested byte_offset)

  // Where its elements end: after the recorded count when there is one, else at the end of the
  // file. (A file shorter than its record is refused by the probes.)
  std::uint64_t data_end() const;
};

// Whether a file of `file_bytes` matches what it records: `count` elements of `dtype` after a
// header of `header_bytes` (a .npy's, when `npy`; else 0 and a .zwq-meta sidecar's count). Fails
// with kDatasetTooShort when it holds fewer bytes ("was it cut short?") or the count cannot be
// the size of any file, and for a sidecar, which zwq writes for a file of exactly that size, with
// kInvalidArgument when it holds more ("is the sidecar stale?"). Messages start with "holds" or
// "records", for the caller to put the file's name before.
Status check_record(std::uint64_t file_bytes, std::uint64_t header_bytes, std::uint64_t count,
                    DType dtype, bool npy);

// Looks at the file behind `uri`: its size, and what it records of itself (a .npy header, else
// a .zwq-meta sidecar). Fails with kDatasetMissing (no such regular file), kInvalidArgument (a
// .npy header cut short or malformed), kDtypeMismatch (a .npy of a dtype zwq cannot read) or
// kDatasetTooShort (fewer bytes than the record says); each message names the dataset.
Result<DatasetInfo> inspect_dataset(const std::string& uri);

// Whether `ref` reads the file `info` describes as the file records itself: with its recorded
// dtype (kDtypeMismatch otherwise) and from a byte offset past any .npy header (kInvalidArgument
// otherwise; when `zero_skips_header`, an offset of 0 stands for the end of the header, as the
// client library takes it; on the wire, an offset is where element 0 is). A ref without a dtype
// fails with kInvalidArgument. Messages name the dataset.
Status check_reading(const DatasetRef& ref, const DatasetInfo& info, bool zero_skips_header);

// inspect_dataset(), then checks that the file can serve elements [0, needed) of ref.dtype from
// ref.byte_offset, which may not lie inside a .npy header (0 means after it). Fails as
// inspect_dataset does, and with kDatasetTooShort, kDtypeMismatch or kInvalidArgument; each
// message names the dataset and the numbers involved.
Result<DatasetInfo> probe_dataset(const DatasetRef& ref, std::uint64_t needed_elements);

// Sidecar metadata ("PATH.zwq-meta"), one line: "zwq-array 1 dtype=f32 count=N".
std::string meta_path(const std::string& data_path);
Status write_meta(const std::string& data_path, DType dtype, std::uint64_t count);
std::optional<std::pair<DType, std::uint64_t>> read_meta(const std::string& data_path);

}  // namespace zwq
