// The controller's views as metrics, on the fake kernel and a userspace
// switch without ports; and netd's own reconcile statistics.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_kernel.h"
#include "vfabric/netd/controller.h"
#include "vfabric/netd/metrics.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;
using testing::FakeKernel;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kTopology = R"({
  "networks": [
    {"name": "lab", "bridge": "vfb-lab",
     "stp": {"enabled": true, "priority": 4096, "hello_time": 1, "forward_delay": 4, "max_age": 6},
     "ports": [{"name": "vm1-eth0", "kind": "tap"},
               {"name": "uplink0", "kind": "veth", "peer": "uplink0-p"}]},
    {"name": "us", "datapath": "userspace", "stp": {"enabled": true},
     "ports": [{"name": "us-a", "kind": "tap"}]}
  ]
})";

json Apply(Controller& controller, const std::string& text) {
  return controller.Handle(
      {{"version", 1},
       {"verb", "apply"},
       {"args", {{"files", json::array({{{"name", "t.json"}, {"text", text}}})}}}});
}

class MetricsViewsTest : public ::testing::Test {
 protected:
  std::string Render() {
    metrics::Exposition exposition;
    MetricsOut out(exposition);
    controller_.WriteMetrics(out);
    EXPECT_EQ(out.errors(), 0u) << out.first_error();
    return exposition.Text();
  }

  FakeKernel kernel_;
  UserspaceNetworks userspace_;
  Controller controller_{kernel_, kernel_.features};
};

