#include "client/python/native/native.h"

#include <unistd.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"

namespace py = pybind11;

namespace normd::native {

void Raise(const absl::Status& status) {
  py::object error = py::module_::import("normd.errors")
                         .attr("from_status")(absl::StatusCodeToString(status.code()),
                                              std::string(status.message()));
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
  throw py::error_already_set();
}

WorkerPool* Pool() {
  static std::unique_ptr<WorkerPool> pool;
  static pid_t owner = 0;
  if (pool == nullptr || owner != getpid()) {
    // A forked child's copy has no threads behind it: leave it, make a new one.
    if (owner != getpid()) (void)pool.release();
    const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
    pool = std::make_unique<WorkerPool>(cpus - 1);
    owner = getpid();
  }
  return pool.get();
}

DType DTypeNamed(absl::string_view name) {
  if (name == "float32") return DType::kFloat32;
  if (name == "float64") return DType::kFloat64;
  if (name == "float16") return DType::kFloat16;
  if (name == "bfloat16") return DType::kBFloat16;
  if (name == "uint8") return DType::kUInt8;
  Raise(absl::InvalidArgumentError(
      absl::StrCat("dtype must be float32, float64, float16, bfloat16 or uint8, got ", name)));
}

Layout LayoutNamed(absl::string_view name) {
  if (name == "NC") return Layout::kNC;
  if (name == "NCHW") return Layout::kNCHW;
  if (name == "NHWC") return Layout::kNHWC;
  Raise(absl::InvalidArgumentError(absl::StrCat("layout must be NC, NCHW or NHWC, got ", name)));
}

namespace {

ValidatedTensor ValidateBuffer(const py::buffer_info& info, std::span<const int64_t> shape,
                               absl::string_view dtype) {
  ssize_t expected_stride = info.itemsize;
  for (ssize_t d = info.ndim - 1; d >= 0; --d) {
    if (info.shape[d] > 1 && info.strides[d] != expected_stride) {
      Raise(absl::InvalidArgumentError("the buffer must be C-contiguous"));
    }
    expected_stride *= info.shape[d];
  }
  const TensorView view{DTypeNamed(dtype), shape,
                        std::span(static_cast<const std::byte*>(info.ptr),
                                  static_cast<size_t>(info.size * info.itemsize))};
  return ValueOrRaise(ValidateTensor(view));
}

}  // namespace

TensorArg::TensorArg(const py::buffer& buffer, std::vector<int64_t> shape, absl::string_view dtype,
                     bool writable)
    : info_(buffer.request(writable)),
      shape_(std::move(shape)),
      tensor_(ValidateBuffer(info_, shape_, dtype)) {}

std::span<std::byte> TensorArg::writable_bytes() const {
  return std::span(static_cast<std::byte*>(info_.ptr),
                   static_cast<size_t>(info_.size * info_.itemsize));
}

}  // namespace normd::native

PYBIND11_MODULE(_native, m) {
  m.doc() = "normd's statistics and normalisation kernels, in process (see normd.local)";
  normd::native::BindSummary(m);
  normd::native::BindNormalizer(m);
  normd::native::BindBatchStatistics(m);
  normd::native::BindCuda(m);
}
