#include "core/running_average.h"

#include "absl/strings/str_cat.h"

namespace normd {

RunningAverage RunningAverage::Initial(int64_t channels) {
  RunningAverage running;
  running.mean.assign(static_cast<size_t>(channels), 0.0);
  running.var.assign(static_cast<size_t>(channels), 1.0);
  return running;
}

absl::Status CheckRunningAverageBatch(std::span<const ChannelMoments> batch) {
  for (size_t c = 0; c < batch.size(); ++c) {
    if (batch[c].count < 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a running-average dataset needs at least 2 values per channel in each train "
          "batch (for the unbiased variance), got ",
          batch[c].count, " in channel ", c));
    }
  }
  return absl::OkStatus();
}

RunningAverageDelta::RunningAverageDelta(int64_t channels, std::optional<double> momentum)
    : momentum_(momentum),
      mean_(static_cast<size_t>(channels), 0.0),
      var_(static_cast<size_t>(channels), 0.0) {}

void RunningAverageDelta::AddBatch(std::span<const ChannelMoments> batch) {
  ++batches_;
  for (size_t c = 0; c < batch.size(); ++c) {
    const double batch_mean = batch[c].Mean();
    const double batch_var = batch[c].SampleVariance();
    if (momentum_.has_value()) {
      const double m = *momentum_;
      mean_[c] = (1.0 - m) * mean_[c] + m * batch_mean;
      var_[c] = (1.0 - m) * var_[c] + m * batch_var;
    } else {
      mean_[c] += batch_mean;
      var_[c] += batch_var;
    }
  }
  if (momentum_.has_value()) decay_ *= 1.0 - *momentum_;
}

void RunningAverageDelta::ApplyTo(RunningAverage& running) const {
  if (batches_ == 0) return;
  const double tracked = static_cast<double>(running.num_batches_tracked);
  const double total = tracked + static_cast<double>(batches_);
  for (size_t c = 0; c < mean_.size(); ++c) {
    if (momentum_.has_value()) {
      running.mean[c] = decay_ * running.mean[c] + mean_[c];
      running.var[c] = decay_ * running.var[c] + var_[c];
    } else {
      running.mean[c] = (tracked * running.mean[c] + mean_[c]) / total;
      running.var[c] = (tracked * running.var[c] + var_[c]) / total;
    }
  }
  running.num_batches_tracked += batches_;
}

}  // namespace normd
