// Placement: which workers can read a dataset's file, and so which workers a job may go to.
//
// A file in /dev/shm is one host's memory; any other file is taken to be on a filesystem that
// every worker host mounts at the same path (NFS, Lustre, ...). The client stamps a /dev/shm
// dataset with its host name and memory_id() (stamp_memory()); the broker routes the job by it
// and a worker refuses a dataset it cannot read (in_memory_of()), rather than read another file
// of the same name. A file on one host's local disk is not recognised: a filesystem type cannot
// tell a local disk from one this host exports to the others.
#pragma once

#include <string>

#include "zwq/dataset.hpp"

namespace zwq {

// Whether `uri` names a file in /dev/shm: memory of one host, which workers on other hosts
// cannot read. An existing file is judged by its filesystem (the one /dev/shm is), whatever the
// path it is named by; a missing one by its name ("shm:NAME", or a path that starts /dev/shm/).
bool host_local(const std::string& uri);

// This machine's name (gethostname; "unknown" if it cannot be read), as workers announce it and
// clients stamp host-local datasets with.
std::string host_name();

// Which shared memory this process sees: the kernel's boot id and the device of the filesystem
// mounted on /dev/shm, "BOOT_ID/MAJOR:MINOR". Two processes see the same /dev/shm files exactly
// when they agree on it, whatever their host names: two machines of one name differ in boot id,
// and containers with a /dev/shm of their own differ in its device. "" if either cannot be read.
std::string memory_id();

// Stamps `d` as a client does before submitting: a present host_local() file gets host_name()
// and memory_id(). One that names a host already, or is elsewhere, is left as it is.
void stamp_memory(DatasetRef& d);

// Stamps any present file of `d` as a /dev/shm one is (host_name(), memory_id()), so that only
// workers that share this host's memory take its job: for a file on this host's local disk,
// which stamp_memory() cannot tell from one on a shared filesystem. One that names a host
// already is left as it is.
void keep_here(DatasetRef& d);

// A job's dataset as the client stamps it before submitting: keep_here() when the job is kept on
// this host's workers (JobRequest::here), else stamp_memory().
void stamp_dataset(DatasetRef& d, bool here);

// Whether a worker whose Hello says `host` and `memory` can read `d`: any worker when `d` names
// no host; when both sides have a memory, one of the same memory, whatever its host name; else
// (an older client or worker, or a host given without a memory) one of the same host name.
bool in_memory_of(const DatasetRef& d, const std::string& host, const std::string& memory);

// Whether one worker may read both `a` and `b`, as far as their stamps say (a job's datasets
// must agree: the broker refuses a job whose datasets are in two hosts' memories). Memories are
// compared when both have one, else host names.
bool same_place(const DatasetRef& a, const DatasetRef& b);

// "host 'H'", followed by " (memory M)" when `d` has a memory: where `d` is, for messages.
std::string memory_place(const DatasetRef& d);

}  // namespace zwq
