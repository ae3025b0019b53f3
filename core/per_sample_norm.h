// The per-sample normalisation families, layer, instance and group norm, as
// torch.nn.functional computes them: statistics of each sample's own values (mean
// and biased variance), then y = (x - mean) / sqrt(var + eps) * gamma + beta.
#ifndef NORMD_CORE_PER_SAMPLE_NORM_H_
#define NORMD_CORE_PER_SAMPLE_NORM_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/dtype.h"
#include "core/frozen_scheme.h"
#include "core/layout.h"
#include "core/tensor_view.h"
#include "core/worker_pool.h"

namespace normd {

// Over the trailing `normalized_shape` dims (empty: every dim after the first);
// gamma and beta hold one value per element of normalized_shape, in C order.
struct LayerNormScheme {
  std::vector<int64_t> normalized_shape;
  std::vector<double> gamma;
  std::vector<double> beta;
  double eps = kDefaultEps;
};
// Per sample and channel, over the spatial positions; gamma/beta per channel.
struct InstanceNormScheme {
  std::vector<double> gamma;
  std::vector<double> beta;
  double eps = kDefaultEps;
};
// Per sample, over groups of channels / groups consecutive channels and their
// spatial positions; gamma/beta per channel.
struct GroupNormScheme {
  int64_t groups = 0;
  std::vector<double> gamma;
  std::vector<double> beta;
  double eps = kDefaultEps;
};

using PerSampleScheme = std::variant<LayerNormScheme, InstanceNormScheme, GroupNormScheme>;

absl::string_view SchemeName(const PerSampleScheme& scheme);

// Every family seen one way: the tensor is `units` consecutive blocks normalised
// independently (samples; for layer norm, each index of the leading dims), each a
// C-ordered [rows, channels, inner] array whose channels fall into `groups` groups
// of consecutive channels. Statistics are taken per (unit, group); gamma and beta
// apply per channel. Layer norm: rows = inner = groups = 1, channels = the
// normalized elements. Channels-first images: rows = 1, inner = spatial size.
// Channels-last: rows = spatial size, inner = 1.
struct GroupedGeometry {
  int64_t units = 0;
  int64_t rows = 0;
  int64_t channels = 0;
  int64_t inner = 0;
  int64_t groups = 0;

  int64_t unit_elements() const { return rows * channels * inner; }
  int64_t channels_per_group() const { return channels / groups; }
  int64_t group_values() const { return rows * channels_per_group() * inner; }
};

// The geometry of `scheme` over a tensor of `shape`. Instance and group norm need
// `channel_geometry`, the input's channel geometry (from a dataset or the request's
// layout); layer norm uses the shape alone. INVALID_ARGUMENT for a normalized_shape
// that is not the input's trailing dims, a group count that does not divide the
// channels, instance norm over fewer than 2 positions, or missing geometry.
absl::StatusOr<GroupedGeometry> ResolvePerSampleGeometry(const PerSampleScheme& scheme,
                                                         std::span<const int64_t> shape,
                                                         const ChannelGeometry* channel_geometry);

// The parameter checks ApplyPerSampleNorm makes before any work: eps, and gamma/beta
// against the geometry's channels.
absl::Status ValidatePerSampleParameters(const PerSampleScheme& scheme,
                                         const GroupedGeometry& geometry);

// Normalises `input` (validated) into `output` (exactly elements * ElementSize(
// output_dtype) bytes). Checks eps and gamma/beta first; on error nothing is
// written. Statistics are computed in float64 with the fit's moment kernels; a
// group holding NaN or +-Inf comes out as NaN, as in PyTorch. The result does not
// depend on `pool`.
absl::Status ApplyPerSampleNorm(const PerSampleScheme& scheme, const TensorView& input,
                                const GroupedGeometry& geometry, OutputDType output_type,
                                std::span<std::byte> output, WorkerPool* pool = nullptr);

}  // namespace normd

#endif  // NORMD_CORE_PER_SAMPLE_NORM_H_
