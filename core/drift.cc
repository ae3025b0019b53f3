#include "core/drift.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace normd {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

DriftLevel LevelOf(double value, const DriftLimits& limits) {
  if (std::isnan(value)) return DriftLevel::kNoData;
  if (value >= limits.fail) return DriftLevel::kFail;
  if (value >= limits.warn) return DriftLevel::kWarn;
  return DriftLevel::kPass;
}

std::string Figure(double value) { return absl::StrFormat("%.3g", value); }

// One bucket index of both aligned sketches, with each side's count there.
struct AlignedBucket {
  int32_t index = 0;
  double reference = 0;
  double candidate = 0;
};

std::vector<SketchBucket> CoarsenedTo(const QuantileSketch& sketch, int resolution) {
  const int by = sketch.resolution - resolution;
  std::vector<SketchBucket> out;
  out.reserve(sketch.buckets.size());
  for (const SketchBucket& b : sketch.buckets) {
    const int32_t index = b.index >> by;
    if (!out.empty() && out.back().index == index) {
      out.back().count += b.count;
    } else {
      out.push_back({index, b.count});
    }
  }
  return out;
}

// Both sketches at the coarser one's resolution, walked together in value order.
std::vector<AlignedBucket> Align(const QuantileSketch& reference, const QuantileSketch& candidate,
                                 int* resolution) {
  *resolution = std::min(reference.resolution, candidate.resolution);
  const std::vector<SketchBucket> a = CoarsenedTo(reference, *resolution);
  const std::vector<SketchBucket> b = CoarsenedTo(candidate, *resolution);
  std::vector<AlignedBucket> out;
  out.reserve(a.size() + b.size());
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].index < b[j].index)) {
      out.push_back({a[i].index, a[i].count, 0});
      ++i;
    } else if (i == a.size() || b[j].index < a[i].index) {
      out.push_back({b[j].index, 0, b[j].count});
      ++j;
    } else {
      out.push_back({a[i].index, a[i].count, b[j].count});
      ++i;
      ++j;
    }
  }
  return out;
}

// Cells in value order, each with both sides' mass: a distribution function is exact
// at the edge after every cell.
struct Cells {
  std::vector<double> reference;
  std::vector<double> candidate;
};

DriftMeasure KsOver(const Cells& cells) {
  double total_a = 0, total_b = 0;
  for (double c : cells.reference) total_a += c;
  for (double c : cells.candidate) total_b += c;
  double cumulative_a = 0, cumulative_b = 0, statistic = 0, widest = 0;
  for (size_t i = 0; i < cells.reference.size(); ++i) {
    const double pa = cells.reference[i] / total_a, pb = cells.candidate[i] / total_b;
    cumulative_a += pa;
    cumulative_b += pb;
    statistic = std::max(statistic, std::abs(cumulative_a - cumulative_b));
    widest = std::max({widest, pa, pb});
  }
  statistic = std::min(1.0, statistic);
  DriftMeasure ks;
  ks.value = statistic;
  ks.error = std::min(widest, 1.0 - statistic);
  return ks;
}

void FillBinMeasures(const std::vector<double>& reference, const std::vector<double>& candidate,
                     ChannelDrift& drift) {
  double total_a = 0, total_b = 0;
  for (double c : reference) total_a += c;
  for (double c : candidate) total_b += c;
  double psi = 0, js = 0;
  drift.reference_fractions.resize(reference.size());
  drift.candidate_fractions.resize(candidate.size());
  for (size_t i = 0; i < reference.size(); ++i) {
    const double p = reference[i] / total_a, q = candidate[i] / total_b;
    drift.reference_fractions[i] = p;
    drift.candidate_fractions[i] = q;
    const double pf = std::max(p, kPsiFloor), qf = std::max(q, kPsiFloor);
    psi += (qf - pf) * std::log(qf / pf);
    const double m = (p + q) / 2;
    if (p > 0) js += 0.5 * p * std::log2(p / m);
    if (q > 0) js += 0.5 * q * std::log2(q / m);
  }
  drift.psi.value = psi;
  drift.js_divergence.value = std::clamp(js, 0.0, 1.0);
}

