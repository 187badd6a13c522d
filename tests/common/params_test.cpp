#include <catch2/catch.hpp>

#include "zwq/dtype.hpp"
#include "zwq/params.hpp"

using namespace zwq;

TEST_CASE("params parse integers, floats and strings", "[common][params]") {
  auto i = Params::parse_assignment("bins=64");
  REQUIRE(i.ok());
  CHECK(std::get<std::int64_t>(i.value().second) == 64);
  auto d = Params::parse_assignment("lo=-0.5");
  REQUIRE(d.ok());
  CHECK(std::get<double>(d.value().second) == -0.5);
  auto s = Params::parse_assignment("mode=fast");
  REQUIRE(s.ok());
  CHECK(std::get<std::string>(s.value().second) == "fast");
  CHECK_FALSE(Params::parse_assignment("novalue").ok());
  CHECK_FALSE(Params::parse_assignment("=3").ok());
}

TEST_CASE("params refuse a number too large for a double and take a subnormal one",
          "[common][params]") {
  auto huge = Params::parse_assignment("a=1e400");
  REQUIRE_FALSE(huge.ok());
  CHECK(huge.error().message.find("1e400 is out of the range of a double") != std::string::npos);
  auto tiny = Params::parse_assignment("eps=1e-310");  // ERANGE too, but a double holds it
  REQUIRE(tiny.ok());
  CHECK(std::get<double>(tiny.value().second) > 0);
  CHECK(std::get<double>(tiny.value().second) < 1e-300);
}

TEST_CASE("params numeric lookups convert and fall back", "[common][params]") {
  Params p;
  p.set("k", std::int64_t{3});
  p.set("x", 2.75);
  p.set("s", std::string("str"));
  CHECK(p.get_double("k", 0) == 3.0);
  CHECK(p.get_int("x", 0) == 2);
  CHECK(p.get_double("s", -1) == -1);
  CHECK(p.get_double("missing", 9) == 9);
  CHECK(p.get_string("s", "") == "str");
}

TEST_CASE("dtype names parse ours and numpy's", "[common][dtype]") {
  CHECK(parse_dtype("f32") == DType::kF32);
  CHECK(parse_dtype("float64") == DType::kF64);
  CHECK(parse_dtype("<i8") == DType::kI64);
  CHECK(parse_dtype("uint8") == DType::kU8);
  CHECK_FALSE(parse_dtype(">f4").has_value());
  CHECK(dtype_size(DType::kI32) == 4);
  CHECK(dtype_name(DType::kU8) == "u8");
}
