#include "core/cuda/device_moments.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/batch_moments.h"
#include "core/frozen_scheme.h"
#include "core/kernels/cuda/launch.h"

namespace normd::cuda {
namespace {

using cuda_kernels::MomentPartial;
using cuda_kernels::SegmentGeometry;

ChannelMoments ToChannelMoments(const MomentPartial& p) {
  ChannelMoments m;
  if (p.count == 0) return m;
  m.count = static_cast<uint64_t>(p.count);
  m.mean = p.mean;
  m.m2 = p.m2;
  m.min = p.min;
  m.max = p.max;
  return m;
}

// Input and output on one device, made current for the call.
absl::StatusOr<int> CommonDevice(const void* input, const void* output) {
  NORMD_ASSIGN_OR_RETURN(const int on, DeviceOf(input, "the input"));
  if (output != nullptr) {
    NORMD_ASSIGN_OR_RETURN(const int out_on, DeviceOf(output, "the output"));
    if (out_on != on) {
      return absl::InvalidArgumentError(
          absl::StrCat("the input is on cuda:", on, " and the output on cuda:", out_on));
    }
  }
  return on;
}

// Every segment's moments into workspace.segments, asynchronously; the first
// non-finite index into workspace.first_nonfinite.
absl::Status LaunchMoments(DType dtype, const void* data, const SegmentGeometry& g,
                           cudaStream_t stream, DeviceWorkspace& workspace) {
  const cuda_kernels::MomentTiling tiling = cuda_kernels::PlanMomentTiling(g);
  NORMD_ASSIGN_OR_RETURN(void* slots,
                         workspace.slots.Reserve(cuda_kernels::SegmentSlotBytes(dtype, tiling)));
  NORMD_ASSIGN_OR_RETURN(void* segments,
                         workspace.segments.Reserve(g.segments() * sizeof(MomentPartial)));
  NORMD_ASSIGN_OR_RETURN(void* flag, workspace.first_nonfinite.Reserve(sizeof(uint64_t)));
  // All bits set: kNoIndex.
  NORMD_RETURN_IF_ERROR(CudaStatus(cudaMemsetAsync(flag, 0xff, sizeof(uint64_t), stream),
                                   "clearing the non-finite index"));
  return CudaStatus(cuda_kernels::LaunchSegmentMoments(
                        dtype, data, tiling, slots, static_cast<MomentPartial*>(segments),
                        static_cast<unsigned long long*>(flag), stream),
                    "launching the moment kernels");
}

// Folds workspace.segments into per-(unit, channel) factors and maps input to output.
absl::Status LaunchFoldAndMap(const SegmentGeometry& g, double eps,
                              const std::vector<double>& gamma, const std::vector<double>& beta,
                              const DeviceTensorView& input, OutputDType output_type, void* output,
                              cudaStream_t stream, DeviceWorkspace& workspace) {
  const uint64_t factors = g.units * g.channels;
  NORMD_ASSIGN_OR_RETURN(void* factor_memory,
                         workspace.factors.Reserve(3 * factors * sizeof(double)));
  std::vector<double> parameters(gamma);
  parameters.insert(parameters.end(), beta.begin(), beta.end());
  NORMD_RETURN_IF_ERROR(
      workspace.parameters.CopyFrom(parameters.data(), parameters.size() * sizeof(double), stream));
  const auto* device_parameters = static_cast<const double*>(workspace.parameters.data());
  auto* center = static_cast<double*>(factor_memory);
  NORMD_RETURN_IF_ERROR(
      CudaStatus(cuda_kernels::LaunchFoldBatchStatistics(
                     g, static_cast<const MomentPartial*>(workspace.segments.data()), eps,
                     gamma.empty() ? nullptr : device_parameters,
                     beta.empty() ? nullptr : device_parameters + gamma.size(), center,
                     center + factors, center + 2 * factors, stream),
                 "launching the fold kernel"));
  const cuda_kernels::MapGeometry map{g.units * g.unit_elements(), g.unit_elements(), g.channels,
                                      g.inner};
  const cuda_kernels::MapFactors mapped{center, center + factors, center + 2 * factors};
  return CudaStatus(cuda_kernels::LaunchScaleShiftMap(input.dtype, output_type.dtype(), input.data,
                                                      output, map, mapped, stream),
                    "launching the scale-shift kernel");
}

// The segments' moments back on the host (waits for the stream), and the first
// non-finite index.
absl::StatusOr<uint64_t> CopyMomentsBack(uint64_t segments, std::span<ChannelMoments> out,
                                         cudaStream_t stream, DeviceWorkspace& workspace) {
  std::vector<MomentPartial> partials(segments);
  uint64_t first_nonfinite = cuda_kernels::kNoIndex;
  NORMD_RETURN_IF_ERROR(
      CudaStatus(cudaMemcpyAsync(partials.data(), workspace.segments.data(),
                                 segments * sizeof(MomentPartial), cudaMemcpyDeviceToHost, stream),
                 "copying moments to the host"));
  NORMD_RETURN_IF_ERROR(
      CudaStatus(cudaMemcpyAsync(&first_nonfinite, workspace.first_nonfinite.data(),
                                 sizeof(uint64_t), cudaMemcpyDeviceToHost, stream),
                 "copying the non-finite index to the host"));
  NORMD_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(stream), "computing moments"));
  for (size_t s = 0; s < out.size() && s < partials.size(); ++s)
    out[s] = ToChannelMoments(partials[s]);
  return first_nonfinite;
}

