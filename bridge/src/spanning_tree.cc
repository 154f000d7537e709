#include "vfabric/bridge/spanning_tree.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "mapping.h"
#include "vfabric/common/log.h"
#include "vfabric/stp/rstp.h"

namespace vfabric::bridge {
namespace {

void ClearEventFd(int fd) {
  uint64_t value = 0;
  [[maybe_unused]] ssize_t n = ::read(fd, &value, sizeof value);
}

void SignalEventFd(int fd) {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof one);
}

}  // namespace

// ---------------------------------------------------------------------------
// BpduInbox

BpduInbox::BpduInbox(size_t capacity, UniqueFd event) : ring_(capacity), event_(std::move(event)) {}

Result<std::shared_ptr<BpduInbox>> BpduInbox::Create(size_t capacity) {
  if (capacity == 0) return Status::Error("BPDU inbox: capacity 0", EINVAL);
  UniqueFd event(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!event) return Status::FromErrno("BPDU inbox: eventfd", errno);
  return std::shared_ptr<BpduInbox>(new BpduInbox(capacity, std::move(event)));
}

BpduHook BpduInbox::Hook() {
  return [this](PortId port, std::span<const uint8_t> frame) { Push(port, frame); };
}

void BpduInbox::Push(PortId port, std::span<const uint8_t> frame) {
  if (!accepting_.load(std::memory_order_relaxed)) {
    ignored_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (count_ == ring_.size()) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    Item& item = ring_[(head_ + count_) % ring_.size()];
    item.port = port;
    item.length = static_cast<uint32_t>(frame.size());
    item.size = static_cast<uint16_t>(std::min(frame.size(), kMaxFrame));
    std::memcpy(item.bytes.data(), frame.data(), item.size);
    ++count_;
  }
  SignalEventFd(event_.get());
}

std::vector<BpduInbox::Item> BpduInbox::Drain() {
  ClearEventFd(event_.get());
  std::vector<Item> items;
  std::lock_guard<std::mutex> lock(mutex_);
  items.reserve(count_);
  for (; count_ > 0; --count_) {
    items.push_back(ring_[head_]);
    head_ = (head_ + 1) % ring_.size();
  }
  return items;
}

// ---------------------------------------------------------------------------
// SpanningTree

SpanningTree::SpanningTree(Switch& sw, std::shared_ptr<BpduInbox> inbox, SpanningTreeConfig config,
                           std::unique_ptr<stp::Bridge> engine, UniqueFd wake)
    : switch_(sw),
      inbox_(std::move(inbox)),
      config_(std::move(config)),
      engine_(std::move(engine)),
      wake_(std::move(wake)) {}

Result<std::unique_ptr<SpanningTree>> SpanningTree::Create(Switch& sw,
                                                           std::shared_ptr<BpduInbox> inbox,
                                                           SpanningTreeConfig config) {
  const std::string what = "spanning tree of switch " + config.name;
  if (!inbox) return Status::Error(what + ": no BPDU inbox", EINVAL);
  const stp::TimePoint now = config.clock ? config.clock() : std::chrono::steady_clock::now();
  auto engine = stp::Bridge::Create(ToStp(config.bridge), now);
  if (!engine.ok()) return engine.status().WithContext(what);
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return Status::FromErrno(what + ": eventfd", errno);
  return std::unique_ptr<SpanningTree>(new SpanningTree(
      sw, std::move(inbox), std::move(config), std::move(engine).value(), std::move(wake)));
}

Result<std::unique_ptr<SpanningTree>> SpanningTree::Restore(Switch& sw,
                                                            std::shared_ptr<BpduInbox> inbox,
                                                            SpanningTreeConfig config,
                                                            const TreeHandover& handover) {
  const std::string what = "spanning tree of switch " + config.name;
  if (!inbox) return Status::Error(what + ": no BPDU inbox", EINVAL);
  const stp::TimePoint now = config.clock ? config.clock() : std::chrono::steady_clock::now();
  auto engine = stp::Bridge::Restore(ToStp(config.bridge), handover.engine, now);
  if (!engine.ok()) return engine.status().WithContext(what);
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return Status::FromErrno(what + ": eventfd", errno);
  std::unique_ptr<SpanningTree> tree(new SpanningTree(sw, std::move(inbox), std::move(config),
                                                      std::move(engine).value(), std::move(wake)));
  tree->names_ = handover.names;
  return Result<std::unique_ptr<SpanningTree>>(std::move(tree));
}

