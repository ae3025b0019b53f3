#include "core/cuda/device_normalizer.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/apply_scale_shift.h"
#include "core/kernels/cuda/launch.h"

namespace normd::cuda {
namespace {

constexpr std::array<DType, 4> kOutputTypes = {DType::kFloat32, DType::kFloat64, DType::kFloat16,
                                               DType::kBFloat16};

size_t OutputSlot(DType dtype) {
  for (size_t i = 0; i < kOutputTypes.size(); ++i) {
    if (kOutputTypes[i] == dtype) return i;
  }
  return 0;
}

}  // namespace

absl::StatusOr<DeviceFrozenNormalizer> DeviceFrozenNormalizer::Create(
    const FrozenNormalizer& normalizer, int device) {
  if (normalizer.piecewise()) {
    return absl::FailedPreconditionError(
        "the piecewise schemes (quantile, bucketize) run on the CPU only; normalise this tensor "
        "on the host, or use an affine scheme on the device");
  }
  ScopedDevice scoped(device);
  NORMD_RETURN_IF_ERROR(scoped.status());
  DeviceFrozenNormalizer result(normalizer, device);
  const ScaleShift& f = normalizer.factors();
  const size_t channels = f.center.size();
  std::vector<double> packed;
  packed.reserve(channels * (3 + 2 * kOutputTypes.size()));
  packed.insert(packed.end(), f.center.begin(), f.center.end());
  packed.insert(packed.end(), f.scale.begin(), f.scale.end());
  packed.insert(packed.end(), f.shift.begin(), f.shift.end());
  result.clamps_ = !f.clamp.empty();
  if (result.clamps_) {
    for (DType out : kOutputTypes) {
      const std::vector<ScaleShift::Range> ranges = RoundedClampRanges(out, f.clamp);
      for (const ScaleShift::Range& r : ranges) packed.push_back(r.low);
      for (const ScaleShift::Range& r : ranges) packed.push_back(r.high);
    }
  }
  NORMD_RETURN_IF_ERROR(
      result.factors_.CopyFrom(packed.data(), packed.size() * sizeof(double), cudaStreamLegacy));
  NORMD_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(cudaStreamLegacy), "copying factors"));
  return result;
}

absl::Status DeviceFrozenNormalizer::Apply(const DeviceTensorView& input, OutputDType output_type,
                                           void* output, cudaStream_t stream) const {
  NORMD_ASSIGN_OR_RETURN(const ValidatedTensor tensor, ValidateDeviceTensor(input));
  NORMD_RETURN_IF_ERROR(CheckDeviceOutput(output, output_type.dtype()));
  NORMD_ASSIGN_OR_RETURN(const ChannelGeometry geometry, host_.GeometryOf(tensor));
  for (const auto& [pointer, what] : {std::pair{input.data, "the input"},
                                      std::pair<const void*, const char*>{output, "the output"}}) {
    NORMD_ASSIGN_OR_RETURN(const int on, DeviceOf(pointer, what));
    if (on != device_) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " is on cuda:", on, ", the normaliser's factors on cuda:", device_));
    }
  }
  ScopedDevice scoped(device_);
  NORMD_RETURN_IF_ERROR(scoped.status());
  const auto channels = static_cast<uint64_t>(geometry.channels);
  const auto* base = static_cast<const double*>(factors_.data());
  cuda_kernels::MapFactors factors{base, base + channels, base + 2 * channels};
  if (clamps_) {
    const double* ranges = base + 3 * channels + OutputSlot(output_type.dtype()) * 2 * channels;
    factors.low = ranges;
    factors.high = ranges + channels;
  }
  const auto elements = static_cast<uint64_t>(tensor.elements());
  const cuda_kernels::MapGeometry map{elements, elements, channels,
                                      static_cast<uint64_t>(geometry.inner)};
  return CudaStatus(cuda_kernels::LaunchScaleShiftMap(input.dtype, output_type.dtype(), input.data,
                                                      output, map, factors, stream),
                    "launching the scale-shift kernel");
}

}  // namespace normd::cuda
