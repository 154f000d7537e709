#include "vfabric/netd/create_journal.h"

#include <errno.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "vfabric/common/log.h"
#include "vfabric/netd/planner.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;

constexpr int kJournalVersion = 1;

json ToJson(const CreateIntent& intent) {
  json item = {{"kind", intent.kind}};
  if (!intent.name.empty()) item["name"] = intent.name;
  if (!intent.peer.empty()) item["peer"] = intent.peer;
  if (!intent.alias.empty()) item["alias"] = intent.alias;
  return item;
}

std::string Field(const json& item, const char* key) {
  const json value = item.value(key, json());
  return value.is_string() ? value.get<std::string>() : "";
}

}  // namespace

CreateJournal::CreateJournal(std::string path, FileCalls calls)
    : path_(std::move(path)), calls_(std::move(calls)) {}

Status CreateJournal::Write() {
  if (open_.empty()) return RemoveFileDurably(path_, calls_);
  std::error_code error;
  const std::filesystem::path directory = std::filesystem::path(path_).parent_path();
  if (!directory.empty()) std::filesystem::create_directories(directory, error);
  if (error)
    return Status::Error("create " + directory.string() + ": " + error.message(), error.value());
  json creating = json::array();
  for (const CreateIntent& intent : open_) creating.push_back(ToJson(intent));
  const json doc = {{"version", kJournalVersion}, {"creating", creating}};
  return WriteFileAtomically(path_, doc.dump() + "\n", 0600, calls_);
}

Status CreateJournal::Begin(const CreateIntent& intent) {
  open_.push_back(intent);
  Status status = Write();
  if (!status.ok()) open_.pop_back();
  return status.WithContext("journal " + path_);
}

Status CreateJournal::End(const CreateIntent& intent) {
  auto it = std::find(open_.begin(), open_.end(), intent);
  if (it == open_.end()) return Status::Ok();
  open_.erase(it);
  return Write().WithContext("journal " + path_);
}

Status CreateJournal::Clear() {
  open_.clear();
  return RemoveFileDurably(path_, calls_).WithContext("journal " + path_);
}

Result<std::vector<CreateIntent>> CreateJournal::Read() const {
  std::ifstream in(path_);
  if (!in) {
    if (errno == ENOENT) return std::vector<CreateIntent>{};
    return Status::FromErrno("journal " + path_ + ": open", errno);
  }
  std::stringstream text;
  text << in.rdbuf();
  const json doc = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  // Not doc.value("version", 0): it throws when "version" is not a number.
  const auto version = doc.is_object() ? doc.find("version") : doc.end();
  if (!doc.is_object() || version == doc.end() || !version->is_number_integer() ||
      *version != kJournalVersion || !doc.contains("creating") || !doc["creating"].is_array())
    return Status::Error("journal " + path_ + ": not a version " + std::to_string(kJournalVersion) +
                         " journal of link creations");
  std::vector<CreateIntent> intents;
  for (const json& item : doc["creating"]) {
    if (!item.is_object()) continue;
    CreateIntent intent{Field(item, "kind"), Field(item, "name"), Field(item, "peer"),
                        Field(item, "alias")};
    const bool known =
        intent.kind == "probe" ||
        ((intent.kind == "bridge" || intent.kind == "veth" || intent.kind == "vxlan") &&
         !intent.name.empty() && !intent.alias.empty());
    if (!known) return Status::Error("journal " + path_ + ": unknown entry " + item.dump());
    intents.push_back(std::move(intent));
  }
  return intents;
}

template <typename Create>
Status JournaledKernel::Journaled(const CreateIntent& intent, Create create) {
  Status begun = journal_.Begin(intent);
  if (!begun.ok()) {
    const std::string what = "create " + intent.kind + " " + intent.name;
    // Made without its intent on disk, a crash could leave a link the next
    // netd would refuse; so it is not made.
    return Status::Error(
        what + ": not started, its intent could not be recorded: " + begun.message(),
        begun.error_number());
  }
  Status status = create();
  Status ended = journal_.End(intent);
  if (!ended.ok())
    VF_LOG(kWarning) << ended.message() << " (the next start will look at " << intent.name
                     << " again)";
  return status;
}

Result<KernelFeatures> JournaledKernel::ProbeFeatures() {
  const CreateIntent probe{"probe", "", "", ""};
  Status begun = journal_.Begin(probe);
  if (!begun.ok()) {
    // Unlike a bridge or veth that a network needs, what an interrupted
    // probe leaves is litter, not a link that stops the next netd: a run
    // directory that cannot take the intent must not keep netd from starting.
    VF_LOG(kWarning) << "probe kernel features without a journal: " << begun.message()
                     << " (if netd dies during the probe, delete the vfprobe-* links it leaves)";
    return kernel_.ProbeFeatures();
  }
  Result<KernelFeatures> features = kernel_.ProbeFeatures();
  Status ended = journal_.End(probe);
  if (!ended.ok()) VF_LOG(kWarning) << ended.message();
  return features;
}

