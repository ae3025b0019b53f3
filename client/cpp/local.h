// The core's kernels in the caller's process. Moments reduces a batch where it lies
// to the summary the server's Ingest would merge for it (send it with
// IngestStream::WriteSummary: O(channels) instead of the batch); LocalNormalizer
// fetches a frozen version once and normalises without a round trip, giving what the
// server's Normalize gives, bit for bit (the same folding, the same kernels).
#ifndef NORMD_CLIENT_CPP_LOCAL_H_
#define NORMD_CLIENT_CPP_LOCAL_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/cpp/normd_client.h"
#include "core/frozen_normalizer.h"
#include "core/moments_summary.h"
#include "core/sample_weights.h"
#include "core/tensor_view.h"

namespace normd {

// The summary of `batch` in `layout`; with `channels` > 0 its shape is checked against
// that many channels as the server checks a batch. With `sketch` (a dataset's
// DatasetSpec::sketch), the summary holds the quantile sketches that dataset keeps.
// With `weights` (as IngestRequest.weights) it is weighted, as the server's Ingest of
// the batch with them; with `histogram_edges` (a dataset's) it holds the fixed
// histograms that dataset keeps. Runs on a worker pool of this process (one fewer threads than
// the CPUs).
absl::StatusOr<MomentsSummary> Moments(const TensorView& batch, Layout layout, int64_t channels = 0,
                                       NonFinitePolicy policy = NonFinitePolicy::kReject,
                                       const QuantileSketchSpec* sketch = nullptr,
                                       const TensorView* weights = nullptr,
                                       const HistogramEdges* histogram_edges = nullptr);

class LocalNormalizer {
 public:
  // `version` (0: the latest frozen one) of `dataset`, with `scheme`'s factors folded
  // from its statistics; with `inverse`, its inverse map (the server's Denormalize).
  // A FixedScaleScheme needs no dataset: pass "".
  static absl::StatusOr<LocalNormalizer> Fetch(NormdClient& client, absl::string_view dataset,
                                               uint64_t version, const FrozenScheme& scheme,
                                               bool inverse = false);

  // Normalises `input` into `output` (exactly its elements in `output_type`).
  // Thread-safe.
  absl::Status Normalize(const TensorView& input, OutputDType output_type,
                         std::span<std::byte> output) const;

  uint64_t version() const { return version_; }
  // The folded scheme: with the CUDA path, cuda::DeviceFrozenNormalizer::Create(frozen(),
  // device) normalises tensors in device memory with these factors, the same bits
  // (core/cuda/device_normalizer.h); cuda::SummarizeBatch makes a device batch's summary.
  const FrozenNormalizer& frozen() const { return normalizer_; }

 private:
  LocalNormalizer(uint64_t version, FrozenNormalizer normalizer)
      : version_(version), normalizer_(std::move(normalizer)) {}

  uint64_t version_;
  FrozenNormalizer normalizer_;
};

}  // namespace normd

#endif  // NORMD_CLIENT_CPP_LOCAL_H_
