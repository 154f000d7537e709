// One stp::Bridge driven by hand: its BPDUs against what the Linux bridge and
// Open vSwitch send (data/*.pcap), the handshake, migration to STP, topology
// change, edge ports, bpdu_guard, root_block, malformed input and status.
#include "vfabric/stp/rstp.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "pcap.h"

namespace vfabric::stp {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Frame;

MacAddress Mac(const char* text) { return *MacAddress::Parse(text); }

Frame Vector(const std::string& name, size_t index) {
  std::string error;
  std::vector<Frame> frames = testing::ReadVector(name, &error);
  EXPECT_GT(frames.size(), index) << error;
  return frames.size() > index ? frames[index] : Frame{};
}

class RstpBridgeTest : public ::testing::Test {
 protected:
  TimePoint t0_ = TimePoint() + seconds(100);
  TimePoint now_ = t0_;

  std::unique_ptr<Bridge> Make(BridgeConfig config) {
    auto bridge = Bridge::Create(config, now_);
    EXPECT_TRUE(bridge.ok()) << bridge.status().message();
    return std::move(bridge).value();
  }
  static BridgeConfig Config(const char* mac, uint16_t priority = 32768) {
    BridgeConfig config;
    config.address = Mac(mac);
    config.priority = priority;
    return config;
  }
  static PortConfig Port(PortNumber number) {
    PortConfig port;
    port.number = number;
    return port;
  }
  // Advances the fake clock, collecting every output on the way.
  Output Advance(Bridge& bridge, std::chrono::nanoseconds d) {
    Output all;
    const TimePoint end = now_ + d;
    while (bridge.NextDeadline() <= end) {
      now_ = bridge.NextDeadline();
      bridge.AdvanceTo(now_);
      Append(all, bridge.TakeOutput());
    }
    now_ = end;
    return all;
  }
  static void Append(Output& into, Output from) {
    for (auto& x : from.state_changes) into.state_changes.push_back(x);
    for (auto& x : from.bpdus) into.bpdus.push_back(std::move(x));
    for (auto& x : from.flushes) into.flushes.push_back(x);
    for (auto& x : from.events) into.events.push_back(x);
  }
  static std::vector<Bpdu> Decoded(const Output& out, PortNumber port) {
    std::vector<Bpdu> result;
    for (const TxBpdu& tx : out.bpdus) {
      if (tx.port != port) continue;
      Bpdu bpdu;
      EXPECT_EQ(DecodeBpduFrame(tx.frame, &bpdu), DecodeError::kOk);
      result.push_back(bpdu);
    }
    return result;
  }
  static bool HasState(const Output& out, PortNumber port, PortState state) {
    return std::any_of(out.state_changes.begin(), out.state_changes.end(),
                       [&](const StateChange& c) { return c.port == port && c.state == state; });
  }
  static bool HasEvent(const Output& out, Event::Kind kind, PortNumber port) {
    return std::any_of(out.events.begin(), out.events.end(),
                       [&](const Event& e) { return e.kind == kind && e.port == port; });
  }
  static const PortStatus& PortOf(const BridgeStatus& status, PortNumber port) {
    for (const PortStatus& p : status.ports) {
      if (p.number == port) return p;
    }
    static PortStatus none;
    ADD_FAILURE() << "no port " << port;
    return none;
  }
};

TEST(StpPathCostTest, FollowsTable17_3) {
  EXPECT_EQ(PathCostForSpeed(10), 2000000u);
  EXPECT_EQ(PathCostForSpeed(100), 200000u);
  EXPECT_EQ(PathCostForSpeed(1000), 20000u);
  EXPECT_EQ(PathCostForSpeed(10000), 2000u);
  EXPECT_EQ(PathCostForSpeed(100000), 200u);
  EXPECT_EQ(PathCostForSpeed(1000000), 20u);
  EXPECT_EQ(PathCostForSpeed(100000000), 1u);
  EXPECT_EQ(PathCostForSpeed(0), 20000u);  // unknown: as 1 Gb/s
}

TEST_F(RstpBridgeTest, CreateAndAddPortCheckTheirArguments) {
  BridgeConfig good = Config("02:00:00:00:00:01");
  EXPECT_TRUE(Bridge::Create(good, now_).ok());
  auto bad = [&](auto mutate) {
    BridgeConfig c = good;
    mutate(c);
    return !Bridge::Create(c, now_).ok();
  };
  EXPECT_TRUE(bad([](BridgeConfig& c) { c.address = MacAddress(); }));
  EXPECT_TRUE(bad([](BridgeConfig& c) { c.address = Mac("01:00:00:00:00:01"); }));
  EXPECT_TRUE(bad([](BridgeConfig& c) { c.priority = 100; }));
  EXPECT_TRUE(bad([](BridgeConfig& c) { c.priority = 65535; }));
  EXPECT_TRUE(bad([](BridgeConfig& c) { c.hello_time = 0; }));
  EXPECT_TRUE(bad([](BridgeConfig& c) { c.forward_delay = 3; }));
  EXPECT_TRUE(bad([](BridgeConfig& c) { c.max_age = 41; }));
  EXPECT_TRUE(bad([](BridgeConfig& c) { c.hello_time = 10; }));  // max age 20 < 2 * 11
  EXPECT_TRUE(bad([](BridgeConfig& c) { c.tx_hold_count = 0; }));
  auto status = Bridge::Create(Config("02:00:00:00:00:01", 4095), now_);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.status().message(),
            "stp: bridge priority 4095 is not a multiple of 4096 in 0..61440");
  // The DESIGN.md example (hello 2, forward delay 4, max age 20) is accepted.
  BridgeConfig example = good;
  example.forward_delay = 4;
  EXPECT_TRUE(Bridge::Create(example, now_).ok());

