// netd's side of `netctl capture` on a userspace network (issue 19).
//
// How a capture runs (docs/control-protocol.md, "capture.start"):
// 1. capture.start is answered on the control thread: the switch gets a
//    bridge::CaptureRing on the port (Switch::SetCapture), and the answer
//    ({"datapath": "userspace", ...}) is the first thing the client reads.
// 2. The control server then hands the connection over
//    (ControlServer::HandOff) to a CaptureSession: a thread of its own that
//    drains the ring and writes its records to the client, never faster
//    than the client reads. The switch never waits for it: when the ring is
//    full, frames are not recorded and the ring counts them.
// 3. The client stops the capture by shutting down its sending side
//    (shutdown(SHUT_WR)): the session sends what it holds and an end record
//    (JSON: frames recorded, frames the full ring did not take) and closes.
//    A client that just goes away (closed, killed) ends it too, without the
//    end record.
// 4. An ended session wakes the event loop (fd()): Reap() then clears the
//    switch's hook (the session's `stop`, on the control thread, which owns
//    the switches) and joins the thread. Nothing is left behind.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "vfabric/bridge/capture.h"
#include "vfabric/common/unique_fd.h"

namespace vfabric::netd {

// How big a capture's ring is, and the most bytes kept of one frame.
inline constexpr size_t kCaptureRingBytes = size_t{4} << 20;
inline constexpr uint32_t kCaptureSnaplen = 65535;

class CaptureSession {
 public:
  // `what`: "network N port P", for the log. `stop`: run by Reap() on the
  // control thread (clears the switch's hook).
  CaptureSession(std::shared_ptr<bridge::CaptureRing> ring, std::string what,
                 std::function<void()> stop);
  ~CaptureSession();  // ends the thread (without the end record) and joins it
  CaptureSession(const CaptureSession&) = delete;
  CaptureSession& operator=(const CaptureSession&) = delete;

  const std::string& what() const { return what_; }
  const std::shared_ptr<bridge::CaptureRing>& ring() const { return ring_; }
  bool finished() const { return finished_.load(std::memory_order_acquire); }

 private:
  friend class CaptureSessions;
  void Run(int wake_fd);

  std::shared_ptr<bridge::CaptureRing> ring_;
  std::string what_;
  std::function<void()> stop_;
  UniqueFd client_;
  std::vector<uint8_t> first_;  // the answer line, sent before any record
  std::atomic<bool> quit_{false};
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

class CaptureSessions {
 public:
  CaptureSessions();
  ~CaptureSessions();  // ends every session (their `stop` is not run: the switches go too)

  // Readable (an eventfd) when a session has ended: call Reap().
  int fd() const { return wake_.get(); }
  // Starts `session`'s thread on `client` (non-blocking or not), sending
  // `answer` (the capture.start answer line, '\n' included) first.
  void Begin(std::unique_ptr<CaptureSession> session, UniqueFd client, std::string answer);
  // Runs `stop` of and joins the sessions that ended.
  void Reap();
  size_t size() const { return sessions_.size(); }

 private:
  UniqueFd wake_;
  std::vector<std::unique_ptr<CaptureSession>> sessions_;
};

}  // namespace vfabric::netd
