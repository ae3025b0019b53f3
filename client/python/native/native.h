// Shared pieces of normd's native Python module (normd._native): core's kernels
// for numpy buffers, with absl::Status turned into normd's Python exceptions.
#ifndef NORMD_CLIENT_PYTHON_NATIVE_NATIVE_H_
#define NORMD_CLIENT_PYTHON_NATIVE_NATIVE_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/dtype.h"
#include "core/layout.h"
#include "core/tensor_view.h"
#include "core/worker_pool.h"
#include "pybind11/pybind11.h"

#ifdef NORMD_WITH_CUDA
#include "core/cuda/device_moments.h"
#endif

namespace normd::native {

// Raises the normd.errors exception for `status` (InvalidArgument, ...).
[[noreturn]] void Raise(const absl::Status& status);

template <typename T>
T ValueOrRaise(absl::StatusOr<T> value) {
  if (!value.ok()) Raise(value.status());
  return *std::move(value);
}

inline void RaiseIfError(const absl::Status& status) {
  if (!status.ok()) Raise(status);
}

// The kernels' workers, one fewer than the CPUs, made afresh in a forked child
// (a fork copies no threads). Call it holding the GIL, which guards its making; the
// pool itself may then be used without it, from any thread.
WorkerPool* Pool();

// "float32", "float64", "float16", "bfloat16", "uint8"; "NC", "NCHW", "NHWC".
DType DTypeNamed(absl::string_view name);
Layout LayoutNamed(absl::string_view name);

// A C-contiguous buffer (a numpy array) read as a tensor of `shape` and `dtype`:
// the buffer must hold exactly those bytes. Keeps the buffer alive.
class TensorArg {
 public:
  TensorArg(const pybind11::buffer& buffer, std::vector<int64_t> shape, absl::string_view dtype,
            bool writable);
  const ValidatedTensor& tensor() const { return tensor_; }
  std::span<std::byte> writable_bytes() const;

 private:
  pybind11::buffer_info info_;
  std::vector<int64_t> shape_;
  ValidatedTensor tensor_;
};

#ifdef NORMD_WITH_CUDA
// The device memory the CUDA calls on `stream` reuse, one per (device of `pointer`,
// stream) and thread: a call on another stream must not overwrite what a call still
// queued on this one reads. Call it holding the GIL.
cuda::DeviceWorkspace& CudaWorkspace(const void* pointer, uintptr_t stream);
#endif

void BindSummary(pybind11::module_& m);
void BindNormalizer(pybind11::module_& m);
void BindBatchStatistics(pybind11::module_& m);
// cuda_device_count() always; with NORMD_WITH_CUDA also CudaFrozenNormalizer and
// cuda_moments.
void BindCuda(pybind11::module_& m);

}  // namespace normd::native

#endif  // NORMD_CLIENT_PYTHON_NATIVE_NATIVE_H_
