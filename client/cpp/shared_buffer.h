// Shared memory with a normd on the same host: tensors placed in a SharedBuffer
// travel to Normalize and Ingest as a reference (region, offset), and Normalize can
// write its output into one, so no tensor byte crosses the socket.
#ifndef NORMD_CLIENT_CPP_SHARED_BUFFER_H_
#define NORMD_CLIENT_CPP_SHARED_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/cpp/normd_client.h"
#include "normd/v1/normd.pb.h"

namespace normd {

// Sends `fd` over `connection` (a SOCK_SEQPACKET socket, connected here to the
// server's region socket at `path`) and returns the claim the server answered.
absl::StatusOr<std::string> HandOverDescriptor(int connection, const std::string& path, int fd);

class SharedBuffer {
 public:
  // A memfd of `bytes` bytes, sealed against shrinking and growing, mapped here and
  // registered with the server as `name`. The buffer's own handoff connection stays
  // open for its life: destroying the buffer unregisters it, and so does the process
  // dying. `client` must outlive the buffer.
  static absl::StatusOr<std::unique_ptr<SharedBuffer>> Create(NormdClient& client, std::string name,
                                                              size_t bytes);
  SharedBuffer(const SharedBuffer&) = delete;
  SharedBuffer& operator=(const SharedBuffer&) = delete;
  ~SharedBuffer();

  const std::string& name() const { return name_; }
  std::span<std::byte> bytes() const { return {base_, size_}; }
  // The memfd, for tests that try to truncate it under the server.
  int fd() const { return memfd_; }

  v1::RegionSlice Slice(uint64_t offset) const;
  // A tensor of `shape` and `dtype` whose values are this buffer's bytes at `offset`.
  v1::Tensor Tensor(const std::vector<int64_t>& shape, v1::DType dtype, uint64_t offset) const;

 private:
  SharedBuffer(NormdClient* client, std::string name, int memfd, int connection, std::byte* base,
               size_t size)
      : client_(client),
        name_(std::move(name)),
        memfd_(memfd),
        connection_(connection),
        base_(base),
        size_(size) {}

  NormdClient* const client_;
  const std::string name_;
  const int memfd_;
  const int connection_;  // to the server's handoff socket
  std::byte* const base_;
  const size_t size_;
};

}  // namespace normd

#endif  // NORMD_CLIENT_CPP_SHARED_BUFFER_H_
