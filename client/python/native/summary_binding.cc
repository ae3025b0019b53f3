// normd._native.Summary (a MomentsSummary) and moments(): a batch reduced with the
// fit's kernels where it lies, to be merged locally and sent as O(channels).
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/python/native/native.h"
#include "core/moments_summary.h"
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

using Parts = std::tuple<py::array_t<uint64_t>, py::array_t<double>, py::array_t<double>,
                         py::array_t<double>, py::array_t<double>, py::array_t<double>,
                         py::array_t<double>, uint64_t, uint64_t, uint64_t, std::string>;

Parts PartsOf(const MomentsSummary& s) {
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
          std::string(LayoutName(s.layout))};
}

MomentsSummary FromParts(const Parts& parts) {
  const auto& [count, mean_hi, mean_lo, m2_hi, m2_lo, min, max, samples, batches, skipped, layout] =
      parts;
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
  return s;
}

MomentsSummary Moments(const py::buffer& x, std::vector<int64_t> shape, const std::string& dtype,
                       const std::string& layout_name, int64_t channels, bool skip_nonfinite) {
  const TensorArg input(x, std::move(shape), dtype, /*writable=*/false);
  const Layout layout = LayoutNamed(layout_name);
  if (channels <= 0) channels = ValueOrRaise(ChannelCountOf(layout, input.tensor().shape()));
  // With the dataset's channel count: the same shape errors as the server's Ingest.
  const ChannelGeometry geometry =
      ValueOrRaise(ResolveGeometry(layout, channels, input.tensor().shape()));
  absl::StatusOr<MomentsSummary> summary;
  {
    WorkerPool* const pool = Pool();  // made under the GIL
    py::gil_scoped_release unlocked;
    summary =
        SummarizeBatch(input.tensor().view(), layout, geometry,
                       skip_nonfinite ? NonFinitePolicy::kSkip : NonFinitePolicy::kReject, pool);
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
      .def("parts", &PartsOf,
           "(count, mean_hi, mean_lo, m2_hi, m2_lo, min, max, samples, batches, "
           "skipped_nonfinite, layout): the exact representation, as the wire's MomentsSummary")
      .def_static("from_parts", [](const Parts& parts) { return FromParts(parts); })
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
      .def(py::pickle([](const MomentsSummary& s) { return PartsOf(s); },
                      [](const Parts& parts) { return FromParts(parts); }))
      .def("__repr__", [](const MomentsSummary& s) {
        return absl::StrCat("Summary(layout=", LayoutName(s.layout),
                            ", channels=", s.channels.size(), ", samples=", s.samples,
                            ", batches=", s.batches, ")");
      });

  m.def("moments", &Moments, py::arg("x"), py::arg("shape"), py::arg("dtype"), py::arg("layout"),
        py::arg("channels"), py::arg("skip_nonfinite"),
        "The Summary of one C-contiguous batch (see normd.moments).");
}

}  // namespace normd::native
