// normd's --device=cuda:N: a GPU that runs large frozen Normalize requests and large
// Ingest batches whose bytes are in host memory (a gRPC message, a shared-memory
// region), when that is faster than the CPU. Whether it is depends on the link and
// the memory: pageable host memory crosses PCIe slower than pinned memory, and the
// CPU's kernels already run at memory speed. So Create measures both paths on this
// machine, on sizes from 256 KiB to 64 MiB, and takes over from the smallest size
// at and above which the GPU was faster, or never. One request at a time runs on the
// device; one that finds it busy runs on the CPU instead of queueing.
#ifndef NORMD_CORE_CUDA_HOST_OFFLOAD_H_
#define NORMD_CORE_CUDA_HOST_OFFLOAD_H_

#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/cuda/device.h"
#include "core/cuda/device_moments.h"
#include "core/device_offload.h"
#include "core/worker_pool.h"

namespace normd::cuda {

inline constexpr int64_t kNeverOffload = std::numeric_limits<int64_t>::max();

struct CudaOffloadOptions {
  int device = 0;
  // Input bytes from which a request runs on the device; -1: measured by Create.
  int64_t normalize_min_bytes = -1;
  int64_t fit_min_bytes = -1;
};

// One measured size: seconds per call on each side.
struct OffloadMeasurement {
  int64_t bytes = 0;
  double cpu_seconds = 0;
  double device_seconds = 0;
};

class CudaOffload final : public DeviceOffload {
 public:
  // FAILED_PRECONDITION when there is no such device. `pool` (the CPU's workers, for
  // the measurement) must outlive the call.
  static absl::StatusOr<std::unique_ptr<CudaOffload>> Create(const CudaOffloadOptions& options,
                                                             WorkerPool* pool);
  ~CudaOffload() override;

  std::string Describe() const override;
  std::optional<absl::Status> ApplyFrozen(const FrozenNormalizer& normalizer,
                                          const ValidatedTensor& input, OutputDType output_type,
                                          std::span<std::byte> output) override;
  std::optional<absl::StatusOr<uint64_t>> ComputeBatchMoments(
      const ValidatedTensor& batch, const ChannelGeometry& geometry, NonFinitePolicy policy,
      std::span<ChannelMoments> out) override;

 private:
  static constexpr size_t kStreams = 3;  // chunks in flight: in, kernel, out

  explicit CudaOffload(int device) : device_(device) {}
  absl::Status Calibrate(WorkerPool* pool, bool normalize, bool fit);

  // The work itself, holding mu_.
  absl::Status RunFrozen(const FrozenNormalizer& normalizer, const ValidatedTensor& input,
                         OutputDType output_type, std::span<std::byte> output)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<uint64_t> RunMoments(const ValidatedTensor& batch, const ChannelGeometry& geometry,
                                      NonFinitePolicy policy, std::span<ChannelMoments> out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int device_;
  std::string name_;
  int64_t normalize_min_bytes_ = kNeverOffload;
  int64_t fit_min_bytes_ = kNeverOffload;
  std::vector<OffloadMeasurement> normalize_measured_, fit_measured_;

  absl::Mutex mu_;
  std::array<cudaStream_t, kStreams> streams_ ABSL_GUARDED_BY(mu_) = {};
  std::array<DeviceBuffer, kStreams> inputs_ ABSL_GUARDED_BY(mu_);
  std::array<DeviceBuffer, kStreams> outputs_ ABSL_GUARDED_BY(mu_);
  DeviceBuffer factors_ ABSL_GUARDED_BY(mu_);
  DeviceBuffer batch_ ABSL_GUARDED_BY(mu_);
  DeviceWorkspace workspace_ ABSL_GUARDED_BY(mu_);
};

}  // namespace normd::cuda

#endif  // NORMD_CORE_CUDA_HOST_OFFLOAD_H_
