// connectable_endpoint: wildcard addresses a broker announces become reachable ones.
#include "endpoints.hpp"

#include <catch2/catch.hpp>

using zwq::worker::connectable_endpoint;

TEST_CASE("endpoints replace a wildcard host with the control host", "[worker]") {
  CHECK(connectable_endpoint("tcp://*:5556", "tcp://node7:5555") == "tcp://node7:5556");
  CHECK(connectable_endpoint("tcp://0.0.0.0:5557", "tcp://10.0.0.2:5555") == "tcp://10.0.0.2:5557");
  CHECK(connectable_endpoint("tcp://[::]:5558", "tcp://[fe80::1]:5555") == "tcp://[fe80::1]:5558");
}

TEST_CASE("endpoints keep concrete and ipc addresses", "[worker]") {
  CHECK(connectable_endpoint("tcp://127.0.0.1:5556", "tcp://node7:5555") == "tcp://127.0.0.1:5556");
  CHECK(connectable_endpoint("ipc:///tmp/zwq-1/tasks", "ipc:///tmp/zwq-1/control") ==
        "ipc:///tmp/zwq-1/tasks");
  CHECK(connectable_endpoint("tcp://*:5556", "ipc:///tmp/zwq-1/control") == "tcp://*:5556");
}
