#include "client/cpp/shared_buffer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace normd {
namespace {

absl::Status Errno(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<std::string> HandOverDescriptor(int connection, const std::string& path, int fd) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("region socket path too long: ", path));
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  if (connect(connection, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return Errno(absl::StrCat("cannot connect to the server's region socket ", path));
  }
  char payload[] = "region";
  iovec data{payload, sizeof(payload) - 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(header), &fd, sizeof(int));
  if (sendmsg(connection, &message, MSG_NOSIGNAL) < 0) return Errno("cannot hand the memfd over");
  char answer[512];
  const ssize_t got = recv(connection, answer, sizeof(answer), 0);
  if (got <= 0) return Errno("the server closed the region socket without an answer");
  const std::vector<std::string> words =
      absl::StrSplit(absl::string_view(answer, static_cast<size_t>(got)), ' ');
  if (words.size() < 2 || words[0] != "OK") {
    return absl::InvalidArgumentError(
        absl::StrCat("the server refused the region: ", absl::string_view(answer, got)));
  }
  return words[1];
}

absl::StatusOr<std::unique_ptr<SharedBuffer>> SharedBuffer::Create(NormdClient& client,
                                                                   std::string name, size_t bytes) {
  NORMD_ASSIGN_OR_RETURN(const v1::ListRegionsResponse regions, client.ListRegions());
  if (regions.handoff_socket().empty()) {
    return absl::FailedPreconditionError(
        "the server has no shared memory (see its --region_socket)");
  }
  const int memfd = memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (memfd < 0) return Errno("memfd_create");
  absl::Cleanup close_memfd = [memfd] { close(memfd); };
  if (ftruncate(memfd, static_cast<off_t>(bytes)) != 0) return Errno("cannot size the memfd");
  if (fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return Errno("cannot seal the memfd");
  }
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (base == MAP_FAILED) return Errno("cannot map the memfd");
  absl::Cleanup unmap = [base, bytes] { munmap(base, bytes); };
  const int connection = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (connection < 0) return Errno("cannot create a socket");
  absl::Cleanup close_connection = [connection] { close(connection); };
  NORMD_ASSIGN_OR_RETURN(const std::string claim,
                         HandOverDescriptor(connection, regions.handoff_socket(), memfd));
  NORMD_RETURN_IF_ERROR(client.RegisterRegion(name, claim).status());
  std::move(close_memfd).Cancel();
  std::move(unmap).Cancel();
  std::move(close_connection).Cancel();
  return std::unique_ptr<SharedBuffer>(new SharedBuffer(&client, std::move(name), memfd, connection,
                                                        static_cast<std::byte*>(base), bytes));
}

SharedBuffer::~SharedBuffer() {
  // Closing the connection alone would unregister the region too, but a little later:
  // unregistering first frees the name at once for a new buffer.
  (void)client_->UnregisterRegion(name_);
  close(connection_);
  munmap(base_, size_);
  close(memfd_);
}

v1::RegionSlice SharedBuffer::Slice(uint64_t offset) const {
  v1::RegionSlice slice;
  slice.set_name(name_);
  slice.set_offset(offset);
  return slice;
}

v1::Tensor SharedBuffer::Tensor(const std::vector<int64_t>& shape, v1::DType dtype,
                                uint64_t offset) const {
  v1::Tensor tensor;
  tensor.mutable_shape()->Add(shape.begin(), shape.end());
  tensor.set_dtype(dtype);
  *tensor.mutable_region() = Slice(offset);
  return tensor;
}

}  // namespace normd
