#include "prefaulter.hpp"

#include <pthread.h>
#include <sched.h>

#include <utility>

namespace zwq::worker {

Prefaulter::~Prefaulter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    pending_.clear();
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Prefaulter::ahead(std::vector<Range> ranges) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ = std::move(ranges);
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  }
  wake_.notify_one();
}

void Prefaulter::wait_idle() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [this] { return pending_.empty() && !working_; });
}

void Prefaulter::run() {
  // Idle time only (see the header): failing that, it runs at the normal priority, as before.
  sched_param param{};
  (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &param);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stop_ || !pending_.empty(); });
    if (stop_) return;
    std::vector<Range> work = std::move(pending_);
    pending_.clear();
    working_ = true;
    lock.unlock();
    for (const Range& r : work) r.file->prefault(r.offset, r.length);
    work.clear();  // the mappings are let go before the lock is taken again
    lock.lock();
    working_ = false;
    if (pending_.empty()) idle_.notify_all();
  }
}

}  // namespace zwq::worker
