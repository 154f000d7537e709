// The socket layer of vhost-user: one connected SOCK_STREAM Unix socket,
// messages framed as header + payload with their fds (SCM_RIGHTS), read
// without blocking as they arrive, and the Backend served over it.
//
// Framing can be lost only by a header whose version or size is wrong
// (size > kMaxPayload): the stream cannot be resynchronized, so the
// connection is broken. Fds that arrive are owned (UniqueFd) at once, so
// every path closes them; more than kMaxFds, or a truncated control message,
// breaks the connection as well.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"
#include "vfabric/vhost_user/backend.h"
#include "vfabric/vhost_user/protocol.h"

namespace vfabric::vhost_user {

class Connection {
 public:
  // Takes a connected Unix stream socket; makes it non-blocking.
  explicit Connection(UniqueFd socket);
  int fd() const { return socket_.get(); }

  enum class Read : uint8_t {
    kMessage,  // header(), payload(), fds() hold one whole message
    kAgain,    // nothing more has arrived (a partial message is kept)
    kClosed,   // the peer closed the connection
    kBroken,   // framing lost or a socket error (*error says which)
  };
  Read ReadMessage(std::string* error);
  const MessageHeader& header() const { return header_; }
  std::span<const uint8_t> payload() const { return {buffer_.data() + kHeaderSize, header_.size}; }
  std::span<UniqueFd> fds() { return fds_; }
  // The message is handled: its fds that were not taken are closed now.
  void FinishMessage() { fds_.clear(); }

  // Sends a whole message (with `fds`, if any). A reply is small and the
  // frontend waits for it, so a full socket means a frontend that stopped
  // reading: an error, never a wait.
  Status Send(const MessageHeader& header, std::span<const uint8_t> payload,
              std::span<const int> fds = {});

 private:
  // Reads up to `want` bytes into buffer_ at have_; collects fds.
  Read Fill(size_t want, std::string* error);

  UniqueFd socket_;
  std::vector<uint8_t> buffer_;
  size_t have_ = 0;
  bool complete_ = false;  // the last ReadMessage returned kMessage
  MessageHeader header_;
  std::vector<UniqueFd> fds_;
};

// Serves `backend` over `connection`: handles up to `max_messages` whole
// messages that have arrived and sends their replies. kClosed when the
// connection is over (peer gone, framing lost, a reply not deliverable, or
// the backend hung up); the caller then drops it and resets the backend.
enum class Served : uint8_t { kOpen, kClosed };
Served Serve(Connection& connection, Backend& backend, int max_messages,
             std::string* why = nullptr);

}  // namespace vfabric::vhost_user
