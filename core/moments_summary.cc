#include "core/moments_summary.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/batch_moments.h"
#include "core/batch_sketch.h"
#include "core/infinity.h"

namespace normd {
namespace {


// A double-double with finite parts whose low part is below half an ulp of the
// high part, as every operation of double_double.h leaves it.
bool Normalised(const DoubleDouble& x) {
  return std::isfinite(x.hi) && std::isfinite(x.lo) && x.hi + x.lo == x.hi;
}

absl::Status ChannelError(size_t c, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("summary channel ", c, ": ", what));
}

// W > 0 and, by Cauchy-Schwarz, W^2 / count <= sum(w^2) <= W^2 (slack for rounding).
absl::Status ValidateWeights(size_t c, const ChannelMoments& m) {
  if (!Normalised(m.weight_sum) || !Normalised(m.weight_square_sum)) {
    return ChannelError(c, absl::StrCat("weight_sum and weight_square_sum must be finite, "
                                        "normalised double-doubles, got (",
                                        m.weight_sum.hi, ", ", m.weight_sum.lo, ") and (",
                                        m.weight_square_sum.hi, ", ", m.weight_square_sum.lo, ")"));
  }
  const double w = m.weight_sum.hi, w2 = m.weight_square_sum.hi;
  if (m.count == 0) {
    if (w != 0 || w2 != 0) {
      return ChannelError(c, absl::StrCat("count is 0, so expected weight_sum 0 and "
                                          "weight_square_sum 0, got ",
                                          w, " and ", w2));
    }
    return absl::OkStatus();
  }
  const double low = w * w / static_cast<double>(m.count) * (1 - 1e-9);
  const double high = w * w * (1 + 1e-9);
  if (!(w > 0) || !(w2 >= low && w2 <= high)) {
    return ChannelError(
        c, absl::StrCat("expected weight_sum > 0 and weight_sum^2 / count <= weight_square_sum <= "
                        "weight_sum^2 (",
                        low, " to ", high, "), got weight_sum ", w, " and weight_square_sum ", w2));
  }
  return absl::OkStatus();
}

absl::Status ValidateChannel(size_t c, const ChannelMoments& m) {
  if (m.weighted) NORMD_RETURN_IF_ERROR(ValidateWeights(c, m));
  if (m.count == 0) {
    if (m.mean.hi != 0 || m.mean.lo != 0 || m.m2.hi != 0 || m.m2.lo != 0 || m.min != kInf ||
        m.max != -kInf) {
      return ChannelError(
          c, absl::StrCat("count is 0, so expected mean 0, m2 0, min +inf and "
                          "max -inf (an empty channel), got mean ",
                          m.mean.hi, ", m2 ", m.m2.hi, ", min ", m.min, ", max ", m.max));
    }
    return absl::OkStatus();
  }
  if (m.count > kMaxSummaryCount) {
    return ChannelError(c,
                        absl::StrCat("count must be at most 2^53 = ", kMaxSummaryCount,
                                     " (beyond it float64 cannot count exactly), got ", m.count));
  }
  if (!std::isfinite(m.min) || !std::isfinite(m.max) || m.min > m.max) {
    return ChannelError(
        c, absl::StrCat("expected finite min <= max, got min ", m.min, " and max ", m.max));
  }
  if (!std::isfinite(m.max - m.min)) {
    return ChannelError(c, absl::StrCat("min ", m.min, " and max ", m.max,
                                        " span a range that overflows float64; such values "
                                        "cannot be fitted"));
  }
  if (!Normalised(m.mean) || !Normalised(m.m2)) {
    return ChannelError(
        c, absl::StrCat("mean and m2 must be finite, normalised double-doubles "
                        "(hi + lo == hi), got mean (",
                        m.mean.hi, ", ", m.mean.lo, ") and m2 (", m.m2.hi, ", ", m.m2.lo, ")"));
  }
  if (m.mean.hi < m.min || m.mean.hi > m.max) {
    return ChannelError(c, absl::StrCat("mean ", m.mean.hi, " lies outside [min, max] = [", m.min,
                                        ", ", m.max, "]"));
  }
  const double range = m.max - m.min;
  // Popoviciu: variance <= range^2 / 4; the slack covers rounding of M2 and the bound.
  const double bound = m.Weight().hi * (range * range / 4) * (1 + 1e-9);
  if (m.m2.hi < 0 || m.m2.hi > bound) {
    return ChannelError(c, absl::StrCat("m2 must lie in [0, ", m.weighted ? "weight_sum" : "count",
                                        " * (max - min)^2 / 4] = [0, ", bound, "], got ", m.m2.hi));
  }
  if (m.count == 1 && m.min != m.max) {
    return ChannelError(
        c, absl::StrCat("a single value has min == max, got min ", m.min, " and max ", m.max));
  }
  return absl::OkStatus();
}

absl::Status ValidateSummarySketches(const MomentsSummary& summary, const DatasetSpec& spec) {
  const QuantileSketchSpec& expected = *spec.sketch;
  if (summary.sketches.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dataset \"", spec.name,
        "\" keeps quantile sketches and the summary holds none; make summaries with the "
        "dataset's sketch spec (the clients' fit does)"));
  }
  if (summary.sketches.size() != summary.channels.size()) {
    return absl::InvalidArgumentError(absl::StrCat("summary holds ", summary.sketches.size(),
                                                   " sketches for ", summary.channels.size(),
                                                   " channels; expected one per channel"));
  }
  const std::vector<double> none;
  const std::vector<double>& center =
      summary.sketch_spec.has_value() ? summary.sketch_spec->center : none;
  if (!center.empty() && center.size() != summary.sketches.size()) {
    return absl::InvalidArgumentError(absl::StrCat("summary sketch centers hold ", center.size(),
                                                   " values; expected one per channel (",
                                                   summary.sketches.size(), ") or none"));
  }
  for (size_t c = 0; c < summary.sketches.size(); ++c) {
    const double given = center.empty() ? 0.0 : center[c];
    if (given != expected.CenterOf(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("summary sketch of channel ", c, " is centred on ", given, "; dataset \"",
                       spec.name, "\" centres it on ", expected.CenterOf(c)));
    }
    const ChannelMoments& m = summary.channels[c];
    const std::string what = absl::StrCat("summary sketch of channel ", c);
    NORMD_RETURN_IF_ERROR(
        ValidateSketch(summary.sketches[c], given, m, expected.max_buckets, what.c_str()));
  }
  return absl::OkStatus();
}

}  // namespace

