// One shared-memory region a same-host caller handed to the server: a memfd sealed
// against shrinking, mapped once for its whole life, so tensors are read from and
// written to it in place.
#ifndef NORMD_SERVER_REGIONS_SHARED_REGION_H_
#define NORMD_SERVER_REGIONS_SHARED_REGION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace normd {

class SharedRegion {
 public:
  // Takes `fd` (closed on failure too). It must be a memfd sealed with F_SEAL_SHRINK:
  // a region that could shrink would turn a read past its new end into SIGBUS in the
  // server. A region sealed against writes (F_SEAL_WRITE, F_SEAL_FUTURE_WRITE) is
  // mapped read-only. `admit` sees its size before anything is mapped, and may refuse
  // it.
  static absl::StatusOr<std::shared_ptr<SharedRegion>> Map(
      int fd, absl::FunctionRef<absl::Status(uint64_t size)> admit);

  SharedRegion(const SharedRegion&) = delete;
  SharedRegion& operator=(const SharedRegion&) = delete;
  ~SharedRegion();

  uint64_t size() const { return size_; }
  // The memfd's inode: two handovers of one memfd are the same memory.
  uint64_t inode() const { return inode_; }
  bool writable() const { return writable_; }

  // Bytes [offset, offset + length), bounds-checked without overflow. `what` names
  // the slice in errors ("input", "output").
  absl::StatusOr<std::span<const std::byte>> Read(uint64_t offset, uint64_t length,
                                                  absl::string_view what) const;
  // As Read, for a writable region.
  absl::StatusOr<std::span<std::byte>> Write(uint64_t offset, uint64_t length,
                                             absl::string_view what) const;

 private:
  SharedRegion(int fd, std::byte* base, uint64_t size, uint64_t inode, bool writable)
      : fd_(fd), base_(base), size_(size), inode_(inode), writable_(writable) {}
  absl::Status CheckBounds(uint64_t offset, uint64_t length, absl::string_view what) const;

  const int fd_;
  std::byte* const base_;
  const uint64_t size_;
  const uint64_t inode_;
  const bool writable_;
};

}  // namespace normd

#endif  // NORMD_SERVER_REGIONS_SHARED_REGION_H_
