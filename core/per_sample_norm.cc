#include "core/per_sample_norm.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/apply_scale_shift.h"
#include "core/batch_moments.h"
#include "core/batch_statistics.h"
#include "core/kernels/scale_shift.h"
#include "core/overloaded.h"
#include "core/shape_format.h"

namespace normd {
namespace {

// Work per task (input + output bytes), as ApplyScaleShift splits its work.
constexpr size_t kTaskBytes = size_t{1} << 20;
constexpr size_t kStreamingBytes = size_t{32} << 20;
// Channels-first runs at least this long get one kernel call each; shorter ones are
// expanded into per-column factors and done as one row.
constexpr int64_t kMinRunLength = 16;

struct AffineParameters {
  const std::vector<double>& gamma;
  const std::vector<double>& beta;
  double eps;
};

AffineParameters ParametersOf(const PerSampleScheme& scheme) {
  return std::visit([](const auto& s) { return AffineParameters{s.gamma, s.beta, s.eps}; }, scheme);
}

absl::StatusOr<GroupedGeometry> LayerNormGeometry(const LayerNormScheme& scheme,
                                                  std::span<const int64_t> shape) {
  std::span<const int64_t> normalized = scheme.normalized_shape;
  if (normalized.empty()) {
    if (shape.size() < 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer norm without normalized_shape normalises every dim after the first, so the "
          "input needs rank >= 2, got shape ",
          FormatShape(shape)));
    }
    normalized = shape.subspan(1);
  }
  if (normalized.size() > shape.size() ||
      !std::equal(normalized.begin(), normalized.end(), shape.end() - normalized.size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "layer norm normalized_shape ", FormatShape(normalized),
        " must equal the input's trailing dims, got input shape ", FormatShape(shape)));
  }
  GroupedGeometry geometry;
  geometry.rows = geometry.inner = geometry.groups = 1;
  geometry.channels = 1;
  for (int64_t dim : normalized) geometry.channels *= dim;
  geometry.units = 1;
  for (size_t axis = 0; axis < shape.size() - normalized.size(); ++axis)
    geometry.units *= shape[axis];
  return geometry;
}

absl::StatusOr<GroupedGeometry> GroupGeometry(absl::string_view family, int64_t groups,
                                              const ChannelGeometry* channel_geometry) {
  if (channel_geometry == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        family, " needs the input's layout: name a dataset or set layout (NC, NCHW or NHWC)"));
  }
  const ChannelGeometry& g = *channel_geometry;
  if (groups <= 0 || g.channels % groups != 0) {
    return absl::InvalidArgumentError(absl::StrCat(family, " needs a group count that divides the ",
                                                   g.channels, " channels, got ", groups));
  }
  GroupedGeometry geometry;
  geometry.units = g.samples;
  geometry.rows = g.samples > 0 ? g.outer / g.samples : 0;
  geometry.channels = g.channels;
  geometry.inner = g.inner;
  geometry.groups = groups;
  return geometry;
}

// Normalises one unit at a time, single-threaded, reusing its buffers.
class UnitNormalizer {
 public:
  // `pool` (may be null) splits a channels-last unit's normalisation.
  UnitNormalizer(const GroupedGeometry& geometry, const AffineParameters& params, DType in,
                 OutputDType out, bool streaming, WorkerPool* pool)
      : g_(geometry),
        params_(params),
        in_(in),
        output_type_(out),
        out_(out.dtype()),
        streaming_(streaming),
        pool_(pool) {}

