#include "vfabric/vhost_user/connection.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstring>

namespace vfabric::vhost_user {

Connection::Connection(UniqueFd socket) : socket_(std::move(socket)) {
  const int flags = ::fcntl(socket_.get(), F_GETFL);
  if (flags >= 0) ::fcntl(socket_.get(), F_SETFL, flags | O_NONBLOCK);
  buffer_.resize(kHeaderSize + kMaxPayload);
}

Connection::Read Connection::Fill(size_t want, std::string* error) {
  while (have_ < want) {
    iovec iov{buffer_.data() + have_, want - have_};
    // Room for more fds than allowed, to tell "too many" from "truncated".
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * (kMaxFds + 8))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t got = ::recvmsg(socket_.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Read::kAgain;
      *error = std::string("recvmsg: ") + std::strerror(errno);
      return Read::kBroken;
    }
    // Own every fd before anything can return.
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < n; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        fds_.emplace_back(fd);
      }
    }
    if ((msg.msg_flags & MSG_CTRUNC) != 0) {
      *error = "control data truncated (fds lost)";
      return Read::kBroken;
    }
    if (fds_.size() > kMaxFds) {
      *error =
          std::to_string(fds_.size()) + " fds in one message, at most " + std::to_string(kMaxFds);
      return Read::kBroken;
    }
    if (got == 0) return Read::kClosed;
    have_ += static_cast<size_t>(got);
  }
  return Read::kMessage;
}

Connection::Read Connection::ReadMessage(std::string* error) {
  if (complete_) {  // the previous message was handled: start the next
    complete_ = false;
    have_ = 0;
    fds_.clear();
  }
  if (have_ < kHeaderSize) {
    const Read r = Fill(kHeaderSize, error);
    if (r != Read::kMessage) return r;
    std::memcpy(&header_.request, buffer_.data(), 4);
    std::memcpy(&header_.flags, buffer_.data() + 4, 4);
    std::memcpy(&header_.size, buffer_.data() + 8, 4);
    if ((header_.flags & kVersionMask) != kVersion) {
      *error = "header flags " + std::to_string(header_.flags) + ": not version 1";
      return Read::kBroken;
    }
    if (header_.size > kMaxPayload) {
      *error = "payload of " + std::to_string(header_.size) + " bytes (at most " +
               std::to_string(kMaxPayload) + ")";
      return Read::kBroken;
    }
  }
  const Read r = Fill(kHeaderSize + header_.size, error);
  if (r != Read::kMessage) return r;
  complete_ = true;
  return Read::kMessage;
}

Status Connection::Send(const MessageHeader& header, std::span<const uint8_t> payload,
                        std::span<const int> fds) {
  uint8_t head[kHeaderSize];
  std::memcpy(head, &header.request, 4);
  std::memcpy(head + 4, &header.flags, 4);
  std::memcpy(head + 8, &header.size, 4);
  iovec iov[2] = {{head, kHeaderSize}, {const_cast<uint8_t*>(payload.data()), payload.size()}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = payload.empty() ? 1 : 2;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  if (!fds.empty()) {
    if (fds.size() > kMaxFds) return Status::Error("too many fds to send", EINVAL);
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  const size_t total = kHeaderSize + payload.size();
  ssize_t sent;
  do {
    sent = ::sendmsg(socket_.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return Status::FromErrno("sendmsg", errno);
  if (static_cast<size_t>(sent) != total)
    return Status::Error("sendmsg: " + std::to_string(sent) + " of " + std::to_string(total) +
                             " bytes (the peer is not reading)",
                         EAGAIN);
  return Status::Ok();
}

Served Serve(Connection& connection, Backend& backend, int max_messages, std::string* why) {
  std::string error;
  for (int i = 0; i < max_messages; ++i) {
    switch (connection.ReadMessage(&error)) {
      case Connection::Read::kAgain:
        return Served::kOpen;
      case Connection::Read::kClosed:
        if (why != nullptr) *why = "the frontend closed the connection";
        return Served::kClosed;
      case Connection::Read::kBroken:
        if (why != nullptr) *why = error;
        return Served::kClosed;
      case Connection::Read::kMessage:
        break;
    }
    Backend::Outcome out =
        backend.Handle(connection.header(), connection.payload(), connection.fds());
    connection.FinishMessage();
    if (out.reply) {
      const Status s = connection.Send(out.reply->header, out.reply->payload);
      if (!s.ok()) {
        if (why != nullptr)
          *why = "reply to " + std::string(RequestName(connection.header().request)) + ": " +
                 s.message();
        return Served::kClosed;
      }
    }
    if (out.close) {
      if (why != nullptr)
        *why = "refused " + std::string(RequestName(connection.header().request)) +
               ", which needs an answer";
      return Served::kClosed;
    }
  }
  return Served::kOpen;
}

}  // namespace vfabric::vhost_user
