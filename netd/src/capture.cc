// CaptureSession and CaptureSessions: see capture.h.
#include "vfabric/netd/capture.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <nlohmann/json.hpp>

#include "vfabric/common/log.h"
#include "vfabric/protocol/capture_stream.h"

namespace vfabric::netd {
namespace {

// Records taken from the ring per write: the session holds at most this
// much (plus one frame) for a slow client; the rest waits in the ring.
constexpr size_t kChunkBytes = 256 * 1024;
// How often the thread looks at the ring when the client has all of it.
constexpr int kPollMs = 20;
// After the client asked to stop: how long the last bytes and the end
// record may take to go out.
constexpr int kEndTimeoutMs = 2000;

}  // namespace

CaptureSession::CaptureSession(std::shared_ptr<bridge::CaptureRing> ring, std::string what,
                               std::function<void()> stop)
    : ring_(std::move(ring)), what_(std::move(what)), stop_(std::move(stop)) {}

CaptureSession::~CaptureSession() {
  quit_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
}

void CaptureSession::Run(int wake_fd) {
  const int fd = client_.get();
  std::vector<uint8_t> out = std::move(first_);
  size_t sent = 0;
  bool graceful = false;  // the client shut down its side: send the end record
  bool gone = false;
  while (!quit_.load(std::memory_order_acquire)) {
    if (sent == out.size()) {
      out.clear();
      sent = 0;
      ring_->Pop(&out, kChunkBytes);
    }
    pollfd p{fd, static_cast<short>(POLLIN | (sent < out.size() ? POLLOUT : 0)), 0};
    const int n = ::poll(&p, 1, sent < out.size() ? 100 : kPollMs);
    if (n < 0 && errno != EINTR) {
      gone = true;
      break;
    }
    if (n <= 0) continue;
    if (p.revents & POLLIN) {
      char buffer[256];
      const ssize_t r = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
      if (r == 0) {
        graceful = true;
        break;
      }
      if (r < 0 && errno != EAGAIN && errno != EINTR) {
        gone = true;
        break;
      }
      // Bytes after the request mean nothing here: read and ignored.
    }
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) {
      gone = true;
      break;
    }
    if (p.revents & POLLOUT) {
      const ssize_t w =
          ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) {
        sent += static_cast<size_t>(w);
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        gone = true;
        break;
      }
    }
  }
  if (graceful && !gone) {
    // What the ring still holds goes too, then the end record, within
    // kEndTimeoutMs (a client that stops reading now loses them).
    ring_->Pop(&out, kChunkBytes);
    const nlohmann::json end = {{"frames", ring_->pushed()}, {"dropped", ring_->dropped()}};
    const std::string text = end.dump();
    bridge::CaptureRecordHeader h;
    h.type = bridge::CaptureRecordHeader::kEnd;
    h.caplen = static_cast<uint32_t>(text.size());
    const auto* hb = reinterpret_cast<const uint8_t*>(&h);
    out.insert(out.end(), hb, hb + sizeof h);
    out.insert(out.end(), text.begin(), text.end());
    int waited = 0;
    while (sent < out.size() && waited < kEndTimeoutMs) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 50) <= 0) {
        waited += 50;
        continue;
      }
      const ssize_t w =
          ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno != EAGAIN && errno != EINTR) break;
      if (w > 0) sent += static_cast<size_t>(w);
    }
  }
  VF_LOG(kInfo) << "capture on " << what_ << " ended"
                << (graceful ? ""
                    : gone   ? " (the client went away)"
                             : " (netd stops)")
                << ": " << ring_->pushed() << " frames recorded, " << ring_->dropped()
                << " not recorded (the client read too slowly)";
  client_.Reset();
  finished_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  (void)!::write(wake_fd, &one, sizeof one);
}

CaptureSessions::CaptureSessions() : wake_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (!wake_) VF_LOG(kError) << "capture: eventfd: " << std::strerror(errno);
}

CaptureSessions::~CaptureSessions() { sessions_.clear(); }

void CaptureSessions::Begin(std::unique_ptr<CaptureSession> session, UniqueFd client,
                            std::string answer) {
  CaptureSession& s = *session;
  s.client_ = std::move(client);
  s.first_.assign(answer.begin(), answer.end());
  VF_LOG(kInfo) << "capture on " << s.what_ << " started";
  const int wake = wake_.get();
  s.thread_ = std::thread([&s, wake] { s.Run(wake); });
  sessions_.push_back(std::move(session));
}

void CaptureSessions::Reap() {
  uint64_t value;
  (void)!::read(wake_.get(), &value, sizeof value);
  for (size_t i = 0; i < sessions_.size();) {
    if (!sessions_[i]->finished()) {
      ++i;
      continue;
    }
    if (sessions_[i]->stop_) sessions_[i]->stop_();
    sessions_.erase(sessions_.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

}  // namespace vfabric::netd

// netctl reads the stream as protocol::CaptureRecord.
namespace vfabric::netd {
using bridge::CaptureRecordHeader;
using protocol::CaptureRecord;
static_assert(sizeof(CaptureRecordHeader) == sizeof(CaptureRecord));
static_assert(offsetof(CaptureRecordHeader, caplen) == offsetof(CaptureRecord, caplen));
static_assert(offsetof(CaptureRecordHeader, time_ns) == offsetof(CaptureRecord, time_ns));
static_assert(offsetof(CaptureRecordHeader, wire_len) == offsetof(CaptureRecord, wire_len));
static_assert(offsetof(CaptureRecordHeader, tci) == offsetof(CaptureRecord, tci));
static_assert(offsetof(CaptureRecordHeader, direction) == offsetof(CaptureRecord, direction));
static_assert(offsetof(CaptureRecordHeader, drop) == offsetof(CaptureRecord, drop));
static_assert(CaptureRecordHeader::kFrame == CaptureRecord::kFrame);
static_assert(CaptureRecordHeader::kEnd == CaptureRecord::kEnd);
}  // namespace vfabric::netd
