// The walk over a netlink receive buffer (nl::MessageOk), on buffers the
// kernel never sends: what netlink_fuzzer found.
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cstring>
#include <vector>

#include "nl_parse.h"

namespace vfabric::netd::nl {
namespace {

// Two messages in a 48-byte buffer; the second one's header claims `length`.
std::vector<uint32_t> Buffer(uint32_t second_length) {
  std::vector<uint32_t> words(12, 0);
  nlmsghdr first{};
  first.nlmsg_len = 16;
  first.nlmsg_type = NLMSG_NOOP;
  std::memcpy(words.data(), &first, sizeof first);
  nlmsghdr second{};
  second.nlmsg_len = second_length;
  second.nlmsg_type = RTM_NEWLINK;
  std::memcpy(words.data() + 4, &second, sizeof second);
  return words;
}

int Walk(const std::vector<uint32_t>& words) {
  const auto* header = reinterpret_cast<const nlmsghdr*>(words.data());
  int remaining = static_cast<int>(words.size() * 4);
  int messages = 0;
  while (MessageOk(header, remaining)) {
    ++messages;
    header = mnl_nlmsg_next(header, &remaining);
  }
  return messages;
}

TEST(NetlinkParseTest, AMessageLongerThanTheBufferEndsTheWalk) {
  EXPECT_EQ(Walk(Buffer(32)), 2);
  EXPECT_EQ(Walk(Buffer(33)), 1);
  EXPECT_EQ(Walk(Buffer(15)), 1);
}

// libmnl's mnl_nlmsg_ok() takes (int)nlmsg_len: a length of 2^31 or more is
// negative there and passes, and mnl_nlmsg_next() then jumps 2 GiB ahead.
TEST(NetlinkParseTest, ALengthOf2GiBOrMoreIsNotAMessage) {
  std::vector<uint32_t> words = Buffer(0x82a6343b);
  const auto* second = reinterpret_cast<const nlmsghdr*>(words.data() + 4);
  EXPECT_TRUE(mnl_nlmsg_ok(second, 32));  // the hole MessageOk closes
  EXPECT_FALSE(MessageOk(second, 32));
  EXPECT_EQ(Walk(words), 1);
  EXPECT_EQ(Walk(Buffer(0xfffffff0)), 1);
}

}  // namespace
}  // namespace vfabric::netd::nl