  auto bridge = Make(good);
  EXPECT_FALSE(bridge->AddPort(Port(0), now_).ok());
  EXPECT_FALSE(bridge->AddPort(Port(4096), now_).ok());
  EXPECT_TRUE(bridge->AddPort(Port(7), now_).ok());
  EXPECT_EQ(bridge->AddPort(Port(7), now_).message(), "stp: port 7 already exists");
  PortConfig odd = Port(8);
  odd.priority = 17;
  EXPECT_FALSE(bridge->AddPort(odd, now_).ok());
  odd = Port(8);
  odd.path_cost = 200000001;
  EXPECT_FALSE(bridge->AddPort(odd, now_).ok());
  EXPECT_FALSE(bridge->SetPortEnabled(9, true, 0, now_).ok());
  const uint8_t junk[1] = {0};
  EXPECT_FALSE(bridge->ReceiveBpdu(9, junk, now_).ok());
  EXPECT_EQ(bridge->GetStatus(now_).ports.size(), 1u);
}

TEST_F(RstpBridgeTest, LonePortProposesThenBecomesAnEdgePort) {
  auto bridge = Make(Config("02:00:00:00:00:01"));
  ASSERT_TRUE(bridge->AddPort(Port(1), now_).ok());
  EXPECT_TRUE(bridge->TakeOutput().bpdus.empty());  // link down: silent
  ASSERT_TRUE(bridge->SetPortEnabled(1, true, 10000, now_).ok());
  Output out = bridge->TakeOutput();
  ASSERT_EQ(out.bpdus.size(), 1u);
  const Frame& frame = out.bpdus[0].frame;
  // The shape of Open vSwitch's first BPDU in ovs-rstp-handshake.pcap: 53
  // bytes, flags 0x0e (Designated, Proposal).
  EXPECT_EQ(frame.size(), 53u);
  EXPECT_EQ(frame[21], 0x0e);
  Bpdu bpdu = Decoded(out, 1).at(0);
  EXPECT_EQ(bpdu.type, BpduType::kRst);
  EXPECT_EQ(bpdu.root_id.ToString(), "8000.02:00:00:00:00:01");
  EXPECT_EQ(bpdu.bridge_id, bpdu.root_id);
  EXPECT_EQ(bpdu.port_id, 0x8001);
  EXPECT_EQ(bpdu.max_age, 20 * 256);
  EXPECT_EQ(bpdu.hello_time, 2 * 256);
  EXPECT_EQ(bpdu.forward_delay, 15 * 256);
  EXPECT_EQ(bridge->GetPortState(1), PortState::kDiscarding);
  EXPECT_EQ(bridge->GetPortRole(1), PortRole::kDesignated);

  // Hello every 2 s; nobody answers; after the edge delay (3 s) it is an edge
  // port and forwards.
  out = Advance(*bridge, milliseconds(2500));
  EXPECT_EQ(out.bpdus.size(), 1u);
  EXPECT_EQ(bridge->GetPortState(1), PortState::kDiscarding);
  out = Advance(*bridge, seconds(2));
  EXPECT_TRUE(HasState(out, 1, PortState::kForwarding));
  const BridgeStatus status = bridge->GetStatus(now_);
  EXPECT_TRUE(status.is_root);
  EXPECT_TRUE(PortOf(status, 1).oper_edge);
  EXPECT_EQ(status.topology_change_count, 0u);  // edge ports cause no topology change
}

