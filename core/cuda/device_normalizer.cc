#include "core/cuda/device_normalizer.h"

#include <utility>
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

std::vector<double> PackFrozenFactors(const ScaleShift& f) {
  const size_t channels = f.center.size();
  std::vector<double> packed;
  packed.reserve(channels * (3 + 2 * kOutputTypes.size()));
  packed.insert(packed.end(), f.center.begin(), f.center.end());
  packed.insert(packed.end(), f.scale.begin(), f.scale.end());
  packed.insert(packed.end(), f.shift.begin(), f.shift.end());
  if (!f.clamp.empty()) {
    for (DType out : kOutputTypes) {
      const std::vector<ScaleShift::Range> ranges = RoundedClampRanges(out, f.clamp);
      for (const ScaleShift::Range& r : ranges) packed.push_back(r.low);
      for (const ScaleShift::Range& r : ranges) packed.push_back(r.high);
    }
  }
  return packed;
}

cuda_kernels::MapFactors PackedFactorsFor(const double* base, size_t channels, bool clamps,
                                          DType output) {
  cuda_kernels::MapFactors factors{base, base + channels, base + 2 * channels};
  if (clamps) {
    const double* ranges = base + 3 * channels + OutputSlot(output) * 2 * channels;
    factors.low = ranges;
    factors.high = ranges + channels;
  }
  return factors;
}

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
  result.clamps_ = !normalizer.factors().clamp.empty();
  const std::vector<double> packed = PackFrozenFactors(normalizer.factors());
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
  const cuda_kernels::MapFactors factors = PackedFactorsFor(
      static_cast<const double*>(factors_.data()), channels, clamps_, output_type.dtype());
  const auto elements = static_cast<uint64_t>(tensor.elements());
  const cuda_kernels::MapGeometry map{elements, elements, channels,
                                      static_cast<uint64_t>(geometry.inner)};
  return CudaStatus(cuda_kernels::LaunchScaleShiftMap(input.dtype, output_type.dtype(), input.data,
                                                      output, map, factors, stream),
                    "launching the scale-shift kernel");
}

}  // namespace normd::cuda
