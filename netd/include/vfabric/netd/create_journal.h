// Crash safety of link creation (netd/DESIGN-crash.md has the whole story).
//
// netd owns a link when its IFLA_IFALIAS says "vfabric:<network>", and it
// never touches a link without that mark. The kernel ignores IFLA_IFALIAS in
// the RTM_NEWLINK that creates a bridge or a veth pair, so their mark is a
// second request: a netd killed between the two would leave an unmarked link
// that the next netd refuses as foreign. Taps need no journal (their alias
// goes on before TUNSETPERSIST, see Kernel::CreateTap).
//
// The journal closes that window: before each such creation netd writes, and
// fsyncs, an intent ("creating bridge vfb-lab, to be marked vfabric:lab") to
// RUN_DIR/creating.json, and takes it out again when the call returns. At
// start, before anything else, RecoverCreations() reads what a netd that died
// left there: a link named in an intent, of the kind being made and still
// unmarked, is adopted (given its mark), so the planner sees it as its own
// and converges; links of an interrupted feature probe are deleted.
//
// Threading: one thread (netd's control loop); not thread-safe.
#pragma once

#include <string>
#include <vector>

#include "vfabric/common/atomic_file.h"
#include "vfabric/common/status.h"
#include "vfabric/netd/kernel.h"

namespace vfabric::netd {

// One creation in flight.
struct CreateIntent {
  // "bridge", "veth", "vxlan", or "probe" (Kernel::ProbeFeatures: its throwaway links
  // are named vfprobe-XXXX and vfprobe-XXXXp, XXXX four hex digits, unmarked).
  std::string kind;
  std::string name;   // the link (a veth: this end); "" for a probe
  std::string peer;   // a veth's other end
  std::string alias;  // the mark it gets; "" for a probe
  friend bool operator==(const CreateIntent&, const CreateIntent&) = default;
};

class CreateJournal {
 public:
  // `path` is the journal file (RUN_DIR/creating.json); its directory is
  // made when needed. `calls`: the file system seam (tests inject failures).
  explicit CreateJournal(std::string path, FileCalls calls = {});

  const std::string& path() const { return path_; }

  // Records `intent` durably (written, fsynced, renamed, directory fsynced)
  // before the creation it names. On failure nothing was recorded and the
  // creation must not go ahead.
  Status Begin(const CreateIntent& intent);
  // Takes `intent` out again; the file goes when nothing is in flight.
  Status End(const CreateIntent& intent);

  // What the file holds (empty when there is none). Fails on a file that is
  // not a journal, naming it.
  Result<std::vector<CreateIntent>> Read() const;
  // Removes the file (after a recovery).
  Status Clear();

 private:
  Status Write();

  std::string path_;
  FileCalls calls_;
  std::vector<CreateIntent> open_;  // in flight, in order
};

// The Kernel netd's controller uses: every call goes to `kernel`, but
// CreateBridge and CreateVeth first Begin an intent in `journal` (and fail,
// untried, when it cannot be recorded) and End it when the call returns.
// ProbeFeatures does the same, except that it probes anyway (with a warning)
// when its intent cannot be recorded: its leftovers would be litter, not a
// reason for netd not to start. Both must outlive it.
class JournaledKernel final : public Kernel {
 public:
  JournaledKernel(Kernel& kernel, CreateJournal& journal) : kernel_(kernel), journal_(journal) {}

