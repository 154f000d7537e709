// Issue 20: a guest's record (RUN_DIR/vms/NAME/guest.json, what a restarted
// netd adopts its QEMU by) on a full file system. A change to a running
// guest (here a hot-attached NIC) whose record cannot be written is done and
// answered, with the failure said to the client (VmStatus record_error,
// netctl's warning), logged once and counted; the record before stays whole
// (no truncated file, no leftover .tmp); netd writes it again by itself once
// there is space, so a restarted netd adopts the guest with that NIC.
//
// The guests' part of the run dir is the small file system that fills up:
// netd's creation journal (RUN_DIR/creating.json) stays writable, so the
// attach makes its tap and reaches the record (a full journal refuses the
// tap before that: StateFileTest in tests/integration/netd/crash_test.cc).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "guest_fixture.h"
#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using ::testing::HasSubstr;
using testing::json;
using testing::WaitFor;

// A tmpfs of its own at `path` for the test's lifetime.
class ScopedTmpfs {
 public:
  ScopedTmpfs(const std::string& path, const std::string& options) : path_(path) {
    ok_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  ~ScopedTmpfs() {
    if (ok_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  ScopedTmpfs(const ScopedTmpfs&) = delete;
  ScopedTmpfs& operator=(const ScopedTmpfs&) = delete;
  bool ok() const { return ok_; }

 private:
  std::string path_;
  bool ok_ = false;
};

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class GuestRecordFullTest : public testing::GuestFixture {
 protected:
  json VmStatus(const std::string& name) {
    json answer = testing::Ask(socket_, testing::Request("vm.list"));
    if (!answer.is_object() || answer["ok"] != true) return json();
    for (const json& vm : answer["result"]["vms"])
      if (vm["name"] == name) {
        if (vm["pid"].is_number_integer()) qemu_pids_.insert(vm["pid"].get<pid_t>());
        return vm;
      }
    return json();
  }
  std::string Record() { return testing::ReadFile(VmFile("vm1", "guest.json")); }
  // Whether guest.json names a NIC on `port`.
  bool RecordHasPort(const std::string& port) {
    const json record = json::parse(Record(), nullptr, false);
    if (!record.is_object() || !record["nics"].is_array()) return false;
    for (const json& nic : record["nics"])
      if (nic.value("port", "") == port) return true;
    return false;
  }
};

TEST_F(GuestRecordFullTest, ARecordWriteOnAFullRunDirIsReportedAndRetriedUntilThereIsSpace) {
  const std::string vms = run_dir() + "/vms";
  std::filesystem::create_directories(vms);
  ScopedTmpfs tmpfs(vms, "size=2m,mode=0755");
  ASSERT_TRUE(tmpfs.ok()) << std::strerror(errno);
  const json topology = {{"networks", json::array({{{"name", "guests"}, {"bridge", "vfb-guests"}},
                                                   {{"name", "side"}, {"bridge", "vfb-side"}}})},
                         {"vms", json::array({GuestVm("vm1", "vf.ip=10.88.0.1/24",
                                                      json::array({{{"network", "guests"}}}))})}};
  const std::string config = dir_.Join("guests.json");
  testing::WriteFile(config, topology.dump(2));
  Start(config, {"--run-dir", run_dir()});
  ASSERT_TRUE(WaitFor(
      [&] {
        return testing::ReadFile(VmFile("vm1", "console.log")).find("VF-READY") !=
               std::string::npos;
      },
      90000))
      << testing::ReadFile(VmFile("vm1", "console.log")) << Log();
  ASSERT_TRUE(RecordHasPort("vm1-eth0")) << Record();
  const std::string good = Record();
  const pid_t pid = VmStatus("vm1").value("pid", -1);
  ASSERT_GT(pid, 0);

  // Fill the guests' file system up.
  {
    std::ofstream filler(vms + "/filler", std::ios::binary);
    const std::string block(4096, 'x');
    for (int i = 0; i < 1024 && filler; ++i) filler.write(block.data(), block.size());
  }
  auto attach = Netctl({"attach", "vm1", "side", "--mac", "52:54:00:89:00:01"});
  ASSERT_EQ(attach.exit_code, 0) << attach.err << Log();
  EXPECT_THAT(attach.out, HasSubstr("port vm1-eth1"));
  const std::string tmp = VmFile("vm1", "guest.json.tmp");
  EXPECT_THAT(attach.out, HasSubstr("warning: write " + tmp + ": No space left on device"));
  json status = VmStatus("vm1");
  EXPECT_EQ(status["state"], "running") << status.dump();
  EXPECT_EQ(status["nics"].size(), 2u) << status.dump();
  EXPECT_EQ(status.value("record_error", ""), "write " + tmp + ": No space left on device")
      << status.dump();
  EXPECT_GE(status.value("record_write_failures", 0), 1) << status.dump();
  EXPECT_EQ(Record(), good) << "the record before stays whole";
  EXPECT_FALSE(std::filesystem::exists(tmp));

  // Retried (1 s, 2 s, ...), said once.
  ASSERT_TRUE(
      WaitFor([&] { return VmStatus("vm1").value("record_write_failures", 0) >= 2; }, 10000))
      << VmStatus("vm1").dump() << Log();
  EXPECT_EQ(Count(Log(), "No space left on device (the record before stays"), 1u) << Log();
  EXPECT_EQ(Record(), good);
  EXPECT_FALSE(std::filesystem::exists(tmp));

  // Space again: the record is written by itself, with the attached NIC.
  std::filesystem::remove(vms + "/filler");
  EXPECT_TRUE(WaitFor([&] { return RecordHasPort("vm1-eth1"); }, 40000)) << Record() << Log();
  EXPECT_EQ(VmStatus("vm1").value("record_error", "?"), "");
  EXPECT_THAT(Log(), HasSubstr("vm vm1: guest.json saved again"));

  // What it is for: a restarted netd adopts the same QEMU with that NIC.
  ASSERT_EQ(Stop(), 0) << Log();
  Start(config, {"--run-dir", run_dir()});
  ASSERT_TRUE(WaitFor([&] { return VmStatus("vm1")["state"] == "running"; }, 30000)) << Log();
  status = VmStatus("vm1");
  EXPECT_EQ(status.value("pid", -1), pid) << status.dump();
  EXPECT_EQ(status["adopted"], true) << status.dump();
  EXPECT_EQ(status["nics"].size(), 2u) << status.dump();
  Stop();
}

}  // namespace
}  // namespace vfabric