TEST_F(RstpBridgeTest, AdminEdgePortForwardsAtOnceAndNoAutoEdgeWaits) {
  auto bridge = Make(Config("02:00:00:00:00:01"));
  PortConfig edge = Port(1);
  edge.admin_edge = true;
  PortConfig manual = Port(2);
  manual.auto_edge = false;
  ASSERT_TRUE(bridge->AddPort(edge, now_).ok());
  ASSERT_TRUE(bridge->AddPort(manual, now_).ok());
  ASSERT_TRUE(bridge->SetPortEnabled(1, true, 1000, now_).ok());
  ASSERT_TRUE(bridge->SetPortEnabled(2, true, 1000, now_).ok());
  Output out = bridge->TakeOutput();
  EXPECT_TRUE(HasState(out, 1, PortState::kForwarding));
  EXPECT_FALSE(HasState(out, 2, PortState::kForwarding));
  // Port 2 waits for an agreement or its forward delay timer: learning when
  // fdWhile (max age, 20 s, from initialization) runs out, forwarding a hello
  // time (forwardDelay for an RSTP port) later.
  out = Advance(*bridge, seconds(19));
  EXPECT_EQ(bridge->GetPortState(2), PortState::kDiscarding);
  out = Advance(*bridge, seconds(2));
  EXPECT_EQ(bridge->GetPortState(2), PortState::kLearning);
  out = Advance(*bridge, seconds(2));
  EXPECT_EQ(bridge->GetPortState(2), PortState::kForwarding);
  EXPECT_EQ(bridge->GetStatus(now_).topology_change_count, 1u);
}

TEST_F(RstpBridgeTest, AnswersOvsProposalLikeOvs) {
  // Configure the bridge as the 32768 side of ovs-rstp-handshake.pcap (bridge
  // 8000.7a:13:4c:43:a7:41, port 0x8001 on a 10 Gb/s veth whose address is
  // de:4f:5f:bf:0c:fc), feed it the other side's proposal (frame 1), and its
  // answer is Open vSwitch's answer (frame 6, flags 0x79: Root, Agreement,
  // Learning, Forwarding, TC; root path cost 2000; message age 1 s), byte for byte.
  auto bridge = Make(Config("7a:13:4c:43:a7:41"));
  PortConfig port = Port(1);
  port.address = Mac("de:4f:5f:bf:0c:fc");
  ASSERT_TRUE(bridge->AddPort(port, now_).ok());
  ASSERT_TRUE(bridge->SetPortEnabled(1, true, 10000, now_).ok());
  Output out = bridge->TakeOutput();
  ASSERT_EQ(out.bpdus.size(), 1u);
  EXPECT_EQ(out.bpdus[0].frame, Vector("ovs-rstp-handshake.pcap", 1));  // our own proposal

  ASSERT_TRUE(bridge->ReceiveBpdu(1, Vector("ovs-rstp-handshake.pcap", 0), now_).ok());
  out = bridge->TakeOutput();
  EXPECT_TRUE(HasState(out, 1, PortState::kForwarding));
  ASSERT_EQ(out.bpdus.size(), 1u);
  EXPECT_EQ(out.bpdus[0].frame, Vector("ovs-rstp-handshake.pcap", 5));
  EXPECT_TRUE(HasEvent(out, Event::Kind::kNewRoot, 0));
  EXPECT_TRUE(HasEvent(out, Event::Kind::kTopologyChange, 1));

  // Its designated BPDUs with TC (frame 7) and then without (frame 10) change nothing.
  ASSERT_TRUE(bridge->ReceiveBpdu(1, Vector("ovs-rstp-handshake.pcap", 6), now_).ok());
  ASSERT_TRUE(bridge->ReceiveBpdu(1, Vector("ovs-rstp-handshake.pcap", 9), now_).ok());
  EXPECT_EQ(bridge->GetPortState(1), PortState::kForwarding);

  const BridgeStatus status = bridge->GetStatus(now_);
  EXPECT_EQ(status.bridge_id.ToString(), "8000.7a:13:4c:43:a7:41");
  EXPECT_EQ(status.root_id.ToString(), "2000.5a:41:9e:b8:28:4a");
  EXPECT_EQ(status.root_path_cost, 2000u);
  EXPECT_EQ(status.root_port, 1);
  EXPECT_FALSE(status.is_root);
  EXPECT_EQ(status.max_age, 20u);
  EXPECT_EQ(status.topology_change_count, 1u);
  ASSERT_TRUE(status.time_since_topology_change.has_value());
  EXPECT_EQ(*status.time_since_topology_change, std::chrono::nanoseconds(0));
  const PortStatus& p = PortOf(status, 1);
  EXPECT_EQ(p.role, PortRole::kRoot);
  EXPECT_EQ(p.state, PortState::kForwarding);
  EXPECT_EQ(p.protocol, Protocol::kRstp);
  EXPECT_EQ(p.path_cost, 2000u);
  EXPECT_EQ(p.designated_bridge.ToString(), "2000.5a:41:9e:b8:28:4a");
  EXPECT_EQ(p.designated_port, 0x8001);
  EXPECT_EQ(p.counters.rx_rst, 3u);
  EXPECT_EQ(p.counters.proposals_rx, 1u);
  EXPECT_EQ(p.counters.tx_rst, 2u);
  EXPECT_EQ(p.counters.rx_malformed, 0u);
}