TreeHandover SpanningTree::Handover() {
  Stop();
  std::lock_guard<std::mutex> lock(mutex_);
  ApplyOutput();
  return TreeHandover{engine_->SaveState(), names_};
}

bool SpanningTree::HasPort(PortId id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return id < 4095 && engine_->HasPort(NumberOf(id));
}

SpanningTree::~SpanningTree() { Stop(); }

TreeClock SpanningTree::Now() const {
  return config_.clock ? config_.clock() : std::chrono::steady_clock::now();
}

Status SpanningTree::AddPort(PortId id, std::string name, const TreePortSettings& settings,
                             bool link_up, uint64_t speed_mbps) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string what = "spanning tree of switch " + config_.name + ": port " + name;
  if (id >= 4095)
    return Status::Error(
        what + ": switch port #" + std::to_string(id) + " has no 802.1D port number (1..4095)",
        ERANGE);
  stp::PortConfig port;
  port.number = NumberOf(id);
  port.priority = settings.priority;
  port.path_cost = settings.path_cost;
  port.admin_edge = settings.admin_edge;
  port.bpdu_guard = settings.bpdu_guard;
  port.root_block = settings.root_block;
  const stp::TimePoint now = Now();
  Status added = engine_->AddPort(port, now);
  if (!added.ok()) return added.WithContext(what);
  if (names_.size() <= id) names_.resize(id + 1);
  names_[id] = std::move(name);
  // The switch port starts discarding; the engine says when it may learn
  // and forward.
  Status state = switch_.SetPortStpState(id, StpState::kDiscarding);
  if (!state.ok()) {
    // Undo the engine's port; should that fail too, the caller still gets
    // the first error, and the second is logged.
    Status undone = engine_->RemovePort(port.number, now);
    if (!undone.ok()) VF_LOG(kWarning) << what << ": undoing the tree port: " << undone.message();
    return state.WithContext(what);
  }
  // Down, too: the speed gives the port its automatic cost before its link
  // comes up.
  Status enabled = engine_->SetPortEnabled(port.number, link_up, speed_mbps, now);
  if (!enabled.ok()) return enabled.WithContext(what);
  ApplyOutput();
  return Status::Ok();
}

Status SpanningTree::RemovePort(PortId id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Status removed = engine_->RemovePort(NumberOf(id), Now());
  if (id < names_.size()) names_[id].clear();
  ApplyOutput();
  return removed;
}

Status SpanningTree::SetPortLink(PortId id, bool up, uint64_t speed_mbps) {
  std::lock_guard<std::mutex> lock(mutex_);
  Status s = engine_->SetPortEnabled(NumberOf(id), up, speed_mbps, Now());
  ApplyOutput();
  return s;
}

void SpanningTree::Service() {
  std::vector<BpduInbox::Item> items = inbox_->Drain();
  std::lock_guard<std::mutex> lock(mutex_);
  counters_.inbox_dropped = inbox_->dropped();
  const stp::TimePoint now = Now();
  // Timers first: a BPDU that arrives after a due tick must not be aged out
  // by that tick.
  engine_->AdvanceTo(now);
  for (const BpduInbox::Item& item : items) {
    ++counters_.bpdus_in;
    // A port removed after its BPDU was queued: the engine refuses it.
    Status received =
        engine_->ReceiveBpdu(NumberOf(item.port), {item.bytes.data(), item.size}, now);
    if (!received.ok()) {
      ++counters_.bpdus_refused;
      VF_LOG(kInfo) << "spanning tree of switch " << config_.name << ": BPDU from switch port #"
                    << item.port << " not taken: " << received.message();
    }
    // Apply after each BPDU: the outputs of one must reach the switch (and
    // the wire) before the next is judged, as they would on a real bridge.
    ApplyOutput();
  }
  ApplyOutput();
}

