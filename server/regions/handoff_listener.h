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

// Connections beyond these are answered "ERR <which limit>" and closed on arrival,
// so no one process or user can take every connection from the rest.
struct HandoffLimits {
  int max_connections = 1024;
  int max_connections_per_user = 512;
  // A connection per region (the clients' way), and the regions a caller may hold
  // (RegionLimits) with room for unclaimed ones: one process never needs more.
  int max_connections_per_process = 128;
};

class HandoffListener {
 public:
  // Listens on `path` (absolute; a socket file left there by a previous run is
  // replaced), made 0600: normd's own user alone may connect. Out of file
  // descriptors, it refuses the waiting connection and rests rather than spin.
  static absl::StatusOr<std::unique_ptr<HandoffListener>> Start(const std::string& path,
                                                                RegionRegistry* registry,
                                                                HandoffLimits limits = {});
  // Closes every connection (their regions go) and removes the socket file.
  ~HandoffListener();

  const std::string& path() const { return path_; }

 private:
  HandoffListener(std::string path, RegionRegistry* registry, int listen_fd, int wake_fd,
                  HandoffLimits limits)
      : path_(std::move(path)),
        registry_(registry),
        listen_fd_(listen_fd),
        wake_fd_(wake_fd),
        limits_(limits) {}
  void Run();
  // Takes one message (and its descriptors) from `fd`; false when the connection ended.
  bool Serve(int fd, uint64_t connection);

  const std::string path_;
  RegionRegistry* const registry_;
  const int listen_fd_;
  const int wake_fd_;  // an eventfd: written once, to stop Run
  const HandoffLimits limits_;
  std::thread thread_;
};

}  // namespace normd

#endif  // NORMD_SERVER_REGIONS_HANDOFF_LISTENER_H_