// The sketch's bins: whole aligned buckets, a bin closed once the reference reaches the
// next multiple of 1/bins of its mass (or, with equal widths, once a bucket's upper edge
// reaches the next of `bins` equal steps over [low, high]).
void SketchBins(const std::vector<AlignedBucket>& aligned, int resolution, double center,
                uint32_t bins, bool equal_width, double low, double high, ChannelDrift& drift,
                std::vector<double>& reference, std::vector<double>& candidate) {
  double total_a = 0;
  for (const AlignedBucket& b : aligned) total_a += b.reference;
  drift.bin_edges = {low};
  reference.assign(1, 0.0);
  candidate.assign(1, 0.0);
  double cumulative_a = 0;
  for (size_t k = 0; k < aligned.size(); ++k) {
    reference.back() += aligned[k].reference;
    candidate.back() += aligned[k].candidate;
    cumulative_a += aligned[k].reference;
    const double closed = static_cast<double>(reference.size());  // bins closed after this
    const double edge = BucketValueRange(aligned[k].index, resolution, center).high;
    const bool full = equal_width ? edge >= low + closed / bins * (high - low)
                                  : cumulative_a >= closed / bins * total_a;
    if (reference.size() < bins && k + 1 < aligned.size() && full) {
      drift.bin_edges.push_back(std::clamp(edge, low, high));
      reference.push_back(0);
      candidate.push_back(0);
    }
  }
  drift.bin_edges.push_back(high);
}

// The fixed histogram's bins, with one below and one above where either side has values.
void FixedBins(const std::vector<double>& edges, const FixedHistogram& a, const FixedHistogram& b,
               double low, double high, ChannelDrift& drift, std::vector<double>& reference,
               std::vector<double>& candidate) {
  drift.bin_edges.clear();
  reference.clear();
  candidate.clear();
  if (a.below > 0 || b.below > 0) {
    drift.bin_edges.push_back(std::min(low, edges.front()));
    reference.push_back(a.below);
    candidate.push_back(b.below);
  }
  drift.bin_edges.insert(drift.bin_edges.end(), edges.begin(), edges.end());
  reference.insert(reference.end(), a.counts.begin(), a.counts.end());
  candidate.insert(candidate.end(), b.counts.begin(), b.counts.end());
  if (a.above > 0 || b.above > 0) {
    drift.bin_edges.push_back(std::max(high, edges.back()));
    reference.push_back(a.above);
    candidate.push_back(b.above);
  }
}

void Describe(ChannelDrift& d, DriftBins bins, size_t bin_count) {
  const double smd = d.standardized_mean_difference.value;
  if (!std::isnan(smd)) {
    d.standardized_mean_difference.meaning =
        smd == 0 ? "the means are equal"
                 : absl::StrCat("the mean moved ", Figure(std::abs(smd)),
                                " pooled standard deviations ", smd > 0 ? "up" : "down");
  }
  const double ratio = d.variance_ratio.value;
  if (!std::isnan(ratio)) {
    d.variance_ratio.meaning = absl::StrCat("the variance is ", Figure(ratio), "x the reference's",
                                            ratio > 1   ? " (wider)"
                                            : ratio < 1 ? " (narrower)"
                                                        : "");
  }
  if (!std::isnan(d.ks.value)) {
    d.ks.meaning = absl::StrCat("the distribution functions differ by at most ",
                                Figure(100 * d.ks.value), "% of values at any point");
    if (d.ks.error > 0) {
      absl::StrAppend(&d.ks.meaning, " (up to ", Figure(100 * (d.ks.value + d.ks.error)),
                      "% between bucket edges)");
    }
  }
  const std::string over = absl::StrCat(" over ", bin_count, " ",
                                        bins == DriftBins::kSketch ? "sketch" : "fixed", " bins");
  if (!std::isnan(d.psi.value)) {
    d.psi.meaning = absl::StrCat("population stability ", Figure(d.psi.value), over,
                                 ": under 0.1 stable, 0.1-0.25 moderate shift, above 0.25 major");
  }
  if (!std::isnan(d.js_divergence.value)) {
    d.js_divergence.meaning =
        absl::StrCat("the bin distributions share all but ", Figure(d.js_divergence.value),
                     " bits of 1 (0: identical, 1: disjoint)", over);
  }
}

DriftLevel Worse(DriftLevel a, DriftLevel b) { return std::max(a, b); }

bool HoldsValues(const SplitStatistics& split) {
  for (const ChannelMoments& m : split.moments) {
    if (m.count > 0) return true;
  }
  return false;
}

}  // namespace

std::array<NamedMeasure, 5> MeasuresOf(const ChannelDrift& d) {
  return {{{"standardized mean difference", &d.standardized_mean_difference},
           {"variance ratio", &d.variance_ratio},
           {"KS", &d.ks},
           {"PSI", &d.psi},
           {"JS divergence", &d.js_divergence}}};
}

absl::string_view DriftBinsName(DriftBins bins) {
  switch (bins) {
    case DriftBins::kNone:
      return "none";
    case DriftBins::kFixedHistogram:
      return "fixed_histogram";
    case DriftBins::kSketch:
      return "sketch";
  }
  return "none";
}

