#include "server/regions/handoff_listener.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace normd {
namespace {

// A message carries one descriptor; room for a few more lets a wrong message be
// refused with every descriptor it brought closed, rather than truncated.
constexpr int kMaxDescriptors = 8;

absl::Status SystemError(absl::string_view what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

void Reply(int fd, absl::string_view text) {
  // A caller that stopped reading loses its answer, not the server's time.
  (void)send(fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

int64_t PeerPid(int fd) {
  struct ucred credentials;
  socklen_t length = sizeof(credentials);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return 0;
  return credentials.pid;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HandoffListener>> HandoffListener::Start(const std::string& path,
                                                                        RegionRegistry* registry,
                                                                        int max_connections) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.front() != '/' || path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the region socket path must be absolute and shorter than ",
                     sizeof(address.sun_path), " bytes, got \"", path, "\""));
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  struct stat existing;
  if (lstat(path.c_str(), &existing) == 0) {
    if (!S_ISSOCK(existing.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " exists and is not a socket; refusing to replace it"));
    }
    unlink(path.c_str());  // left by a previous run: the store's lock says none is running
  }
  const int listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd < 0) return SystemError("cannot create the region socket", path);
  if (bind(listen_fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(listen_fd, 64) != 0) {
    const absl::Status error = SystemError("cannot listen on", path);
    close(listen_fd);
    return error;
  }
  const int wake_fd = eventfd(0, EFD_CLOEXEC);
  if (wake_fd < 0) {
    close(listen_fd);
    return SystemError("cannot create an eventfd for", path);
  }
  std::unique_ptr<HandoffListener> listener(
      new HandoffListener(path, registry, listen_fd, wake_fd, max_connections));
  listener->thread_ = std::thread([raw = listener.get()] { raw->Run(); });
  return listener;
}

HandoffListener::~HandoffListener() {
  const uint64_t one = 1;
  (void)write(wake_fd_, &one, sizeof(one));
  thread_.join();
  close(wake_fd_);
  close(listen_fd_);
  unlink(path_.c_str());
}

void HandoffListener::Run() {
  absl::flat_hash_map<int, uint64_t> connections;  // fd -> the registry's connection id
  std::vector<pollfd> polled;
  const auto drop = [&](int fd) {
    registry_->CloseConnection(connections.at(fd));
    connections.erase(fd);
    close(fd);
  };
  while (true) {
    polled.assign({{wake_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}});
    for (const auto& [fd, id] : connections) polled.push_back({fd, POLLIN, 0});
    if (poll(polled.data(), polled.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (polled[0].revents != 0) break;
    if (polled[1].revents & POLLIN) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd >= 0 && static_cast<int>(connections.size()) >= max_connections_) {
        Reply(fd, absl::StrCat("ERR the server already holds ", max_connections_,
                               " region connections"));
        close(fd);
      } else if (fd >= 0) {
        connections[fd] = registry_->OpenConnection(PeerPid(fd));
      }
    }
    for (size_t i = 2; i < polled.size(); ++i) {
      if (polled[i].revents == 0) continue;
      const int fd = polled[i].fd;
      if (!Serve(fd, connections.at(fd))) drop(fd);
    }
  }
  while (!connections.empty()) drop(connections.begin()->first);
}

bool HandoffListener::Serve(int fd, uint64_t connection) {
  char payload[256];
  iovec data{payload, sizeof(payload)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxDescriptors)];
  msghdr message{};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  const ssize_t got = recvmsg(fd, &message, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (got < 0) return errno == EAGAIN || errno == EINTR;
  if (got == 0) return false;  // the caller closed the connection, or exited
  std::vector<int> received;
  for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr;
       header = CMSG_NXTHDR(&message, header)) {
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const std::span<const int> fds(reinterpret_cast<const int*>(CMSG_DATA(header)), count);
    received.insert(received.end(), fds.begin(), fds.end());
  }
  if (received.size() != 1 || (message.msg_flags & MSG_CTRUNC) != 0) {
    for (const int extra : received) close(extra);
    Reply(fd,
          absl::StrCat("ERR expected one file descriptor (SCM_RIGHTS) per message, got ",
                       received.size(), (message.msg_flags & MSG_CTRUNC) != 0 ? " or more" : ""));
    return true;
  }
  absl::StatusOr<std::shared_ptr<SharedRegion>> region = SharedRegion::Map(received.front());
  if (!region.ok()) {
    Reply(fd, absl::StrCat("ERR ", region.status().message()));
    return true;
  }
  const uint64_t size = (*region)->size();
  const bool writable = (*region)->writable();
  absl::StatusOr<std::string> claim = registry_->Offer(connection, *std::move(region));
  Reply(fd, claim.ok() ? absl::StrCat("OK ", *claim, " ", size, " ", writable ? "rw" : "ro")
                       : absl::StrCat("ERR ", claim.status().message()));
  return true;
}

}  // namespace normd
