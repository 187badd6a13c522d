// Prefaulter: what it is asked for gets populated, on a thread that takes only idle CPU time.
#include "prefaulter.hpp"

#include <dirent.h>
#include <sched.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <memory>
#include <vector>

#include "shm_file.hpp"
#include "zwq/mapping.hpp"

namespace {

// Threads of this process whose scheduling policy is `policy`.
int threads_with_policy(int policy) {
  int n = 0;
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  while (const dirent* e = ::readdir(dir)) {
    const int tid = std::atoi(e->d_name);
    if (tid > 0 && ::sched_getscheduler(tid) == policy) ++n;
  }
  ::closedir(dir);
  return n;
}

}  // namespace

TEST_CASE("prefaulter populates what it is asked for on a SCHED_IDLE thread", "[worker]") {
  constexpr std::size_t kBytes = 8 * zwq::MappedFile::kPrefaultChunk;
  zwq::test::ShmFile file("prefaulter");
  file.write(std::vector<float>(kBytes / sizeof(float), 1.0f));
  auto mapped = zwq::MappedFile::open(file.path(), zwq::MappedFile::Mode::kRead,
                                      zwq::MappedFile::Populate::kOnFirstUse);
  REQUIRE(mapped.ok());
  auto shared = std::make_shared<const zwq::MappedFile>(std::move(mapped).value());
  REQUIRE_FALSE(shared->prefaulted(0, kBytes));
  const int idle_before = threads_with_policy(SCHED_IDLE);

  zwq::worker::Prefaulter prefaulter;
  prefaulter.ahead(
      {{shared, zwq::MappedFile::kPrefaultChunk, 4 * zwq::MappedFile::kPrefaultChunk}});
  prefaulter.wait_idle();
  CHECK(shared->prefaulted(zwq::MappedFile::kPrefaultChunk, 4 * zwq::MappedFile::kPrefaultChunk));
  CHECK_FALSE(shared->prefaulted(0, zwq::MappedFile::kPrefaultChunk));  // not asked for
  CHECK(threads_with_policy(SCHED_IDLE) == idle_before + 1);
}
