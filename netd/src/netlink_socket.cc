#include <errno.h>
#include <netlink/msg.h>
#include <netlink/object.h>
#include <sys/socket.h>

#include <cstring>

#include "nl_parse.h"
#include "nl_socket.h"

namespace vfabric::netd::nl {
namespace {

constexpr size_t kReceiveBufferSize = 65536;

}  // namespace

std::string ExtackMessage(const nlmsghdr* header) {
  if (!(header->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  const auto* error = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(header));
  size_t offset = header->nlmsg_type == NLMSG_DONE ? sizeof(int) : sizeof(nlmsgerr);
  if (header->nlmsg_type == NLMSG_ERROR && !(header->nlmsg_flags & NLM_F_CAPPED)) {
    if (error->msg.nlmsg_len < sizeof(nlmsghdr)) return {};
    offset += error->msg.nlmsg_len - sizeof(nlmsghdr);
  }
  if (header->nlmsg_len < MNL_NLMSG_HDRLEN + offset) return {};
  std::string message;
  mnl_attr_parse(
      header, static_cast<unsigned int>(offset),
      [](const nlattr* attr, void* data) -> int {
        if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
            mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0) {
          *static_cast<std::string*>(data) = mnl_attr_get_str(attr);
        }
        return MNL_CB_OK;
      },
      &message);
  return message;
}

void NlMsgDeleter::operator()(nl_msg* msg) const { nlmsg_free(msg); }
void NlObjectDeleter::operator()(void* object) const {
  nl_object_put(static_cast<nl_object*>(object));
}

Status ErrorStatus(std::string_view what, int error, std::string_view extack) {
  std::string message(what);
  message += ": ";
  message += std::strerror(error);
  if (!extack.empty()) {
    message += " (";
    message += extack;
    message += ")";
  }
  return Status::Error(std::move(message), error);
}

Result<NlSocket> NlSocket::Open() {
  MnlSocketPtr socket(mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC));
  if (!socket) return Status::FromErrno("open netlink socket", errno);
  int one = 1;
  // Best effort: older kernels lack these; errors still come back without them.
  mnl_socket_setsockopt(socket.get(), NETLINK_EXT_ACK, &one, sizeof one);
  mnl_socket_setsockopt(socket.get(), NETLINK_CAP_ACK, &one, sizeof one);
  // Room for a batch's acks (TransactBatch) beside a dump's replies; root
  // may go past rmem_max. Best effort: the batch size fits the default too.
  int receive_buffer = 4 * 1024 * 1024;
  if (setsockopt(mnl_socket_get_fd(socket.get()), SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer,
                 sizeof receive_buffer) != 0)
    (void)setsockopt(mnl_socket_get_fd(socket.get()), SOL_SOCKET, SO_RCVBUF, &receive_buffer,
                     sizeof receive_buffer);
  if (mnl_socket_bind(socket.get(), 0, MNL_SOCKET_AUTOPID) < 0)
    return Status::FromErrno("bind netlink socket", errno);
  NlSocket result(std::move(socket));
  result.port_id_ = mnl_socket_get_portid(result.socket_.get());
  result.buffer_.resize(kReceiveBufferSize);
  return result;
}

Status NlSocket::Send(nlmsghdr* request, std::string_view what) {
  if (mnl_socket_sendto(socket_.get(), request, request->nlmsg_len) < 0)
    return ErrorStatus(std::string(what) + ": send", errno);
  return Status::Ok();
}

Status NlSocket::Transact(nlmsghdr* request, std::string_view what, const DumpCallback* callback) {
  request->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  request->nlmsg_seq = next_seq_++;
  request->nlmsg_pid = 0;
  VF_RETURN_IF_ERROR(Send(request, what));
  return Receive(request->nlmsg_seq, what, callback);
}

Status NlSocket::Transact(nl_msg* request, std::string_view what) {
  return Transact(nlmsg_hdr(request), what);
}

Status NlSocket::Dump(nlmsghdr* request, std::string_view what, const DumpCallback& callback) {
  request->nlmsg_flags |= NLM_F_REQUEST | NLM_F_DUMP;
  request->nlmsg_seq = next_seq_++;
  request->nlmsg_pid = 0;
  VF_RETURN_IF_ERROR(Send(request, what));
  return Receive(request->nlmsg_seq, what, &callback);
}

