// The Unix socket on which same-host callers hand the server their shared-memory
// file descriptors (SCM_RIGHTS): one SOCK_SEQPACKET message per region, answered
// "OK <claim> <bytes> <rw|ro>" or "ERR <reason>". A descriptor can only travel this
// way from a process that holds it, so nobody can offer the server memory that is not
// theirs; and the connection doubles as the caller's liveness: when it closes (the
// process exited or died), its regions are unregistered.
#ifndef NORMD_SERVER_REGIONS_HANDOFF_LISTENER_H_
#define NORMD_SERVER_REGIONS_HANDOFF_LISTENER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "server/regions/region_registry.h"

namespace normd {

class HandoffListener {
 public:
  // Listens on `path` (absolute; a socket file left there by a previous run is
  // replaced). At most `max_connections` at once; more are closed on arrival.
  static absl::StatusOr<std::unique_ptr<HandoffListener>> Start(const std::string& path,
                                                                RegionRegistry* registry,
                                                                int max_connections = 1024);
  // Closes every connection (their regions go) and removes the socket file.
  ~HandoffListener();

  const std::string& path() const { return path_; }

 private:
  HandoffListener(std::string path, RegionRegistry* registry, int listen_fd, int wake_fd,
                  int max_connections)
      : path_(std::move(path)),
        registry_(registry),
        listen_fd_(listen_fd),
        wake_fd_(wake_fd),
        max_connections_(max_connections) {}
  void Run();
  // Takes one message (and its descriptors) from `fd`; false when the connection ended.
  bool Serve(int fd, uint64_t connection);

  const std::string path_;
  RegionRegistry* const registry_;
  const int listen_fd_;
  const int wake_fd_;  // an eventfd: written once, to stop Run
  const int max_connections_;
  std::thread thread_;
};

}  // namespace normd

#endif  // NORMD_SERVER_REGIONS_HANDOFF_LISTENER_H_
