#include "core/cuda/host_offload.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "core/batch_moments.h"
#include "core/cuda/device_normalizer.h"
#include "core/kernels/cuda/launch.h"

namespace normd::cuda {
namespace {

constexpr size_t kChunkBytes = size_t{8} << 20;  // input bytes per pipelined chunk
constexpr int64_t kCalibrationSizes[] = {int64_t{256} << 10, int64_t{1} << 20, int64_t{4} << 20,
                                         int64_t{16} << 20, int64_t{64} << 20};

// The smallest measured size from which the device was faster at every size measured.
int64_t Threshold(const std::vector<OffloadMeasurement>& measured) {
  int64_t threshold = kNeverOffload;
  for (auto m = measured.rbegin(); m != measured.rend(); ++m) {
    if (m->device_seconds >= m->cpu_seconds) break;
    threshold = m->bytes;
  }
  return threshold;
}

// The fastest of a few runs, after one that warms caches and the device.
template <typename Fn>
absl::StatusOr<double> Fastest(Fn&& run) {
  double best = 0;
  for (int i = 0; i < 4; ++i) {
    const absl::Time start = absl::Now();
    NORMD_RETURN_IF_ERROR(run());
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (i == 1 || (i > 1 && seconds < best)) best = seconds;
  }
  return best;
}

std::string Rates(const std::vector<OffloadMeasurement>& measured) {
  std::string text;
  for (const OffloadMeasurement& m : measured) {
    const double gb = static_cast<double>(m.bytes) / 1e9;
    absl::StrAppend(&text, text.empty() ? "" : ", ",
                    absl::StrFormat("%d KiB: CPU %.1f GB/s, GPU %.1f GB/s", m.bytes >> 10,
                                    gb / m.cpu_seconds, gb / m.device_seconds));
  }
  return text;
}

std::string Bytes(int64_t bytes) {
  return bytes == kNeverOffload ? "never" : absl::StrCat("from ", bytes >> 10, " KiB");
}

}  // namespace

absl::StatusOr<std::unique_ptr<CudaOffload>> CudaOffload::Create(const CudaOffloadOptions& options,
                                                                 WorkerPool* pool) {
  const int devices = DeviceCount();
  if (options.device < 0 || options.device >= devices) {
    return absl::FailedPreconditionError(
        absl::StrCat("--device=cuda:", options.device, " names no CUDA device: this machine has ",
                     devices, devices == 0 ? " (no GPU, or no NVIDIA driver)" : ""));
  }
  std::unique_ptr<CudaOffload> offload(new CudaOffload(options.device));
  cudaDeviceProp properties{};
  NORMD_RETURN_IF_ERROR(CudaStatus(cudaGetDeviceProperties(&properties, options.device),
                                   "reading the device's properties"));
  offload->name_ = absl::StrCat("cuda:", options.device, " (", properties.name, ")");
  {
    ScopedDevice scoped(options.device);
    NORMD_RETURN_IF_ERROR(scoped.status());
    absl::MutexLock lock(&offload->mu_);
    for (cudaStream_t& stream : offload->streams_) {
      NORMD_RETURN_IF_ERROR(CudaStatus(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
                                       "creating a stream"));
    }
  }
  offload->normalize_min_bytes_ = options.normalize_min_bytes;
  offload->fit_min_bytes_ = options.fit_min_bytes;
  NORMD_RETURN_IF_ERROR(
      offload->Calibrate(pool, options.normalize_min_bytes < 0, options.fit_min_bytes < 0));
  return offload;
}

CudaOffload::~CudaOffload() {
  absl::MutexLock lock(&mu_);
  ScopedDevice scoped(device_);
  for (cudaStream_t stream : streams_) {
    if (stream != nullptr) (void)cudaStreamDestroy(stream);
  }
}

std::string CudaOffload::Describe() const {
  std::string text =
      absl::StrCat(name_, ": frozen Normalize on the device ", Bytes(normalize_min_bytes_),
                   " of input, Ingest batches ", Bytes(fit_min_bytes_));
  if (!normalize_measured_.empty()) {
    absl::StrAppend(&text, "; measured normalise ", Rates(normalize_measured_));
  }
  if (!fit_measured_.empty()) absl::StrAppend(&text, "; measured fit ", Rates(fit_measured_));
  return text;
}

absl::Status CudaOffload::Calibrate(WorkerPool* pool, bool normalize, bool fit) {
  if (!normalize && !fit) return absl::OkStatus();
  // float32 images of 3 channels, values far from zero: the common case of both paths.
  ReferenceStatistics stats;
  stats.count = {1, 1, 1};
  stats.mean = {100, 110, 120};
  stats.variance = {4, 9, 16};
  stats.min = {0, 0, 0};
  stats.max = {255, 255, 255};
  NORMD_ASSIGN_OR_RETURN(const FrozenNormalizer normalizer,
                         FrozenNormalizer::Create(ZScoreScheme{}, Layout::kNCHW, 3, stats));
  const OutputDType f32;
  for (const int64_t bytes : kCalibrationSizes) {
    const int64_t samples = std::max<int64_t>(1, bytes / (3 * 64 * 64 * 4));
    const std::vector<int64_t> shape = {samples, 3, 64, 64};
    std::vector<float> input(static_cast<size_t>(samples) * 3 * 64 * 64);
    for (size_t i = 0; i < input.size(); ++i) input[i] = static_cast<float>(i % 251) + 0.5f;
    std::vector<float> output(input.size());
    const auto in_bytes = std::as_bytes(std::span(input));
    NORMD_ASSIGN_OR_RETURN(const ValidatedTensor tensor,
                           ValidateTensor(TensorView{DType::kFloat32, shape, in_bytes}));
    const auto out_bytes = std::as_writable_bytes(std::span(output));
    const int64_t measured = static_cast<int64_t>(in_bytes.size());
    absl::MutexLock lock(&mu_);
    if (normalize) {
      NORMD_ASSIGN_OR_RETURN(const double cpu, Fastest([&] {
                               return normalizer.Apply(tensor, f32, out_bytes, pool);
                             }));
      NORMD_ASSIGN_OR_RETURN(const double gpu, Fastest([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
                               return RunFrozen(normalizer, tensor, f32, out_bytes);
                             }));
      normalize_measured_.push_back({measured, cpu, gpu});
    }
    if (fit) {
      const ChannelGeometry geometry{samples, samples, 3, 64 * 64};
      std::vector<ChannelMoments> moments(3);
      NORMD_ASSIGN_OR_RETURN(const double cpu, Fastest([&] {
                               return normd::ComputeBatchMoments(tensor.view(), geometry,
                                                                 NonFinitePolicy::kReject, moments,
                                                                 pool)
                                   .status();
                             }));
      NORMD_ASSIGN_OR_RETURN(
          const double gpu, Fastest([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return RunMoments(tensor, geometry, NonFinitePolicy::kReject, moments).status();
          }));
      fit_measured_.push_back({measured, cpu, gpu});
    }
  }
  if (normalize) normalize_min_bytes_ = Threshold(normalize_measured_);
  if (fit) fit_min_bytes_ = Threshold(fit_measured_);
  return absl::OkStatus();
}

std::optional<absl::Status> CudaOffload::ApplyFrozen(const FrozenNormalizer& normalizer,
                                                     const ValidatedTensor& input,
                                                     OutputDType output_type,
                                                     std::span<std::byte> output) {
  if (static_cast<int64_t>(input.view().bytes.size()) < normalize_min_bytes_ ||
      normalizer.piecewise()) {
    return std::nullopt;
  }
  if (!mu_.TryLock()) return std::nullopt;  // busy: the CPU is as good as a queue
  absl::Status status = RunFrozen(normalizer, input, output_type, output);
  mu_.Unlock();
  return status;
}

std::optional<absl::StatusOr<uint64_t>> CudaOffload::ComputeBatchMoments(
    const ValidatedTensor& batch, const ChannelGeometry& geometry, NonFinitePolicy policy,
    std::span<ChannelMoments> out) {
  if (static_cast<int64_t>(batch.view().bytes.size()) < fit_min_bytes_) return std::nullopt;
  if (!mu_.TryLock()) return std::nullopt;
  absl::StatusOr<uint64_t> result = RunMoments(batch, geometry, policy, out);
  mu_.Unlock();
  return result;
}

absl::Status CudaOffload::RunFrozen(const FrozenNormalizer& normalizer,
                                    const ValidatedTensor& input, OutputDType output_type,
                                    std::span<std::byte> output) {
  NORMD_ASSIGN_OR_RETURN(const ChannelGeometry geometry, normalizer.GeometryOf(input));
  ScopedDevice scoped(device_);
  NORMD_RETURN_IF_ERROR(scoped.status());
  const DType in = input.dtype(), out = output_type.dtype();
  const size_t in_size = ElementSize(in), out_size = ElementSize(out);
  const auto elements = static_cast<uint64_t>(input.elements());
  const auto channels = static_cast<uint64_t>(geometry.channels);
  const auto inner = static_cast<uint64_t>(geometry.inner);
  const uint64_t chunk = cuda_kernels::ChunkElements(channels, inner, in_size, kChunkBytes);
  const std::vector<double> packed = PackFrozenFactors(normalizer.factors());
  NORMD_RETURN_IF_ERROR(
      factors_.CopyFrom(packed.data(), packed.size() * sizeof(double), streams_[0]));
  NORMD_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(streams_[0]), "copying factors"));
  const cuda_kernels::MapFactors factors =
      PackedFactorsFor(static_cast<const double*>(factors_.data()), channels,
                       !normalizer.factors().clamp.empty(), out);
  const uint64_t per_buffer = std::min(chunk, elements);
  for (size_t s = 0; s < kStreams; ++s) {
    NORMD_RETURN_IF_ERROR(inputs_[s].Reserve(per_buffer * in_size).status());
    NORMD_RETURN_IF_ERROR(outputs_[s].Reserve(per_buffer * out_size).status());
  }
  const std::byte* x = input.view().bytes.data();
  size_t next = 0;
  for (uint64_t first = 0; first < elements; first += chunk, next = (next + 1) % kStreams) {
    const uint64_t count = std::min(chunk, elements - first);
    const cudaStream_t stream = streams_[next];
    NORMD_RETURN_IF_ERROR(
        CudaStatus(cudaMemcpyAsync(inputs_[next].data(), x + first * in_size, count * in_size,
                                   cudaMemcpyHostToDevice, stream),
                   "copying a chunk to the device"));
    NORMD_RETURN_IF_ERROR(CudaStatus(
        cuda_kernels::LaunchScaleShiftMap(in, out, inputs_[next].data(), outputs_[next].data(),
                                          {count, count, channels, inner}, factors, stream),
        "launching the scale-shift kernel"));
    NORMD_RETURN_IF_ERROR(
        CudaStatus(cudaMemcpyAsync(output.data() + first * out_size, outputs_[next].data(),
                                   count * out_size, cudaMemcpyDeviceToHost, stream),
                   "copying a chunk back"));
  }
  for (cudaStream_t stream : streams_) {
    NORMD_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(stream), "normalising on the device"));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> CudaOffload::RunMoments(const ValidatedTensor& batch,
                                                 const ChannelGeometry& geometry,
                                                 NonFinitePolicy policy,
                                                 std::span<ChannelMoments> out) {
  ScopedDevice scoped(device_);
  NORMD_RETURN_IF_ERROR(scoped.status());
  const std::span<const std::byte> bytes = batch.view().bytes;
  NORMD_RETURN_IF_ERROR(batch_.CopyFrom(bytes.data(), bytes.size(), streams_[0]));
  return cuda::ComputeBatchMoments({batch.dtype(), batch.shape(), batch_.data()}, geometry, policy,
                                   out, streams_[0], workspace_);
}

}  // namespace normd::cuda
