// normd._native.Summary (a MomentsSummary) and moments(): a batch reduced with the
// fit's kernels where it lies, to be merged locally and sent as O(channels).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/python/native/native.h"
#include "core/dataset_spec.h"
#include "core/moments_summary.h"
#include "core/quantile_sketch.h"
#include "core/sample_weights.h"
#include "pybind11/numpy.h"
#include "pybind11/stl.h"

namespace py = pybind11;

namespace normd::native {
namespace {

template <typename T, typename Field>
py::array_t<T> PerChannel(const MomentsSummary& s, Field field) {
  py::array_t<T> out(static_cast<py::ssize_t>(s.channels.size()));
  T* values = out.mutable_data();
  for (size_t c = 0; c < s.channels.size(); ++c) values[c] = field(s.channels[c]);
  return out;
}

// A summary's sketches: (max_buckets, center, [(resolution, indices, counts), ...]),
// the buckets as numpy arrays (a channel may hold thousands).
using SketchParts =
    std::tuple<uint32_t, std::vector<double>,
               std::vector<std::tuple<int, py::array_t<int32_t>, py::array_t<double>>>>;
// A weighted summary's weight sums: (weight_sum_hi, weight_sum_lo, weight_square_sum_hi,
// weight_square_sum_lo, masked_values).
using WeightParts = std::tuple<py::array_t<double>, py::array_t<double>, py::array_t<double>,
                               py::array_t<double>, uint64_t>;
// Fixed histograms: (counts, below, above) per channel.
using HistogramParts = std::vector<std::tuple<py::array_t<double>, double, double>>;
using Parts =
    std::tuple<py::array_t<uint64_t>, py::array_t<double>, py::array_t<double>, py::array_t<double>,
               py::array_t<double>, py::array_t<double>, py::array_t<double>, uint64_t, uint64_t,
               uint64_t, std::string, std::optional<SketchParts>, std::optional<WeightParts>,
               std::optional<HistogramParts>>;

std::optional<HistogramParts> HistogramPartsOf(const MomentsSummary& s) {
  if (s.fixed_histograms.empty()) return std::nullopt;
  HistogramParts parts;
  for (const FixedHistogram& h : s.fixed_histograms) {
    py::array_t<double> counts(static_cast<py::ssize_t>(h.counts.size()));
    std::copy(h.counts.begin(), h.counts.end(), counts.mutable_data());
    parts.emplace_back(std::move(counts), h.below, h.above);
  }
  return parts;
}

std::optional<WeightParts> WeightPartsOf(const MomentsSummary& s) {
  const bool weighted = std::any_of(s.channels.begin(), s.channels.end(),
                                    [](const ChannelMoments& m) { return m.weighted; });
  if (!weighted) return std::nullopt;
  return WeightParts{
      PerChannel<double>(s, [](const ChannelMoments& m) { return m.Weight().hi; }),
      PerChannel<double>(s, [](const ChannelMoments& m) { return m.Weight().lo; }),
      PerChannel<double>(s, [](const ChannelMoments& m) { return m.WeightSquares().hi; }),
      PerChannel<double>(s, [](const ChannelMoments& m) { return m.WeightSquares().lo; }),
      s.masked_values};
}

std::optional<SketchParts> SketchPartsOf(const MomentsSummary& s) {
  if (!s.sketch_spec.has_value()) return std::nullopt;
  SketchParts parts{s.sketch_spec->max_buckets, s.sketch_spec->center, {}};
  for (const QuantileSketch& sketch : s.sketches) {
    const auto n = static_cast<py::ssize_t>(sketch.buckets.size());
    py::array_t<int32_t> indices(n);
    py::array_t<double> counts(n);
    for (py::ssize_t i = 0; i < n; ++i) {
      indices.mutable_at(i) = sketch.buckets[static_cast<size_t>(i)].index;
      counts.mutable_at(i) = sketch.buckets[static_cast<size_t>(i)].count;
    }
    std::get<2>(parts).emplace_back(sketch.resolution, std::move(indices), std::move(counts));
  }
  return parts;
}

// Checked as far as a summary's own consistency goes; the server checks the rest.
void SketchesFromParts(const SketchParts& parts, MomentsSummary& s) {
  const auto& [max_buckets, center, sketches] = parts;
  if (sketches.size() != s.channels.size() ||
      (!center.empty() && center.size() != s.channels.size())) {
    Raise(absl::InvalidArgumentError(
        absl::StrCat("a summary's sketches and centers hold one per channel (", s.channels.size(),
                     "), got ", sketches.size(), " and ", center.size())));
  }
  s.sketch_spec = QuantileSketchSpec{kMaxSketchResolution, max_buckets, center};
  for (size_t c = 0; c < sketches.size(); ++c) {
    const auto& [resolution, indices, counts] = sketches[c];
    if (indices.size() != counts.size()) {
      Raise(absl::InvalidArgumentError("a sketch holds one count per index"));
    }
    QuantileSketch sketch{resolution, {}};
    for (py::ssize_t i = 0; i < indices.size(); ++i) {
      sketch.buckets.push_back({indices.at(i), counts.at(i)});
    }
    RaiseIfError(ValidateSketch(sketch, s.sketch_spec->CenterOf(c), s.channels[c], max_buckets,
                                "summary sketch"));
    s.sketches.push_back(std::move(sketch));
  }
}

Parts PartsOf(const MomentsSummary& s, bool sketches) {
  return {PerChannel<uint64_t>(s, [](const ChannelMoments& m) { return m.count; }),
          PerChannel<double>(s, [](const ChannelMoments& m) { return m.mean.hi; }),
          PerChannel<double>(s, [](const ChannelMoments& m) { return m.mean.lo; }),
          PerChannel<double>(s, [](const ChannelMoments& m) { return m.m2.hi; }),
          PerChannel<double>(s, [](const ChannelMoments& m) { return m.m2.lo; }),
          PerChannel<double>(s, [](const ChannelMoments& m) { return m.min; }),
          PerChannel<double>(s, [](const ChannelMoments& m) { return m.max; }),
          s.samples,
          s.batches,
          s.skipped_nonfinite,
          std::string(LayoutName(s.layout)),
          sketches ? SketchPartsOf(s) : std::nullopt,
          WeightPartsOf(s),
          HistogramPartsOf(s)};
}

MomentsSummary FromParts(const Parts& parts) {
  const auto& [count, mean_hi, mean_lo, m2_hi, m2_lo, min, max, samples, batches, skipped, layout,
               sketch, weights, histograms] = parts;
  const py::ssize_t channels = count.size();
  for (py::ssize_t size :
       {mean_hi.size(), mean_lo.size(), m2_hi.size(), m2_lo.size(), min.size(), max.size()}) {
    if (size != channels) {
      Raise(absl::InvalidArgumentError(absl::StrCat(
          "every part of a summary holds one value per channel (", channels, "), got ", size)));
    }
  }
  MomentsSummary s = MomentsSummary::Empty(LayoutNamed(layout), channels);
  for (py::ssize_t c = 0; c < channels; ++c) {
    ChannelMoments& m = s.channels[static_cast<size_t>(c)];
    m = {count.at(c),
         {mean_hi.at(c), mean_lo.at(c)},
         {m2_hi.at(c), m2_lo.at(c)},
         min.at(c),
         max.at(c)};
  }
  s.samples = samples;
  s.batches = batches;
  s.skipped_nonfinite = skipped;
  if (weights.has_value()) {
    const auto& [w_hi, w_lo, w2_hi, w2_lo, masked] = *weights;
    for (py::ssize_t size : {w_hi.size(), w_lo.size(), w2_hi.size(), w2_lo.size()}) {
      if (size != channels) {
        Raise(absl::InvalidArgumentError(
            absl::StrCat("every weight part of a summary holds one value per channel (", channels,
                         "), got ", size)));
      }
    }
    for (py::ssize_t c = 0; c < channels; ++c) {
      ChannelMoments& m = s.channels[static_cast<size_t>(c)];
      m.weighted = true;
      m.weight_sum = {w_hi.at(c), w_lo.at(c)};
      m.weight_square_sum = {w2_hi.at(c), w2_lo.at(c)};
    }
    s.masked_values = masked;
  }
  if (sketch.has_value()) SketchesFromParts(*sketch, s);
  if (histograms.has_value()) {
    if (histograms->size() != s.channels.size()) {
      Raise(absl::InvalidArgumentError(
          absl::StrCat("a summary's fixed histograms hold one per "
                       "channel (",
                       s.channels.size(), "), got ", histograms->size())));
    }
    for (const auto& [counts, below, above] : *histograms) {
      FixedHistogram h{{counts.data(), counts.data() + counts.size()}, below, above};
      s.fixed_histograms.push_back(std::move(h));
    }
  }
  return s;
}

// The summary's sketches as the wire's MomentsSummary.sketches entries (field 12, each
// a ChannelSketch) and their centers (sketch_center, field 13, packed doubles), encoded
// here: built from Python objects channel by channel they cost milliseconds a batch,
// ten times the fit. The fields as protobuf would write
// them: resolution (1, sint32), index_delta (2, packed sint32: each index less the
// one before, the first less 0), and the counts as integer_count (4, packed uint64)
// when all are whole, else count (3, packed double).
class WireBytes {
 public:
  void Varint(uint64_t value) {
    while (value >= 0x80) {
      out_.push_back(static_cast<char>((value & 0x7F) | 0x80));
      value >>= 7;
    }
    out_.push_back(static_cast<char>(value));
  }
  void Tag(int field, int wire_type) { Varint(static_cast<uint64_t>(field) << 3 | wire_type); }
  void LengthDelimited(int field, const std::string& body) {
    Tag(field, 2);
    Varint(body.size());
    out_ += body;
  }
  void Fixed64(double value) {
    char bytes[8];
    std::memcpy(bytes, &value, 8);  // little-endian, as the wire is
    out_.append(bytes, 8);
  }
  static uint64_t ZigZag(int64_t value) {
    return (static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63);
  }
  std::string& str() { return out_; }

