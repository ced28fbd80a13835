#include "tests/bench/connection.h"

namespace todo::bench {

std::string_view BenchOpName(BenchOp op) {
  switch (op) {
    case BenchOp::kAdd:
      return "add";
    case BenchOp::kEntries:
      return "entries";
    case BenchOp::kEntriesAll:
      return "entries_all";
    case BenchOp::kUpdate:
      return "update";
    case BenchOp::kDelete:
      return "delete";
    case BenchOp::kPing:
      return "ping";
  }
  return "?";
}

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kClientTimeout:
      return "client_timeout";
    case Outcome::kBadReply:
      return "bad_reply";
    case Outcome::kBadRequest:
      return ErrorCodeName(ErrorCode::kBadRequest);
    case Outcome::kUnknownOp:
      return ErrorCodeName(ErrorCode::kUnknownOp);
    case Outcome::kNotFound:
      return ErrorCodeName(ErrorCode::kNotFound);
    case Outcome::kOverloaded:
      return ErrorCodeName(ErrorCode::kOverloaded);
    case Outcome::kUnavailable:
      return ErrorCodeName(ErrorCode::kUnavailable);
    case Outcome::kTimeout:
      return ErrorCodeName(ErrorCode::kTimeout);
    case Outcome::kInternal:
      return ErrorCodeName(ErrorCode::kInternal);
  }
  return "?";
}

Outcome OutcomeFromErrorCode(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return Outcome::kOk;
    case ErrorCode::kBadRequest:
      return Outcome::kBadRequest;
    case ErrorCode::kUnknownOp:
      return Outcome::kUnknownOp;
    case ErrorCode::kNotFound:
      return Outcome::kNotFound;
    case ErrorCode::kOverloaded:
      return Outcome::kOverloaded;
    case ErrorCode::kUnavailable:
      return Outcome::kUnavailable;
    case ErrorCode::kTimeout:
      return Outcome::kTimeout;
    case ErrorCode::kInternal:
      return Outcome::kInternal;
  }
  return Outcome::kInternal;
}

}  // namespace todo::bench
