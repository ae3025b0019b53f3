// normd._native.BatchStatisticsNormalizer: the schemes whose statistics come from the
// input itself (batch norm in training mode, layer, instance and group norm), run in
// process with the calls and kernels the server's Normalizer makes for them, so the
// output is the server's, bit for bit.
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/python/native/native.h"
#include "core/batch_norm_training.h"
#include "core/per_sample_norm.h"
#include "pybind11/stl.h"

namespace py = pybind11;

namespace normd::native {
namespace {

using BatchStatisticsScheme = std::variant<BatchNormTrainingScheme, PerSampleScheme>;

std::vector<double> Values(const py::dict& params, const char* name) {
  if (!params.contains(name) || params[name].is_none()) return {};
  return params[name].cast<std::vector<double>>();
}

double Eps(const py::dict& params) {
  if (!params.contains("eps") || params["eps"].is_none()) return kDefaultEps;
  return params["eps"].cast<double>();
}

// The scheme with the wire's defaults for what `params` leaves out.
BatchStatisticsScheme BatchStatisticsSchemeNamed(const std::string& name, const py::dict& params) {
  const std::vector<double> gamma = Values(params, "gamma"), beta = Values(params, "beta");
  if (name == "batchnorm_training") return BatchNormTrainingScheme{gamma, beta, Eps(params)};
  if (name == "layernorm") {
    std::vector<int64_t> shape;
    if (params.contains("normalized_shape") && !params["normalized_shape"].is_none()) {
      shape = params["normalized_shape"].cast<std::vector<int64_t>>();
    }
    return PerSampleScheme(LayerNormScheme{shape, gamma, beta, Eps(params)});
  }
  if (name == "instancenorm") return PerSampleScheme(InstanceNormScheme{gamma, beta, Eps(params)});
  if (name == "groupnorm") {
    const int64_t groups =
        params.contains("num_groups") ? params["num_groups"].cast<int64_t>() : int64_t{0};
    return PerSampleScheme(GroupNormScheme{groups, gamma, beta, Eps(params)});
  }
  Raise(absl::InvalidArgumentError(absl::StrCat(
      "a batch-statistics scheme is batchnorm_training, layernorm, instancenorm or groupnorm, "
      "got ",
      name)));
}

class BatchStatisticsNormalizer {
 public:
  // `channels` 0: taken from each input's shape (no dataset).
  BatchStatisticsNormalizer(const std::string& scheme, const py::dict& params,
                            const std::optional<std::string>& layout, int64_t channels)
      : scheme_(BatchStatisticsSchemeNamed(scheme, params)), channels_(channels) {
    if (layout.has_value()) layout_ = LayoutNamed(*layout);
  }

