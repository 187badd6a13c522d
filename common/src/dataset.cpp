#include "zwq/dataset.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "zwq/npy_header.hpp"

namespace zwq {

Status check_dataset_uri(std::string_view uri) {
  if (uri.substr(0, 4) == "shm:") {
    const std::string_view name = uri.substr(4);
    if (name.empty() || name.find('/') != std::string_view::npos || name == "." || name == "..") {
      return make_error(
          ErrorCode::kInvalidArgument,
          "dataset '" + std::string(uri) + "': a shm name must be non-empty and contain no '/'");
    }
  } else if (uri.empty() || uri == "file:") {
    return make_error(ErrorCode::kInvalidArgument, "empty dataset name");
  }
  return Status::Ok();
}

Result<std::string> dataset_path(const std::string& uri) {
  if (Status s = check_dataset_uri(uri); !s.ok()) return s.error();
  if (uri.rfind("shm:", 0) == 0) return "/dev/shm/" + uri.substr(4);
  return uri.rfind("file:", 0) == 0 ? uri.substr(5) : uri;
}

std::string meta_path(const std::string& data_path) {
  return data_path + ".zwq-meta";
}

Status write_meta(const std::string& data_path, DType dtype, std::uint64_t count) {
  std::ofstream out(meta_path(data_path), std::ios::trunc);
  out << "zwq-array 1 dtype=" << dtype_name(dtype) << " count=" << count << "\n";
  out.flush();
  if (!out) {
    return make_error(ErrorCode::kInvalidArgument,
                      "cannot write " + meta_path(data_path) + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

std::optional<std::pair<DType, std::uint64_t>> read_meta(const std::string& data_path) {
  std::ifstream in(meta_path(data_path));
  std::string magic, dtype_kv, count_kv;
  int version = 0;
  if (!(in >> magic >> version >> dtype_kv >> count_kv)) return std::nullopt;
  if (magic != "zwq-array" || version != 1) return std::nullopt;
  if (dtype_kv.rfind("dtype=", 0) != 0 || count_kv.rfind("count=", 0) != 0) return std::nullopt;
  auto dtype = parse_dtype(dtype_kv.substr(6));
  if (!dtype) return std::nullopt;
  try {
    return std::pair{*dtype, static_cast<std::uint64_t>(std::stoull(count_kv.substr(6)))};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

namespace {

std::string describe(const DatasetRef& ref, const std::string& path) {
  return ref.uri == path ? "'" + path + "'" : "'" + ref.uri + "' (" + path + ")";
}

}  // namespace

std::string misaligned(const DatasetRef& d) {
  const std::size_t size = dtype_size(d.dtype);
  if (size == 0 || d.byte_offset % size == 0) return {};
  return "'" + d.uri + "': byte offset " + std::to_string(d.byte_offset) +
         " is not a multiple of the " + std::string(dtype_name(d.dtype)) + " element size (" +
         std::to_string(size) + ")";
}

std::uint64_t DatasetInfo::data_end() const {
  if (!recorded_count || !recorded_dtype) return file_bytes;
  return header_bytes + *recorded_count * dtype_size(*recorded_dtype);
}

Status check_record(std::uint64_t file_bytes, std::uint64_t header_bytes, std::uint64_t count,
                    DType dtype, bool npy) {
  const std::uint64_t size = dtype_size(dtype);
  const std::string record = std::string(npy ? ".npy header" : ".zwq-meta sidecar") + " records " +
                             std::to_string(count) + " elements of " +
                             std::string(dtype_name(dtype));
  if (size == 0 || count > (std::numeric_limits<std::uint64_t>::max() - header_bytes) / size) {
    return make_error(ErrorCode::kDatasetTooShort,
                      "records " + std::to_string(count) + " elements, more than any file holds");
  }
  const std::uint64_t want = header_bytes + count * size;
  if (file_bytes == want || (npy && file_bytes > want)) return Status::Ok();  // (np.load's way)
  const std::string holds = "holds " + std::to_string(file_bytes) + " bytes, but its " + record +
                            " (" + std::to_string(want) + " bytes)";
  if (file_bytes < want)
    return make_error(ErrorCode::kDatasetTooShort, holds + ": was it cut short?");
  return make_error(ErrorCode::kInvalidArgument,
                    holds + ": is the sidecar stale? (zwq array rm removes both)");
}

Result<DatasetInfo> inspect_dataset(const std::string& uri) {
  auto path = dataset_path(uri);
  if (!path.ok()) return path.error();
  DatasetInfo info;
  info.path = path.value();
  const std::string name = uri == info.path ? "'" + uri + "'" : "'" + uri + "' (" + info.path + ")";
  struct stat st {};
  if (::stat(info.path.c_str(), &st) != 0) {
    return make_error(ErrorCode::kDatasetMissing,
                      "dataset " + name + " cannot be opened: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return make_error(ErrorCode::kDatasetMissing, "dataset " + name + " is not a regular file");
  }
  info.file_bytes = static_cast<std::uint64_t>(st.st_size);
  auto npy = read_npy_header(info.path);
  if (!npy.ok()) return make_error(npy.error().code, "dataset " + name + " " + npy.error().message);
  if (npy.value()) {
    const NpyHeader& h = *npy.value();
    if (!h.dtype) {
      return make_error(ErrorCode::kDtypeMismatch, "dataset " + name + " is a .npy of dtype '" +
                                                       h.descr + "', which zwq cannot read");
    }
    info.header_bytes = h.header_bytes;
    info.recorded_dtype = h.dtype;
    info.recorded_count = h.count;
  } else if (auto meta = read_meta(info.path)) {
    info.recorded_dtype = meta->first;
    info.recorded_count = meta->second;
  }
  if (info.recorded_count) {
    Status s = check_record(info.file_bytes, info.header_bytes, *info.recorded_count,
                            *info.recorded_dtype, npy.value().has_value());
    if (!s.ok()) return make_error(s.error().code, "dataset " + name + " " + s.error().message);
  }
  return info;
}

Status check_reading(const DatasetRef& ref, const DatasetInfo& info, bool zero_skips_header) {
  // (Names are made only for an error: a worker checks every Tasks message.)
  const auto name = [&] { return "dataset " + describe(ref, info.path); };
  if (ref.dtype == DType::kNone) {
    return make_error(ErrorCode::kInvalidArgument, name() + " has no dtype");
  }
  if (info.recorded_dtype && *info.recorded_dtype != ref.dtype) {
    return make_error(ErrorCode::kDtypeMismatch,
                      name() + " holds " + std::string(dtype_name(*info.recorded_dtype)) +
                          " but the job reads it as " + std::string(dtype_name(ref.dtype)));
  }
  const bool skipped = zero_skips_header && ref.byte_offset == 0;
  if (!skipped && ref.byte_offset < info.header_bytes) {
    return make_error(
        ErrorCode::kInvalidArgument,
        name() + ": byte offset " + std::to_string(ref.byte_offset) +
            " lies inside its .npy header of " + std::to_string(info.header_bytes) + " bytes" +
            (zero_skips_header
                 ? " (0 reads from the end of the header)"
                 : " (its elements start at byte " + std::to_string(info.header_bytes) + ")"));
  }
  return Status::Ok();
}

Result<DatasetInfo> probe_dataset(const DatasetRef& ref, std::uint64_t needed_elements) {
  auto inspected = inspect_dataset(ref.uri);
  if (!inspected.ok()) return inspected.error();
  DatasetInfo info = std::move(inspected).value();
  const std::string name = describe(ref, info.path);
  if (Status s = check_reading(ref, info, true); !s.ok()) return s.error();
  const std::uint64_t start = ref.byte_offset != 0 ? ref.byte_offset : info.header_bytes;
  const std::uint64_t need = start + needed_elements * dtype_size(ref.dtype);
  if (info.data_end() < need) {
    std::ostringstream msg;
    msg << "dataset " << name << " holds " << info.data_end() << " bytes"
        << (info.recorded_count ? " of recorded elements" : "") << " but " << needed_elements
        << " elements of " << dtype_name(ref.dtype) << " from byte offset " << start << " need "
        << need;
    return make_error(ErrorCode::kDatasetTooShort, msg.str());
  }
  return info;
}

}  // namespace zwq