// The input checked (and the output, unless null) as the CPU's entry points check
// theirs, and `expected_elements` against it; returns the device both live on.
absl::StatusOr<int> CheckDeviceCall(const DeviceTensorView& input, const void* output,
                                    OutputDType output_type, int64_t expected_elements,
                                    absl::string_view call) {
  NORMD_ASSIGN_OR_RETURN(const ValidatedTensor tensor, ValidateDeviceTensor(input));
  if (output != nullptr) NORMD_RETURN_IF_ERROR(CheckDeviceOutput(output, output_type.dtype()));
  if (tensor.elements() != expected_elements) {
    return absl::InternalError(absl::StrCat(call, ": the geometry disagrees with the input"));
  }
  return CommonDevice(input.data, output);
}

SegmentGeometry PerChannel(const ChannelGeometry& g) {
  const auto channels = static_cast<uint64_t>(g.channels);
  return {1, static_cast<uint64_t>(g.outer), channels, static_cast<uint64_t>(g.inner), channels};
}

// The offending element of a rejected batch, read back for the message.
absl::Status RejectedValue(const DeviceTensorView& batch, const ChannelGeometry& geometry,
                           uint64_t index) {
  double value = 0;
  NORMD_RETURN_IF_ERROR(VisitDType(batch.dtype, [&](auto tag) -> absl::Status {
    using T = decltype(tag);
    T element;
    NORMD_RETURN_IF_ERROR(CudaStatus(cudaMemcpy(&element, static_cast<const T*>(batch.data) + index,
                                                sizeof(T), cudaMemcpyDeviceToHost),
                                     "reading the non-finite value"));
    value = ToDouble(element);
    return absl::OkStatus();
  }));
  const auto channel =
      index / static_cast<uint64_t>(geometry.inner) % static_cast<uint64_t>(geometry.channels);
  return NonFiniteValueError(value, index, channel);
}

}  // namespace

absl::StatusOr<uint64_t> ComputeBatchMoments(const DeviceTensorView& batch,
                                             const ChannelGeometry& geometry,
                                             NonFinitePolicy policy, std::span<ChannelMoments> out,
                                             cudaStream_t stream, DeviceWorkspace& workspace) {
  if (out.size() != static_cast<size_t>(geometry.channels)) {
    return absl::InternalError(
        "ComputeBatchMoments: the moments buffer disagrees with the geometry");
  }
  NORMD_ASSIGN_OR_RETURN(
      const int device,
      CheckDeviceCall(batch, nullptr, OutputDType(), geometry.elements(), "ComputeBatchMoments"));
  ScopedDevice scoped(device);
  NORMD_RETURN_IF_ERROR(scoped.status());
  const SegmentGeometry g = PerChannel(geometry);
  NORMD_RETURN_IF_ERROR(LaunchMoments(batch.dtype, batch.data, g, stream, workspace));
  NORMD_ASSIGN_OR_RETURN(const uint64_t first_nonfinite,
                         CopyMomentsBack(g.segments(), out, stream, workspace));
  if (first_nonfinite != cuda_kernels::kNoIndex && policy == NonFinitePolicy::kReject) {
    return RejectedValue(batch, geometry, first_nonfinite);
  }
  uint64_t counted = 0;
  for (const ChannelMoments& m : out) counted += m.count;
  return static_cast<uint64_t>(geometry.elements()) - counted;
}

