#include "zwq/broker.hpp"

#include "server.hpp"

namespace zwq {

Broker::Broker(BrokerOptions options, std::shared_ptr<spdlog::logger> logger)
    : server_(std::make_unique<broker::Server>(options, std::move(logger))) {}

Broker::~Broker() = default;

const BrokerEndpoints& Broker::endpoints() const {
  return server_->endpoints();
}

std::uint64_t Broker::epoch() const {
  return server_->epoch();
}

void Broker::run() {
  server_->run();
}

void Broker::stop() noexcept {
  server_->stop();
}

}  // namespace zwq
