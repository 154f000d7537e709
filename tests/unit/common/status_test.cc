#include "vfabric/common/status.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace vfabric {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.ToString(), "OK");
}

TEST(StatusTest, FromErrnoNamesTheObjectAndTheCause) {
  Status status = Status::FromErrno("TUNSETIFF vm1-eth0", EPERM);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.error_number(), EPERM);
  EXPECT_EQ(status.message(), "TUNSETIFF vm1-eth0: Operation not permitted");
  EXPECT_EQ(status.WithContext("apply lab").message(),
            "apply lab: TUNSETIFF vm1-eth0: Operation not permitted");
  EXPECT_EQ(status.WithContext("x").error_number(), EPERM);
}

Status FailsWhen(bool fail) {
  VF_RETURN_IF_ERROR(fail ? Status::Error("inner") : Status::Ok());
  return Status::Error("reached the end");
}

TEST(StatusTest, ReturnIfErrorReturnsEarly) {
  EXPECT_EQ(FailsWhen(true).message(), "inner");
  EXPECT_EQ(FailsWhen(false).message(), "reached the end");
}

TEST(ResultTest, HoldsValueOrStatus) {
  Result<int> good = 7;
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  Result<int> bad = Status::Error("no value");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "no value");
}

}  // namespace
}  // namespace vfabric