TEST_F(RstpBridgeTest, ProposalBlocksOtherPortsBeforeAgreeing) {
  // 802.1D-2004 17.29.3: a root port agrees only once every other port is
  // synced, i.e. discarding or agreed for the information it now carries.
  auto bridge = Make(Config("02:00:00:00:00:05"));
  ASSERT_TRUE(bridge->AddPort(Port(1), now_).ok());
  ASSERT_TRUE(bridge->AddPort(Port(2), now_).ok());
  ASSERT_TRUE(bridge->SetPortEnabled(1, true, 10000, now_).ok());
  ASSERT_TRUE(bridge->SetPortEnabled(2, true, 10000, now_).ok());
  // Upstream (Open vSwitch, root 2000.5a:41:9e:b8:28:4a) proposes on port 1.
  Frame proposal = Vector("ovs-rstp-handshake.pcap", 0);
  ASSERT_TRUE(bridge->ReceiveBpdu(1, proposal, now_).ok());
  Output out = bridge->TakeOutput();
  EXPECT_TRUE(HasState(out, 1, PortState::kForwarding));
  std::vector<Bpdu> down = Decoded(out, 2);
  ASSERT_FALSE(down.empty());
  EXPECT_TRUE(down.back().proposal);  // passed on down
  EXPECT_EQ(down.back().root_path_cost, 2000u);
  // Downstream's root port agrees: port 2 forwards at once.
  Bpdu agree;
  agree.type = BpduType::kRst;
  agree.version = 2;
  agree.role = BpduRole::kRoot;
  agree.agreement = true;
  agree.root_id = BridgeId{0x2000, Mac("5a:41:9e:b8:28:4a")};
  agree.root_path_cost = 4000;
  agree.bridge_id = BridgeId{0x9000, Mac("02:00:00:00:00:09")};
  agree.port_id = 0x8001;
  agree.max_age = 20 * 256;
  agree.hello_time = 2 * 256;
  agree.forward_delay = 15 * 256;
  ASSERT_TRUE(bridge->ReceiveBpdu(2, EncodeBpduFrame(agree, Mac("02:00:00:00:00:09")), now_).ok());
  out = bridge->TakeOutput();
  EXPECT_TRUE(HasState(out, 2, PortState::kForwarding));
  EXPECT_EQ(PortOf(bridge->GetStatus(now_), 2).counters.agreements_rx, 1u);

  // Upstream's path to the root got worse (cost 10000) and it proposes again:
  // port 2's agreement was for better information, so port 2 must stop
  // forwarding in the same step in which port 1 agrees.
  proposal[30] = 0x00;
  proposal[31] = 0x00;
  proposal[32] = 0x27;
  proposal[33] = 0x10;
  ASSERT_TRUE(bridge->ReceiveBpdu(1, proposal, now_).ok());
  out = bridge->TakeOutput();
  EXPECT_TRUE(HasState(out, 2, PortState::kDiscarding));
  EXPECT_EQ(bridge->GetPortState(1), PortState::kForwarding);
  const std::vector<Bpdu> up = Decoded(out, 1);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_TRUE(up[0].agreement);
  EXPECT_EQ(up[0].root_path_cost, 12000u);
  down = Decoded(out, 2);
  ASSERT_EQ(down.size(), 1u);
  EXPECT_TRUE(down[0].proposal);
  EXPECT_FALSE(down[0].forwarding);
  EXPECT_EQ(down[0].root_path_cost, 12000u);
  // Downstream agrees to the new information: forwarding again.
  agree.root_path_cost = 14000;
  ASSERT_TRUE(bridge->ReceiveBpdu(2, EncodeBpduFrame(agree, Mac("02:00:00:00:00:09")), now_).ok());
  EXPECT_EQ(bridge->GetPortState(2), PortState::kForwarding);
}

