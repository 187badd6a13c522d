// msgpack adaptors for zwq's enums and kernel parameters. Included by messages.hpp; nothing
// else needs it. Enums travel as their underlying integers; decode_body() range-checks them.
#pragma once

#include <msgpack.hpp>

#include "zwq/dataset.hpp"
#include "zwq/dtype.hpp"
#include "zwq/params.hpp"
#include "zwq/partial.hpp"
#include "zwq/protocol.hpp"
#include "zwq/status.hpp"

MSGPACK_ADD_ENUM(zwq::ErrorCode);
MSGPACK_ADD_ENUM(zwq::proto::MsgType);

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {

  // ParamValue: a msgpack integer, float or string.
  template <>
  struct convert<zwq::ParamValue> {
    const msgpack::object& operator()(const msgpack::object& o, zwq::ParamValue& v) const {
      switch (o.type) {
        case msgpack::type::POSITIVE_INTEGER:
          if (o.via.u64 > static_cast<std::uint64_t>(INT64_MAX)) throw msgpack::type_error();
          v = static_cast<std::int64_t>(o.via.u64);
          break;
        case msgpack::type::NEGATIVE_INTEGER: v = o.via.i64; break;
        case msgpack::type::FLOAT32:
        case msgpack::type::FLOAT64: v = o.via.f64; break;
        case msgpack::type::STR: v = std::string(o.via.str.ptr, o.via.str.size); break;
        default: throw msgpack::type_error();
      }
      return o;
    }
  };
  template <>
  struct pack<zwq::ParamValue> {
    template <typename Stream>
    msgpack::packer<Stream>& operator()(msgpack::packer<Stream>& p, const zwq::ParamValue& v) const {
      std::visit([&p](const auto& x) { p.pack(x); }, v);
      return p;
    }
  };
  // Params: a msgpack map of string -> ParamValue.
  template <>
  struct convert<zwq::Params> {
    const msgpack::object& operator()(const msgpack::object& o, zwq::Params& v) const {
      if (o.type != msgpack::type::MAP) throw msgpack::type_error();
      o.convert(v.values);
      return o;
    }
  };
  template <>
  struct pack<zwq::Params> {
    template <typename Stream>
    msgpack::packer<Stream>& operator()(msgpack::packer<Stream>& p, const zwq::Params& v) const {
      p.pack(v.values);
      return p;
    }
  };

  }  // namespace adaptor
}
}  // namespace msgpack
