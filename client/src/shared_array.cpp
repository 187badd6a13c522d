#include "zwq/shared_array.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "shm_tracker.hpp"
#include "zwq/npy_header.hpp"

namespace zwq {

namespace {

std::string describe(const std::string& name, const std::string& path) {
  return "shared array '" + name + "' (" + path + ")";
}

// Sizes a new file and reserves its pages: tmpfs allocates lazily, so without this a full
// /dev/shm would show up later as SIGBUS in whoever touches the missing page first.
Status reserve(int fd, std::uint64_t bytes, const std::string& what) {
  if (bytes == 0) return Status::Ok();
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    return make_error(ErrorCode::kInternal, "cannot size " + what + ": " + std::strerror(errno));
  }
  const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  if (rc == ENOSPC) {
    return make_error(ErrorCode::kInvalidArgument,
                      "no room for " + what + " (" + std::to_string(bytes) + " bytes)");
  }
  // Filesystems without fallocate still work, they just cannot fail early.
  if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL) {
    return make_error(ErrorCode::kInternal, "cannot reserve " + what + ": " + std::strerror(rc));
  }
  return Status::Ok();
}

}  // namespace

ShmSegment::~ShmSegment() {
  reset();
}

ShmSegment::ShmSegment(ShmSegment&& other) noexcept
    : name_(std::move(other.name_)),
      path_(std::move(other.path_)),
      map_(std::move(other.map_)),
      dtype_(other.dtype_),
      count_(other.count_),
      offset_(other.offset_),
      owner_(other.owner_) {
  other.count_ = 0;
  other.offset_ = 0;
  other.owner_ = false;
}

ShmSegment& ShmSegment::operator=(ShmSegment&& other) noexcept {
  if (this != &other) {
    reset();
    name_ = std::move(other.name_);
    path_ = std::move(other.path_);
    map_ = std::move(other.map_);
    dtype_ = other.dtype_;
    count_ = other.count_;
    offset_ = other.offset_;
    owner_ = other.owner_;
    other.count_ = 0;
    other.offset_ = 0;
    other.owner_ = false;
  }
  return *this;
}

void ShmSegment::reset() {
  map_ = MappedFile();
  if (owner_) {
    ::unlink(path_.c_str());
    ::unlink(meta_path(path_).c_str());
    detail::untrack(detail::Tracked::kShmArray, path_);
  }
  owner_ = false;
  count_ = 0;
  offset_ = 0;
}

Result<ShmSegment> ShmSegment::create(const std::string& name, DType dtype, std::size_t count) {
  auto path = dataset_path("shm:" + name);
  if (!path.ok()) return path.error();
  const std::string what = describe(name, path.value());
  if (dtype == DType::kNone) {
    return make_error(ErrorCode::kInvalidArgument, "cannot create " + what + " without a dtype");
  }
  if (count > std::numeric_limits<std::uint64_t>::max() / dtype_size(dtype)) {
    return make_error(ErrorCode::kInvalidArgument, what + ": too many elements");
  }
  // 0644: workers of other accounts on this host may read it; only we may write.
  const int fd = ::open(path.value().c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) {
      return make_error(
          ErrorCode::kInvalidArgument,
          what + " exists already: open it, or remove it (`zwq array rm " + name + "`)");
    }
    return make_error(ErrorCode::kInternal, "cannot create " + what + ": " + std::strerror(errno));
  }
  ShmSegment seg;
  seg.name_ = name;
  seg.path_ = path.value();
  seg.dtype_ = dtype;
  seg.owner_ = true;  // from here on, a failure removes the file again
  // ... and so does the tracker, should this process be killed before it could.
  detail::track(detail::Tracked::kShmArray, seg.path_);
  Status reserved = reserve(fd, static_cast<std::uint64_t>(count) * dtype_size(dtype), what);
  ::close(fd);
  if (!reserved.ok()) return reserved.error();
  auto map = MappedFile::open(seg.path_, MappedFile::Mode::kReadWrite);
  if (!map.ok()) return map.error();
  seg.map_ = std::move(map).value();
  seg.count_ = count;
  if (Status s = write_meta(seg.path_, dtype, count); !s.ok()) return s.error();
  return seg;
}

