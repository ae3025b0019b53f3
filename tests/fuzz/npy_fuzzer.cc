// libFuzzer: arbitrary bytes as a .npy file for normctl's reader (through a memfd,
// so the real file path is exercised) and as a header dictionary. A malformed file
// must give a status naming what is wrong, never a crash or an out-of-bounds read.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "client/cpp/normctl/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)normd::ParseNpyHeader(absl::string_view(reinterpret_cast<const char*>(data), size));
  const int fd = memfd_create("npy", 0);
  if (fd < 0) return 0;
  if (write(fd, data, size) == static_cast<ssize_t>(size)) {
    absl::StatusOr<normd::NpyReader> reader =
        normd::NpyReader::Open("/proc/self/fd/" + std::to_string(fd));
    if (reader.ok()) {
      std::string rows;
      while (reader->rows_left() > 0 && reader->ReadRows(1, &rows).ok()) {
      }
    }
  }
  close(fd);
  return 0;
}
