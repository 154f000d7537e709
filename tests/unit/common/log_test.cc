// Log lines: the plain form for a terminal or file, the priority-prefixed
// form for systemd's journal, and how netd tells which stderr it has.
#include <gtest/gtest.h>

#include "vfabric/common/log_line.h"

namespace vfabric {
namespace {

constexpr timeval kNow{1796000000, 123456};  // 2026-11-30T00:53:20.123Z

TEST(LogTest, PlainLinesCarryTimeProgramPidAndLevel) {
  EXPECT_EQ(FormatLogLine(LogLevel::kWarning, "drift", false, kNow, "netd", 42),
            "2026-11-30T00:53:20.123Z netd[42]: warning: drift\n");
}

TEST(LogTest, JournalLinesCarryTheSyslogPriorityOnEveryLine) {
  EXPECT_EQ(FormatLogLine(LogLevel::kError, "apply failed", true, kNow, "netd", 42),
            "<3>error: apply failed\n");
  EXPECT_EQ(FormatLogLine(LogLevel::kWarning, "w", true, kNow, "netd", 42), "<4>warning: w\n");
  EXPECT_EQ(FormatLogLine(LogLevel::kInfo, "i", true, kNow, "netd", 42), "<6>info: i\n");
  EXPECT_EQ(FormatLogLine(LogLevel::kDebug, "d", true, kNow, "netd", 42), "<7>debug: d\n");
  // journald reads each line on its own: a continuation line without the
  // prefix would be filed at the default priority.
  EXPECT_EQ(FormatLogLine(LogLevel::kError, "a\nb\n", true, kNow, "netd", 42),
            "<3>error: a\n<3>error: b\n");
  EXPECT_EQ(FormatLogLine(LogLevel::kError, "", true, kNow, "netd", 42), "<3>error: \n");
}

TEST(LogTest, JournalStreamMustNameStderrItself) {
  EXPECT_TRUE(IsJournalStream("8:12345", 8, 12345));
  // Inherited by a process whose stderr was redirected since: not the journal.
  EXPECT_FALSE(IsJournalStream("8:12345", 8, 99));
  EXPECT_FALSE(IsJournalStream("9:12345", 8, 12345));
  EXPECT_FALSE(IsJournalStream(nullptr, 8, 12345));
  for (const char* bad : {"", ":", "8:", ":12345", "8", "8:12345x", "x8:12345", "8:-1"})
    EXPECT_FALSE(IsJournalStream(bad, 8, 12345)) << bad;
}

}  // namespace
}  // namespace vfabric
