// An accelerator that takes work on host memory and gives host memory back: a GPU
// behind normd's --device=cuda:N (core/cuda/host_offload.h). The engine offers it each
// large frozen Normalize and each Ingest batch; it declines (std::nullopt, nothing
// written) what it would run slower than the CPU, by sizes it measured, what it does
// not run, and anything while it is busy, and the CPU runs those. What it accepts it
// computes as the CPU would: the same bits for the frozen map, the same moments to
// float64's precision (exactly for uint8).
#ifndef NORMD_CORE_DEVICE_OFFLOAD_H_
#define NORMD_CORE_DEVICE_OFFLOAD_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/channel_moments.h"
#include "core/frozen_normalizer.h"
#include "core/layout.h"
#include "core/nonfinite_policy.h"
#include "core/tensor_view.h"

namespace normd {

class DeviceOffload {
 public:
  virtual ~DeviceOffload() = default;

  // "cuda:0 (NVIDIA H200)", and where it takes over from the CPU.
  virtual std::string Describe() const = 0;

  // normalizer.Apply(input, output_type, output) on the device, or std::nullopt.
  virtual std::optional<absl::Status> ApplyFrozen(const FrozenNormalizer& normalizer,
                                                  const ValidatedTensor& input,
                                                  OutputDType output_type,
                                                  std::span<std::byte> output) = 0;

  // ComputeBatchMoments(batch, geometry, policy, out) (unweighted) on the device, or
  // std::nullopt.
  virtual std::optional<absl::StatusOr<uint64_t>> ComputeBatchMoments(
      const ValidatedTensor& batch, const ChannelGeometry& geometry, NonFinitePolicy policy,
      std::span<ChannelMoments> out) = 0;
};

}  // namespace normd

#endif  // NORMD_CORE_DEVICE_OFFLOAD_H_
