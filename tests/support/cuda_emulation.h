// The CUDA kernels' launches run on the host: every block and thread of the grid the
// launchers use, through the same NORMD_HD functions, in an order the device's
// barriers allow. Merges happen in the kernels' fixed order, so the emulation's
// moments are the device's bit for bit (both built without contraction), and
// tests/core/cuda/device_test.cc compares the GPU with it.
#ifndef NORMD_TESTS_SUPPORT_CUDA_EMULATION_H_
#define NORMD_TESTS_SUPPORT_CUDA_EMULATION_H_

#include <cstddef>
#include <vector>

#include "core/dtype.h"
#include "core/kernels/cuda/scale_shift_map.h"
#include "core/kernels/cuda/segment_moments.h"
#include "core/kernels/element.h"

namespace normd::testing {

// LaunchScaleShiftMap on host memory.
inline void EmulateScaleShiftMap(DType in, DType out, const std::byte* x, std::byte* y,
                                 const cuda_kernels::MapGeometry& g,
                                 const cuda_kernels::MapFactors& f) {
  using namespace cuda_kernels;
  const uint64_t blocks = MapBlocks(g.elements);
  const uint64_t spans = CeilDiv(g.elements, kSpan);
  VisitDType(in, [&](auto in_tag) {
    VisitOutputDType(out, [&](auto out_tag) {
      using In = decltype(in_tag);
      using Out = decltype(out_tag);
      for (uint64_t block = 0; block < blocks; ++block) {
        for (uint64_t thread = 0; thread < kMapThreads; ++thread) {
          for (uint64_t span = block * kMapThreads + thread; span < spans;
               span += blocks * kMapThreads) {
            MapSpan(reinterpret_cast<const In*>(x), reinterpret_cast<Out*>(y), g, f, span * kSpan);
          }
        }
      }
    });
  });
}

// LaunchSegmentMoments on host memory: the moments of every segment, and the first
// non-finite index (kNoIndex when none).
struct EmulatedMoments {
  std::vector<cuda_kernels::MomentPartial> segments;
  uint64_t first_nonfinite = cuda_kernels::kNoIndex;
};

template <typename In>
EmulatedMoments EmulateSegmentMomentsTyped(const In* x, const cuda_kernels::MomentTiling& t) {
  using namespace cuda_kernels;
  using Partial = PartialOf<In>;
  EmulatedMoments result;
  unsigned long long first_nonfinite = kNoIndex;
  std::vector<Partial> slots(t.slots());
  std::vector<Partial> shared(kMomentThreads);
  for (uint64_t block = 0; block < t.blocks; ++block) {  // MomentTiles
    std::vector<ThreadTile> tiles(kMomentThreads);
    for (uint64_t thread = 0; thread < kMomentThreads; ++thread) {
      tiles[thread] = TileOfThread(t, block, thread);
      shared[tiles[thread].shared] = tiles[thread].slot == kNoIndex
                                         ? Partial{}
                                         : ThreadMoments(x, tiles[thread], &first_nonfinite);
    }
    for (uint64_t stride = TreeTop(t.lanes); stride > 0; stride >>= 1) {
      for (uint64_t thread = 0; thread < kMomentThreads; ++thread) {
        TreeStep(shared.data(), t.width, t.lanes, stride, thread);
      }
    }
    for (const ThreadTile& tile : tiles) {
      if (tile.slot != kNoIndex && tile.shared < t.width) slots[tile.slot] = shared[tile.shared];
    }
  }
  std::vector<Partial> merge(kMergeThreads);
  for (uint64_t segment = 0; segment < t.g.segments(); ++segment) {  // MergeSegments
    for (uint64_t thread = 0; thread < kMergeThreads; ++thread) {
      merge[thread] = MergeSlotsOfThread(slots.data(), t.slots_per_segment, segment, thread);
    }
    for (uint64_t stride = kMergeThreads / 2; stride > 0; stride >>= 1) {
      for (uint64_t thread = 0; thread < kMergeThreads; ++thread) {
        TreeStep(merge.data(), 1, kMergeThreads, stride, thread);
      }
    }
    result.segments.push_back(MomentsOf(merge[0]));
  }
  result.first_nonfinite = first_nonfinite;
  return result;
}

inline EmulatedMoments EmulateSegmentMoments(DType in, const std::byte* x,
                                             const cuda_kernels::SegmentGeometry& g) {
  const cuda_kernels::MomentTiling tiling = cuda_kernels::PlanMomentTiling(g);
  return VisitDType(in, [&](auto tag) {
    return EmulateSegmentMomentsTyped(reinterpret_cast<const decltype(tag)*>(x), tiling);
  });
}

// LaunchFoldBatchStatistics on the host: center, scale and shift, units * channels each.
struct EmulatedFactors {
  std::vector<double> center, scale, shift;
};

inline EmulatedFactors EmulateFold(const cuda_kernels::SegmentGeometry& g,
                                   const std::vector<cuda_kernels::MomentPartial>& segments,
                                   double eps, const std::vector<double>& gamma,
                                   const std::vector<double>& beta) {
  EmulatedFactors f;
  for (uint64_t factor = 0; factor < g.units * g.channels; ++factor) {
    const uint64_t unit = factor / g.channels, channel = factor % g.channels;
    const cuda_kernels::FoldedFactor folded = cuda_kernels::FoldBatchStatistics(
        segments[unit * g.groups + channel / (g.channels / g.groups)],
        static_cast<double>(g.segment_values()), eps, gamma.empty() ? nullptr : gamma.data(),
        beta.empty() ? nullptr : beta.data(), channel);
    f.center.push_back(folded.center);
    f.scale.push_back(folded.scale);
    f.shift.push_back(folded.shift);
  }
  return f;
}

}  // namespace normd::testing

#endif  // NORMD_TESTS_SUPPORT_CUDA_EMULATION_H_
