// `netctl log-level` against a real netd whose stderr is "the journal"
// (JOURNAL_STREAM names its log file): the level is shown, changed at run
// time, the change is logged, and lines carry their syslog priority.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using testing::CommandResult;
using ::testing::HasSubstr;
using ::testing::Not;

class LogLevelTest : public testing::NetdFixture {
 protected:
  void TearDown() override { unsetenv("JOURNAL_STREAM"); }
  CommandResult Netctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::BinaryDir() + "/netctl/netctl", "--socket", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv);
  }
  // netd's stderr (its log file, opened for appending) is the journal:
  // JOURNAL_STREAM holds its device and inode, as systemd sets it.
  void LogToTheJournal() {
    testing::WriteFile(log_, "");
    struct stat st {};
    ASSERT_EQ(stat(log_.c_str(), &st), 0);
    const std::string stream = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    ASSERT_EQ(setenv("JOURNAL_STREAM", stream.c_str(), 1), 0);
  }
};

TEST_F(LogLevelTest, ShowsAndChangesTheLevelOfARunningNetd) {
  LogToTheJournal();
  Start(Configs(), {"--log-level", "info"});
  EXPECT_THAT(Log(), HasSubstr("<6>info: serving "));  // syslog priority 6

  CommandResult shown = Netctl({"log-level"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_EQ(shown.out, "info\n");
  // At info, requests are not logged.
  ASSERT_EQ(Netctl({"status"}).exit_code, 0);
  EXPECT_THAT(Log(), Not(HasSubstr("control request \"status\"")));

  CommandResult set = Netctl({"log-level", "debug"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_EQ(set.out, "log level debug (was info)\n");
  EXPECT_THAT(Log(), HasSubstr("<6>info: log level info -> debug (log.level request)\n"));
  ASSERT_EQ(Netctl({"status"}).exit_code, 0);
  EXPECT_THAT(Log(), HasSubstr("<7>debug: control request \"status\"\n"));
  EXPECT_EQ(Netctl({"log-level", "--json"}).out, "{\n  \"level\": \"debug\"\n}\n");

  // Down to error: the change itself is still logged, debug lines stop.
  ASSERT_EQ(Netctl({"log-level", "error"}).exit_code, 0);
  EXPECT_THAT(Log(), HasSubstr("<6>info: log level debug -> error (log.level request)\n"));
  const size_t before = Log().size();
  ASSERT_EQ(Netctl({"network", "list"}).exit_code, 0);
  EXPECT_THAT(Log().substr(before), Not(HasSubstr("control request")));

  CommandResult bad = Netctl({"log-level", "verbose"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("'verbose' is not a log level"));
  EXPECT_EQ(Netctl({"log-level"}).out, "error\n");
}

}  // namespace
}  // namespace vfabric