absl::Status ValidateDriftThresholds(const DriftThresholds& t) {
  const std::pair<const char*, const DriftLimits*> all[] = {
      {"standardized_mean_difference", &t.standardized_mean_difference},
      {"variance_ratio", &t.variance_ratio},
      {"ks", &t.ks},
      {"psi", &t.psi},
      {"js_divergence", &t.js_divergence}};
  for (const auto& [name, limits] : all) {
    const double floor = limits == &t.variance_ratio ? 1.0 : 0.0;
    if (!(limits->warn >= floor && limits->fail >= limits->warn)) {
      return absl::InvalidArgumentError(absl::StrCat("drift thresholds of ", name, " must satisfy ",
                                                     Figure(floor), " <= warn <= fail, got warn ",
                                                     limits->warn, " and fail ", limits->fail));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<DriftReport> CompareStatistics(const SplitStatistics& reference,
                                              const SplitStatistics& candidate,
                                              const DatasetSpec& spec,
                                              const DriftThresholds& thresholds, uint32_t bins,
                                              absl::string_view what_reference,
                                              absl::string_view what_candidate, bool equal_width) {
  if (bins == 0 || bins > kMaxDriftBins) {
    return absl::InvalidArgumentError(
        absl::StrCat("drift bins must be in [1, ", kMaxDriftBins, "], got ", bins));
  }
  for (const auto& [split, what] :
       {std::pair{&reference, what_reference}, std::pair{&candidate, what_candidate}}) {
    if (!HoldsValues(*split)) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, " of dataset \"", spec.name, "\" holds no values to compare"));
    }
  }
  DriftReport report;
  const bool fixed = !spec.histogram_edges.empty() && !reference.fixed_histograms.empty() &&
                     !candidate.fixed_histograms.empty();
  const bool sketched = !reference.sketches.empty() && !candidate.sketches.empty();
  report.bins = fixed      ? DriftBins::kFixedHistogram
                : sketched ? DriftBins::kSketch
                           : DriftBins::kNone;
  const size_t channels = static_cast<size_t>(spec.channels);
  report.channels.resize(channels);
  for (size_t c = 0; c < channels; ++c) {
    const ChannelMoments& a = reference.moments[c];
    const ChannelMoments& b = candidate.moments[c];
    ChannelDrift& d = report.channels[c];
    d.reference_count = a.Weight().value();
    d.candidate_count = b.Weight().value();
    d.standardized_mean_difference.value = d.variance_ratio.value = d.ks.value = d.psi.value =
        d.js_divergence.value = kNaN;
    if (a.count > 0 && b.count > 0) {
      const double va = a.PopulationVariance(), vb = b.PopulationVariance();
      const double difference = b.Mean() - a.Mean();
      const double pooled = std::sqrt((va + vb) / 2);
      d.standardized_mean_difference.value = difference == 0 ? 0.0
                                             : pooled > 0    ? difference / pooled
                                                             : std::copysign(INFINITY, difference);
      d.variance_ratio.value = va > 0   ? vb / va
                               : vb > 0 ? std::numeric_limits<double>::infinity()
                                        : 1.0;

      const double low = std::min(a.Min(), b.Min()), high = std::max(a.Max(), b.Max());
      if (sketched) {
        int resolution = 0;
        const std::vector<AlignedBucket> aligned =
            Align(reference.sketches[c], candidate.sketches[c], &resolution);
        Cells cells;
        for (const AlignedBucket& bucket : aligned) {
          cells.reference.push_back(bucket.reference);
          cells.candidate.push_back(bucket.candidate);
        }
        d.ks = KsOver(cells);
        if (!fixed) {
          std::vector<double> ra, rb;
          SketchBins(aligned, resolution, spec.sketch->CenterOf(c), bins, equal_width, low, high, d,
                     ra, rb);
          FillBinMeasures(ra, rb, d);
        }
      }
      if (fixed) {
        std::vector<double> ra, rb;
        FixedBins(spec.histogram_edges.Of(c), reference.fixed_histograms[c],
                  candidate.fixed_histograms[c], low, high, d, ra, rb);
        FillBinMeasures(ra, rb, d);
        if (!sketched) d.ks = KsOver(Cells{ra, rb});
      }
    }
    const double smd = std::abs(d.standardized_mean_difference.value);
    const double ratio = d.variance_ratio.value;
    d.standardized_mean_difference.level = LevelOf(smd, thresholds.standardized_mean_difference);
    d.variance_ratio.level =
        LevelOf(ratio >= 1 || std::isnan(ratio) ? ratio : 1 / ratio, thresholds.variance_ratio);
    d.ks.level = LevelOf(d.ks.value, thresholds.ks);
    d.psi.level = LevelOf(d.psi.value, thresholds.psi);
    d.js_divergence.level = LevelOf(d.js_divergence.value, thresholds.js_divergence);
    for (const NamedMeasure& m : MeasuresOf(d)) d.level = Worse(d.level, m.measure->level);
    Describe(d, report.bins, d.reference_fractions.size());
    report.level = Worse(report.level, d.level);
  }
  return report;
}

}  // namespace normd
