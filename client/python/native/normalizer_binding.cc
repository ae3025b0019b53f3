// normd._native.FrozenNormalizer: a frozen version's scheme folded once and applied
// in process with the server's own kernels (core::FrozenNormalizer).
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/python/native/native.h"
#include "core/frozen_normalizer.h"
#include "pybind11/numpy.h"
#include "pybind11/stl.h"

namespace py = pybind11;

namespace normd::native {
namespace {

double Param(const py::dict& params, const char* name, double fallback) {
  if (!params.contains(name) || params[name].is_none()) return fallback;
  return params[name].cast<double>();
}

std::vector<double> Params(const py::dict& params, const char* name) {
  if (!params.contains(name) || params[name].is_none()) return {};
  return params[name].cast<std::vector<double>>();
}

bool Flag(const py::dict& params, const char* name, bool fallback) {
  if (!params.contains(name) || params[name].is_none()) return fallback;
  return params[name].cast<bool>();
}

// quantile_clip=(low, high) ranks, or none.
std::optional<QuantileClip> ClipParam(const py::dict& params) {
  if (!params.contains("quantile_clip") || params["quantile_clip"].is_none()) return std::nullopt;
  const auto [low, high] = params["quantile_clip"].cast<std::pair<double, double>>();
  return QuantileClip{low, high};
}

// The scheme with the wire's defaults for what `params` leaves out (normd.proto's
// ZScore, MinMax, Scale, BatchNorm, Robust and Clip messages).
FrozenScheme FrozenSchemeNamed(const std::string& name, const py::dict& params) {
  if (name == "zscore") return ZScoreScheme{Param(params, "eps", kDefaultEps), ClipParam(params)};
  if (name == "minmax") {
    return MinMaxScheme{Param(params, "low", 0.0), Param(params, "high", 1.0),
                        Flag(params, "clip", false), ClipParam(params)};
  }
  if (name == "robust") {
    return RobustScheme{Param(params, "q_low", 0.25),         Param(params, "q_high", 0.75),
                        Flag(params, "with_centering", true), Flag(params, "with_scaling", true),
                        Flag(params, "unit_variance", false), ClipParam(params)};
  }
  if (name == "clip") return ClipScheme{ClipParam(params)};
  if (name == "quantile") {
    const double n = Param(params, "n_quantiles", 1000);
    return QuantileScheme{static_cast<uint32_t>(n), Flag(params, "normal_output", false)};
  }
  if (name == "bucketize") return BucketizeScheme{Params(params, "ranks")};
  if (name == "scale") {
    return FixedScaleScheme{Param(params, "factor", 1.0), Param(params, "offset", 0.0)};
  }
  if (name == "batchnorm") {
    return BatchNormScheme{Params(params, "gamma"), Params(params, "beta"),
                           Param(params, "eps", kDefaultEps), ClipParam(params)};
  }
  Raise(absl::InvalidArgumentError(absl::StrCat(
      "a frozen normaliser's scheme is zscore, minmax, scale, batchnorm, robust, clip, quantile "
      "or bucketize, got ",
      name)));
}

std::vector<double> Doubles(const py::array_t<double, py::array::forcecast>& a) {
  return std::vector<double>(a.data(), a.data() + a.size());
}

FrozenNormalizer Make(const std::string& scheme, const py::dict& params,
                      const std::optional<std::string>& layout, int64_t channels,
                      const py::array_t<uint64_t, py::array::forcecast>& count,
                      const py::array_t<double, py::array::forcecast>& mean,
                      const py::array_t<double, py::array::forcecast>& variance,
                      const py::array_t<double, py::array::forcecast>& min,
                      const py::array_t<double, py::array::forcecast>& max, bool inverse,
                      std::vector<double> quantile_ranks,
                      std::vector<std::vector<double>> quantiles) {
  ReferenceStatistics stats;
  stats.quantile_ranks = std::move(quantile_ranks);
  stats.quantiles = std::move(quantiles);
  stats.count.assign(count.data(), count.data() + count.size());
  stats.mean = Doubles(mean);
  stats.variance = Doubles(variance);
  stats.min = Doubles(min);
  stats.max = Doubles(max);
  std::optional<Layout> parsed;
  if (layout.has_value()) parsed = LayoutNamed(*layout);
  return ValueOrRaise(
      FrozenNormalizer::Create(FrozenSchemeNamed(scheme, params), parsed, channels, stats, inverse));
}

void Apply(const FrozenNormalizer& normalizer, const py::buffer& x, std::vector<int64_t> shape,
           const std::string& dtype, const py::buffer& out, const std::string& out_dtype) {
  const TensorArg input(x, shape, dtype, /*writable=*/false);
  const TensorArg output(out, std::move(shape), out_dtype, /*writable=*/true);
  const OutputDType output_type = ValueOrRaise(ValidateOutputDType(DTypeNamed(out_dtype)));
  absl::Status applied;
  {
    WorkerPool* const pool = Pool();  // made under the GIL
    py::gil_scoped_release unlocked;
    applied = normalizer.Apply(input.tensor(), output_type, output.writable_bytes(), pool);
  }
  RaiseIfError(applied);
}

py::array_t<double> Array(const std::vector<double>& values) {
  return py::array_t<double>(static_cast<py::ssize_t>(values.size()), values.data());
}

}  // namespace

void BindNormalizer(py::module_& m) {
  py::class_<FrozenNormalizer>(m, "FrozenNormalizer")
      .def(py::init(&Make), py::arg("scheme"), py::arg("params"), py::arg("layout"),
           py::arg("channels"), py::arg("count"), py::arg("mean"), py::arg("variance"),
           py::arg("min"), py::arg("max"), py::arg("inverse") = false,
           py::arg("quantile_ranks") = std::vector<double>{},
           py::arg("quantiles") = std::vector<std::vector<double>>{})
      .def("apply", &Apply, py::arg("x"), py::arg("shape"), py::arg("dtype"), py::arg("out"),
           py::arg("out_dtype"))
      .def_property_readonly("center",
                             [](const FrozenNormalizer& n) { return Array(n.factors().center); })
      .def_property_readonly("scale",
                             [](const FrozenNormalizer& n) { return Array(n.factors().scale); })
      .def_property_readonly("shift",
                             [](const FrozenNormalizer& n) { return Array(n.factors().shift); });
}

}  // namespace normd::native