TEST_F(RstpBridgeTest, MigratesToStpForTheKernelBridgeAndTalksTcn) {
  // The Linux bridge (kernel-stp-*.pcap: root 1000.ba:ef:c4:55:55:a5, hello
  // 1 s, forward delay 4 s, max age 10 s) speaks 802.1D: our port must switch
  // to Config/TCN BPDUs, notify a topology change with a TCN until the root
  // acknowledges it, and never send it an RST BPDU after migrating.
  auto bridge = Make(Config("02:00:00:00:00:01"));
  PortConfig up = Port(1);
  up.address = Mac("92:95:d8:31:c0:a8");  // the TCN sender's address in the capture
  PortConfig down = Port(2);
  down.auto_edge = false;
  ASSERT_TRUE(bridge->AddPort(up, now_).ok());
  ASSERT_TRUE(bridge->AddPort(down, now_).ok());
  ASSERT_TRUE(bridge->SetPortEnabled(1, true, 10000, now_).ok());
  const Frame config = Vector("kernel-stp-bpdus.pcap", 0);
  const Frame tcn = Vector("kernel-stp-tcn.pcap", 8);
  const Frame tc_ack = Vector("kernel-stp-tcn.pcap", 9);
  Output out;
  bool migrated = false;
  bool migration_event = false;
  for (int second = 0; second < 6; ++second) {
    ASSERT_TRUE(bridge->ReceiveBpdu(1, config, now_).ok());
    Append(out, bridge->TakeOutput());
    Append(out, Advance(*bridge, seconds(1)));
    migration_event |= HasEvent(out, Event::Kind::kProtocolMigration, 1);
    if (PortOf(bridge->GetStatus(now_), 1).protocol == Protocol::kStp) {
      if (!migrated) out = Output();  // from here on: STP BPDUs only
      migrated = true;
    }
  }
  ASSERT_TRUE(migrated);
  EXPECT_TRUE(migration_event);
  for (const Bpdu& b : Decoded(out, 1)) EXPECT_NE(b.type, BpduType::kRst);
  BridgeStatus status = bridge->GetStatus(now_);
  EXPECT_EQ(status.root_id.ToString(), "1000.ba:ef:c4:55:55:a5");
  EXPECT_EQ(status.root_port, 1);
  EXPECT_EQ(status.max_age, 10u);
  EXPECT_EQ(status.forward_delay, 4u);
  EXPECT_EQ(PortOf(status, 1).role, PortRole::kRoot);
  EXPECT_EQ(bridge->GetPortState(1), PortState::kForwarding);

  // Port 2 comes up as a designated, non-edge port and (no agreement: timers)
  // reaches forwarding: a topology change, notified up the root port by TCN,
  // identical to the Linux bridge's TCN in the capture.
  ASSERT_TRUE(bridge->SetPortEnabled(2, true, 10000, now_).ok());
  out = Output();
  for (int second = 0; second < 20 && bridge->GetPortState(2) != PortState::kForwarding; ++second) {
    ASSERT_TRUE(bridge->ReceiveBpdu(1, config, now_).ok());
    Append(out, bridge->TakeOutput());
    Append(out, Advance(*bridge, seconds(1)));
  }
  ASSERT_EQ(bridge->GetPortState(2), PortState::kForwarding);
  out = Output();
  Append(out, Advance(*bridge, seconds(2)));
  ASSERT_TRUE(bridge->ReceiveBpdu(1, config, now_).ok());
  Append(out, bridge->TakeOutput());
  Append(out, Advance(*bridge, seconds(2)));
  bool sent_tcn = false;
  for (const TxBpdu& tx : out.bpdus) {
    if (tx.port == 1 && tx.frame == tcn) sent_tcn = true;
  }
  EXPECT_TRUE(sent_tcn);
  // The root's TC + TC-ack Config BPDU stops the notifications.
  ASSERT_TRUE(bridge->ReceiveBpdu(1, tc_ack, now_).ok());
  bridge->TakeOutput();
  out = Advance(*bridge, seconds(4));
  for (const TxBpdu& tx : out.bpdus) EXPECT_NE(tx.frame, tcn);
  status = bridge->GetStatus(now_);
  EXPECT_GE(PortOf(status, 1).counters.tx_tcn, 1u);
  EXPECT_EQ(PortOf(status, 1).counters.rx_malformed, 0u);
  // Port 2 faces no one: it still sends RST BPDUs (designated, periodic).
  EXPECT_EQ(PortOf(status, 2).protocol, Protocol::kRstp);
}

