#include "vfabric/common/mac_address.h"

#include <gtest/gtest.h>

namespace vfabric {
namespace {

TEST(MacAddressTest, ParsesAndPrints) {
  auto mac = MacAddress::Parse("52:54:00:AB:cd:01");
  ASSERT_TRUE(mac.has_value());
  EXPECT_EQ(mac->ToString(), "52:54:00:ab:cd:01");
  EXPECT_EQ(mac->ToU64(), 0x525400abcd01ULL);
  EXPECT_EQ(MacAddress::FromU64(0x525400abcd01ULL), *mac);
  EXPECT_FALSE(mac->IsMulticast());
  EXPECT_FALSE(mac->IsZero());
}

TEST(MacAddressTest, RejectsMalformed) {
  for (const char* text : {"", "52:54:00:ab:cd", "52:54:00:ab:cd:0g", "52-54-00-ab-cd-01",
                           "52:54:00:ab:cd:011", "5:54:00:ab:cd:01x"}) {
    EXPECT_FALSE(MacAddress::Parse(text).has_value()) << text;
  }
}

TEST(MacAddressTest, Classifies) {
  EXPECT_TRUE(MacAddress::Parse("01:80:c2:00:00:00")->IsMulticast());
  EXPECT_TRUE(MacAddress::Parse("ff:ff:ff:ff:ff:ff")->IsBroadcast());
  EXPECT_TRUE(MacAddress::Parse("00:00:00:00:00:00")->IsZero());
}

}  // namespace
}  // namespace vfabric
