// Adds a batch's values to per-channel quantile sketches (core/quantile_sketch.h).
#ifndef NORMD_CORE_BATCH_SKETCH_H_
#define NORMD_CORE_BATCH_SKETCH_H_

#include <span>

#include "core/dataset_spec.h"
#include "core/layout.h"
#include "core/quantile_sketch.h"
#include "core/sample_weights.h"
#include "core/tensor_view.h"
#include "core/worker_pool.h"

namespace normd {

// Adds every finite value of `batch` (validated, `geometry` resolved from its shape)
// to its channel's sketch in `sketches` (geometry.channels of them), indexing at
// spec.resolution about each channel's center; non-finite values are left out (the
// fit has already applied the dataset's policy to them). Parts of a large batch run
// on `pool`; the result does not depend on the pool or the split into parts. With
// `weights` each value counts its weight (a weight of 0 leaves it out): bucket counts
// become weight sums, added in an order fixed by the batch alone.
void AddBatchToSketches(const TensorView& batch, const ChannelGeometry& geometry,
                        const QuantileSketchSpec& spec, std::span<QuantileSketch> sketches,
                        WorkerPool* pool = nullptr, const SampleWeights* weights = nullptr);

// The scalar reference: each value's index by SketchIndexOf, one at a time.
void AddBatchToSketchesReference(const TensorView& batch, const ChannelGeometry& geometry,
                                 const QuantileSketchSpec& spec, std::span<QuantileSketch> sketches,
                                 const SampleWeights* weights = nullptr);

// Empty sketches at the spec's resolution, one per channel.
std::vector<QuantileSketch> EmptySketches(const QuantileSketchSpec& spec, size_t channels);

}  // namespace normd

#endif  // NORMD_CORE_BATCH_SKETCH_H_