TEST_F(RstpBridgeTest, TcnOnDesignatedPortIsAcknowledgedAndFlushesOtherPorts) {
  // We are the root (priority 0). A kernel bridge below us sends a TCN on
  // port 1 (in STP, after our Config BPDUs made its port root): we answer with
  // TC + TC-ack, and flush the FDB on port 2 but not on port 1.
  auto bridge = Make(Config("02:00:00:00:00:01", 0));
  PortConfig p2 = Port(2);
  p2.auto_edge = false;
  ASSERT_TRUE(bridge->AddPort(Port(1), now_).ok());
  ASSERT_TRUE(bridge->AddPort(p2, now_).ok());
  ASSERT_TRUE(bridge->SetPortEnabled(1, true, 10000, now_).ok());
  ASSERT_TRUE(bridge->SetPortEnabled(2, true, 10000, now_).ok());
  // The kernel bridge announces itself (its Config BPDU, inferior to ours) so
  // port 1 migrates to STP; both our ports reach forwarding on their timers.
  const Frame kernel_config = Vector("kernel-stp-bpdus.pcap", 0);
  for (int second = 0; second < 45; ++second) {
    if (second < 5) {
      ASSERT_TRUE(bridge->ReceiveBpdu(1, kernel_config, now_).ok());
    }
    bridge->TakeOutput();
    Advance(*bridge, seconds(1));
  }
  bridge->TakeOutput();
  ASSERT_EQ(bridge->GetPortState(1), PortState::kForwarding);
  ASSERT_EQ(bridge->GetPortState(2), PortState::kForwarding);
  ASSERT_EQ(PortOf(bridge->GetStatus(now_), 1).protocol, Protocol::kStp);
  ASSERT_TRUE(bridge->ReceiveBpdu(1, Vector("kernel-stp-tcn.pcap", 8), now_).ok());
  Output out = bridge->TakeOutput();
  ASSERT_EQ(out.flushes.size(), 1u);
  EXPECT_EQ(out.flushes[0].port, 2);
  EXPECT_TRUE(HasEvent(out, Event::Kind::kTopologyChange, 1));
  // The acknowledgement rides on the next Config BPDU (the next hello), as
  // the Linux bridge's does in kernel-stp-tcn.pcap.
  Append(out, Advance(*bridge, seconds(2)));
  const std::vector<Bpdu> sent = Decoded(out, 1);
  ASSERT_FALSE(sent.empty());
  EXPECT_EQ(sent.back().type, BpduType::kConfig);
  EXPECT_TRUE(sent.back().topology_change);
  EXPECT_TRUE(sent.back().topology_change_ack);
  const BridgeStatus status = bridge->GetStatus(now_);
  EXPECT_TRUE(status.topology_change);
  EXPECT_EQ(PortOf(status, 1).counters.rx_tcn, 1u);
  EXPECT_EQ(PortOf(status, 1).counters.tc_rx, 1u);
}

TEST_F(RstpBridgeTest, BpduGuardDisablesThePortUntilALinkFlap) {
  auto bridge = Make(Config("02:00:00:00:00:01"));
  PortConfig guarded = Port(3);
  guarded.admin_edge = true;
  guarded.bpdu_guard = true;
  ASSERT_TRUE(bridge->AddPort(guarded, now_).ok());
  ASSERT_TRUE(bridge->SetPortEnabled(3, true, 1000, now_).ok());
  EXPECT_TRUE(HasState(bridge->TakeOutput(), 3, PortState::kForwarding));
  ASSERT_TRUE(bridge->ReceiveBpdu(3, Vector("ovs-rstp-bpdus.pcap", 0), now_).ok());
  Output out = bridge->TakeOutput();
  EXPECT_TRUE(HasEvent(out, Event::Kind::kBpduGuardTrip, 3));
  EXPECT_TRUE(HasState(out, 3, PortState::kDiscarding));
  BridgeStatus status = bridge->GetStatus(now_);
  EXPECT_TRUE(status.is_root);  // the BPDU was not trusted
  EXPECT_TRUE(PortOf(status, 3).bpdu_guard_tripped);
  EXPECT_FALSE(PortOf(status, 3).enabled);
  EXPECT_EQ(PortOf(status, 3).role, PortRole::kDisabled);
  EXPECT_EQ(PortOf(status, 3).counters.bpdu_guard_trips, 1u);
  // Further BPDUs are dropped and counted; the port stays down.
  ASSERT_TRUE(bridge->ReceiveBpdu(3, Vector("ovs-rstp-bpdus.pcap", 1), now_).ok());
  Advance(*bridge, seconds(10));
  EXPECT_EQ(bridge->GetPortState(3), PortState::kDiscarding);
  EXPECT_EQ(PortOf(bridge->GetStatus(now_), 3).counters.rx_while_disabled, 1u);
  // An operator's down/up re-enables it.
  ASSERT_TRUE(bridge->SetPortEnabled(3, false, 0, now_).ok());
  ASSERT_TRUE(bridge->SetPortEnabled(3, true, 1000, now_).ok());
  EXPECT_TRUE(HasState(bridge->TakeOutput(), 3, PortState::kForwarding));
  EXPECT_FALSE(PortOf(bridge->GetStatus(now_), 3).bpdu_guard_tripped);
}

