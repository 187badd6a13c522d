#include "endpoints.hpp"

#include <string_view>

namespace zwq::worker {
namespace {

constexpr std::string_view kTcp = "tcp://";

// "tcp://HOST:PORT" -> HOST (brackets kept for IPv6); empty if not tcp or no port.
std::string_view tcp_host(std::string_view endpoint) {
  if (endpoint.substr(0, kTcp.size()) != kTcp) return {};
  endpoint.remove_prefix(kTcp.size());
  const auto colon = endpoint.rfind(':');
  if (colon == std::string_view::npos) return {};
  return endpoint.substr(0, colon);
}

}  // namespace

std::string connectable_endpoint(const std::string& announced, const std::string& control) {
  const std::string_view host = tcp_host(announced);
  if (host != "*" && host != "0.0.0.0" && host != "[::]") return announced;
  const std::string_view control_host = tcp_host(control);
  if (control_host.empty() || control_host == "*") return announced;
  const std::string port = announced.substr(kTcp.size() + host.size());  // ":PORT"
  return std::string(kTcp) + std::string(control_host) + port;
}

}  // namespace zwq::worker
