// Protocol constants. The contract is docs/PROTOCOL.md; this header only names its numbers.
#pragma once

#include <cstdint>
#include <string_view>

namespace zwq::proto {

// Bumped on any incompatible change to a message in docs/PROTOCOL.md.
inline constexpr std::uint32_t kVersion = 1;

// Every message is one msgpack frame: [version, type, corr, body]. `corr` correlates a control
// reply with its request (0 elsewhere). On the events socket a topic frame precedes it.
enum class MsgType : std::uint8_t {
  // control endpoint, client -> broker
  kInfoReq = 1,
  kSubmitReq = 2,
  kStatusReq = 3,
  kWaitReq = 4,
  kFetchReq = 5,
  kCancelReq = 6,
  kWorkersReq = 7,
  kShutdownReq = 8,
  kSubmitManyReq = 9,
  kWaitManyReq = 10,
  // control endpoint, broker -> client
  kInfoRep = 21,
  kSubmitRep = 22,
  kStatusRep = 23,
  kWaitRep = 24,
  kFetchRep = 25,
  kCancelRep = 26,
  kWorkersRep = 27,
  kShutdownRep = 28,
  kErrorRep = 29,
  kSubmitManyRep = 30,
  kWaitManyRep = 31,
  // tasks endpoint, worker <-> broker
  kHello = 41,
  kWelcome = 42,
  kTasks = 43,
  kWorkerHeartbeat = 44,
  kBye = 45,
  kRegisterAgain = 46,
  // results endpoint, worker -> broker
  kResults = 61,
  // events endpoint, broker -> everyone
  kBrokerHeartbeat = 81,
  kJobEvent = 82,
  kCancelEvent = 83,
  kShutdownEvent = 84,
};

std::string_view msg_type_name(MsgType t);

// Topics on the events endpoint (first frame of each PUB message).
inline constexpr std::string_view kTopicHeartbeat = "hb";
inline constexpr std::string_view kTopicJob = "job";
inline constexpr std::string_view kTopicCancel = "cancel";
inline constexpr std::string_view kTopicShutdown = "shutdown";

// Limits on what a peer may send; larger input is rejected as kBadMessage.
inline constexpr std::uint32_t kMaxFrameBytes = 64u << 20;  // a Results batch of gathered bytes
inline constexpr std::uint32_t kMaxContainer = 1u << 22;    // elements in any array or map
inline constexpr std::uint32_t kMaxDepth = 16;              // nesting
// Jobs in one SubmitManyReq or ids in one WaitManyReq. Large enough that a batch costs few round
// trips; small enough that one request holds the broker's loop for a few tens of ms at most, and
// no larger than the finished jobs a broker remembers by default (so a batch's results are still
// there when the client waits for them).
inline constexpr std::uint32_t kMaxBatchJobs = 10000;

// Defaults shared by broker and worker (both may override them with options).
inline constexpr std::uint32_t kDefaultHeartbeatMs = 1000;  // see docs/PROTOCOL.md, heartbeats
inline constexpr std::uint32_t kDefaultLiveness = 5;        // missed beats before "dead"

}  // namespace zwq::proto
