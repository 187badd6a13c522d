#include "zwq/pool.hpp"

#include <algorithm>

#include "zwq/dataset.hpp"

namespace zwq {

namespace {

// The elements or tasks a request covers, when it can be told without probing: 0 if unknown.
std::uint64_t request_size(const JobRequest& r) {
  if (r.count) return *r.count;
  if (!r.param_sets.empty())
    return r.param_sets.size() - std::min<std::uint64_t>(r.first, r.param_sets.size());
  for (const DatasetRef* d : {&r.input, &r.output}) {
    if (d->present() && d->length > r.first) return d->length - r.first;
  }
  return 0;
}

// The job's datasets as prepare_job stamps them: what decides which workers take it.
JobSpec placed(const JobRequest& r) {
  JobSpec spec;
  spec.input = r.input;
  spec.input2 = r.input2;
  spec.output = r.output;
  for (DatasetRef* d : {&spec.input, &spec.input2, &spec.output}) stamp_dataset(*d, r.here);
  return spec;
}

}  // namespace

std::uint64_t auto_chunksize(std::uint64_t n, std::uint64_t workers) {
  const std::uint64_t parts = 4 * std::max<std::uint64_t>(workers, 1);
  return std::max<std::uint64_t>(1, (n + parts - 1) / parts);
}

Pool::Pool(LocalClusterOptions options) {
  cluster_.emplace(std::move(options));
}

Result<Pool> Pool::connect(ClientOptions options) {
  auto c = Client::connect(std::move(options));
  if (!c.ok()) return c.error();
  Pool pool{Connected{}};
  pool.client_.emplace(std::move(c).value());
  return pool;
}

Pool::Pool(Pool&&) noexcept = default;
Pool& Pool::operator=(Pool&&) noexcept = default;
Pool::~Pool() = default;

Client& Pool::client() {
  return cluster_ ? cluster_->client() : *client_;
}

LocalCluster* Pool::cluster() {
  return cluster_ ? &*cluster_ : nullptr;
}

std::uint64_t Pool::workers() {
  return workers(DatasetRef{});
}

std::uint64_t Pool::workers(const DatasetRef& where) {
  JobRequest r;
  r.input = where;
  return readers(placed(r));
}

std::uint64_t Pool::readers(const JobSpec& spec) {
  auto ws = client().workers();
  if (!ws.ok()) return cluster_ ? static_cast<std::uint64_t>(cluster_->workers()) : 1;
  const auto live = std::count_if(ws.value().begin(), ws.value().end(), [&](const WorkerStatus& w) {
    return w.state != "dead" && readable_by(spec, w.host, w.memory);
  });
  return std::max<std::uint64_t>(1, static_cast<std::uint64_t>(live));
}

Result<Job> Pool::submit_job(JobRequest request, const PoolOptions& options) {
  request.here = request.here || options.here;
  if (request.slice_size == 0) {
    if (options.chunksize != 0) {
      request.slice_size = options.chunksize;
    } else if (const std::uint64_t n = request_size(request); n != 0) {
      request.slice_size = auto_chunksize(n, readers(placed(request)));
    } else if (request.input.present() || request.output.present()) {
      // A file named by path, its length not known here: probe it as submit() will.
      auto spec = client().prepare(request);
      if (!spec.ok()) return spec.error();
      request.slice_size = auto_chunksize(spec.value().count, readers(spec.value()));
    }
  }
  return client().submit(request);
}

Result<AsyncResult<JobResult>> Pool::submit(JobRequest request, const PoolOptions& options) {
  auto job = submit_job(std::move(request), options);
  if (!job.ok()) return job.error();
  return AsyncResult<JobResult>(std::move(job).value(),
                                [](JobResult&& r) -> Result<JobResult> { return std::move(r); });
}

Result<Job> Pool::imap_unordered(JobRequest request, const PoolOptions& options) {
  return submit_job(std::move(request), options);
}

Result<JobResult> Pool::run(JobRequest request, const PoolOptions& options) {
  auto job = submit_job(std::move(request), options);
  if (!job.ok()) return job.error();
  return job.value().wait(options.timeout);
}

}  // namespace zwq
