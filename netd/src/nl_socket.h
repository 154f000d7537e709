// A NETLINK_ROUTE request socket over libmnl that keeps the kernel's errno
// and extended-ack message, whoever built the request (libnl or libmnl).
//
// libnl's own send/receive path folds errno into -NLE_* codes (EEXIST and
// ENODEV both lose their names), so every request in the netlink backend is
// sent here: libnl-route builds the message where it has the API
// (rtnl_link_build_*_request, rtnl_neigh_build_*_request), libmnl builds the
// ones libnl lacks, and NlSocket::Transact() sends either and reads the ack.
//
// Errors read "<what>: <strerror(errno)>" plus " (<extack message>)" when the
// kernel attached NLMSGERR_ATTR_MSG, and carry the errno.
// Threading: one NlSocket per thread.
#pragma once

#include <libmnl/libmnl.h>
#include <linux/netlink.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vfabric/common/status.h"

struct nl_msg;
struct nl_object;

namespace vfabric::netd::nl {

struct MnlSocketDeleter {
  void operator()(mnl_socket* socket) const { mnl_socket_close(socket); }
};
using MnlSocketPtr = std::unique_ptr<mnl_socket, MnlSocketDeleter>;

struct NlMsgDeleter {
  void operator()(nl_msg* msg) const;
};
using NlMsgPtr = std::unique_ptr<nl_msg, NlMsgDeleter>;

// Any libnl object (rtnl_link, rtnl_neigh, nl_addr via nl_addr_put is separate).
struct NlObjectDeleter {
  void operator()(void* object) const;
};
template <typename T>
using NlObjectPtr = std::unique_ptr<T, NlObjectDeleter>;

// Receives one message of a dump; returns an error to stop the dump.
using DumpCallback = std::function<Status(const nlmsghdr*)>;

class NlSocket {
 public:
  // Opens and binds a NETLINK_ROUTE socket with NETLINK_EXT_ACK and
  // NETLINK_CAP_ACK (best effort) in the caller's network namespace.
  static Result<NlSocket> Open();

  NlSocket(NlSocket&&) noexcept = default;
  NlSocket& operator=(NlSocket&&) noexcept = default;

  // Sends `request` (NLM_F_REQUEST|NLM_F_ACK and a fresh sequence number are
  // set here) and waits for the kernel's ack. `what` names the operation and
  // object for the error message ("create bridge vfb-lab").
  // Replies before the ack (a non-dump RTM_GET*) go to `callback` if given.
  Status Transact(nlmsghdr* request, std::string_view what, const DumpCallback* callback = nullptr);
  // The same for a message built by libnl.
  Status Transact(nl_msg* request, std::string_view what);
  // Sends a dump request (NLM_F_DUMP is set here) and calls `callback` for
  // every message until NLMSG_DONE. If the kernel flags the dump inconsistent
  // (NLM_F_DUMP_INTR: the table changed meanwhile), returns EAGAIN after
  // reading it all; the caller discards what it got and dumps again.
  Status Dump(nlmsghdr* request, std::string_view what, const DumpCallback& callback);

  // Many requests in one sendmsg, their acks read together (the kernel runs
  // the messages of one send in order, each on its own: one that fails does
  // not stop the next). `requests[i]` (NLM_F_REQUEST|NLM_F_ACK and a fresh
  // sequence number are set here) is named by `whats[i]` in its error;
  // returns one Status per request. At most kMaxBatch requests and
  // kMaxBatchBytes bytes: the acks must fit the receive buffer, or the
  // kernel drops them (a request whose ack is lost reports ENOBUFS).
  static constexpr size_t kMaxBatch = 128;
  static constexpr size_t kMaxBatchBytes = 64 * 1024;
  std::vector<Status> TransactBatch(const std::vector<const nlmsghdr*>& requests,
                                    const std::vector<std::string>& whats);

 private:
  explicit NlSocket(MnlSocketPtr socket) : socket_(std::move(socket)) {}
  Status Send(nlmsghdr* request, std::string_view what);
  // Reads until the ack (or NLMSG_DONE for dumps) of sequence `seq`.
  Status Receive(uint32_t seq, std::string_view what, const DumpCallback* callback);

  MnlSocketPtr socket_;
  uint32_t port_id_ = 0;
  std::vector<char> send_buffer_;
  uint32_t next_seq_ = 1;
  std::vector<char> buffer_;
};

// Builds netlink messages with libmnl in a local buffer.
class MessageBuffer {
 public:
  explicit MessageBuffer(size_t size = 8192);
  // Zeroes the buffer and starts a message of `type` with `flags`; the caller
  // then puts the family header (mnl_nlmsg_put_extra_header) and attributes.
  nlmsghdr* Start(uint16_t type, uint16_t flags);
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buffer_.data()); }

 private:
  std::vector<char> buffer_;
};

// "<what>: strerror(error) (extack)".
Status ErrorStatus(std::string_view what, int error, std::string_view extack = {});

}  // namespace vfabric::netd::nl