void JournaledKernel::ApplyBatch(const Operation* ops, size_t count, std::vector<Status>* results) {
  results->clear();
  std::vector<Status> run;
  for (size_t next = 0; next < count;) {
    const Operation::Kind kind = ops[next].kind;
    if (kind == Operation::Kind::kCreateBridge || kind == Operation::Kind::kCreateVeth) {
      results->push_back(Execute(*this, ops[next]));
      if (!results->back().ok()) return;
      ++next;
      continue;
    }
    size_t end = next;
    while (end < count && ops[end].kind != Operation::Kind::kCreateBridge &&
           ops[end].kind != Operation::Kind::kCreateVeth)
      ++end;
    kernel_.ApplyBatch(ops + next, end - next, &run);
    bool failed = run.size() < end - next;
    for (Status& status : run) {
      failed = failed || !status.ok();
      results->push_back(std::move(status));
    }
    if (failed) return;
    next = end;
  }
}

Status JournaledKernel::CreateBridge(const std::string& name, const BridgeSettings& settings,
                                     const std::string& alias) {
  return Journaled({"bridge", name, "", alias},
                   [&] { return kernel_.CreateBridge(name, settings, alias); });
}

Status JournaledKernel::CreateVeth(const std::string& name, const std::string& peer,
                                   const std::string& alias) {
  return Journaled({"veth", name, peer, alias},
                   [&] { return kernel_.CreateVeth(name, peer, alias); });
}

Status JournaledKernel::CreateVxlan(const std::string& name, const VxlanSettings& settings,
                                    const std::string& alias) {
  return Journaled({"vxlan", name, "", alias},
                   [&] { return kernel_.CreateVxlan(name, settings, alias); });
}

bool IsProbeLinkName(const std::string& name) {
  constexpr std::string_view kPrefix = "vfprobe-";
  if (name.compare(0, kPrefix.size(), kPrefix) != 0) return false;
  std::string_view rest = std::string_view(name).substr(kPrefix.size());
  if (rest.size() == 5 && rest.back() == 'p') rest.remove_suffix(1);
  if (rest.size() != 4) return false;
  return std::all_of(rest.begin(), rest.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Result<std::vector<std::string>> RecoverCreations(Kernel& kernel, CreateJournal& journal) {
  auto intents = journal.Read();
  if (!intents.ok()) return intents.status();
  std::vector<std::string> done;
  if (intents->empty()) return done;
  auto links = kernel.ListLinks();
  if (!links.ok()) return links.status().WithContext("recover from journal " + journal.path());
  auto find = [&](const std::string& name) -> const LinkInfo* {
    for (const LinkInfo& link : *links)
      if (link.name == name) return &link;
    return nullptr;
  };
  auto adopt = [&](const LinkInfo& link, const std::string& alias) {
    Status status = kernel.SetAlias(link.name, alias);
    if (!status.ok())
      return status.WithContext("recover from journal " + journal.path() + ": adopt " + link.name);
    done.push_back("adopted " + link.kind + " " + link.name + " (its creation was interrupted)");
    return Status::Ok();
  };
  for (const CreateIntent& intent : *intents) {
    if (intent.kind == "bridge" || intent.kind == "vxlan") {
      const LinkInfo* link = find(intent.name);
      if (link != nullptr && link->kind == intent.kind && link->alias.empty())
        VF_RETURN_IF_ERROR(adopt(*link, intent.alias));
    } else if (intent.kind == "veth") {
      const LinkInfo* end = find(intent.name);
      const LinkInfo* peer = find(intent.peer);
      // Both ends must be the pair that was being made, when both are here.
      const bool paired =
          end == nullptr || peer == nullptr ||
          (end->link_ifindex == peer->ifindex && peer->link_ifindex == end->ifindex);
      for (const LinkInfo* link : {end, peer}) {
        if (link != nullptr && paired && link->kind == "veth" && link->alias.empty())
          VF_RETURN_IF_ERROR(adopt(*link, intent.alias));
      }
    } else if (intent.kind == "probe") {
      std::set<int> gone;  // a veth's deletion takes its peer
      for (const LinkInfo& link : *links) {
        if (!IsProbeLinkName(link.name) || !link.alias.empty() || gone.count(link.ifindex) ||
            (link.kind != "bridge" && link.kind != "veth"))
          continue;
        Status status = kernel.DeleteLink(link.name);
        if (!status.ok() && status.error_number() != ENODEV)
          return status.WithContext("recover from journal " + journal.path());
        gone.insert(link.ifindex);
        if (link.kind == "veth") gone.insert(link.link_ifindex);
        done.push_back("deleted " + link.kind + " " + link.name +
                       " (left by an interrupted feature probe)");
      }
    }
  }
  VF_RETURN_IF_ERROR(journal.Clear());
  return done;
}

}  // namespace vfabric::netd
