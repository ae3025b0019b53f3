// The quantile sketch against exact quantiles of the whole data (sorted, numpy's
// "linear" definition evaluated in long double) on hostile distributions; its
// independence of order, batching and merging; its memory bound; its histograms;
// and its checks of untrusted sketches.
#include "core/quantile_sketch.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/batch_sketch.h"
#include "core/dtype.h"
#include "core/kernels/sketch_index.h"
#include "core/worker_pool.h"
#include "gtest/gtest.h"

namespace normd {
namespace {

constexpr double kRanks[] = {0, 0.001, 0.01, 0.1, 0.25, 0.3333, 0.5, 0.75, 0.9, 0.99, 0.999, 1};

// The sketch of `values` fed as batches of `batch` values of an NC [n, 1] dataset.
QuantileSketch SketchOf(const std::vector<double>& values, const QuantileSketchSpec& spec,
                        size_t batch, WorkerPool* pool = nullptr) {
  std::vector<QuantileSketch> sketch = EmptySketches(spec, 1);
  for (size_t first = 0; first < values.size(); first += batch) {
    const size_t n = std::min(batch, values.size() - first);
    const int64_t shape[] = {static_cast<int64_t>(n), 1};
    const TensorView view{DType::kFloat64, shape,
                          std::as_bytes(std::span(values.data() + first, n))};
    const ChannelGeometry geometry{static_cast<int64_t>(n), static_cast<int64_t>(n), 1, 1};
    AddBatchToSketches(view, geometry, spec, sketch, pool);
  }
  return sketch[0];
}

long double ExactQuantile(const std::vector<double>& sorted, double rank) {
  const long double position = static_cast<long double>(rank) * (sorted.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(position));
  const long double fraction = position - below;
  if (below + 1 >= sorted.size()) return sorted.back();
  return sorted[below] + fraction * (static_cast<long double>(sorted[below + 1]) - sorted[below]);
}

// Every rank's answer within its stated bound, and the bound within the sketch's
// relative accuracy of the neighbours' distance from the center.
void ExpectWithinBounds(const std::vector<double>& values, const QuantileSketch& sketch,
                        double center, const std::string& what) {
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  ASSERT_EQ(sketch.TotalCount(), static_cast<double>(values.size())) << what;
  const double alpha = SketchRelativeAccuracy(sketch.resolution);
  for (const double rank : kRanks) {
    const QuantileEstimate estimate =
        EstimateQuantile(sketch, rank, center, sorted.front(), sorted.back());
    const long double exact = ExactQuantile(sorted, rank);
    EXPECT_LE(std::abs(estimate.value - exact), estimate.error_bound)
        << what << " rank " << rank << ": " << estimate.value << " vs exact " << double(exact);
    const size_t below = static_cast<size_t>(std::floor(rank * (sorted.size() - 1)));
    const size_t above = std::min(below + 1, sorted.size() - 1);
    const double scale =
        std::max(std::abs(sorted[below] - center), std::abs(sorted[above] - center));
    EXPECT_LE(estimate.error_bound,
              alpha * scale + 0x1p-48 * (std::abs(center) + std::abs(sorted[above])) + 1e-300)
        << what << " rank " << rank;
  }
}

struct Hostile {
  std::string name;
  std::function<std::vector<double>(std::mt19937_64&)> make;
  double center = 0;
};

std::vector<Hostile> HostileDistributions() {
  constexpr size_t n = 20000;
  return {
      {"cauchy",
       [](std::mt19937_64& rng) {
         std::cauchy_distribution<double> d(0, 1);
         std::vector<double> v(n);
         for (double& x : v) x = d(rng);
         return v;
       }},
      {"pareto",
       [](std::mt19937_64& rng) {
         std::uniform_real_distribution<double> u(0, 1);
         std::vector<double> v(n);
         for (double& x : v) x = std::pow(1 - u(rng), -1 / 1.1);
         return v;
       }},
      {"sorted normal",
       [](std::mt19937_64& rng) {
         std::normal_distribution<double> d(3, 2);
         std::vector<double> v(n);
         for (double& x : v) x = d(rng);
         std::sort(v.begin(), v.end());
         return v;
       }},
      {"reverse sorted lognormal",
       [](std::mt19937_64& rng) {
         std::lognormal_distribution<double> d(0, 3);
         std::vector<double> v(n);
         for (double& x : v) x = d(rng);
         std::sort(v.rbegin(), v.rend());
         return v;
       }},
      {"few distinct values",
       [](std::mt19937_64& rng) {
         std::vector<double> v(n);
         for (double& x : v) x = static_cast<double>(rng() % 5) - 2;
         return v;
       }},
      {"point mass plus noise",
       [](std::mt19937_64& rng) {
         std::normal_distribution<double> d(0, 1e-3);
         std::vector<double> v(n);
         for (size_t i = 0; i < n; ++i) v[i] = i % 10 == 0 ? 7 + d(rng) : 7.0;
         return v;
       }},
      {"1e8 + 1e-3 noise, centred",
       [](std::mt19937_64& rng) {
         std::normal_distribution<double> d(0, 1);
         std::vector<double> v(n);
         for (double& x : v) x = 1e8 + 1e-3 * d(rng);
         return v;
       },
       1e8},
      {"mixture",
       [](std::mt19937_64& rng) {
         std::normal_distribution<double> a(-5, 0.1), b(100, 30);
         std::vector<double> v(n);
         for (size_t i = 0; i < n; ++i) v[i] = rng() % 3 == 0 ? a(rng) : b(rng);
         return v;
       }},
  };
}

TEST(QuantileSketchTest, HostileDistributionsStayWithinTheStatedBounds) {
  std::mt19937_64 rng(11);
  for (const Hostile& h : HostileDistributions()) {
    const std::vector<double> values = h.make(rng);
    QuantileSketchSpec spec;
    spec.center = {h.center};
    ExpectWithinBounds(values, SketchOf(values, spec, 1000), h.center, h.name);
    ExpectWithinBounds(values, SketchOf(values, spec, 1), h.center, h.name + ", one per batch");
  }
}

TEST(QuantileSketchTest, OffsetDataWithoutACenterKeepTheBoundButNotTheResolution) {
  std::mt19937_64 rng(12);
  std::normal_distribution<double> d(0, 1);
  std::vector<double> values(5000);
  for (double& x : values) x = 1e8 + 1e-3 * d(rng);
  const QuantileSketch sketch = SketchOf(values, QuantileSketchSpec{}, 512);
  ExpectWithinBounds(values, sketch, 0, "1e8 + noise about 0");
}

TEST(QuantileSketchTest, SameBytesWhateverTheOrderBatchingAndMerging) {
  std::mt19937_64 rng(13);
  std::cauchy_distribution<double> cauchy(0, 1);
  std::vector<double> values(30000);
  for (double& x : values) x = cauchy(rng);
  QuantileSketchSpec spec;
  spec.max_buckets = 300;  // forces coarsening, which must not depend on order either
  const QuantileSketch whole = SketchOf(values, spec, values.size());
  EXPECT_LT(whole.resolution, spec.resolution);
  EXPECT_LE(whole.buckets.size(), spec.max_buckets);

  WorkerPool pool(2);
  std::shuffle(values.begin(), values.end(), rng);
  EXPECT_EQ(SketchOf(values, spec, 977, &pool), whole);
  // 64 writers' sketches, merged in a random order.
  std::vector<QuantileSketch> writers;
  for (size_t w = 0; w < 64; ++w) {
    std::vector<double> part;
    for (size_t i = w; i < values.size(); i += 64) part.push_back(values[i]);
    writers.push_back(SketchOf(part, spec, 101));
  }
  std::shuffle(writers.begin(), writers.end(), rng);
  QuantileSketch merged{spec.resolution, {}};
  for (const QuantileSketch& w : writers) MergeSketch(w, spec.max_buckets, merged);
  EXPECT_EQ(merged, whole);
  ExpectWithinBounds(values, merged, 0, "64 writers, coarsened");

  // The reference, one value at a time.
  std::vector<QuantileSketch> reference = EmptySketches(spec, 1);
  const int64_t shape[] = {static_cast<int64_t>(values.size()), 1};
  const TensorView view{DType::kFloat64, shape, std::as_bytes(std::span(values))};
  const ChannelGeometry geometry{shape[0], shape[0], 1, 1};
  AddBatchToSketchesReference(view, geometry, spec, reference);
  EXPECT_EQ(reference[0], whole);
}

TEST(QuantileSketchTest, EveryLayoutAndDTypeMatchesTheReference) {
  std::mt19937_64 rng(14);
  std::normal_distribution<double> d(0, 10);
  WorkerPool pool(2);
  struct Case {
    std::vector<int64_t> shape;
    ChannelGeometry geometry;
  };
  const std::vector<Case> cases = {
      {{3000, 3}, {3000, 3000, 3, 1}},     // NC: rows
      {{4, 3, 70, 70}, {4, 4, 3, 4900}},   // NCHW: runs
      {{5, 9, 9, 7}, {5, 405, 7, 1}},      // NHWC: rows with a tail
      {{600, 3, 2, 2}, {600, 600, 3, 4}},  // NCHW with short planes: rows
      {{70000, 1}, {70000, 70000, 1, 1}},  // more than one part
      {{16, 64}, {16, 16, 64, 1}},         // few values a channel: sorted and counted
      {{2, 3, 4, 4}, {2, 2, 3, 16}},       // the same, NCHW
      {{3, 4, 4, 5}, {3, 48, 5, 1}},       // and NHWC
  };
  for (const DType dtype : {DType::kFloat32, DType::kFloat64, DType::kUInt8, DType::kBFloat16}) {
    for (const Case& c : cases) {
      const size_t n = static_cast<size_t>(c.geometry.elements());
      std::vector<std::byte> bytes(n * ElementSize(dtype));
      VisitDType(dtype, [&](auto tag) {
        using T = decltype(tag);
        for (size_t i = 0; i < n; ++i) {
          double v = d(rng);
          if (i % 97 == 5) v = std::numeric_limits<double>::quiet_NaN();  // skipped
          if constexpr (std::is_same_v<T, uint8_t>) {
            StoreElement<T>(bytes.data(), i, static_cast<uint8_t>(rng()));
          } else if constexpr (std::is_same_v<T, double>) {
            StoreElement<T>(bytes.data(), i, v);
          } else if constexpr (std::is_same_v<T, float>) {
            StoreElement<T>(bytes.data(), i, static_cast<float>(v));
          } else {
            const float f = static_cast<float>(v);
            uint32_t u;
            std::memcpy(&u, &f, 4);
            StoreElement<uint16_t>(bytes.data(), i, static_cast<uint16_t>(u >> 16));
          }
        }
      });
      QuantileSketchSpec spec;
      spec.center = std::vector<double>(static_cast<size_t>(c.geometry.channels));
      for (double& x : spec.center) x = rng() % 2 ? d(rng) : 0.0;  // float32 about 0: own bits
      const TensorView view{dtype, c.shape, bytes};
      std::vector<QuantileSketch> got = EmptySketches(spec, spec.center.size());
      std::vector<QuantileSketch> want = got;
      AddBatchToSketches(view, c.geometry, spec, got, &pool);
      AddBatchToSketchesReference(view, c.geometry, spec, want);
      EXPECT_EQ(got, want) << DTypeName(dtype) << " shape[0]=" << c.shape[0];
    }
  }
}

TEST(QuantileSketchTest, HistogramBinsAreWholeBucketsWithExactCounts) {
  std::mt19937_64 rng(15);
  std::vector<double> values(10000);
  for (double& x : values) x = static_cast<double>(rng() % 1000) - 300;  // integers
  const QuantileSketch sketch = SketchOf(values, QuantileSketchSpec{}, 4096);
  const double min = *std::min_element(values.begin(), values.end());
  const double max = *std::max_element(values.begin(), values.end());
  const SketchHistogram h = HistogramOf(sketch, 20, 0, min, max);
  ASSERT_EQ(h.edges.size(), 21u);
  ASSERT_EQ(h.counts.size(), 20u);
  EXPECT_EQ(h.edges.front(), min);
  EXPECT_EQ(h.edges.back(), max);
  for (size_t b = 0; b < 20; ++b) {
    EXPECT_LE(h.edges[b], h.edges[b + 1]);
    const bool last = b == 19;
    const auto in_bin = [&](double x) {
      return x >= h.edges[b] && (last ? x <= h.edges[b + 1] : x < h.edges[b + 1]);
    };
    EXPECT_EQ(h.counts[b], static_cast<double>(std::count_if(values.begin(), values.end(), in_bin)))
        << "bin " << b << " [" << h.edges[b] << ", " << h.edges[b + 1] << ")";
    // Edges sit within a bucket of the equal-width targets.
    EXPECT_NEAR(h.edges[b], min + (max - min) * b / 20, std::abs(h.edges[b]) / 64 + 1);
  }
}

TEST(QuantileSketchTest, ResolutionForAccuracy) {
  EXPECT_EQ(*SketchResolutionFor(0.01), 6);
  EXPECT_EQ(*SketchResolutionFor(0.5), 0);
  EXPECT_EQ(*SketchResolutionFor(0x1p-11), 10);
  EXPECT_FALSE(SketchResolutionFor(0.6).ok());
  EXPECT_FALSE(SketchResolutionFor(1e-4).ok());
  EXPECT_FALSE(SketchResolutionFor(std::nan("")).ok());
}

TEST(QuantileSketchTest, UntrustedSketchesAreCheckedPrecisely) {
  const std::vector<double> values = {1, 2, 2, 3, 10};
  const QuantileSketch good = SketchOf(values, QuantileSketchSpec{}, 5);
  const auto moments = [](uint64_t count, double max) {
    ChannelMoments m;
    m.count = count;
    m.min = 1;
    m.max = max;
    return m;
  };
  EXPECT_TRUE(ValidateSketch(good, 0, moments(5, 10), 2048, "s").ok());
  const auto message = [&](QuantileSketch s, uint64_t count = 5, double max = 10) {
    return std::string(ValidateSketch(s, 0, moments(count, max), 2048, "s").message());
  };
  QuantileSketch bad = good;
  std::swap(bad.buckets[0], bad.buckets[1]);
  EXPECT_NE(message(bad).find("strictly increasing"), std::string::npos) << message(bad);
  bad = good;
  bad.buckets[0].count = std::nan("");
  EXPECT_NE(message(bad).find("finite count above 0"), std::string::npos) << message(bad);
  EXPECT_NE(message(good, 6).find("moments count 6"), std::string::npos) << message(good, 6);
  EXPECT_NE(message(good, 5, 3).find("outside the channel's [min, max]"), std::string::npos);
  bad = good;
  bad.resolution = 11;
  EXPECT_NE(message(bad).find("resolution 11"), std::string::npos) << message(bad);
  bad = good;
  bad.buckets.back().index = SketchIndexOf(std::numeric_limits<double>::infinity(), 6);
  EXPECT_NE(message(bad).find("non-finite"), std::string::npos) << message(bad);
  EXPECT_NE(
      std::string(ValidateSketch(good, 0, moments(5, 10), 2, "s").message()).find("at most 2"),
      std::string::npos);
  // Weighted: the counts are weight sums and must add up to the channel's W.
  ChannelMoments weighted = moments(5, 10);
  weighted.weighted = true;
  weighted.weight_sum = {5.0, 0.0};
  EXPECT_TRUE(ValidateSketch(good, 0, weighted, 2048, "s").ok());
  weighted.weight_sum = {2.5, 0.0};
  EXPECT_NE(
      std::string(ValidateSketch(good, 0, weighted, 2048, "s").message()).find("moments weigh 2.5"),
      std::string::npos);
}

}  // namespace
}  // namespace normd
