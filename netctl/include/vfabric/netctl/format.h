// Formatters: netd's answers (docs/control-protocol.md) as text for operators.
//
// Each Format*() takes an answer's "result" object and returns the text to
// print, every line ending in '\n'. They never throw and never fail: a field
// that is absent, null or of an unexpected type prints as "-", and fields
// they do not know are ignored, so a newer netd (or the userspace switch
// adding fields) does not break an older netctl.
//
// Conventions:
// - Tables have a header row; columns are left-aligned and separated by two
//   spaces; no line has trailing spaces. An empty table prints its header only.
// - Key/value blocks print "key:" padded to a common width, then the value.
// - Booleans print as "yes"/"no" (settings as "on"/"off"); timers as "N s".
// - `plan` and `apply` print one line per operation, or "no changes".
// - --json output (FormatJson) is the value pretty-printed with a two-space
//   indent, followed by a newline.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace vfabric::netctl {

// An aligned text table.
class Table {
 public:
  explicit Table(std::vector<std::string> headers);
  // Missing cells print empty; extra cells are dropped.
  void AddRow(std::vector<std::string> cells);
  size_t rows() const { return rows_.size(); }
  std::string ToString() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// network.list: NAME DATAPATH BRIDGE STATE PORTS(up/total) STP
// status: netd's version, pid, uptime and config, then a row per network:
// NAME DATAPATH STATE PENDING SOURCE.
std::string FormatStatus(const nlohmann::json& result);
std::string FormatNetworkList(const nlohmann::json& result);
// network.delete: the operations done, then "deleted network NAME (removed FILE)".
std::string FormatNetworkDelete(const nlohmann::json& result);
// network.show: a key/value block, then "Pending changes:" (only when netd
// reports drift still to repair), "Ports:" (the port table without the
// NETWORK column) and "Static FDB:" (the fdb table).
std::string FormatNetworkShow(const nlohmann::json& result);
// port.list: NETWORK PORT KIND STATE STP-STATE COST PRIO FLAGS VLAN
// STATE is up, down or missing; FLAGS lists the enabled port flags as
// learn,flood,hairpin,isolated,guard,rootblock ("-" for none); VLAN is
// "access PVID", "trunk ALLOWED [native N]" or "-".
std::string FormatPortList(const nlohmann::json& result);
// port.stats: NETWORK PORT RX-PKTS RX-BYTES TX-PKTS TX-BYTES DROPS DROP-REASONS
// DROP-REASONS lists the non-zero drop counters as "reason=N" ("-" for none).
std::string FormatPortStats(const nlohmann::json& result);
// port.show (format_port_show.cc): `form` "qemu": the QEMU arguments on one
// line, each a POSIX shell word (ShellWord), to paste into a command line;
// "libvirt": the <interface> element as netd sent it; "": a key/value block
// (network, port, kind, datapath, vm, mac) and both forms, or why the port
// has no guest use.
std::string FormatPortShow(const nlohmann::json& result, std::string_view form);
// `arg` as one POSIX shell word: itself when it has only characters no
// shell treats specially, else in single quotes (a ' as '\'').
std::string ShellWord(std::string_view arg);
// fdb.add: "added static MAC on PORT (vlan V)"; fdb.del: "deleted MAC";
// fdb.flush: "flushed learned FDB entries of NETWORK".
std::string FormatFdbAdd(const nlohmann::json& result);
std::string FormatFdbDel(const nlohmann::json& result);
std::string FormatFdbFlush(const nlohmann::json& result);
// fdb.show: MAC VLAN PORT FLAGS (static, local, learned), plus AGE when any entry has "age".
std::string FormatFdbShow(const nlohmann::json& result);
// stp.show: the bridge's block (ids, root port and cost, "this bridge is root",
// topology change, timers, source), then PORT ID ROLE STATE COST
// DESIGNATED-BRIDGE PROTOCOL EDGE.
std::string FormatStpShow(const nlohmann::json& result);
// vlan.show: the reason when VLANs are not supported, else PORT VLAN PVID UNTAGGED.
std::string FormatVlanShow(const nlohmann::json& result);
// vm.list: NAME STATE PID ACCEL RESTART NICS LAST-EXIT ERROR
// RESTART is the policy, with the count of automatic restarts in parentheses
// when there were any ("on-failure(2)"); NICS is "ID:NETWORK/PORT,..." ("-"
// for none). LAST-EXIT and ERROR are shown only for guests that are not live
// (stopped, failed, restart-wait); otherwise, and when empty, "-".
std::string FormatVmList(const nlohmann::json& result);
// vm.start: "NAME: STATE (ACCEL)" (no "(ACCEL)" when unknown), plus ": ERROR"
// when the guest is not live and reports one.
std::string FormatVmStart(const nlohmann::json& result);
// vm.stop: "NAME: STATE", plus ": ERROR" as for vm.start.
std::string FormatVmStop(const nlohmann::json& result);
// vm.console-log: the "text" exactly as netd sent it (nothing added).
std::string FormatConsoleLog(const nlohmann::json& result);
// attach: "attached NIC ID (port PORT, mac MAC) to network NETWORK".
std::string FormatAttach(const nlohmann::json& result);
// detach: "detached NIC from VM"; `vm` and `nic` are the request's (the answer
// has only the guest's status), the guest's name from the answer when present.
std::string FormatDetach(const nlohmann::json& result, const std::string& vm,
                         const std::string& nic);
// plan: one line per operation (its description), or "no changes".
std::string FormatPlan(const nlohmann::json& result);
// apply: one line per operation, then "applied N changes"; or "no changes".
std::string FormatApply(const nlohmann::json& result);
// A diagnostic object as "FILE:LINE:COLUMN: POINTER: message" (no newline).
std::string FormatDiagnostic(const nlohmann::json& diagnostic);
// Pretty JSON (two-space indent) and a newline.
std::string FormatJson(const nlohmann::json& value);

}  // namespace vfabric::netctl
