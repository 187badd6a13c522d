// Fault test: a lost reply. A proxy between client and broker drops the broker's first SubmitRep;
// the client times out, retries on a fresh socket with the same job id, and the job runs once.
//   build/tests/zwq_integration_tests "fault: a lost*"
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "cluster.hpp"
#include "processes.hpp"
#include "zwq/codec.hpp"

using namespace zwq;
using namespace zwq::test;

namespace {

// Forwards control requests of one client to the broker and its replies back, dropping the first
// reply of type `drop` (as a network that loses it would).
class LossyProxy {
 public:
  LossyProxy(const std::string& broker, proto::MsgType drop) : drop_(drop) {
    front_.set(zmq::sockopt::linger, 0);
    back_.set(zmq::sockopt::linger, 0);
    front_.bind("tcp://127.0.0.1:*");
    address_ = front_.get(zmq::sockopt::last_endpoint);
    back_.connect(broker);
    thread_ = std::thread([this] { loop(); });
  }
  ~LossyProxy() {
    stop_ = true;
    thread_.join();
  }
  const std::string& address() const { return address_; }
  int dropped() const { return dropped_; }

 private:
  void loop() {
    std::string client;  // the latest client socket (a retry comes on a fresh one)
    while (!stop_) {
      zmq::pollitem_t items[] = {{front_.handle(), 0, ZMQ_POLLIN, 0},
                                 {back_.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 2, std::chrono::milliseconds(20));
      if (items[0].revents & ZMQ_POLLIN) {
        std::vector<zmq::message_t> parts;  // [identity, empty, frame]
        (void)zmq::recv_multipart(front_, std::back_inserter(parts));
        if (parts.size() != 3) continue;
        client = parts[0].to_string();
        back_.send(zmq::message_t(), zmq::send_flags::sndmore);
        back_.send(parts[2], zmq::send_flags::none);
      }
      if (items[1].revents & ZMQ_POLLIN) {
        std::vector<zmq::message_t> parts;  // [empty, frame]
        (void)zmq::recv_multipart(back_, std::back_inserter(parts));
        if (parts.size() != 2) continue;
        auto env = decode_envelope(parts[1].data(), parts[1].size());
        if (env.ok() && env.value().type == drop_ && dropped_ == 0) {
          ++dropped_;
          continue;
        }
        front_.send(zmq::buffer(client), zmq::send_flags::sndmore);
        front_.send(zmq::message_t(), zmq::send_flags::sndmore);
        front_.send(parts[1], zmq::send_flags::none);
      }
    }
  }

  proto::MsgType drop_;
  zmq::context_t ctx_;
  zmq::socket_t front_{ctx_, zmq::socket_type::router};
  zmq::socket_t back_{ctx_, zmq::socket_type::dealer};
  std::string address_;
  std::atomic<bool> stop_{false};
  std::atomic<int> dropped_{0};
  std::thread thread_;
};

std::uint64_t slices_done_by_workers(Client& c) {
  auto w = c.workers();
  REQUIRE(w.ok());
  std::uint64_t n = 0;
  for (const auto& s : w.value()) n += s.slices_done;
  return n;
}

}  // namespace

TEST_CASE("fault: a lost SubmitRep: the client's retry reuses the job id and the job runs once",
          "[integration][fault]") {
  LocalCluster cluster(cluster_options(2));
  JobRequest req = JobRequest::range("pi", 0, 100'000'000);
  req.slice_size = 1'000'000;  // 100 slices
  req.job_id = "reference";
  auto reference = cluster.client().run(req, kJobTimeout);
  REQUIRE(reference.ok());
  const std::uint64_t before = slices_done_by_workers(cluster.client());

  LossyProxy proxy(cluster.address(), proto::MsgType::kSubmitRep);
  ClientOptions o;
  o.broker = proxy.address();
  o.request_timeout = std::chrono::milliseconds(500);
  o.retries = 2;
  auto client = Client::connect(o);
  REQUIRE(client.ok());
  req.job_id = "lost-reply";
  auto job = client.value().submit(req);
  REQUIRE(job.ok());
  CHECK(proxy.dropped() == 1);
  CHECK(job.value().existed());  // the retry found the job the lost reply was about
  auto r = job.value().wait(kJobTimeout);
  REQUIRE(r.ok());
  CHECK(r.value().value == reference.value().value);
  const JobStatus st = job.value().last_status();
  CHECK(st.done == 100);
  CHECK(st.retried == 0);
  CHECK(st.discarded == 0);
  CHECK(slices_done_by_workers(cluster.client()) - before == 100);  // computed once, not twice
  auto all = cluster.client().status();
  REQUIRE(all.ok());
  CHECK(all.value().size() == 2);  // "reference" and "lost-reply": no second job
}