  // x and y are the unit's input and output; group_moments its groups' moments.
  absl::Status Run(const std::byte* x, std::byte* y,
                   std::span<const ChannelMoments> group_moments) {
    const auto per_group = static_cast<size_t>(g_.channels_per_group());
    const auto expected = static_cast<uint64_t>(g_.group_values());
    groups_.clear();
    for (const ChannelMoments& m : group_moments) {
      groups_.push_back(BatchStatistics::Of(m, expected, params_.eps));
    }
    const size_t in_size = ElementSize(in_);
    const size_t out_size = ElementSize(out_);
    const auto inner = static_cast<size_t>(g_.inner);
    if (g_.rows == 1 && params_.gamma.empty() && params_.beta.empty()) {
      // Without gamma and beta a whole group shares its factors, and with one row a
      // group is one contiguous run.
      const size_t run = per_group * inner;
      for (size_t group = 0; group < groups_.size(); ++group) {
        const size_t offset = group * run;
        ScaleShiftRun(in_, out_, x + offset * in_size, run, groups_[group].mean,
                      groups_[group].inverse_std, 0.0, y + offset * out_size, streaming_);
      }
      return absl::OkStatus();
    }
    ChannelFactors();
    if (g_.rows == 1 && g_.inner >= kMinRunLength) {
      for (size_t c = 0; c < static_cast<size_t>(g_.channels); ++c) {
        const size_t offset = c * inner;
        ScaleShiftRun(in_, out_, x + offset * in_size, inner, factors_.center[c], factors_.scale[c],
                      factors_.shift[c], y + offset * out_size, streaming_);
      }
    } else if (g_.rows == 1) {
      // Short channel runs (layer norm's single elements among them): one row of
      // per-column factors.
      if (inner > 1) {
        Expand(factors_.center, center_);
        Expand(factors_.scale, scale_);
        Expand(factors_.shift, shift_);
      }
      const bool expanded = inner > 1;
      ScaleShiftRows(in_, out_, x, 1, static_cast<size_t>(g_.channels) * inner,
                     (expanded ? center_ : factors_.center).data(),
                     (expanded ? scale_ : factors_.scale).data(),
                     (expanded ? shift_ : factors_.shift).data(), y, streaming_);
    } else {
      const ChannelGeometry unit{1, g_.rows, g_.channels, g_.inner};
      const size_t elements = static_cast<size_t>(g_.unit_elements());
      // ApplyScaleShift's row planning handles short channels-last rows.
      const TensorView view{in_, {}, std::span<const std::byte>(x, elements * in_size)};
      return ApplyScaleShift(view, unit, factors_, output_type_,
                             std::span<std::byte>(y, elements * out_size), pool_);
    }
    return absl::OkStatus();
  }

 private:
  // Per-channel center, scale and shift from the groups' standardisations.
  void ChannelFactors() {
    const auto channels = static_cast<size_t>(g_.channels);
    const auto per_group = static_cast<size_t>(g_.channels_per_group());
    factors_.center.resize(channels);
    factors_.scale.resize(channels);
    factors_.shift.resize(channels);
    for (size_t c = 0; c < channels; ++c) {
      const BatchStatistics& s = groups_[c / per_group];
      factors_.center[c] = s.mean;
      factors_.scale[c] = (params_.gamma.empty() ? 1.0 : params_.gamma[c]) * s.inverse_std;
      factors_.shift[c] = params_.beta.empty() ? 0.0 : params_.beta[c];
    }
  }

  // One value per column: each channel's value repeated over its `inner` positions.
  void Expand(const std::vector<double>& per_channel, std::vector<double>& out) const {
    out.clear();
    for (double value : per_channel) out.insert(out.end(), static_cast<size_t>(g_.inner), value);
  }

  const GroupedGeometry& g_;
  const AffineParameters& params_;
  DType in_;
  OutputDType output_type_;
  DType out_;
  bool streaming_;
  WorkerPool* pool_;
  std::vector<BatchStatistics> groups_;
  ScaleShift factors_;
  std::vector<double> center_, scale_, shift_;
};

}  // namespace

absl::string_view SchemeName(const PerSampleScheme& scheme) {
  return std::visit(Overloaded{[](const LayerNormScheme&) { return "layernorm"; },
                               [](const InstanceNormScheme&) { return "instancenorm"; },
                               [](const GroupNormScheme&) { return "groupnorm"; }},
                    scheme);
}

absl::StatusOr<GroupedGeometry> ResolvePerSampleGeometry(const PerSampleScheme& scheme,
                                                         std::span<const int64_t> shape,
                                                         const ChannelGeometry* channel_geometry) {
  return std::visit(
      Overloaded{
          [&](const LayerNormScheme& s) { return LayerNormGeometry(s, shape); },
          [&](const InstanceNormScheme&) -> absl::StatusOr<GroupedGeometry> {
            absl::StatusOr<GroupedGeometry> g =
                GroupGeometry("instance norm", channel_geometry ? channel_geometry->channels : 1,
                              channel_geometry);
            if (g.ok() && g->rows * g->inner < 2) {
              return absl::InvalidArgumentError(absl::StrCat(
                  "instance norm needs more than 1 spatial position per channel (as PyTorch), "
                  "got input shape ",
                  FormatShape(shape)));
            }
            return g;
          },
          [&](const GroupNormScheme& s) {
            return GroupGeometry("group norm", s.groups, channel_geometry);
          },
      },
      scheme);
}

