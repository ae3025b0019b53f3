// One descriptor held back for a listening socket's loop. Out of descriptors (EMFILE,
// ENFILE), accept fails and the connection stays queued, so poll reports it at once,
// again and again, and the loop would spin a core. With the reserve freed for a moment
// the waiting connection can be accepted, told why and closed; the loop then rests.
#ifndef NORMD_COMMON_DESCRIPTOR_RESERVE_H_
#define NORMD_COMMON_DESCRIPTOR_RESERVE_H_

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace normd {

class DescriptorReserve {
 public:
  DescriptorReserve() : fd_(open("/dev/null", O_RDONLY | O_CLOEXEC)) {}
  ~DescriptorReserve() {
    if (fd_ >= 0) close(fd_);
  }
  DescriptorReserve(const DescriptorReserve&) = delete;
  DescriptorReserve& operator=(const DescriptorReserve&) = delete;

  // The connection waiting on `listen_fd`, accepted in the reserve's place (-1 when
  // there is none, or no reserve); the caller refuses and closes it. The reserve is
  // taken again after, if a descriptor is free by then.
  int AcceptInPlace(int listen_fd) {
    if (fd_ < 0) return -1;
    close(fd_);
    const int accepted = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return accepted;
  }

 private:
  int fd_;
};

}  // namespace normd

#endif  // NORMD_COMMON_DESCRIPTOR_RESERVE_H_
