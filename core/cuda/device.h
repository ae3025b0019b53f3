// CUDA devices as normd's device path sees them: how many there are (none is not an
// error: the device path is optional), CUDA errors as absl::Status, and device
// memory that is owned, grown on demand and reused.
#ifndef NORMD_CORE_CUDA_DEVICE_H_
#define NORMD_CORE_CUDA_DEVICE_H_

#include <cuda_runtime_api.h>

#include <cstddef>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace normd::cuda {

// Usable CUDA devices: 0 without a driver or a GPU.
int DeviceCount();

// `error` as a Status that names `what`: RESOURCE_EXHAUSTED for an allocation that
// failed, INVALID_ARGUMENT for a pointer or value CUDA refused, else INTERNAL.
absl::Status CudaStatus(cudaError_t error, absl::string_view what);

// The device a pointer's memory lives on; INVALID_ARGUMENT for host memory
// (`what` names the pointer in the message).
absl::StatusOr<int> DeviceOf(const void* pointer, absl::string_view what);

// Makes `device` current for a scope and restores the previous one.
class ScopedDevice {
 public:
  explicit ScopedDevice(int device);
  ~ScopedDevice();
  ScopedDevice(const ScopedDevice&) = delete;
  ScopedDevice& operator=(const ScopedDevice&) = delete;
  const absl::Status& status() const { return status_; }

 private:
  int previous_ = 0;
  absl::Status status_;
};

// Device memory on the current device, kept across calls: a cudaMalloc per call
// would synchronise the device and fault in fresh pages. Not thread-safe.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;

  // At least `bytes` bytes (the old contents are not kept when it grows).
  absl::StatusOr<void*> Reserve(size_t bytes);
  // `bytes` from host memory, on `stream`.
  absl::Status CopyFrom(const void* host, size_t bytes, cudaStream_t stream);
  void* data() const { return data_; }

 private:
  void* data_ = nullptr;
  size_t capacity_ = 0;
};

}  // namespace normd::cuda

#endif  // NORMD_CORE_CUDA_DEVICE_H_
