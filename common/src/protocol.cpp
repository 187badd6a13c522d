#include "zwq/protocol.hpp"

#include "zwq/messages.hpp"

namespace zwq {

namespace proto {
std::string_view msg_type_name(MsgType t) {
  switch (t) {
    case MsgType::kInfoReq: return "InfoReq";
    case MsgType::kSubmitReq: return "SubmitReq";
    case MsgType::kStatusReq: return "StatusReq";
    case MsgType::kWaitReq: return "WaitReq";
    case MsgType::kFetchReq: return "FetchReq";
    case MsgType::kCancelReq: return "CancelReq";
    case MsgType::kWorkersReq: return "WorkersReq";
    case MsgType::kShutdownReq: return "ShutdownReq";
    case MsgType::kSubmitManyReq: return "SubmitManyReq";
    case MsgType::kWaitManyReq: return "WaitManyReq";
    case MsgType::kInfoRep: return "InfoRep";
    case MsgType::kSubmitRep: return "SubmitRep";
    case MsgType::kStatusRep: return "StatusRep";
    case MsgType::kWaitRep: return "WaitRep";
    case MsgType::kFetchRep: return "FetchRep";
    case MsgType::kCancelRep: return "CancelRep";
    case MsgType::kWorkersRep: return "WorkersRep";
    case MsgType::kShutdownRep: return "ShutdownRep";
    case MsgType::kErrorRep: return "ErrorRep";
    case MsgType::kSubmitManyRep: return "SubmitManyRep";
    case MsgType::kWaitManyRep: return "WaitManyRep";
    case MsgType::kHello: return "Hello";
    case MsgType::kWelcome: return "Welcome";
    case MsgType::kTasks: return "Tasks";
    case MsgType::kWorkerHeartbeat: return "WorkerHeartbeat";
    case MsgType::kBye: return "Bye";
    case MsgType::kRegisterAgain: return "RegisterAgain";
    case MsgType::kResults: return "Results";
    case MsgType::kBrokerHeartbeat: return "BrokerHeartbeat";
    case MsgType::kJobEvent: return "JobEvent";
    case MsgType::kCancelEvent: return "CancelEvent";
    case MsgType::kShutdownEvent: return "ShutdownEvent";
  }
  return "";
}
}  // namespace proto

std::string_view job_state_name(JobState s) {
  switch (s) {
    case JobState::kQueued: return "queued";
    case JobState::kRunning: return "running";
    case JobState::kDone: return "done";
    case JobState::kFailed: return "failed";
    case JobState::kCancelled: return "cancelled";
  }
  return "unknown";
}

}  // namespace zwq