absl::StatusOr<MomentsSummary> SummarizeBatch(const DeviceTensorView& batch, Layout layout,
                                              const ChannelGeometry& geometry,
                                              NonFinitePolicy policy, cudaStream_t stream,
                                              DeviceWorkspace& workspace) {
  MomentsSummary summary = MomentsSummary::Empty(layout, geometry.channels);
  NORMD_ASSIGN_OR_RETURN(
      summary.skipped_nonfinite,
      ComputeBatchMoments(batch, geometry, policy, summary.channels, stream, workspace));
  summary.samples = static_cast<uint64_t>(geometry.samples);
  summary.batches = 1;
  return summary;
}

absl::Status ApplyBatchNormTraining(const BatchNormTrainingScheme& scheme,
                                    const DeviceTensorView& input, const ChannelGeometry& geometry,
                                    OutputDType output_type, void* output,
                                    std::span<ChannelMoments> moments, cudaStream_t stream,
                                    DeviceWorkspace& workspace) {
  NORMD_RETURN_IF_ERROR(ValidateBatchNormTraining(scheme, geometry, input.shape));
  NORMD_ASSIGN_OR_RETURN(
      const int device,
      CheckDeviceCall(input, output, output_type, geometry.elements(), "ApplyBatchNormTraining"));
  ScopedDevice scoped(device);
  NORMD_RETURN_IF_ERROR(scoped.status());
  const SegmentGeometry g = PerChannel(geometry);
  NORMD_RETURN_IF_ERROR(LaunchMoments(input.dtype, input.data, g, stream, workspace));
  NORMD_RETURN_IF_ERROR(LaunchFoldAndMap(g, scheme.eps, scheme.gamma, scheme.beta, input,
                                         output_type, output, stream, workspace));
  if (!moments.empty()) {
    NORMD_RETURN_IF_ERROR(CopyMomentsBack(g.segments(), moments, stream, workspace).status());
  }
  return absl::OkStatus();
}

absl::Status ApplyPerSampleNorm(const PerSampleScheme& scheme, const DeviceTensorView& input,
                                const GroupedGeometry& geometry, OutputDType output_type,
                                void* output, cudaStream_t stream, DeviceWorkspace& workspace) {
  NORMD_RETURN_IF_ERROR(ValidatePerSampleParameters(scheme, geometry));
  const int64_t elements = geometry.units * geometry.unit_elements();
  NORMD_ASSIGN_OR_RETURN(const int device, CheckDeviceCall(input, output, output_type, elements,
                                                           "ApplyPerSampleNorm"));
  ScopedDevice scoped(device);
  NORMD_RETURN_IF_ERROR(scoped.status());
  const auto& [gamma, beta, eps] =
      std::visit([](const auto& s) { return std::tie(s.gamma, s.beta, s.eps); }, scheme);
  const SegmentGeometry g{
      static_cast<uint64_t>(geometry.units), static_cast<uint64_t>(geometry.rows),
      static_cast<uint64_t>(geometry.channels), static_cast<uint64_t>(geometry.inner),
      static_cast<uint64_t>(geometry.groups)};
  NORMD_RETURN_IF_ERROR(LaunchMoments(input.dtype, input.data, g, stream, workspace));
  return LaunchFoldAndMap(g, eps, gamma, beta, input, output_type, output, stream, workspace);
}

}  // namespace normd::cuda
