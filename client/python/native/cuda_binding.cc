// normd._native's device path: tensors already in CUDA memory (torch CUDA tensors,
// by address) normalised and reduced there, on the caller's stream, with no copy to
// the host. cuda_device_count() is there in every build (0 without the CUDA path), so
// normd.local can tell.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "client/python/native/native.h"

#ifdef NORMD_WITH_CUDA
#include "core/cuda/device.h"
#include "core/cuda/device_moments.h"
#include "core/cuda/device_normalizer.h"
#include "core/frozen_normalizer.h"
#include "core/moments_summary.h"
#endif

namespace py = pybind11;

namespace normd::native {

#ifdef NORMD_WITH_CUDA
cuda::DeviceWorkspace& CudaWorkspace(const void* pointer, uintptr_t stream) {
  thread_local std::map<std::pair<int, uintptr_t>, cuda::DeviceWorkspace> workspaces;
  const int device = ValueOrRaise(cuda::DeviceOf(pointer, "the input"));
  return workspaces[{device, stream}];
}

namespace {

cudaStream_t StreamOf(uintptr_t stream) { return reinterpret_cast<cudaStream_t>(stream); }

// A frozen normaliser's factors on one device (normd.local makes one per device).
class CudaFrozenNormalizer {
 public:
  CudaFrozenNormalizer(const FrozenNormalizer& host, int device)
      : device_(ValueOrRaise(cuda::DeviceFrozenNormalizer::Create(host, device))) {}

  void Apply(uintptr_t x, std::vector<int64_t> shape, const std::string& dtype, uintptr_t out,
             const std::string& out_dtype, uintptr_t stream) const {
    const cuda::DeviceTensorView input{DTypeNamed(dtype), shape, reinterpret_cast<const void*>(x)};
    const OutputDType output_type = ValueOrRaise(ValidateOutputDType(DTypeNamed(out_dtype)));
    absl::Status applied;
    {
      py::gil_scoped_release unlocked;
      applied = device_.Apply(input, output_type, reinterpret_cast<void*>(out), StreamOf(stream));
    }
    RaiseIfError(applied);
  }

  int device() const { return device_.device(); }

 private:
  cuda::DeviceFrozenNormalizer device_;
};

// normd.moments of a CUDA batch: the moments on the device, the summary on the host.
MomentsSummary CudaMoments(uintptr_t x, std::vector<int64_t> shape, const std::string& dtype,
                           const std::string& layout_name, int64_t channels, bool skip_nonfinite,
                           uintptr_t stream) {
  const cuda::DeviceTensorView input{DTypeNamed(dtype), shape, reinterpret_cast<const void*>(x)};
  const ValidatedTensor tensor = ValueOrRaise(cuda::ValidateDeviceTensor(input));
  const Layout layout = LayoutNamed(layout_name);
  if (channels <= 0) channels = ValueOrRaise(ChannelCountOf(layout, tensor.shape()));
  const ChannelGeometry geometry = ValueOrRaise(ResolveGeometry(layout, channels, tensor.shape()));
  cuda::DeviceWorkspace& workspace = CudaWorkspace(input.data, stream);
  absl::StatusOr<MomentsSummary> summary;
  {
    py::gil_scoped_release unlocked;
    summary = cuda::SummarizeBatch(
        input, layout, geometry, skip_nonfinite ? NonFinitePolicy::kSkip : NonFinitePolicy::kReject,
        StreamOf(stream), workspace);
  }
  return ValueOrRaise(std::move(summary));
}

}  // namespace
#endif

void BindCuda(py::module_& m) {
#ifdef NORMD_WITH_CUDA
  m.def("cuda_device_count", &cuda::DeviceCount,
        "CUDA devices this process can use (0 without a driver or a GPU)");
  py::class_<CudaFrozenNormalizer>(m, "CudaFrozenNormalizer")
      .def(py::init<const FrozenNormalizer&, int>(), py::arg("normalizer"), py::arg("device"))
      .def("apply", &CudaFrozenNormalizer::Apply, py::arg("x"), py::arg("shape"), py::arg("dtype"),
           py::arg("out"), py::arg("out_dtype"), py::arg("stream"))
      .def_property_readonly("device", &CudaFrozenNormalizer::device);
  m.def("cuda_moments", &CudaMoments, py::arg("x"), py::arg("shape"), py::arg("dtype"),
        py::arg("layout"), py::arg("channels"), py::arg("skip_nonfinite"), py::arg("stream"));
#else
  m.def(
      "cuda_device_count", [] { return 0; },
      "0: this build of normd has no CUDA path (nvcc was not found when it was built)");
#endif
}

}  // namespace normd::native
