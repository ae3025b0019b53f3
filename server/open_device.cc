#include "server/open_device.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#ifdef NORMD_WITH_CUDA
#include "core/cuda/host_offload.h"
#endif

namespace normd {

absl::StatusOr<std::unique_ptr<DeviceOffload>> OpenDevice(const DeviceOptions& options,
                                                          WorkerPool* pool) {
  if (options.device.empty()) return nullptr;
  int index = -1;
  if (!absl::StartsWith(options.device, "cuda:") ||
      !absl::SimpleAtoi(absl::string_view(options.device).substr(5), &index) || index < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--device must be cuda:N with N >= 0, or empty; got \"", options.device, "\""));
  }
#ifdef NORMD_WITH_CUDA
  return cuda::CudaOffload::Create({index, options.normalize_min_bytes, options.fit_min_bytes},
                                   pool);
#else
  return absl::FailedPreconditionError(absl::StrCat(
      "--device=", options.device,
      " needs normd's CUDA path, and this build has none (built with NORMD_CUDA=OFF, or where "
      "nvcc was not found); rebuild on a machine with CUDA, or leave --device empty"));
#endif
}

}  // namespace normd
