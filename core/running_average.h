// Batch-norm style exponential running statistics, as torch.nn.BatchNorm keeps them.
#ifndef NORMD_CORE_RUNNING_AVERAGE_H_
#define NORMD_CORE_RUNNING_AVERAGE_H_

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "core/channel_moments.h"

namespace normd {

// Per batch b: running = (1 - f) * running + f * b, for the batch mean and the
// unbiased batch variance, with f = momentum, or f = 1 / num_batches_tracked when
// momentum is unset (a cumulative average). Starts at mean 0, variance 1.
struct RunningAverage {
  std::vector<double> mean;
  std::vector<double> var;
  uint64_t num_batches_tracked = 0;

  static RunningAverage Initial(int64_t channels);
};

// Checks that every channel of a batch has the two values an unbiased variance needs
// (torch.nn.BatchNorm refuses such batches in training mode as well).
absl::Status CheckRunningAverageBatch(std::span<const ChannelMoments> batch);

// The effect of a sequence of batches on a running average, composed in O(channels):
// each update is affine in the running value, so K updates fold into
//   fixed momentum m: running <- decay * running + pending, decay = (1 - m)^K;
//   cumulative:       running <- (t * running + sum of batch values) / (t + K),
// where t is num_batches_tracked when the delta is applied.
class RunningAverageDelta {
 public:
  RunningAverageDelta(int64_t channels, std::optional<double> momentum);

  void AddBatch(std::span<const ChannelMoments> batch);
  void ApplyTo(RunningAverage& running) const;
  uint64_t batches() const { return batches_; }

 private:
  std::optional<double> momentum_;
  uint64_t batches_ = 0;
  double decay_ = 1.0;
  std::vector<double> mean_;  // fixed momentum: pending term; cumulative: sum
  std::vector<double> var_;
};

}  // namespace normd

#endif  // NORMD_CORE_RUNNING_AVERAGE_H_
