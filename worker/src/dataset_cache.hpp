// DatasetCache: each dataset file mapped once per worker and reused across jobs and slices.
//
// A worker maps a dataset the first time a job names it and keeps the mapping, so a stream of
// small Tasks messages over one array costs one mmap, not one per message. The caller asks
// again (one stat(2)) once per Tasks message; a file whose size or inode changed since it was
// mapped is mapped afresh. With each mapping it keeps what the file records of itself (a .npy
// header or a .zwq-meta sidecar), so that a job which reads the file as another dtype, from
// inside its header or past its recorded elements can be refused; the record is read again
// when the file's modification time changed and its .npy header with it (np.save over it in
// place keeps size and inode).
// Beyond `max_mappings` files, the least recently used is unmapped.
//
// Thread safety: none; one cache belongs to one worker loop. The mappings it hands out are
// shared_ptrs, so one in use by a prepared job outlives its eviction from the cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include "zwq/dataset.hpp"
#include "zwq/mapping.hpp"
#include "zwq/status.hpp"

namespace zwq::worker {

// A mapped dataset file and its record.
// (Shared, not copied: handing one out costs no allocation.)
struct CachedDataset {
  std::shared_ptr<const MappedFile> file;
  std::shared_ptr<const DatasetInfo> record;  // inspect_dataset() of the file as it was mapped
};

class DatasetCache {
 public:
  // `populate`: new mappings pre-fault the chunks slices ask for (MappedFile::prefault).
  // `max_mappings` >= 1.
  explicit DatasetCache(std::size_t max_mappings = 64, bool populate = true);

  // The mapping of the file at `path` in `mode`: the cached one if the file's size and inode
  // are unchanged, else a new one. Fails with kDatasetMissing (the message names the path and
  // the reason) when the file does not exist or cannot be mapped, or as inspect_dataset() does
  // when its record is malformed or disagrees with its size; a stale entry is dropped.
  Result<CachedDataset> get(const std::string& path, MappedFile::Mode mode);

  // Mappings held now.
  std::size_t size() const { return entries_.size(); }
  // Files mapped so far (first maps plus re-maps): lets tests see that a mapping was reused.
  std::uint64_t maps_made() const { return maps_made_; }
  // Records read so far (inspect_dataset calls): lets tests see when one was read again.
  std::uint64_t records_read() const { return records_read_; }

 private:
  struct Entry {
    std::string key;
    CachedDataset dataset;
    std::int64_t mtime_ns = 0;  // the file's when its record was read
  };
  using Lru = std::list<Entry>;  // most recently used first

  void evict_beyond_limit();

  std::size_t max_mappings_;
  bool populate_;
  Lru lru_;
  std::unordered_map<std::string, Lru::iterator> entries_;
  std::uint64_t maps_made_ = 0;
  std::uint64_t records_read_ = 0;
};

}  // namespace zwq::worker
