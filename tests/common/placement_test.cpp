// Placement: where a dataset's file is (/dev/shm, a local disk, a shared filesystem), how a client
// stamps it, and which workers can read it.
#include "zwq/placement.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "shm_file.hpp"

using namespace zwq;
using zwq::test::ShmFile;

TEST_CASE("a dataset in /dev/shm is host-local, a file elsewhere is not", "[common][placement]") {
  CHECK(host_local("shm:abc"));
  CHECK(host_local("/dev/shm/abc"));
  CHECK(host_local("file:/dev/shm/abc"));
  CHECK_FALSE(host_local("/data/x.f32"));
  CHECK_FALSE(host_local("/dev/shmx/abc"));
  CHECK_FALSE(host_local("shm:"));  // not a dataset at all
  CHECK_FALSE(host_name().empty());
}

TEST_CASE("an existing file in /dev/shm is host-local by whatever path it is named",
          "[common][placement]") {
  ShmFile f("host-local");
  f.write(std::vector<float>(4, 1.0f));
  CHECK(host_local(f.uri()));
  CHECK(host_local("file://" + f.path()));  // "///dev/shm/...": still that file
  CHECK(host_local("/dev//shm/" + f.name()));
  const std::string link = "/tmp/zwq-host-local-" + std::to_string(::getpid());
  REQUIRE(::symlink(f.path().c_str(), link.c_str()) == 0);
  CHECK(host_local(link));
  ::unlink(link.c_str());
  CHECK_FALSE(host_local("/proc/self/status"));  // exists, on another filesystem
}

TEST_CASE(
    "a client stamps a /dev/shm file with this host and its memory, a file elsewhere with none, "
    "and keeps a host it was given",
    "[common][placement]") {
  auto stamped = [](DatasetRef d) {
    stamp_memory(d);
    return d;
  };
  CHECK(stamped(DatasetRef{}).host.empty());               // no dataset
  CHECK(stamped(DatasetRef{"/data/x.f32"}).host.empty());  // a shared file
  const DatasetRef shm = stamped(DatasetRef{"shm:x"});
  CHECK(shm.host == host_name());
  CHECK(shm.memory == memory_id());
  DatasetRef named{"shm:x"};
  named.host = "node07";  // stamped elsewhere: kept, memory and all
  CHECK(stamped(named).host == "node07");
  CHECK(stamped(named).memory.empty());
}

TEST_CASE("this process's memory id is the boot id and the device of /dev/shm",
          "[common][placement]") {
  std::string boot;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> boot;
  struct stat shm {};
  REQUIRE(::stat("/dev/shm", &shm) == 0);
  REQUIRE(boot.size() == 36);
  CHECK(memory_id() ==
        boot + "/" + std::to_string(major(shm.st_dev)) + ":" + std::to_string(minor(shm.st_dev)));
}

TEST_CASE(
    "a worker reads a dataset when it sees the same memory, whatever its host name, and not when "
    "only its host name matches",
    "[common][placement]") {
  DatasetRef shared{"/data/x.f32"};
  CHECK(in_memory_of(shared, "any", "boot/0:1"));  // no host's: every worker reads it
  DatasetRef d{"shm:x"};
  d.host = "node07";
  d.memory = "boot-a/0:26";
  CHECK(in_memory_of(d, "node07", "boot-a/0:26"));
  CHECK(in_memory_of(d, "renamed", "boot-a/0:26"));       // a UTS namespace of that machine
  CHECK_FALSE(in_memory_of(d, "node07", "boot-b/0:26"));  // another machine of the same name
  CHECK_FALSE(in_memory_of(d, "node07", "boot-a/0:31"));  // a container with its own /dev/shm
  // What an older client or an older worker does not say is matched by host name.
  CHECK(in_memory_of(d, "node07", ""));
  CHECK_FALSE(in_memory_of(d, "node08", ""));
  d.memory.clear();
  CHECK(in_memory_of(d, "node07", "boot-b/0:26"));
  CHECK_FALSE(in_memory_of(d, "node08", "boot-a/0:26"));
  CHECK(memory_place(d) == "host 'node07'");
  d.memory = "boot-a/0:26";
  CHECK(memory_place(d) == "host 'node07' (memory boot-a/0:26)");
}

TEST_CASE(
    "one worker may read two datasets of one host's memory, but not of two memories or two hosts",
    "[common][placement]") {
  DatasetRef a{"shm:a"};
  a.host = "n1";
  a.memory = "boot-1/0:26";
  DatasetRef b = a;
  const DatasetRef shared{"/nfs/x.f32"};
  CHECK(same_place(a, b));
  CHECK(same_place(shared, a));  // a shared file goes anywhere
  b.memory = "boot-1/0:31";      // a container's own /dev/shm
  CHECK_FALSE(same_place(a, b));
  b.memory = "boot-2/0:26";  // another machine of the same name
  CHECK_FALSE(same_place(a, b));
  // A host given without a memory (by the caller, or an older client): host names decide, as
  // in_memory_of() does for a worker.
  b.memory.clear();
  CHECK(same_place(a, b));
  CHECK(same_place(b, a));
  b.host = "n2";
  CHECK_FALSE(same_place(a, b));
}

TEST_CASE("keep_here stamps any file with this host's memory, and leaves a named host alone",
          "[common][placement]") {
  DatasetRef local{"/scratch/x.f32"};  // need not exist: the caller says where it is
  keep_here(local);
  CHECK(local.host == host_name());
  CHECK(local.memory == memory_id());
  CHECK(in_memory_of(local, "renamed", memory_id()));
  CHECK_FALSE(in_memory_of(local, host_name(), "another-boot/0:26"));
  DatasetRef named{"/scratch/x.f32"};
  named.host = "node07";
  keep_here(named);
  CHECK(named.host == "node07");
  CHECK(named.memory.empty());
  DatasetRef none;
  keep_here(none);
  CHECK(none.host.empty());
}
