// The statistics that come from a tensor on a CUDA device: the fit's per-channel
// moments (what `normd.moments` and Fit send as a summary) and the batch-statistics
// schemes (batch norm in training mode, layer, instance and group norm), which fold
// their factors on the device and normalise without a round trip to the host.
//
// Moments agree with the CPU's ComputeBatchMoments to float64's precision (the same
// shifted, tiled, double-double scheme; segment_moments.h) and exactly for uint8 (the
// same integer sums). Sample weights are a CPU feature.
#ifndef NORMD_CORE_CUDA_DEVICE_MOMENTS_H_
#define NORMD_CORE_CUDA_DEVICE_MOMENTS_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/batch_norm_training.h"
#include "core/channel_moments.h"
#include "core/cuda/device.h"
#include "core/cuda/device_tensor.h"
#include "core/layout.h"
#include "core/moments_summary.h"
#include "core/nonfinite_policy.h"
#include "core/per_sample_norm.h"

namespace normd::cuda {

// The device memory one stream's calls reuse: partial sums, segment moments, factors
// and the first non-finite index. Not thread-safe: one per stream (or per thread).
struct DeviceWorkspace {
  DeviceBuffer slots;
  DeviceBuffer segments;
  DeviceBuffer factors;
  DeviceBuffer parameters;  // gamma and beta
  DeviceBuffer first_nonfinite;
};

// ComputeBatchMoments for a batch in device memory (unweighted): the moments of each
// channel into `out` (geometry.channels), the number of non-finite values skipped
// returned; under kReject the first non-finite value is an INVALID_ARGUMENT naming
// it, as on the CPU. Waits for `stream` (the moments come back to the host).
absl::StatusOr<uint64_t> ComputeBatchMoments(const DeviceTensorView& batch,
                                             const ChannelGeometry& geometry,
                                             NonFinitePolicy policy, std::span<ChannelMoments> out,
                                             cudaStream_t stream, DeviceWorkspace& workspace);

// SummarizeBatch for a batch in device memory (moments only: sketches, fixed
// histograms and weights are the CPU's): the summary a client sends in place of the
// batch (IngestStream::WriteSummaries, Python's fit). Waits for `stream`.
absl::StatusOr<MomentsSummary> SummarizeBatch(const DeviceTensorView& batch, Layout layout,
                                              const ChannelGeometry& geometry,
                                              NonFinitePolicy policy, cudaStream_t stream,
                                              DeviceWorkspace& workspace);

// ApplyBatchNormTraining on the device: `output` (as many elements of output_type, on
// the input's device) is written asynchronously on `stream`. With `moments`
// non-empty (geometry.channels entries) the batch's moments are copied back too, and
// the call waits for the stream. Errors as the CPU's, checked before any launch.
absl::Status ApplyBatchNormTraining(const BatchNormTrainingScheme& scheme,
                                    const DeviceTensorView& input, const ChannelGeometry& geometry,
                                    OutputDType output_type, void* output,
                                    std::span<ChannelMoments> moments, cudaStream_t stream,
                                    DeviceWorkspace& workspace);

// ApplyPerSampleNorm on the device, asynchronously on `stream`.
absl::Status ApplyPerSampleNorm(const PerSampleScheme& scheme, const DeviceTensorView& input,
                                const GroupedGeometry& geometry, OutputDType output_type,
                                void* output, cudaStream_t stream, DeviceWorkspace& workspace);

}  // namespace normd::cuda

#endif  // NORMD_CORE_CUDA_DEVICE_MOMENTS_H_
