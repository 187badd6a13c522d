// Small helpers for the addresses a broker announces in InfoRep.
#pragma once

#include <string>

namespace zwq::worker {

// A broker bound to a wildcard ("tcp://*:5556", "tcp://0.0.0.0:5556", "tcp://[::]:5556") may
// announce that address; a remote worker cannot connect to it. Such an endpoint gets the host
// of the control address the worker reached the broker on. Other endpoints are returned as is.
std::string connectable_endpoint(const std::string& announced, const std::string& control);

}  // namespace zwq::worker
