#include "server/regions/handoff_listener.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/descriptor_reserve.h"

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

// The connecting process and its user, as the kernel recorded them at connect().
std::optional<ucred> PeerCredentials(int fd) {
  struct ucred credentials;
  socklen_t length = sizeof(credentials);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return std::nullopt;
  return credentials;
}

// Handoff connections take at most a quarter of the process's descriptors, so gRPC,
// the store and the mapped regions always have the rest: under systemd's default
// soft limit of 1024 the caps would otherwise exhaust it alone.
HandoffLimits WithinDescriptors(HandoffLimits limits) {
  rlimit descriptors;
  if (getrlimit(RLIMIT_NOFILE, &descriptors) != 0 || descriptors.rlim_cur == RLIM_INFINITY) {
    return limits;
  }
  const int share = static_cast<int>(
      std::min<rlim_t>(descriptors.rlim_cur / 4, static_cast<rlim_t>(limits.max_connections)));
  if (share >= limits.max_connections) return limits;
  limits.max_connections = std::max(share, 1);
  limits.max_connections_per_user =
      std::min(limits.max_connections_per_user, std::max(share / 2, 1));
  limits.max_connections_per_process =
      std::min(limits.max_connections_per_process, std::max(share / 8, 1));
  return limits;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HandoffListener>> HandoffListener::Start(const std::string& path,
                                                                        RegionRegistry* registry,
                                                                        HandoffLimits limits) {
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
  // 0600 whatever the umask: only normd's own user may hand it memory (and see that
  // it is there). Set before listen, so no connection can arrive before it holds.
  if (bind(listen_fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 ||
      chmod(path.c_str(), 0600) != 0 || listen(listen_fd, 64) != 0) {
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
      new HandoffListener(path, registry, listen_fd, wake_fd, WithinDescriptors(limits)));
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
  struct Connection {
    uint64_t id;  // the registry's
    ucred peer;
  };
  absl::flat_hash_map<int, Connection> connections;
  absl::flat_hash_map<uint32_t, int> per_user;
  absl::flat_hash_map<pid_t, int> per_process;
  DescriptorReserve reserve;
  bool starved = false;
  std::vector<pollfd> polled;
  const auto drop = [&](int fd) {
    const Connection& connection = connections.at(fd);
    registry_->CloseConnection(connection.id);
    if (--per_user[connection.peer.uid] == 0) per_user.erase(connection.peer.uid);
    if (--per_process[connection.peer.pid] == 0) per_process.erase(connection.peer.pid);
    connections.erase(fd);
    close(fd);
  };
  const auto held = [](const auto& counts, auto key) {
    const auto found = counts.find(key);
    return found == counts.end() ? 0 : found->second;
  };
  const auto refuse = [](int fd, absl::string_view why) {
    Reply(fd, absl::StrCat("ERR ", why));
    close(fd);
  };
  while (true) {
    polled.assign({{wake_fd_, POLLIN, 0}, {listen_fd_, static_cast<short>(starved ? 0 : POLLIN), 0}});
    for (const auto& [fd, connection] : connections) polled.push_back({fd, POLLIN, 0});
    // Starved of descriptors: the listener rests a while rather than spin.
    if (poll(polled.data(), polled.size(), starved ? 100 : -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (polled[0].revents != 0) break;
    starved = false;
    // Closed connections go first, so their slots are free for one waiting to be
    // accepted.
    for (size_t i = 2; i < polled.size(); ++i) {
      if (polled[i].revents == 0) continue;
      const int fd = polled[i].fd;
      if (!Serve(fd, connections.at(fd).id)) drop(fd);
    }
    if (polled[1].revents & POLLIN) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
        fd = reserve.AcceptInPlace(listen_fd_);
        if (fd >= 0) refuse(fd, "the server is out of file descriptors; try again later");
        starved = true;
        continue;
      }
      const std::optional<ucred> peer = fd >= 0 ? PeerCredentials(fd) : std::nullopt;
      if (fd < 0) {
        // EAGAIN (another took it), ECONNABORTED: nothing waits.
      } else if (!peer.has_value()) {
        refuse(fd, "the kernel gave no credentials for this connection");
      } else if (static_cast<int>(connections.size()) >= limits_.max_connections) {
        refuse(fd, absl::StrCat("the server already holds ", limits_.max_connections,
                                " region connections"));
      } else if (held(per_user, peer->uid) >= limits_.max_connections_per_user) {
        refuse(fd, absl::StrCat("user ", peer->uid, " already holds ",
                                limits_.max_connections_per_user,
                                " region connections, its share"));
      } else if (held(per_process, peer->pid) >= limits_.max_connections_per_process) {
        refuse(fd, absl::StrCat("process ", peer->pid, " already holds ",
                                limits_.max_connections_per_process,
                                " region connections, its share; one is enough"));
      } else {
        connections[fd] = Connection{registry_->OpenConnection(peer->pid, peer->uid), *peer};
        ++per_user[peer->uid];
        ++per_process[peer->pid];
      }
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
  absl::StatusOr<std::shared_ptr<SharedRegion>> region = SharedRegion::Map(
      received.front(), [&](uint64_t size) { return registry_->AdmitOffer(connection, size); });
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