  // Runs of operations that create no bridge or veth go to `kernel`'s own
  // batches; those that do are journaled one by one, as above.
  void ApplyBatch(const Operation* ops, size_t count, std::vector<Status>* results) override;
  Result<std::vector<LinkInfo>> ListLinks() override { return kernel_.ListLinks(); }
  Result<std::vector<FdbEntry>> ListFdb() override { return kernel_.ListFdb(); }
  Result<std::vector<LinkInfo>> ListLinksNamed(const std::vector<std::string>& names) override {
    return kernel_.ListLinksNamed(names);
  }
  Result<std::vector<FdbEntry>> ListBridgeFdb(int bridge_ifindex) override {
    return kernel_.ListBridgeFdb(bridge_ifindex);
  }
  Result<std::vector<PortVlanEntry>> ListPortVlans() override { return kernel_.ListPortVlans(); }
  Result<KernelFeatures> ProbeFeatures() override;
  Status CreateBridge(const std::string& name, const BridgeSettings& settings,
                      const std::string& alias) override;
  Status SetBridgeSettings(const std::string& name, const BridgeSettings& settings) override {
    return kernel_.SetBridgeSettings(name, settings);
  }
  Status CreateTap(const std::string& name, const TapSettings& settings,
                   const std::string& alias) override {
    return kernel_.CreateTap(name, settings, alias);
  }
  Status CreateVeth(const std::string& name, const std::string& peer,
                    const std::string& alias) override;
  Status CreateVxlan(const std::string& name, const VxlanSettings& settings,
                     const std::string& alias) override;
  Result<std::vector<VxlanFloodEntry>> ListVxlanFlood() override {
    return kernel_.ListVxlanFlood();
  }
  Status AddVxlanFlood(const std::string& device, const IpPrefix& dst) override {
    return kernel_.AddVxlanFlood(device, dst);
  }
  Status DeleteVxlanFlood(const std::string& device, const IpPrefix& dst) override {
    return kernel_.DeleteVxlanFlood(device, dst);
  }
  Status DeleteLink(const std::string& name) override { return kernel_.DeleteLink(name); }
  Status SetAlias(const std::string& name, const std::string& alias) override {
    return kernel_.SetAlias(name, alias);
  }
  Status SetLinkUp(const std::string& name, bool up) override {
    return kernel_.SetLinkUp(name, up);
  }
  Status SetMaster(const std::string& name, const std::string& bridge) override {
    return kernel_.SetMaster(name, bridge);
  }
  Status SetBridgePortSettings(const std::string& name,
                               const BridgePortSettings& settings) override {
    return kernel_.SetBridgePortSettings(name, settings);
  }
  Status MoveToNetns(const std::string& name, const std::string& netns) override {
    return kernel_.MoveToNetns(name, netns);
  }
  Status AddStaticFdb(const std::string& port, const MacAddress& mac, uint16_t vlan) override {
    return kernel_.AddStaticFdb(port, mac, vlan);
  }
  Status DeleteStaticFdb(const std::string& port, const MacAddress& mac, uint16_t vlan) override {
    return kernel_.DeleteStaticFdb(port, mac, vlan);
  }
  Status AddPortVlan(const std::string& port, uint16_t vid, bool pvid, bool untagged) override {
    return kernel_.AddPortVlan(port, vid, pvid, untagged);
  }
  Status DeletePortVlan(const std::string& port, uint16_t vid) override {
    return kernel_.DeletePortVlan(port, vid);
  }
  Status SetLinkMac(const std::string& name, const MacAddress& mac) override {
    return kernel_.SetLinkMac(name, mac);
  }
  Status SetMtu(const std::string& name, uint32_t mtu) override {
    return kernel_.SetMtu(name, mtu);
  }
  Result<std::vector<AddressEntry>> ListAddresses() override { return kernel_.ListAddresses(); }
  Status AddAddress(const std::string& name, const IpPrefix& prefix) override {
    return kernel_.AddAddress(name, prefix);
  }
  Status DeleteAddress(const std::string& name, const IpPrefix& prefix) override {
    return kernel_.DeleteAddress(name, prefix);
  }
  Result<LinkCounters> ReadLinkCounters(const std::string& name) override {
    return kernel_.ReadLinkCounters(name);
  }
  std::string BridgeRootIdFromSysfs(const std::string& bridge) override {
    return kernel_.BridgeRootIdFromSysfs(bridge);
  }

 private:
  // Begin, `create`, End; an End that fails is logged (the intent then only
  // makes the next start look at a link it already owns).
  template <typename Create>
  Status Journaled(const CreateIntent& intent, Create create);

  Kernel& kernel_;
  CreateJournal& journal_;
};

// True for the names Kernel::ProbeFeatures gives its throwaway links.
bool IsProbeLinkName(const std::string& name);

// Finishes what `journal` says a netd that died was doing, through `kernel`:
// for a bridge, vxlan or veth intent, each link of that name (both ends of a veth)
// that exists, is of that kind and carries no alias gets the intent's mark;
// for a probe intent, every unmarked bridge or veth with a probe name is
// deleted. A link that does not match (another kind, another alias) is left
// alone: it is not the one netd was making. Returns what was done, one line
// each, and clears the journal; on failure the journal stays for the next
// start and the error names the link and the cause.
Result<std::vector<std::string>> RecoverCreations(Kernel& kernel, CreateJournal& journal);

}  // namespace vfabric::netd