TEST_F(RstpBridgeTest, RootBlockKeepsSuperiorInformationFromBecomingRoot) {
  auto bridge = Make(Config("02:00:00:00:00:01"));
  PortConfig blocked = Port(1);
  blocked.root_block = true;
  ASSERT_TRUE(bridge->AddPort(blocked, now_).ok());
  ASSERT_TRUE(bridge->SetPortEnabled(1, true, 10000, now_).ok());
  ASSERT_TRUE(bridge->ReceiveBpdu(1, Vector("ovs-rstp-bpdus.pcap", 0), now_).ok());
  bridge->TakeOutput();
  const BridgeStatus status = bridge->GetStatus(now_);
  EXPECT_TRUE(status.is_root);
  EXPECT_EQ(status.root_id.ToString(), "8000.02:00:00:00:00:01");
  EXPECT_EQ(PortOf(status, 1).role, PortRole::kAlternate);
  EXPECT_EQ(bridge->GetPortState(1), PortState::kDiscarding);
  Advance(*bridge, seconds(60));  // the superior information ages out...
  // ...and the port is designated again (nothing else arrived).
  EXPECT_EQ(bridge->GetPortRole(1), PortRole::kDesignated);
}

TEST_F(RstpBridgeTest, MalformedBpdusAreDroppedAndCounted) {
  auto bridge = Make(Config("02:00:00:00:00:01"));
  ASSERT_TRUE(bridge->AddPort(Port(1), now_).ok());
  ASSERT_TRUE(bridge->SetPortEnabled(1, true, 10000, now_).ok());
  bridge->TakeOutput();
  const Frame good = Vector("ovs-rstp-bpdus.pcap", 0);  // superior: would make port 1 root
  std::vector<std::pair<Frame, DecodeError>> bad;
  Frame f = good;
  f.resize(40);
  bad.push_back({f, DecodeError::kLengthMismatch});  // truncated, length field lies
  f = good;
  f[13] = 0x30;
  bad.push_back({f, DecodeError::kLengthMismatch});  // length claims more than sent
  f = good;
  f.resize(45);
  f[13] = 45 - 14;
  bad.push_back({f, DecodeError::kTruncated});
  f = good;
  f[17] = 0x12;
  bad.push_back({f, DecodeError::kBadProtocolId});
  f = good;
  f[19] = 0;
  bad.push_back({f, DecodeError::kBadVersion});
  f = good;
  f[20] = 0x07;
  bad.push_back({f, DecodeError::kBadType});
  f = good;
  f[44] = 0x15;  // message age 21 s > max age 20 s
  bad.push_back({f, DecodeError::kBadTimers});
  f = good;
  f[48] = 0;  // hello time 0
  f[49] = 0;
  bad.push_back({f, DecodeError::kBadTimers});
  for (const auto& [frame, reason] : bad) {
    ASSERT_TRUE(bridge->ReceiveBpdu(1, frame, now_).ok());
  }
  EXPECT_TRUE(bridge->TakeOutput().empty());
  BridgeStatus status = bridge->GetStatus(now_);
  EXPECT_TRUE(status.is_root);
  const PortCounters& c = PortOf(status, 1).counters;
  EXPECT_EQ(c.rx_malformed, bad.size());
  EXPECT_EQ(c.rx_rst, 0u);
  auto by = [&](DecodeError e) { return c.rx_malformed_by_reason[static_cast<size_t>(e)]; };
  EXPECT_EQ(by(DecodeError::kLengthMismatch), 2u);
  EXPECT_EQ(by(DecodeError::kTruncated), 1u);
  EXPECT_EQ(by(DecodeError::kBadProtocolId), 1u);
  EXPECT_EQ(by(DecodeError::kBadVersion), 1u);
  EXPECT_EQ(by(DecodeError::kBadType), 1u);
  EXPECT_EQ(by(DecodeError::kBadTimers), 2u);
  // The intact frame is trusted.
  ASSERT_TRUE(bridge->ReceiveBpdu(1, good, now_).ok());
  EXPECT_FALSE(bridge->GetStatus(now_).is_root);
}

TEST_F(RstpBridgeTest, OwnBpduLoopedBackIsIgnoredAndTwoLoopedPortsMakeABackup) {
  // Ports 1 and 2 are cabled to each other: each hears the other's BPDUs.
  // The worse one becomes a Backup port and discards; a port hearing its own
  // BPDU drops it.
  auto bridge = Make(Config("02:00:00:00:00:01"));
  ASSERT_TRUE(bridge->AddPort(Port(1), now_).ok());
  ASSERT_TRUE(bridge->AddPort(Port(2), now_).ok());
  ASSERT_TRUE(bridge->SetPortEnabled(1, true, 10000, now_).ok());
  ASSERT_TRUE(bridge->SetPortEnabled(2, true, 10000, now_).ok());
  for (int round = 0; round < 30; ++round) {
    Output out = bridge->TakeOutput();
    if (out.bpdus.empty()) out = Advance(*bridge, seconds(1));
    for (const TxBpdu& tx : out.bpdus) {
      ASSERT_TRUE(bridge->ReceiveBpdu(tx.port == 1 ? 2 : 1, tx.frame, now_).ok());
    }
  }
  EXPECT_EQ(bridge->GetPortRole(1), PortRole::kDesignated);
  EXPECT_EQ(bridge->GetPortRole(2), PortRole::kBackup);
  EXPECT_EQ(bridge->GetPortState(2), PortState::kDiscarding);
  EXPECT_TRUE(bridge->GetStatus(now_).is_root);
  const Frame own = EncodeBpduFrame(
      [] {
        Bpdu b;
        b.type = BpduType::kRst;
        b.version = 2;
        b.role = BpduRole::kDesignated;
        b.root_id = BridgeId{0x8000, Mac("02:00:00:00:00:01")};
        b.bridge_id = b.root_id;
        b.port_id = 0x8001;
        b.max_age = 20 * 256;
        b.hello_time = 2 * 256;
        b.forward_delay = 15 * 256;
        return b;
      }(),
      Mac("02:00:00:00:00:01"));
  ASSERT_TRUE(bridge->ReceiveBpdu(1, own, now_).ok());
  EXPECT_EQ(PortOf(bridge->GetStatus(now_), 1).counters.rx_own, 1u);
}

