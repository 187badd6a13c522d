// zwq-bench's per-thread CPU time: what splits a sum job's wall time into the compute threads'
// running time and the rest.
#include "thread_time.hpp"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

using zwq::bench::busiest;
using zwq::bench::thread_on_cpu_ns;
using zwq::bench::thread_sched_stat;
using zwq::bench::thread_times;
using zwq::bench::ThreadTime;

namespace {

pid_t this_tid() {
  return static_cast<pid_t>(::syscall(SYS_gettid));
}

// Keeps this thread on a CPU for about `cpu` of its own CPU time (bounded by 5 s of wall time).
void burn(std::chrono::milliseconds cpu) {
  const pid_t pid = ::getpid(), tid = this_tid();
  const std::uint64_t until =
      thread_on_cpu_ns(pid, tid) + static_cast<std::uint64_t>(cpu.count()) * 1000000;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::atomic<std::uint64_t> x{0};
  while (thread_on_cpu_ns(pid, tid) < until && std::chrono::steady_clock::now() < give_up) {
    for (int i = 0; i < 100000; ++i) x.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace

TEST_CASE("bench thread time counts this thread's CPU time and not a sleeping thread's",
          "[bench]") {
  const pid_t pid = ::getpid();
  const pid_t me = this_tid();
  std::atomic<pid_t> idle_tid{0};
  std::atomic<bool> done{false};
  std::thread idle([&] {
    idle_tid = this_tid();
    while (!done) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  });
  while (idle_tid == 0) std::this_thread::yield();
  const std::uint64_t mine0 = thread_on_cpu_ns(pid, me);
  const std::uint64_t idle0 = thread_on_cpu_ns(pid, idle_tid);
  burn(std::chrono::milliseconds(30));
  const std::uint64_t mine1 = thread_on_cpu_ns(pid, me);
  const std::uint64_t idle1 = thread_on_cpu_ns(pid, idle_tid);
  const auto all = thread_times(pid);
  done = true;
  idle.join();

  CHECK(mine1 - mine0 >= 30000000);  // the 30 ms burnt, read back
  CHECK(idle1 - idle0 < 10000000);   // a thread that sleeps in 5 ms steps
  bool found = false;
  for (const ThreadTime& t : all) {
    if (t.tid == me) {
      found = true;
      CHECK(t.pid == pid);
      CHECK(t.on_cpu_ns >= mine1);
    }
  }
  CHECK(found);
  CHECK(busiest(all, 1).at(0).tid == me);
  CHECK(thread_on_cpu_ns(pid, 0) == 0);  // no such thread
}

TEST_CASE("bench busiest keeps the n threads that ran longest, longest first", "[bench]") {
  const std::vector<ThreadTime> t{{1, 10, 5}, {1, 11, 900}, {2, 20, 7}, {2, 21, 800}, {1, 12, 1}};
  const auto two = busiest(t, 2);
  REQUIRE(two.size() == 2);
  CHECK(two[0].tid == 11);
  CHECK(two[1].tid == 21);
  CHECK(busiest(t, 9).size() == t.size());  // fewer threads than asked: all of them
  CHECK(busiest({}, 1).empty());
}

TEST_CASE("bench thread time counts the time a runnable thread waits for a CPU", "[bench]") {
  // Two threads that burn on the same one CPU: each runs about half the time and waits for the
  // CPU the other half. (Pinning to a CPU this process may not use fails: then nothing to see.)
  cpu_set_t allowed;
  REQUIRE(::sched_getaffinity(0, sizeof allowed, &allowed) == 0);
  int cpu = 0;
  while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &allowed)) ++cpu;
  REQUIRE(cpu < CPU_SETSIZE);
  const pid_t pid = ::getpid();
  std::atomic<std::uint64_t> waited[2] = {0, 0};
  std::atomic<bool> pinned[2] = {false, false};
  auto body = [&](int i) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pinned[i] = ::sched_setaffinity(0, sizeof one, &one) == 0;
    const pid_t tid = this_tid();
    const std::uint64_t w0 = thread_sched_stat(pid, tid).waiting_ns;
    burn(std::chrono::milliseconds(40));
    waited[i] = thread_sched_stat(pid, tid).waiting_ns - w0;
  };
  std::thread a(body, 0), b(body, 1);
  a.join();
  b.join();
  REQUIRE(pinned[0]);
  REQUIRE(pinned[1]);
  // Sharing one CPU while both burn, each waits while the other runs: about 40 ms between them
  // (each started its burn within a thread start of the other); half of that is the bound.
  CHECK(waited[0] + waited[1] >= 20000000);
  CHECK(thread_sched_stat(pid, 0).on_cpu_ns == 0);  // no such thread: zeros
  CHECK(thread_sched_stat(pid, 0).waiting_ns == 0);
}