TreeClock SpanningTree::NextDeadline() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return engine_->NextDeadline();
}

void SpanningTree::ApplyOutput() {
  stp::Output out = engine_->TakeOutput();
  if (out.empty()) return;
  // The switch refuses these only for a port it no longer has (removed
  // from the switch before it left the tree): the tree goes on with the
  // others, the failure is counted and logged.
  for (const stp::StateChange& change : out.state_changes) {
    ++counters_.state_changes;
    const StpState state = FromStp(change.state);
    Status s = switch_.SetPortStpState(IdOf(change.port), state);
    if (!s.ok()) {
      ++counters_.state_change_failures;
      VF_LOG(kWarning) << "spanning tree of switch " << config_.name << ": port "
                       << PortNameLocked(IdOf(change.port)) << " to " << ToString(state) << ": "
                       << s.message();
    }
  }
  for (const stp::FlushRequest& flush : out.flushes) {
    ++counters_.flushes;
    Status s = switch_.FlushFdb(IdOf(flush.port));
    if (!s.ok()) {
      ++counters_.flush_failures;
      VF_LOG(kWarning) << "spanning tree of switch " << config_.name << ": flushing port "
                       << PortNameLocked(IdOf(flush.port)) << ": " << s.message();
    }
  }
  for (const stp::TxBpdu& bpdu : out.bpdus) {
    if (switch_.SendFrame(IdOf(bpdu.port), bpdu.frame).ok())
      ++counters_.bpdus_out;
    else
      ++counters_.send_failures;
  }
  if (config_.on_event) {
    for (const stp::Event& event : out.events) {
      const PortId id = event.port == 0 ? 0 : IdOf(event.port);
      config_.on_event(FromStp(event), event.port != 0 && id < names_.size() ? names_[id] : "");
    }
  }
}

void SpanningTree::Loop() {
  const std::string thread_name = (config_.name + "-stp").substr(0, 15);
  pthread_setname_np(pthread_self(), thread_name.c_str());
  while (!stop_.load(std::memory_order_acquire)) {
    const auto wait = NextDeadline() - std::chrono::steady_clock::now();
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
    pollfd fds[2] = {{inbox_->fd(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    ::poll(fds, 2, static_cast<int>(std::clamp<int64_t>(ms, 0, 1000)));
    if (fds[1].revents & POLLIN) ClearEventFd(wake_.get());
    if (stop_.load(std::memory_order_acquire)) break;
    Service();
  }
}

Status SpanningTree::Start() {
  if (thread_.joinable())
    return Status::Error("spanning tree of switch " + config_.name + ": already running", EBUSY);
  if (config_.clock)
    return Status::Error(
        "spanning tree of switch " + config_.name + ": a fake clock needs Service() calls", EINVAL);
  stop_.store(false, std::memory_order_release);
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void SpanningTree::Stop() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_release);
  SignalEventFd(wake_.get());
  thread_.join();
}

TreeStatus SpanningTree::GetStatus() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return FromStp(engine_->GetStatus(Now()));
}

std::string SpanningTree::PortName(uint16_t number) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const PortId id = IdOf(number);
  return number != 0 && id < names_.size() ? names_[id] : std::string();
}

std::string SpanningTree::PortNameLocked(PortId id) const {
  if (id < names_.size() && !names_[id].empty()) return names_[id];
  // Appended piece by piece: "#" + a temporary trips GCC 12's false
  // -Wrestrict at -O3 (GCC PR 105329).
  std::string name = "#";
  name += std::to_string(id);
  return name;
}

SpanningTreeCounters SpanningTree::Counters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  SpanningTreeCounters c = counters_;
  c.inbox_dropped = inbox_->dropped();
  return c;
}

}  // namespace vfabric::bridge
