#include "dataset_cache.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "zwq/npy_header.hpp"

namespace zwq::worker {
namespace {

std::string cache_key(const std::string& path, MappedFile::Mode mode) {
  return (mode == MappedFile::Mode::kRead ? "r:" : "w:") + path;
}

// Whether the .npy header in `file` (or its absence) is the one `record` was read from. (A
// sidecar is written once, as its file is made: a new file is a new inode.)
bool header_unchanged(const MappedFile& file, const DatasetInfo& record) {
  auto h =
      parse_npy_header(std::string_view(reinterpret_cast<const char*>(file.data()), file.size()));
  if (!h.ok()) return false;
  if (!h.value()) return record.header_bytes == 0;
  return h.value()->header_bytes == record.header_bytes &&
         h.value()->dtype == record.recorded_dtype && h.value()->count == record.recorded_count;
}

std::int64_t mtime_ns(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

}  // namespace

DatasetCache::DatasetCache(std::size_t max_mappings, bool populate)
    : max_mappings_(max_mappings == 0 ? 1 : max_mappings), populate_(populate) {}

Result<CachedDataset> DatasetCache::get(const std::string& path, MappedFile::Mode mode) {
  const std::string key = cache_key(path, mode);
  auto found = entries_.find(key);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (found != entries_.end()) {
      lru_.erase(found->second);
      entries_.erase(found);
    }
    return make_error(ErrorCode::kDatasetMissing,
                      "cannot open dataset file '" + path + "': " + std::strerror(err));
  }
  if (found != entries_.end()) {
    const MappedFile& cached = *found->second->dataset.file;
    if (cached.size() == static_cast<std::uint64_t>(st.st_size) &&
        cached.inode() == static_cast<std::uint64_t>(st.st_ino)) {
      Entry& e = *found->second;
      // Written since (np.save over it in place keeps size and inode): read the record again
      // if the header in the mapping says something else now. Writes through a mapping, a map
      // kernel's, change the mtime too: comparing the header in memory costs no system call.
      if (e.mtime_ns != mtime_ns(st) && !header_unchanged(cached, *e.dataset.record)) {
        ++records_read_;
        auto record = inspect_dataset(path);
        if (!record.ok()) return record.error();
        e.dataset.record = std::make_shared<const DatasetInfo>(std::move(record).value());
      }
      e.mtime_ns = mtime_ns(st);
      lru_.splice(lru_.begin(), lru_, found->second);
      return e.dataset;
    }
    lru_.erase(found->second);  // resized or replaced: map it again
    entries_.erase(found);
  }
  // Pages are populated by the chunks slices touch (prefault()), not all at once: a worker that
  // computes half of an array populates half of it, and the first slice starts at once.
  auto mapped = MappedFile::open(
      path, mode, populate_ ? MappedFile::Populate::kOnFirstUse : MappedFile::Populate::kOnFault);
  if (!mapped.ok()) return mapped.error();
  ++records_read_;
  auto record = inspect_dataset(path);
  if (!record.ok()) return record.error();
  ++maps_made_;
  CachedDataset dataset{std::make_shared<const MappedFile>(std::move(mapped).value()),
                        std::make_shared<const DatasetInfo>(std::move(record).value())};
  lru_.push_front(Entry{key, dataset, mtime_ns(st)});
  entries_.emplace(key, lru_.begin());
  evict_beyond_limit();
  return dataset;
}

void DatasetCache::evict_beyond_limit() {
  while (entries_.size() > max_mappings_) {
    entries_.erase(lru_.back().key);
    lru_.pop_back();
  }
}

}  // namespace zwq::worker
