#include "dataset_cache.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace zwq::worker {
namespace {

std::string cache_key(const std::string& path, MappedFile::Mode mode) {
  return (mode == MappedFile::Mode::kRead ? "r:" : "w:") + path;
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
      if (e.mtime_ns != mtime_ns(st)) {  // written since: its header may say something else now
        auto record = inspect_dataset(path);
        if (!record.ok()) return record.error();
        e.dataset.record = std::make_shared<const DatasetInfo>(std::move(record).value());
        e.mtime_ns = mtime_ns(st);
      }
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
