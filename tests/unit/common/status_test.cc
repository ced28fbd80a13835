#include "common/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/protocol.h"

namespace todo {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "ok");
  EXPECT_TRUE(Status::Ok().ok());
}

TEST(StatusTest, Factories) {
  EXPECT_EQ(Status::BadRequest("m").code(), ErrorCode::kBadRequest);
  EXPECT_EQ(Status::Internal("m").code(), ErrorCode::kInternal);
  EXPECT_EQ(Status::Overloaded("m").code(), ErrorCode::kOverloaded);
  Status s = Status::BadRequest("key 'date' is bad");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "key 'date' is bad");
  EXPECT_EQ(s.ToString(), "bad_request: key 'date' is bad");
}

TEST(StatusTest, WireNamesOfEveryCode) {
  struct Case {
    ErrorCode code;
    const char* name;
  };
  for (Case c :
       {Case{ErrorCode::kOk, "ok"}, Case{ErrorCode::kBadRequest, "bad_request"},
        Case{ErrorCode::kUnknownOp, "unknown_op"}, Case{ErrorCode::kNotFound, "not_found"},
        Case{ErrorCode::kOverloaded, "overloaded"}, Case{ErrorCode::kUnavailable, "unavailable"},
        Case{ErrorCode::kTimeout, "timeout"}, Case{ErrorCode::kInternal, "internal"}}) {
    EXPECT_EQ(ErrorCodeName(c.code), c.name);
    if (c.code != ErrorCode::kOk) {
      EXPECT_EQ(protocol::ParseErrorCode(c.name), c.code) << c.name;
      EXPECT_EQ(Status(c.code, "x").ToString(), std::string(c.name) + ": x");
    }
  }
  EXPECT_EQ(protocol::ParseErrorCode("no_such_code"), ErrorCode::kInternal);
  EXPECT_EQ(protocol::ParseErrorCode(""), ErrorCode::kInternal);
  EXPECT_EQ(protocol::ParseErrorCode("ok"), ErrorCode::kInternal);
}

TEST(StatusOrTest, HoldsValue) {
  StatusOr<std::string> v(std::string("hello"));
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v.status().ok());
  EXPECT_EQ(*v, "hello");
  EXPECT_EQ(v->size(), 5u);
  v.value() += "!";
  EXPECT_EQ(v.value(), "hello!");
  std::string moved = std::move(v).value();
  EXPECT_EQ(moved, "hello!");
}

TEST(StatusOrTest, HoldsError) {
  StatusOr<int> v(Status::BadRequest("nope"));
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(v.status().message(), "nope");
}

TEST(StatusOrTest, MoveOnlyValue) {
  StatusOr<std::unique_ptr<int>> v(std::make_unique<int>(7));
  ASSERT_TRUE(v.ok());
  std::unique_ptr<int> p = std::move(v).value();
  EXPECT_EQ(*p, 7);
}

}  // namespace
}  // namespace todo