  void Apply(const py::buffer& x, std::vector<int64_t> shape, const std::string& dtype,
             const py::buffer& out, const std::string& out_dtype) const {
    const TensorArg input(x, shape, dtype, /*writable=*/false);
    const TensorArg output(out, std::move(shape), out_dtype, /*writable=*/true);
    const OutputDType output_type = ValueOrRaise(ValidateOutputDType(DTypeNamed(out_dtype)));
    const std::optional<ChannelGeometry> geometry = GeometryOf(input.tensor());
    absl::Status applied;
    if (const auto* training = std::get_if<BatchNormTrainingScheme>(&scheme_)) {
      std::vector<ChannelMoments> moments(static_cast<size_t>(geometry->channels));
      WorkerPool* const pool = Pool();  // made under the GIL
      py::gil_scoped_release unlocked;
      applied = ApplyBatchNormTraining(*training, input.tensor().view(), *geometry, output_type,
                                       output.writable_bytes(), moments, pool)
                    .status();
    } else {
      const GroupedGeometry grouped = Grouped(input.tensor(), geometry);
      WorkerPool* const pool = Pool();  // made under the GIL
      py::gil_scoped_release unlocked;
      applied = ApplyPerSampleNorm(std::get<PerSampleScheme>(scheme_), input.tensor().view(),
                                   grouped, output_type, output.writable_bytes(), pool);
    }
    RaiseIfError(applied);
  }

#ifdef NORMD_WITH_CUDA
  // The same on CUDA device memory (addresses as integers, as torch's data_ptr()), on
  // `stream` (a cudaStream_t as an integer; 0 the legacy default stream); returns
  // once the kernels are queued.
  void ApplyCuda(uintptr_t x, std::vector<int64_t> shape, const std::string& dtype, uintptr_t out,
                 const std::string& out_dtype, uintptr_t stream) const {
    const cuda::DeviceTensorView input{DTypeNamed(dtype), shape, reinterpret_cast<const void*>(x)};
    const ValidatedTensor tensor = ValueOrRaise(cuda::ValidateDeviceTensor(input));
    const OutputDType output_type = ValueOrRaise(ValidateOutputDType(DTypeNamed(out_dtype)));
    const std::optional<ChannelGeometry> geometry = GeometryOf(tensor);
    auto* const cuda_stream = reinterpret_cast<cudaStream_t>(stream);
    cuda::DeviceWorkspace& workspace = CudaWorkspace(input.data, stream);
    absl::Status applied;
    if (const auto* training = std::get_if<BatchNormTrainingScheme>(&scheme_)) {
      py::gil_scoped_release unlocked;
      applied =
          cuda::ApplyBatchNormTraining(*training, input, *geometry, output_type,
                                       reinterpret_cast<void*>(out), {}, cuda_stream, workspace);
    } else {
      const GroupedGeometry grouped = Grouped(tensor, geometry);
      py::gil_scoped_release unlocked;
      applied =
          cuda::ApplyPerSampleNorm(std::get<PerSampleScheme>(scheme_), input, grouped, output_type,
                                   reinterpret_cast<void*>(out), cuda_stream, workspace);
    }
    RaiseIfError(applied);
  }
#endif

 private:
  // As the server's InputGeometry: none without a layout (layer norm needs none).
  std::optional<ChannelGeometry> GeometryOf(const ValidatedTensor& input) const {
    std::optional<ChannelGeometry> geometry;
    if (layout_.has_value()) {
      int64_t channels = channels_;
      if (channels == 0) channels = ValueOrRaise(ChannelCountOf(*layout_, input.shape()));
      geometry = ValueOrRaise(ResolveGeometry(*layout_, channels, input.shape()));
    }
    if (std::holds_alternative<BatchNormTrainingScheme>(scheme_) && !geometry.has_value()) {
      Raise(absl::InvalidArgumentError("batchnorm_training needs the input's layout"));
    }
    return geometry;
  }

  GroupedGeometry Grouped(const ValidatedTensor& input,
                          const std::optional<ChannelGeometry>& geometry) const {
    return ValueOrRaise(ResolvePerSampleGeometry(std::get<PerSampleScheme>(scheme_), input.shape(),
                                                 geometry.has_value() ? &*geometry : nullptr));
  }

  BatchStatisticsScheme scheme_;
  std::optional<Layout> layout_;
  int64_t channels_;
};

}  // namespace

void BindBatchStatistics(py::module_& m) {
  py::class_<BatchStatisticsNormalizer>(m, "BatchStatisticsNormalizer")
      .def(py::init<const std::string&, const py::dict&, const std::optional<std::string>&,
                    int64_t>(),
           py::arg("scheme"), py::arg("params"), py::arg("layout"), py::arg("channels"))
      .def("apply", &BatchStatisticsNormalizer::Apply, py::arg("x"), py::arg("shape"),
           py::arg("dtype"), py::arg("out"), py::arg("out_dtype"))
#ifdef NORMD_WITH_CUDA
      .def("apply_cuda", &BatchStatisticsNormalizer::ApplyCuda, py::arg("x"), py::arg("shape"),
           py::arg("dtype"), py::arg("out"), py::arg("out_dtype"), py::arg("stream"))
#endif
      ;
}

}  // namespace normd::native
