#include "core/cuda/device.h"

#include <cuda_runtime.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace normd::cuda {

int DeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver or no device: clear the sticky error
    return 0;
  }
  return count;
}

absl::Status CudaStatus(cudaError_t error, absl::string_view what) {
  if (error == cudaSuccess) return absl::OkStatus();
  const std::string message = absl::StrCat(what, ": CUDA error ", cudaGetErrorName(error), " (",
                                           cudaGetErrorString(error), ")");
  switch (error) {
    case cudaErrorMemoryAllocation:
      return absl::ResourceExhaustedError(message);
    case cudaErrorInvalidValue:
    case cudaErrorInvalidDevicePointer:
    case cudaErrorInvalidDevice:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::StatusOr<int> DeviceOf(const void* pointer, absl::string_view what) {
  cudaPointerAttributes attributes{};
  const cudaError_t error = cudaPointerGetAttributes(&attributes, pointer);
  if (error != cudaSuccess) return CudaStatus(error, absl::StrCat("looking up ", what));
  if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be CUDA device memory, got ",
                     attributes.type == cudaMemoryTypeHost ? "pinned host memory" : "host memory"));
  }
  return attributes.device;
}

ScopedDevice::ScopedDevice(int device) {
  status_ = CudaStatus(cudaGetDevice(&previous_), "cudaGetDevice");
  if (status_.ok() && device != previous_) {
    status_ = CudaStatus(cudaSetDevice(device), absl::StrCat("cudaSetDevice(", device, ")"));
  }
}

ScopedDevice::~ScopedDevice() {
  if (status_.ok()) (void)cudaSetDevice(previous_);
}

DeviceBuffer::~DeviceBuffer() {
  if (data_ != nullptr) (void)cudaFree(data_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), capacity_(std::exchange(other.capacity_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) (void)cudaFree(data_);
    data_ = std::exchange(other.data_, nullptr);
    capacity_ = std::exchange(other.capacity_, 0);
  }
  return *this;
}

absl::StatusOr<void*> DeviceBuffer::Reserve(size_t bytes) {
  if (bytes <= capacity_ && data_ != nullptr) return data_;
  if (data_ != nullptr) {
    (void)cudaFree(data_);
    data_ = nullptr;
    capacity_ = 0;
  }
  const cudaError_t error = cudaMalloc(&data_, bytes == 0 ? 1 : bytes);
  if (error != cudaSuccess) {
    data_ = nullptr;
    return CudaStatus(error, absl::StrCat("allocating ", bytes, " bytes of device memory"));
  }
  capacity_ = bytes;
  return data_;
}

absl::Status DeviceBuffer::CopyFrom(const void* host, size_t bytes, cudaStream_t stream) {
  auto reserved = Reserve(bytes);
  if (!reserved.ok()) return reserved.status();
  if (bytes == 0) return absl::OkStatus();
  return CudaStatus(cudaMemcpyAsync(data_, host, bytes, cudaMemcpyHostToDevice, stream),
                    "copying to the device");
}

}  // namespace normd::cuda