MomentsSummary MomentsSummary::Empty(Layout layout, int64_t channels) {
  MomentsSummary summary;
  summary.layout = layout;
  summary.channels.assign(static_cast<size_t>(channels), ChannelMoments{});
  return summary;
}

absl::StatusOr<MomentsSummary> SummarizeBatch(const TensorView& batch, Layout layout,
                                              const ChannelGeometry& geometry,
                                              NonFinitePolicy policy, WorkerPool* pool,
                                              const QuantileSketchSpec* sketch,
                                              const SampleWeights* weights,
                                              const HistogramEdges* histogram_edges) {
  MomentsSummary summary = MomentsSummary::Empty(layout, geometry.channels);
  NORMD_ASSIGN_OR_RETURN(
      summary.skipped_nonfinite,
      ComputeBatchMoments(batch, geometry, policy, summary.channels, pool, weights));
  if (weights != nullptr) {
    uint64_t kept = summary.skipped_nonfinite;
    for (const ChannelMoments& m : summary.channels) kept += m.count;
    summary.masked_values = static_cast<uint64_t>(geometry.elements()) - kept;
  }
  if (sketch != nullptr) {
    summary.sketch_spec = *sketch;
    summary.sketches = EmptySketches(*sketch, summary.channels.size());
    AddBatchToSketches(batch, geometry, *sketch, summary.sketches, pool, weights);
  }
  if (histogram_edges != nullptr && !histogram_edges->empty()) {
    summary.fixed_histograms = EmptyFixedHistograms(*histogram_edges, summary.channels.size());
    AddBatchToFixedHistograms(batch, geometry, *histogram_edges, summary.fixed_histograms, pool,
                              weights);
  }
  summary.samples = static_cast<uint64_t>(geometry.samples);
  summary.batches = 1;
  return summary;
}

absl::Status MergeSummary(const MomentsSummary& other, MomentsSummary& into) {
  if (other.layout != into.layout) {
    return absl::InvalidArgumentError(absl::StrCat("cannot merge a summary of ",
                                                   LayoutName(other.layout), " data into one of ",
                                                   LayoutName(into.layout), " data"));
  }
  if (other.channels.size() != into.channels.size()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot merge a summary of ",
                                                   other.channels.size(), " channels into one of ",
                                                   into.channels.size()));
  }
  for (size_t c = 0; c < other.channels.size(); ++c) {
    if (other.channels[c].count > kMaxSummaryCount - into.channels[c].count) {
      return absl::InvalidArgumentError(absl::StrCat(
          "merged summaries would count ", other.channels[c].count, " + ", into.channels[c].count,
          " values in channel ", c, ", more than 2^53 (beyond it float64 cannot count exactly)"));
    }
  }
  if (other.sketch_spec.has_value() != into.sketch_spec.has_value() ||
      (other.sketch_spec.has_value() && other.sketch_spec->center != into.sketch_spec->center)) {
    return absl::InvalidArgumentError(
        "cannot merge summaries made with different quantile sketch specs (one with sketches "
        "and one without, or different centers)");
  }
  if (other.fixed_histograms.size() != into.fixed_histograms.size() ||
      (!other.fixed_histograms.empty() &&
       other.fixed_histograms[0].counts.size() != into.fixed_histograms[0].counts.size())) {
    return absl::InvalidArgumentError(
        "cannot merge summaries made with different histogram edges (one with fixed histograms "
        "and one without, or different bins)");
  }
  MergeMoments(other.channels, into.channels);
  for (size_t c = 0; c < other.fixed_histograms.size(); ++c) {
    MergeFixedHistogram(other.fixed_histograms[c], into.fixed_histograms[c]);
  }
  if (into.sketch_spec.has_value()) {
    const uint32_t max_buckets =
        std::min(other.sketch_spec->max_buckets, into.sketch_spec->max_buckets);
    into.sketch_spec->max_buckets = max_buckets;
    for (size_t c = 0; c < other.sketches.size(); ++c) {
      MergeSketch(other.sketches[c], max_buckets, into.sketches[c]);
    }
  }
  into.samples += other.samples;
  into.batches += other.batches;
  into.skipped_nonfinite += other.skipped_nonfinite;
  into.masked_values += other.masked_values;
  return absl::OkStatus();
}