TEST_F(RstpBridgeTest, RemovingTheRootPortMakesTheBridgeRootAgain) {
  auto bridge = Make(Config("02:00:00:00:00:01"));
  ASSERT_TRUE(bridge->AddPort(Port(1), now_).ok());
  ASSERT_TRUE(bridge->AddPort(Port(2), now_).ok());
  ASSERT_TRUE(bridge->SetPortEnabled(1, true, 10000, now_).ok());
  ASSERT_TRUE(bridge->SetPortEnabled(2, true, 1000, now_).ok());
  ASSERT_TRUE(bridge->ReceiveBpdu(1, Vector("ovs-rstp-bpdus.pcap", 0), now_).ok());
  EXPECT_EQ(bridge->GetStatus(now_).root_port, 1);
  EXPECT_EQ(PortOf(bridge->GetStatus(now_), 2).path_cost, 20000u);  // 1 Gb/s
  bridge->TakeOutput();
  ASSERT_TRUE(bridge->RemovePort(1, now_).ok());
  Output out = bridge->TakeOutput();
  EXPECT_TRUE(HasEvent(out, Event::Kind::kNewRoot, 0));
  const BridgeStatus status = bridge->GetStatus(now_);
  EXPECT_TRUE(status.is_root);
  ASSERT_EQ(status.ports.size(), 1u);
  EXPECT_EQ(status.ports[0].role, PortRole::kDesignated);
  EXPECT_FALSE(bridge->RemovePort(1, now_).ok());
  // A speed change re-derives the automatic cost.
  ASSERT_TRUE(bridge->SetPortEnabled(2, true, 100, now_).ok());
  EXPECT_EQ(PortOf(bridge->GetStatus(now_), 2).path_cost, 200000u);
  // Down with a known speed: the cost it will run with; down with an
  // unknown one: the cost stays.
  ASSERT_TRUE(bridge->SetPortEnabled(2, false, 10000, now_).ok());
  EXPECT_EQ(PortOf(bridge->GetStatus(now_), 2).path_cost, 2000u);
  ASSERT_TRUE(bridge->SetPortEnabled(2, false, 0, now_).ok());
  EXPECT_EQ(PortOf(bridge->GetStatus(now_), 2).path_cost, 2000u);
  // An operator's cost is never replaced.
  PortConfig fixed = Port(3);
  fixed.path_cost = 7;
  ASSERT_TRUE(bridge->AddPort(fixed, now_).ok());
  ASSERT_TRUE(bridge->SetPortEnabled(3, false, 10000, now_).ok());
  EXPECT_EQ(PortOf(bridge->GetStatus(now_), 3).path_cost, 7u);
}

TEST_F(RstpBridgeTest, TimersFollowTheInjectedClockOnly) {
  auto bridge = Make(Config("02:00:00:00:00:01"));
  EXPECT_EQ(bridge->NextDeadline(), t0_ + seconds(1));
  bridge->AdvanceTo(t0_ + milliseconds(999));
  EXPECT_EQ(bridge->NextDeadline(), t0_ + seconds(1));
  bridge->AdvanceTo(t0_ + seconds(1));
  EXPECT_EQ(bridge->NextDeadline(), t0_ + seconds(2));
  bridge->AdvanceTo(t0_);  // time going backwards is ignored
  EXPECT_EQ(bridge->NextDeadline(), t0_ + seconds(2));
  bridge->AdvanceTo(t0_ + std::chrono::hours(24 * 365));  // a year asleep: no hang
  EXPECT_EQ(bridge->NextDeadline(), t0_ + std::chrono::hours(24 * 365) + seconds(1));
}

}  // namespace
}  // namespace vfabric::stp