Status NlSocket::Receive(uint32_t seq, std::string_view what, const DumpCallback* callback) {
  // A failing callback stops the processing but the rest of the dump must
  // still be read, or it would land in the next request's replies.
  Status first_error;
  bool interrupted = false;
  while (true) {
    ssize_t received = mnl_socket_recvfrom(socket_.get(), buffer_.data(), buffer_.size());
    if (received < 0) {
      if (errno == EINTR) continue;
      return ErrorStatus(std::string(what) + ": receive", errno);
    }
    auto* header = reinterpret_cast<const nlmsghdr*>(buffer_.data());
    int remaining = static_cast<int>(received);
    while (MessageOk(header, remaining)) {
      if (header->nlmsg_seq != seq || (header->nlmsg_pid != 0 && header->nlmsg_pid != port_id_)) {
        // A stale reply to an earlier request; skip it.
        header = mnl_nlmsg_next(header, &remaining);
        continue;
      }
      if (header->nlmsg_type == NLMSG_ERROR) {
        if (header->nlmsg_len < mnl_nlmsg_size(sizeof(nlmsgerr)))
          return Status::Error(std::string(what) + ": truncated netlink error", EBADMSG);
        const auto* error = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(header));
        if (error->error == 0) return first_error;  // the ack
        if (!first_error.ok()) return first_error;
        return ErrorStatus(what, -error->error, ExtackMessage(header));
      }
      if (header->nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
      if (header->nlmsg_type == NLMSG_DONE) {
        // A dump may end with an error in the DONE payload.
        if (header->nlmsg_len >= mnl_nlmsg_size(sizeof(int))) {
          int error = *static_cast<const int*>(mnl_nlmsg_get_payload(header));
          if (error < 0 && first_error.ok())
            return ErrorStatus(what, -error, ExtackMessage(header));
        }
        if (interrupted && first_error.ok())
          return ErrorStatus(what, EAGAIN, "dump interrupted by a concurrent change");
        return first_error;
      }
      if (callback != nullptr && first_error.ok() && header->nlmsg_type >= NLMSG_MIN_TYPE) {
        first_error = (*callback)(header);
      }
      header = mnl_nlmsg_next(header, &remaining);
    }
  }
}

std::vector<Status> NlSocket::TransactBatch(const std::vector<const nlmsghdr*>& requests,
                                            const std::vector<std::string>& whats) {
  std::vector<Status> statuses(requests.size());
  if (requests.empty()) return statuses;
  const uint32_t first_seq = next_seq_;
  next_seq_ += static_cast<uint32_t>(requests.size());
  send_buffer_.clear();
  for (size_t i = 0; i < requests.size(); ++i) {
    const size_t at = send_buffer_.size();
    const size_t length = NLMSG_ALIGN(requests[i]->nlmsg_len);
    send_buffer_.resize(at + length);
    std::memcpy(send_buffer_.data() + at, requests[i], requests[i]->nlmsg_len);
    auto* header = reinterpret_cast<nlmsghdr*>(send_buffer_.data() + at);
    header->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    header->nlmsg_seq = first_seq + static_cast<uint32_t>(i);
    header->nlmsg_pid = 0;
  }
  // Until its ack comes, a request's outcome is unknown.
  std::vector<bool> acked(requests.size(), false);
  size_t waiting = requests.size();
  if (mnl_socket_sendto(socket_.get(), send_buffer_.data(), send_buffer_.size()) < 0) {
    const int error = errno;
    for (size_t i = 0; i < requests.size(); ++i)
      statuses[i] = ErrorStatus(whats[i] + ": send", error);
    return statuses;
  }
  while (waiting > 0) {
    ssize_t received = mnl_socket_recvfrom(socket_.get(), buffer_.data(), buffer_.size());
    if (received < 0) {
      if (errno == EINTR) continue;
      // ENOBUFS: acks were dropped; those requests may or may not have run.
      const int error = errno;
      for (size_t i = 0; i < requests.size(); ++i)
        if (!acked[i]) statuses[i] = ErrorStatus(whats[i] + ": receive", error);
      return statuses;
    }
    auto* header = reinterpret_cast<const nlmsghdr*>(buffer_.data());
    int remaining = static_cast<int>(received);
    for (; MessageOk(header, remaining); header = mnl_nlmsg_next(header, &remaining)) {
      const uint32_t index = header->nlmsg_seq - first_seq;
      if (index >= requests.size() || header->nlmsg_type != NLMSG_ERROR ||
          (header->nlmsg_pid != 0 && header->nlmsg_pid != port_id_) || acked[index])
        continue;  // a stale reply to an earlier request
      acked[index] = true;
      --waiting;
      if (header->nlmsg_len < mnl_nlmsg_size(sizeof(nlmsgerr))) {
        statuses[index] = Status::Error(whats[index] + ": truncated netlink error", EBADMSG);
        continue;
      }
      const auto* error = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(header));
      if (error->error != 0)
        statuses[index] = ErrorStatus(whats[index], -error->error, ExtackMessage(header));
    }
  }
  return statuses;
}

MessageBuffer::MessageBuffer(size_t size) : buffer_(size) {}

nlmsghdr* MessageBuffer::Start(uint16_t type, uint16_t flags) {
  std::memset(buffer_.data(), 0, buffer_.size());
  nlmsghdr* header = mnl_nlmsg_put_header(buffer_.data());
  header->nlmsg_type = type;
  header->nlmsg_flags = flags;
  return header;
}

}  // namespace vfabric::netd::nl