 private:
  std::string out_;
};

py::bytes SketchFields(const MomentsSummary& s) {
  WireBytes message;
  for (const QuantileSketch& sketch : s.sketches) {
    WireBytes channel;
    if (sketch.resolution != 0) {
      channel.Tag(1, 0);
      channel.Varint(WireBytes::ZigZag(sketch.resolution));
    }
    bool whole = true;
    WireBytes deltas, integers, doubles;
    int64_t previous = 0;
    for (const SketchBucket& bucket : sketch.buckets) {
      const int64_t delta = int64_t{bucket.index} - previous;
      if (delta < INT32_MIN || delta > INT32_MAX) {
        Raise(absl::OutOfRangeError(absl::StrCat(
            "a sketch's index step ", delta, " does not fit the wire's sint32 index_delta")));
      }
      previous = bucket.index;
      deltas.Varint(WireBytes::ZigZag(delta));
      whole = whole && bucket.count == std::floor(bucket.count) && bucket.count >= 0 &&
              bucket.count < 0x1p64;
      doubles.Fixed64(bucket.count);
    }
    if (!sketch.buckets.empty()) channel.LengthDelimited(2, deltas.str());
    if (whole) {
      for (const SketchBucket& bucket : sketch.buckets) {
        integers.Varint(static_cast<uint64_t>(bucket.count));
      }
      if (!sketch.buckets.empty()) channel.LengthDelimited(4, integers.str());
    } else {
      channel.LengthDelimited(3, doubles.str());
    }
    message.LengthDelimited(12, channel.str());
  }
  if (s.sketch_spec.has_value() && !s.sketch_spec->center.empty()) {
    WireBytes centers;
    for (const double center : s.sketch_spec->center) centers.Fixed64(center);
    message.LengthDelimited(13, centers.str());
  }
  return py::bytes(message.str());
}

// `sketch_resolution` < 0: no sketches. `weights`: None, or a C-contiguous float64
// buffer of `weights_shape`.
MomentsSummary Moments(const py::buffer& x, std::vector<int64_t> shape, const std::string& dtype,
                       const std::string& layout_name, int64_t channels, bool skip_nonfinite,
                       int sketch_resolution, uint32_t sketch_max_buckets,
                       std::vector<double> sketch_center, const py::object& weights,
                       std::vector<int64_t> weights_shape,
                       std::vector<std::vector<double>> histogram_edges) {
  const TensorArg input(x, std::move(shape), dtype, /*writable=*/false);
  std::optional<TensorArg> weight_arg;
  std::vector<double> weight_storage;
  std::optional<SampleWeights> resolved;
  if (!weights.is_none()) {
    weight_arg.emplace(weights.cast<py::buffer>(), std::move(weights_shape), "float64",
                       /*writable=*/false);
    resolved = ValueOrRaise(ResolveSampleWeights(
        weight_arg->tensor().view(), input.tensor().shape(), "weights", weight_storage));
  }
  const Layout layout = LayoutNamed(layout_name);
  if (channels <= 0) channels = ValueOrRaise(ChannelCountOf(layout, input.tensor().shape()));
  // With the dataset's channel count: the same shape errors as the server's Ingest.
  const ChannelGeometry geometry =
      ValueOrRaise(ResolveGeometry(layout, channels, input.tensor().shape()));
  std::optional<QuantileSketchSpec> sketch;
  if (sketch_resolution >= 0) {
    DatasetSpec spec{.name = "summary", .layout = layout, .channels = channels};
    spec.sketch =
        QuantileSketchSpec{sketch_resolution, sketch_max_buckets, std::move(sketch_center)};
    RaiseIfError(ValidateDatasetSpec(spec));
    sketch = std::move(spec.sketch);
  }
  const HistogramEdges edges{std::move(histogram_edges)};
  RaiseIfError(ValidateHistogramEdges(edges, channels));
  absl::StatusOr<MomentsSummary> summary;
  {
    WorkerPool* const pool = Pool();  // made under the GIL
    py::gil_scoped_release unlocked;
    summary = SummarizeBatch(input.tensor().view(), layout, geometry,
                             skip_nonfinite ? NonFinitePolicy::kSkip : NonFinitePolicy::kReject,
                             pool, sketch.has_value() ? &*sketch : nullptr,
                             resolved.has_value() ? &*resolved : nullptr, &edges);
  }
  return ValueOrRaise(std::move(summary));
}

}  // namespace

void BindSummary(py::module_& m) {
  py::class_<MomentsSummary>(m, "Summary", R"(Exact per-channel moments of one or more batches.

Made by normd.moments(); `a + b` merges two (Chan's update in double-double, as the
server merges batches); pickles, so workers can send theirs. Client.fit sends
summaries in place of batches.)")
      .def(py::init([](const std::string& layout, int64_t channels) {
             if (channels < 1) {
               Raise(absl::InvalidArgumentError(
                   absl::StrCat("channels must be at least 1, got ", channels)));
             }
             return MomentsSummary::Empty(LayoutNamed(layout), channels);
           }),
           py::arg("layout"), py::arg("channels"), "An empty summary: the identity of +.")
      .def_property_readonly(
          "layout", [](const MomentsSummary& s) { return std::string(LayoutName(s.layout)); })
      .def_property_readonly("channels", [](const MomentsSummary& s) { return s.channels.size(); })
      .def_readonly("samples", &MomentsSummary::samples)
      .def_readonly("batches", &MomentsSummary::batches)
      .def_readonly("skipped_nonfinite", &MomentsSummary::skipped_nonfinite)
      .def_readonly("masked_values", &MomentsSummary::masked_values)
      .def_property_readonly("weight_sum",
                             [](const MomentsSummary& s) {
                               return PerChannel<double>(
                                   s, [](const ChannelMoments& c) { return c.Weight().value(); });
                             })
      .def_property_readonly("reliability_variance",
                             [](const MomentsSummary& s) {
                               return PerChannel<double>(s, [](const ChannelMoments& c) {
                                 return c.ReliabilityVariance();
                               });
                             })
      .def_property_readonly("effective_count",
                             [](const MomentsSummary& s) {
                               return PerChannel<double>(
                                   s, [](const ChannelMoments& c) { return c.EffectiveCount(); });
                             })
      .def_property_readonly("count",
                             [](const MomentsSummary& s) {
                               return PerChannel<uint64_t>(
                                   s, [](const ChannelMoments& c) { return c.count; });
                             })
      .def_property_readonly("mean",
                             [](const MomentsSummary& s) {
                               return PerChannel<double>(
                                   s, [](const ChannelMoments& c) { return c.Mean(); });
                             })
      .def_property_readonly("variance",
                             [](const MomentsSummary& s) {
                               return PerChannel<double>(s, [](const ChannelMoments& c) {
                                 return c.PopulationVariance();
                               });
                             })
      .def_property_readonly("sample_variance",
                             [](const MomentsSummary& s) {
                               return PerChannel<double>(
                                   s, [](const ChannelMoments& c) { return c.SampleVariance(); });
                             })
      .def_property_readonly("min",
                             [](const MomentsSummary& s) {
                               return PerChannel<double>(
                                   s, [](const ChannelMoments& c) { return c.Min(); });
                             })
      .def_property_readonly("max",
                             [](const MomentsSummary& s) {
                               return PerChannel<double>(
                                   s, [](const ChannelMoments& c) { return c.Max(); });
                             })
      .def("parts", &PartsOf, py::arg("sketches") = true,
           "(count, mean_hi, mean_lo, m2_hi, m2_lo, min, max, samples, batches, "
           "skipped_nonfinite, layout, sketch, weights, histograms): the exact representation, as "
           "the "
           "wire's MomentsSummary; sketch is None or (max_buckets, center, [(resolution, "
           "indices, counts) per channel]); weights is None or (weight_sum_hi, weight_sum_lo, "
           "weight_square_sum_hi, weight_square_sum_lo, masked_values); histograms is None or "
           "[(counts, below, above) per channel]. sketches=False leaves the sketch None "
           "(sketch_fields encodes it far faster)")
      .def_static("from_parts", [](const Parts& parts) { return FromParts(parts); })
      .def("sketch_fields", &SketchFields,
           "The sketches and their centers as the wire's MomentsSummary fields 12 and 13, "
           "bytes to append to the rest of the message")
      .def("__add__",
           [](const MomentsSummary& a, const MomentsSummary& b) {
             MomentsSummary sum = a;
             RaiseIfError(MergeSummary(b, sum));
             return sum;
           })
      .def("__iadd__",
           [](MomentsSummary& a, const MomentsSummary& b) -> MomentsSummary& {
             RaiseIfError(MergeSummary(b, a));
             return a;
           })
      .def(py::pickle([](const MomentsSummary& s) { return PartsOf(s, true); },
                      [](const Parts& parts) { return FromParts(parts); }))
      .def("__repr__", [](const MomentsSummary& s) {
        return absl::StrCat("Summary(layout=", LayoutName(s.layout),
                            ", channels=", s.channels.size(), ", samples=", s.samples,
                            ", batches=", s.batches, ")");
      });

  m.def("moments", &Moments, py::arg("x"), py::arg("shape"), py::arg("dtype"), py::arg("layout"),
        py::arg("channels"), py::arg("skip_nonfinite"), py::arg("sketch_resolution") = -1,
        py::arg("sketch_max_buckets") = 0, py::arg("sketch_center") = std::vector<double>{},
        py::arg("weights") = py::none(), py::arg("weights_shape") = std::vector<int64_t>{},
        py::arg("histogram_edges") = std::vector<std::vector<double>>{},
        "The Summary of one C-contiguous batch (see normd.moments).");
}

}  // namespace normd::native
