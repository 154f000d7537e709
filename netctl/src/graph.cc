#include "vfabric/netctl/graph.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "vfabric/common/unique_fd.h"

namespace vfabric::netctl {
namespace {

using nlohmann::json;

std::string Str(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

bool True(const json& object, const char* key) {
  if (!object.is_object()) return false;
  auto it = object.find(key);
  return it != object.end() && it->is_boolean() && it->get<bool>();
}

// A DOT label's text: escaped, with `lines` joined by DOT's line break.
std::string Label(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) {
    if (line.empty()) continue;
    if (!text.empty()) text += "\\n";
    for (char c : line) {
      if (c == '"' || c == '\\') text += '\\';
      text += c;
    }
  }
  return "\"" + text + "\"";
}

std::string VlanText(const json& vlan) {
  const std::string mode = Str(vlan, "mode");
  if (mode == "access" && vlan.contains("pvid")) return "access " + vlan["pvid"].dump();
  if (mode == "trunk") {
    std::string text = "trunk " + Str(vlan, "allowed");
    if (vlan.contains("native") && vlan["native"].is_number())
      text += " native " + vlan["native"].dump();
    return text;
  }
  return mode == "none" ? "" : mode;  // no VLAN filtering: nothing to say
}

}  // namespace

std::string DotQuote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string GraphDot(const std::vector<GraphNetwork>& networks, const json& vms) {
  std::string dot =
      "graph vfabric {\n"
      "  graph [rankdir=LR, fontname=\"sans-serif\", fontsize=11];\n"
      "  node [fontname=\"sans-serif\", fontsize=10];\n"
      "  edge [fontname=\"sans-serif\", fontsize=9];\n";
  // Port node ids by "network/port", for the guests' edges.
  std::map<std::string, std::string> port_nodes;
  for (const GraphNetwork& item : networks) {
    const json& network = item.show;
    const std::string name = Str(network, "name");
    const bool userspace = Str(network, "datapath") == "userspace";
    const std::string bridge_node = DotQuote("network/" + name);
    dot += "  subgraph " + DotQuote("cluster_" + name) + " {\n";
    dot += "    label=" + Label({"network " + name}) + ";\n";
    dot += "    style=rounded; color=gray60;\n";
    // Roles and states by port, from the tree.
    std::map<std::string, json> tree;
    if (item.stp.is_object() && item.stp.contains("ports") && item.stp["ports"].is_array())
      for (const json& port : item.stp["ports"]) tree[Str(port, "name")] = port;
    const json settings = network.contains("settings") ? network["settings"] : json::object();
    const bool stp = True(settings, "stp_enabled");
    std::vector<std::string> bridge_label = {
        userspace ? "userspace switch" : "bridge " + Str(network, "bridge"),
        Str(network, "datapath") + " datapath"};
    if (stp) {
      std::string line = "STP";
      if (item.stp.is_object() && True(item.stp, "is_root")) line += " (root bridge)";
      bridge_label.push_back(line);
    }
    dot += "    " + bridge_node +
           " [shape=box, style=filled, fillcolor=lightsteelblue, label=" + Label(bridge_label) +
           "];\n";
    const json ports =
        network.contains("ports") && network["ports"].is_array() ? network["ports"] : json::array();
    for (const json& port : ports) {
      const std::string port_name = Str(port, "name");
      const std::string node = DotQuote("port/" + name + "/" + port_name);
      port_nodes[name + "/" + port_name] = node;
      const bool present = !port.contains("present") || True(port, "present");
      const bool up = True(port, "oper_up");
      std::vector<std::string> label = {port_name, Str(port, "kind")};
      if (port.contains("vlan") && port["vlan"].is_object())
        label.push_back(VlanText(port["vlan"]));
      if (!present) label.push_back("missing");
      dot += "    " + node + " [shape=ellipse, label=" + Label(label) +
             (present && up ? "" : ", style=dashed, color=gray50, fontcolor=gray40") + "];\n";
      std::string role, state;
      if (auto it = tree.find(port_name); it != tree.end()) {
        role = Str(it->second, "role");
        state = Str(it->second, "state");
      } else {
        state = Str(port, "stp_state");
      }
      const bool blocked =
          state == "blocking" || state == "discarding" || role == "alternate" || role == "backup";
      std::string edge_label;
      if (stp) edge_label = role.empty() ? state : role + " / " + state;
      dot += "    " + bridge_node + " -- " + node + " [";
      if (!edge_label.empty()) dot += "label=" + Label({edge_label});
      if (blocked) dot += std::string(edge_label.empty() ? "" : ", ") + "style=dashed, color=red";
      dot += "];\n";
    }
    dot += "  }\n";
  }
  if (vms.is_array()) {
    for (const json& vm : vms) {
      const std::string vm_name = Str(vm, "name");
      std::vector<std::pair<std::string, std::string>> edges;  // port node, NIC id
      if (vm.contains("nics") && vm["nics"].is_array())
        for (const json& nic : vm["nics"]) {
          auto it = port_nodes.find(Str(nic, "network") + "/" + Str(nic, "port"));
          if (it != port_nodes.end()) edges.emplace_back(it->second, Str(nic, "id"));
        }
      if (edges.empty()) continue;
      const std::string node = DotQuote("vm/" + vm_name);
      dot += "  " + node + " [shape=component, style=filled, fillcolor=lightyellow, label=" +
             Label({"vm " + vm_name, Str(vm, "state")}) + "];\n";
      for (const auto& [port_node, nic] : edges)
        dot += "  " + node + " -- " + port_node + " [label=" + Label({nic}) + "];\n";
    }
  }
  dot += "}\n";
  return dot;
}

Result<std::string> RenderDot(const std::string& dot_text, const std::string& format) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0) return Status::FromErrno("pipe for dot", errno);
  UniqueFd in_read(in_pipe[0]), in_write(in_pipe[1]);
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return Status::FromErrno("pipe for dot", errno);
  UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (pipe2(err_pipe, O_CLOEXEC) != 0) return Status::FromErrno("pipe for dot", errno);
  UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);
  const std::string type = "-T" + format;
  // A dot that exits before reading all of its input must not kill netctl
  // with SIGPIPE: the write fails with EPIPE instead, and dot's status says why.
  struct IgnoreSigpipe {
    struct sigaction old {};
    IgnoreSigpipe() {
      struct sigaction ignore {};
      ignore.sa_handler = SIG_IGN;
      sigaction(SIGPIPE, &ignore, &old);
    }
    ~IgnoreSigpipe() { sigaction(SIGPIPE, &old, nullptr); }
  } ignore_sigpipe;
  const pid_t pid = fork();
  if (pid < 0) return Status::FromErrno("fork for dot", errno);
  if (pid == 0) {
    dup2(in_read.get(), 0);
    dup2(out_write.get(), 1);
    dup2(err_write.get(), 2);
    execlp("dot", "dot", type.c_str(), static_cast<char*>(nullptr));
    const char message[] = "cannot run dot (Graphviz, Debian's graphviz package)\n";
    (void)!write(2, message, sizeof message - 1);
    _exit(127);
  }
  in_read.Reset();
  out_write.Reset();
  err_write.Reset();
  // Written and read together: dot may write before it has read everything.
  std::string out, err;
  size_t written = 0;
  fcntl(in_write.get(), F_SETFL, O_NONBLOCK);
  if (dot_text.empty()) in_write.Reset();
  while (out_read || err_read) {
    pollfd fds[3] = {
        {out_read.get(), POLLIN, 0}, {err_read.get(), POLLIN, 0}, {in_write.get(), POLLOUT, 0}};
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (in_write && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t n = write(in_write.get(), dot_text.data() + written, dot_text.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if ((n < 0 && errno != EAGAIN) || written == dot_text.size()) in_write.Reset();
    }
    const std::pair<UniqueFd*, std::string*> readers[] = {{&out_read, &out}, {&err_read, &err}};
    for (int i = 0; i < 2; ++i) {
      auto [fd, text] = readers[i];
      if (!*fd || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buffer[65536];
      const ssize_t n = read(fd->get(), buffer, sizeof buffer);
      if (n > 0)
        text->append(buffer, static_cast<size_t>(n));
      else if (n == 0 || (errno != EAGAIN && errno != EINTR))
        fd->Reset();
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    while (!err.empty() && err.back() == '\n') err.pop_back();
    return Status::Error("dot " + type + ": " + (err.empty() ? "failed" : err));
  }
  return out;
}

}  // namespace vfabric::netctl