absl::Status ValidatePerSampleParameters(const PerSampleScheme& scheme, const GroupedGeometry& g) {
  const AffineParameters params = ParametersOf(scheme);
  NORMD_RETURN_IF_ERROR(ValidateEps(params.eps));
  return ValidateAffineParameters(
      params.gamma, params.beta, g.channels,
      std::holds_alternative<LayerNormScheme>(scheme) ? "element of normalized_shape" : "channel");
}

absl::Status ApplyPerSampleNorm(const PerSampleScheme& scheme, const TensorView& input,
                                const GroupedGeometry& g, OutputDType output_type,
                                std::span<std::byte> output, WorkerPool* pool) {
  const DType output_dtype = output_type.dtype();
  const AffineParameters params = ParametersOf(scheme);
  NORMD_RETURN_IF_ERROR(ValidatePerSampleParameters(scheme, g));
  const auto units = static_cast<size_t>(g.units);
  const auto unit_elements = static_cast<size_t>(g.unit_elements());
  const size_t in_size = ElementSize(input.dtype);
  const size_t out_size = ElementSize(output_dtype);
  if (input.bytes.size() != units * unit_elements * in_size ||
      output.size() != units * unit_elements * out_size) {
    return absl::InternalError("ApplyPerSampleNorm: buffer sizes disagree with the geometry");
  }
  if (units == 0 || unit_elements == 0) return absl::OkStatus();

  const bool streaming = output.size() >= kStreamingBytes;
  const size_t per_task = std::max<size_t>(1, kTaskBytes / (unit_elements * (in_size + out_size)));
  const size_t tasks = (units + per_task - 1) / per_task;
  const auto groups = static_cast<size_t>(g.groups);
  // A single task runs here and may itself spread its work over the pool.
  WorkerPool* inner_pool = tasks == 1 ? pool : nullptr;

  const auto normalize_units = [&](size_t t) -> absl::Status {
    const size_t first = t * per_task;
    const size_t count = std::min(units, first + per_task) - first;
    const std::byte* x = input.bytes.data() + first * unit_elements * in_size;
    std::byte* y = output.data() + first * unit_elements * out_size;
    std::vector<ChannelMoments> moments(count * groups);
    if (g.rows == 1) {
      // With one row every group is contiguous: the chunk is [units * groups, values].
      const TensorView chunk{
          input.dtype, {}, std::span<const std::byte>(x, count * unit_elements * in_size)};
      const ChannelGeometry as_channels{1, 1, static_cast<int64_t>(count * groups),
                                        g.channels_per_group() * g.inner};
      NORMD_RETURN_IF_ERROR(
          ComputeBatchMoments(chunk, as_channels, NonFinitePolicy::kSkip, moments, inner_pool));
    } else {
      for (size_t u = 0; u < count; ++u) {
        const TensorView unit{
            input.dtype,
            {},
            std::span<const std::byte>(x + u * unit_elements * in_size, unit_elements * in_size)};
        const ChannelGeometry as_channels{1, g.rows, g.groups, g.channels_per_group() * g.inner};
        NORMD_RETURN_IF_ERROR(ComputeBatchMoments(unit, as_channels, NonFinitePolicy::kSkip,
                                                  std::span(moments).subspan(u * groups, groups),
                                                  inner_pool));
      }
    }
    UnitNormalizer normalizer(g, params, input.dtype, output_type, streaming, inner_pool);
    for (size_t u = 0; u < count; ++u) {
      NORMD_RETURN_IF_ERROR(normalizer.Run(x + u * unit_elements * in_size,
                                           y + u * unit_elements * out_size,
                                           std::span(moments).subspan(u * groups, groups)));
    }
    return absl::OkStatus();
  };
  std::vector<absl::Status> task_status(tasks);
  const auto task = [&](size_t t) { task_status[t] = normalize_units(t); };
  RunTasks(pool, tasks, task);
  for (const absl::Status& status : task_status) NORMD_RETURN_IF_ERROR(status);
  return absl::OkStatus();
}

}  // namespace normd