Result<ShmSegment> ShmSegment::open(const std::string& name, std::optional<DType> expected) {
  auto path = dataset_path("shm:" + name);
  if (!path.ok()) return path.error();
  const std::string what = describe(name, path.value());
  auto map = MappedFile::open(path.value(), MappedFile::Mode::kReadWrite);
  if (!map.ok()) return make_error(ErrorCode::kDatasetMissing, map.error().message);
  DType dtype = expected.value_or(DType::kNone);
  std::uint64_t offset = 0;
  std::optional<std::uint64_t> recorded;  // the elements a .npy header or the sidecar records
  bool from_npy = false;
  const auto disagrees = [&](DType recorded_dtype) {
    return make_error(ErrorCode::kDtypeMismatch, what + " holds " +
                                                     std::string(dtype_name(recorded_dtype)) +
                                                     ", not " + std::string(dtype_name(*expected)));
  };
  const MappedFile& m = map.value();
  // The header as mapped, not as read again by path: the same bytes the elements come from.
  auto npy = parse_npy_header(std::string_view(reinterpret_cast<const char*>(m.data()), m.size()));
  if (!npy.ok()) return make_error(npy.error().code, what + " " + npy.error().message);
  if (const auto& h = npy.value()) {
    if (!h->dtype) {
      return make_error(ErrorCode::kDtypeMismatch,
                        what + " is a .npy of dtype '" + h->descr + "', which zwq cannot read");
    }
    if (expected && *expected != *h->dtype) return disagrees(*h->dtype);
    dtype = *h->dtype;
    offset = h->header_bytes;
    recorded = h->count;
    from_npy = true;
  } else if (auto meta = read_meta(path.value())) {
    if (expected && *expected != meta->first) return disagrees(meta->first);
    dtype = meta->first;
    recorded = meta->second;
  }
  if (dtype == DType::kNone) {
    return make_error(ErrorCode::kInvalidArgument,
                      what + " has no .zwq-meta sidecar: say which dtype it holds");
  }
  const std::size_t size = dtype_size(dtype);
  if (offset % size != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      what + ": its .npy header of " + std::to_string(offset) +
                          " bytes leaves its elements misaligned for " +
                          std::string(dtype_name(dtype)));
  }
  const std::uint64_t bytes = m.size() - offset;  // (the parsed header lies within the file)
  if (recorded) {
    Status s = check_record(m.size(), offset, *recorded, dtype, from_npy);
    if (!s.ok()) return make_error(s.error().code, what + " " + s.error().message);
  } else if (bytes % size != 0) {
    return make_error(ErrorCode::kDtypeMismatch, what + " holds " + std::to_string(bytes) +
                                                     " bytes, not a whole number of " +
                                                     std::string(dtype_name(dtype)) + " elements");
  }
  ShmSegment seg;
  seg.name_ = name;
  seg.path_ = path.value();
  seg.map_ = std::move(map).value();
  seg.dtype_ = dtype;
  seg.count_ = recorded.value_or(bytes / size);
  seg.offset_ = offset;
  return seg;
}

void ShmSegment::release() {
  if (owner_) detail::untrack(detail::Tracked::kShmArray, path_);
  owner_ = false;
}

Status ShmSegment::remove(const std::string& name) {
  auto path = dataset_path("shm:" + name);
  if (!path.ok()) return path.error();
  if (::unlink(path.value().c_str()) != 0) {
    const int err = errno;
    ::unlink(meta_path(path.value()).c_str());  // a stray sidecar goes too
    return make_error(err == ENOENT ? ErrorCode::kDatasetMissing : ErrorCode::kInternal,
                      "cannot remove " + describe(name, path.value()) + ": " + std::strerror(err));
  }
  ::unlink(meta_path(path.value()).c_str());
  return Status::Ok();
}

}  // namespace zwq
