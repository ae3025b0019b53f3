#include "server/regions/shared_region.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace normd {

absl::StatusOr<std::shared_ptr<SharedRegion>> SharedRegion::Map(
    int fd, absl::FunctionRef<absl::Status(uint64_t size)> admit) {
  absl::Cleanup close_fd = [fd] { close(fd); };
  struct stat info;
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    return absl::InvalidArgumentError(
        "the handed-over descriptor is not a regular file; expected a memfd");
  }
  const int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the handed-over file cannot be sealed (", std::strerror(errno),
        "); expected a memfd made with MFD_ALLOW_SEALING and sealed with F_SEAL_SHRINK"));
  }
  if ((seals & F_SEAL_SHRINK) == 0) {
    return absl::InvalidArgumentError(
        "the memfd is not sealed with F_SEAL_SHRINK; a region that can shrink under the server "
        "is refused (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) first)");
  }
  if (info.st_size <= 0) {
    return absl::InvalidArgumentError("the memfd is empty; size it (ftruncate) before sealing");
  }
  const uint64_t size = static_cast<uint64_t>(info.st_size);
  NORMD_RETURN_IF_ERROR(admit(size));
  const bool writable = (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) == 0;
  void* base =
      mmap(nullptr, size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot map the ", size, "-byte region: ", std::strerror(errno)));
  }
  std::move(close_fd).Cancel();
  return std::shared_ptr<SharedRegion>(
      new SharedRegion(fd, static_cast<std::byte*>(base), size, info.st_ino, writable));
}

SharedRegion::~SharedRegion() {
  munmap(base_, size_);
  close(fd_);
}

absl::Status SharedRegion::CheckBounds(uint64_t offset, uint64_t length,
                                       absl::string_view what) const {
  if (offset > size_ || length > size_ - offset) {
    return absl::OutOfRangeError(absl::StrCat(what, " needs ", length, " bytes at offset ", offset,
                                              " but the region holds ", size_, " bytes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::span<const std::byte>> SharedRegion::Read(uint64_t offset, uint64_t length,
                                                              absl::string_view what) const {
  if (absl::Status bounds = CheckBounds(offset, length, what); !bounds.ok()) return bounds;
  return std::span<const std::byte>(base_ + offset, length);
}

absl::StatusOr<std::span<std::byte>> SharedRegion::Write(uint64_t offset, uint64_t length,
                                                         absl::string_view what) const {
  if (!writable_) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " cannot be written: the region is sealed against writes (read-only)"));
  }
  if (absl::Status bounds = CheckBounds(offset, length, what); !bounds.ok()) return bounds;
  return std::span<std::byte>(base_ + offset, length);
}

}  // namespace normd