absl::Status ValidateMomentsSummary(const MomentsSummary& summary, const DatasetSpec& spec) {
  const auto channels = static_cast<size_t>(spec.channels);
  if (summary.layout != spec.layout) {
    return absl::InvalidArgumentError(absl::StrCat(
        "summary was reduced as ", LayoutName(summary.layout), " data, dataset \"", spec.name,
        "\" has layout ", LayoutName(spec.layout), "; reduce batches in the dataset's layout"));
  }
  if (summary.channels.size() != channels) {
    return absl::InvalidArgumentError(absl::StrCat("summary holds ", summary.channels.size(),
                                                   " channels, dataset \"", spec.name, "\" has ",
                                                   spec.channels));
  }
  if (summary.batches == 0 || summary.samples < summary.batches) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a summary covers at least one batch of at least one sample each: expected batches >= 1 "
        "and samples >= batches, got batches ",
        summary.batches, " and samples ", summary.samples));
  }
  if (summary.skipped_nonfinite > 0 && spec.nonfinite == NonFinitePolicy::kReject) {
    return absl::InvalidArgumentError(absl::StrCat(
        "summary skipped ", summary.skipped_nonfinite, " non-finite values, but dataset \"",
        spec.name, "\" rejects them (nonfinite_policy=reject): expected 0"));
  }
  // Every value, skipped and masked value is one channel of one pixel (one sample for
  // NC).
  unsigned __int128 values = summary.skipped_nonfinite;
  values += summary.masked_values;
  for (size_t c = 0; c < channels; ++c) {
    NORMD_RETURN_IF_ERROR(ValidateChannel(c, summary.channels[c]));
    values += summary.channels[c].count;
  }
  const auto pixels = static_cast<uint64_t>(values / channels);
  const bool whole = values % channels == 0 && values / channels <= kMaxSummaryCount;
  const bool nc = spec.layout == Layout::kNC;
  if (!whole || pixels < summary.samples || (nc && pixels != summary.samples)) {
    return absl::InvalidArgumentError(
        absl::StrCat("summary counts (their sum plus skipped_nonfinite and masked_values) must "
                     "make whole ",
                     nc ? "samples" : "pixels", " of ", spec.channels, " channels",
                     nc ? absl::StrCat(", ", summary.samples, " of them")
                        : absl::StrCat(", at least samples = ", summary.samples),
                     "; got ", static_cast<uint64_t>(values), " values"));
  }
  const bool all_kept = summary.skipped_nonfinite == 0 && summary.masked_values == 0;
  for (size_t c = 0; c < channels; ++c) {
    const uint64_t count = summary.channels[c].count;
    if (count > pixels || (all_kept && count != pixels)) {
      return ChannelError(
          c, absl::StrCat(
                 "count ", count, " disagrees with the summary's ", pixels, " values per channel",
                 all_kept ? " (with nothing skipped or masked, every channel has them all)" : ""));
    }
  }
  if (spec.sketch.has_value()) NORMD_RETURN_IF_ERROR(ValidateSummarySketches(summary, spec));
  if (!spec.histogram_edges.empty()) {
    if (summary.fixed_histograms.size() != channels) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dataset \"", spec.name, "\" keeps histograms over fixed edges; the summary holds ",
          summary.fixed_histograms.size(), " of them, expected one per channel (", channels,
          "): make summaries with the dataset's histogram_edges (the clients' fit does)"));
    }
    for (size_t c = 0; c < channels; ++c) {
      const std::string what = absl::StrCat("summary fixed histogram of channel ", c);
      NORMD_RETURN_IF_ERROR(ValidateFixedHistogram(summary.fixed_histograms[c],
                                                   spec.histogram_edges.Of(c), summary.channels[c],
                                                   what.c_str()));
    }
  }
  return absl::OkStatus();
}

}  // namespace normd