TEST_F(MetricsViewsTest, KernelPortsCountersFdbAndTree) {
  ASSERT_EQ(Apply(controller_, kTopology)["ok"], true);
  LinkCounters counters;
  counters.rx_packets = 7;
  counters.rx_bytes = 700;
  counters.tx_packets = 3;
  counters.tx_bytes = 300;
  counters.rx_dropped = 2;
  counters.tx_dropped = 1;
  kernel_.counters["uplink0"] = counters;
  LinkInfo* bridge = kernel_.Find("vfb-lab");
  ASSERT_NE(bridge, nullptr);
  bridge->bridge->bridge_id = (uint64_t{0x1000} << 48) | 0x525400000001ull;
  bridge->bridge->root_id = bridge->bridge->bridge_id;
  bridge->bridge->topology_change = 1;
  kernel_.Find("uplink0")->brport->state = 3;   // forwarding
  kernel_.Find("vm1-eth0")->brport->state = 4;  // blocking
  FdbEntry learned;
  learned.port_ifindex = kernel_.Find("uplink0")->ifindex;
  learned.mac = *MacAddress::Parse("52:54:00:00:00:09");
  FdbEntry local = learned;
  local.mac = *MacAddress::Parse("52:54:00:00:00:0a");
  local.is_local = true;
  kernel_.fdb = {learned, local};

  const std::string text = Render();
  EXPECT_THAT(text, HasSubstr("# TYPE vfabric_port_receive_packets_total counter\n"));
  EXPECT_THAT(
      text, HasSubstr("vfabric_port_receive_packets_total{network=\"lab\",port=\"uplink0\"} 7\n"));
  EXPECT_THAT(
      text, HasSubstr("vfabric_port_transmit_bytes_total{network=\"lab\",port=\"uplink0\"} 300\n"));
  EXPECT_THAT(text, HasSubstr("vfabric_port_drops_total{network=\"lab\",port=\"uplink0\","
                              "reason=\"rx_dropped\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("vfabric_port_receive_bytes_total{network=\"lab\",port=\"vm1-eth0\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("vfabric_fdb_entries{network=\"lab\",type=\"learned\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("vfabric_fdb_entries{network=\"lab\",type=\"static\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("vfabric_stp_port_state{network=\"lab\",port=\"uplink0\","
                              "state=\"forwarding\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("vfabric_stp_port_state{network=\"lab\",port=\"uplink0\","
                              "state=\"blocking\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("vfabric_stp_port_role{network=\"lab\",port=\"vm1-eth0\","
                              "role=\"alternate\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("vfabric_stp_root_bridge{network=\"lab\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("vfabric_stp_topology_change{network=\"lab\"} 1\n"));
  // The kernel bridge keeps no count of topology changes, learned or aged
  // entries: those families are the userspace switch's only.
  EXPECT_THAT(text, Not(HasSubstr("vfabric_stp_topology_changes_total{network=\"lab\"}")));
  EXPECT_THAT(text, Not(HasSubstr("vfabric_fdb_learned_total{network=\"lab\"}")));

  // sysfs names another root: not root, as stp.show says.
  kernel_.sysfs_root_ids["vfb-lab"] = "0800.525400000009";
  EXPECT_THAT(Render(), HasSubstr("vfabric_stp_root_bridge{network=\"lab\"} 0\n"));
  // A port whose link is gone has no counters.
  ASSERT_TRUE(kernel_.DeleteLink("uplink0").ok());
  EXPECT_THAT(Render(), Not(HasSubstr("port=\"uplink0\"")));
}

TEST_F(MetricsViewsTest, UserspaceSwitchFdbAndTree) {
  controller_.SetUserspace(&userspace_);
  ASSERT_EQ(Apply(controller_, kTopology)["ok"], true);
  ASSERT_TRUE(userspace_.Has("us"));
  const std::string text = Render();
  EXPECT_THAT(text, HasSubstr("vfabric_fdb_learned_total{network=\"us\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("vfabric_fdb_aged_total{network=\"us\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("vfabric_fdb_evicted_total{network=\"us\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("vfabric_fdb_moved_total{network=\"us\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("vfabric_fdb_entries{network=\"us\",type=\"learned\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("vfabric_stp_topology_changes_total{network=\"us\"} "));
  EXPECT_THAT(text, HasSubstr("vfabric_stp_bpdus_sent_total{network=\"us\"} "));
}

TEST(ReconcileStatsTest, CountsPassesFailuresOperationsAndDurations) {
  ReconcileStats stats;
  stats.Record("start", true, 5, std::chrono::milliseconds(20));
  stats.Record("repair", true, 2, std::chrono::milliseconds(3));
  stats.Record("repair", false, 0, std::chrono::milliseconds(40));
  stats.Record("resync", true, 1, std::chrono::milliseconds(2));
  metrics::Exposition exposition;
  MetricsOut out(exposition);
  stats.Write(out);
  EXPECT_EQ(out.errors(), 0u) << out.first_error();
  const std::string text = exposition.Text();
  EXPECT_THAT(text, HasSubstr("vfabric_netd_reconcile_passes_total{trigger=\"repair\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("vfabric_netd_reconcile_failures_total{trigger=\"repair\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("vfabric_netd_reconcile_operations_total{trigger=\"start\"} 5\n"));
  EXPECT_THAT(text, HasSubstr("vfabric_netd_repairs_total 3\n"));  // repair + resync
  EXPECT_THAT(text, HasSubstr("# TYPE vfabric_netd_reconcile_duration_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("vfabric_netd_reconcile_duration_seconds_bucket{trigger=\"repair\","
                              "le=\"0.005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("vfabric_netd_reconcile_duration_seconds_bucket{trigger=\"repair\","
                              "le=\"0.05\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("vfabric_netd_reconcile_duration_seconds_count{trigger=\"repair\"} 2\n"));
}

TEST(MetricsOutTest, CountsRefusalsAndKeepsGoing) {
  metrics::Exposition exposition;
  MetricsOut out(exposition);
  out.Counter("vfabric_bad", "no _total", {}, 1);
  out.Gauge("vfabric_good", "fine", {}, 1);
  out.Fail("switch us did not answer");
  EXPECT_EQ(out.errors(), 2u);
  EXPECT_THAT(out.first_error(), HasSubstr("vfabric_bad"));
  EXPECT_THAT(exposition.Text(), HasSubstr("vfabric_good 1\n"));
}

}  // namespace
}  // namespace vfabric::netd
