// The accelerator behind --device: "" (none) or "cuda:N", where normd was built with its
// CUDA path (core/cuda/host_offload.h).
#ifndef NORMD_SERVER_OPEN_DEVICE_H_
#define NORMD_SERVER_OPEN_DEVICE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/device_offload.h"
#include "core/worker_pool.h"

namespace normd {

struct DeviceOptions {
  std::string device;  // "" or "cuda:N"
  // Input bytes from which requests run on the device; -1: measured at start.
  int64_t normalize_min_bytes = -1;
  int64_t fit_min_bytes = -1;
};

// Null for "": no device. INVALID_ARGUMENT for another spelling; FAILED_PRECONDITION
// when this build has no CUDA path or the machine no such GPU.
absl::StatusOr<std::unique_ptr<DeviceOffload>> OpenDevice(const DeviceOptions& options,
                                                          WorkerPool* pool);

}  // namespace normd

#endif  // NORMD_SERVER_OPEN_DEVICE_H_
