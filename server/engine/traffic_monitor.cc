#include "server/engine/traffic_monitor.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "core/moments_summary.h"

namespace normd {
namespace {

// Traffic is folded as a non-train split, so that a running-average dataset's train
// logic never sees it; any such split would do.
constexpr Split kTrafficSplit = Split::kValidation;

SplitStatistics EmptySplit(const DatasetSpec& spec) {
  return DatasetStatistics::Empty(spec).split(kTrafficSplit);
}

absl::Time SliceStart(absl::Time now, absl::Duration slice) {
  return absl::FromUnixSeconds(absl::ToUnixSeconds(now) / absl::ToInt64Seconds(slice) *
                               absl::ToInt64Seconds(slice));
}

}  // namespace

TrafficMonitor::TrafficMonitor(TrafficOptions options, TrafficStore* store, WorkerPool* pool)
    : options_(options), store_(store), pool_(pool) {}

std::shared_ptr<TrafficMonitor::Tracked> TrafficMonitor::Find(absl::string_view dataset,
                                                              uint64_t version) const {
  absl::MutexLock lock(&mu_);
  auto it = tracked_.find(TrafficKey{std::string(dataset), version});
  return it == tracked_.end() ? nullptr : it->second;
}

std::shared_ptr<TrafficMonitor::Tracked> TrafficMonitor::Track(const DatasetSpec& spec,
                                                               int64_t incarnation,
                                                               uint64_t version) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = tracked_.try_emplace(TrafficKey{spec.name, version});
  // A dataset deleted and created again under the name starts afresh.
  if (!inserted && it->second->incarnation == incarnation) return it->second;
  auto tracked = std::make_shared<Tracked>();
  tracked->spec = spec;
  tracked->incarnation = incarnation;
  tracked->spec.nonfinite = NonFinitePolicy::kSkip;
  {
    absl::MutexLock tracked_lock(&tracked->mu);
    tracked->settled = EmptySplit(spec);
  }
  it->second = tracked;
  // Bound the versions of one dataset: the oldest is forgotten (what was persisted of
  // it stays in the store).
  auto first = tracked_.lower_bound(TrafficKey{spec.name, 0});
  size_t count = 0;
  for (auto at = first; at != tracked_.end() && at->first.dataset == spec.name; ++at) ++count;
  if (count > options_.max_versions_per_dataset) tracked_.erase(first);
  return tracked;
}

absl::Status TrafficMonitor::Load(const DatasetSpec& spec, int64_t incarnation) {
  if (store_ == nullptr) return absl::OkStatus();
  NORMD_ASSIGN_OR_RETURN(std::vector<StoredTraffic> stored, store_->LoadTraffic(spec));
  const std::string replica = store_->TrafficReplica();
  for (StoredTraffic& traffic : stored) {
    if (traffic.replica != replica || traffic.incarnation != incarnation) continue;
    std::shared_ptr<Tracked> tracked = Track(spec, incarnation, traffic.version);
    absl::MutexLock lock(&tracked->mu);
    tracked->requests = traffic.requests;
    tracked->sampled = traffic.sampled_requests;
    tracked->settled = std::move(traffic.settled);
    tracked->slices = std::move(traffic.slices);
  }
  return absl::OkStatus();
}

bool TrafficMonitor::Draw() {
  if (options_.sample_rate >= 1) return true;
  absl::MutexLock lock(&bits_mu_);
  return absl::Bernoulli(bits_, options_.sample_rate);
}

void TrafficMonitor::Observe(const DatasetSpec& spec, int64_t incarnation, uint64_t version,
                             const ValidatedTensor& input) {
  if (!enabled()) return;
  std::shared_ptr<Tracked> tracked = Track(spec, incarnation, version);
  const bool fold = Draw();
  std::optional<MomentsSummary> batch;
  if (fold) {
    // What an Ingest of the input would merge (core/moments_summary.h), reduced outside
    // the lock and merged into the current slice under it.
    const DatasetSpec& s = tracked->spec;
    absl::StatusOr<ChannelGeometry> geometry = ResolveGeometry(s.layout, s.channels, input.shape());
    if (!geometry.ok()) return;  // not counted either
    absl::StatusOr<MomentsSummary> summary =
        SummarizeBatch(input.view(), s.layout, *geometry, NonFinitePolicy::kSkip, pool_,
                       s.sketch ? &*s.sketch : nullptr, nullptr,
                       s.histogram_edges.empty() ? nullptr : &s.histogram_edges);
    if (!summary.ok()) return;
    batch = *std::move(summary);
  }
  const absl::Time now = absl::Now();
  const absl::Time start = SliceStart(now, options_.slice);
  absl::MutexLock lock(&tracked->mu);
  ++tracked->requests;
  tracked->dirty = true;
  if (!fold) return;
  ++tracked->sampled;
  // Into the current slice only (one merge a request); a slice leaving the window
  // settles into the rest, and "since start" adds them up when asked.
  auto& slices = tracked->slices;
  if (slices.empty() || slices.back().first < start) slices.emplace_back(start, EmptySplit(spec));
  SplitStatistics& slice = slices.back().second;
  MergeMoments(batch->channels, slice.moments);
  for (size_t c = 0; c < batch->sketches.size(); ++c) {
    MergeSketch(batch->sketches[c], tracked->spec.sketch->max_buckets, slice.sketches[c]);
  }
  for (size_t c = 0; c < batch->fixed_histograms.size(); ++c) {
    MergeFixedHistogram(batch->fixed_histograms[c], slice.fixed_histograms[c]);
  }
  slice.batches += 1;
  slice.samples += batch->samples;
  const absl::Time oldest = start - options_.slice * (options_.slices - 1);
  while (!slices.empty() && slices.front().first < oldest) {
    MergeSplit(slices.front().second, tracked->spec, tracked->settled);
    slices.erase(slices.begin());
  }
}

absl::StatusOr<TrafficSnapshot> TrafficMonitor::Get(const DatasetSpec& spec, int64_t incarnation,
                                                    uint64_t version,
                                                    TrafficWindowKind window) const {
  const absl::Time oldest =
      SliceStart(absl::Now(), options_.slice) - options_.slice * (options_.slices - 1);
  TrafficSnapshot snapshot;
  snapshot.stats = EmptySplit(spec);
  bool found = false;
  DatasetSpec skipping = spec;
  skipping.nonfinite = NonFinitePolicy::kSkip;
  const auto add = [&](uint64_t requests, uint64_t sampled, const SplitStatistics& settled,
                       const std::vector<std::pair<absl::Time, SplitStatistics>>& slices) {
    found = true;
    snapshot.requests += requests;
    snapshot.sampled_requests += sampled;
    const bool all = window == TrafficWindowKind::kSinceStart;
    if (all) MergeSplit(settled, skipping, snapshot.stats);
    for (const auto& [start, stats] : slices) {
      if (all || start >= oldest) MergeSplit(stats, skipping, snapshot.stats);
    }
  };
  if (std::shared_ptr<Tracked> tracked = Find(spec.name, version);
      tracked != nullptr && tracked->incarnation == incarnation) {
    absl::MutexLock lock(&tracked->mu);
    add(tracked->requests, tracked->sampled, tracked->settled, tracked->slices);
  }
  if (store_ != nullptr) {
    NORMD_ASSIGN_OR_RETURN(const std::vector<StoredTraffic> stored, store_->LoadTraffic(spec));
    const std::string replica = store_->TrafficReplica();
    for (const StoredTraffic& other : stored) {
      if (other.replica == replica || other.incarnation != incarnation ||
          other.version != version) {
        continue;
      }
      add(other.requests, other.sampled_requests, other.settled, other.slices);
    }
  }
  if (!found) {
    return absl::NotFoundError(absl::StrCat("no Normalize request has used version ", version,
                                            " of dataset \"", spec.name, "\" yet"));
  }
  return snapshot;
}

std::vector<TrafficKey> TrafficMonitor::Keys() const {
  absl::MutexLock lock(&mu_);
  std::vector<TrafficKey> keys;
  for (const auto& [key, tracked] : tracked_) keys.push_back(key);
  return keys;
}

absl::Status TrafficMonitor::Persist() {
  if (store_ == nullptr) return absl::OkStatus();
  std::vector<std::pair<TrafficKey, std::shared_ptr<Tracked>>> all;
  {
    absl::MutexLock lock(&mu_);
    all.assign(tracked_.begin(), tracked_.end());
  }
  absl::Status first_error = absl::OkStatus();
  for (const auto& [key, tracked] : all) {
    StoredTraffic traffic;
    {
      absl::MutexLock lock(&tracked->mu);
      if (!tracked->dirty) continue;
      traffic.dataset = key.dataset;
      traffic.incarnation = tracked->incarnation;
      traffic.replica = store_->TrafficReplica();
      traffic.version = key.version;
      traffic.requests = tracked->requests;
      traffic.sampled_requests = tracked->sampled;
      traffic.settled = tracked->settled;
      traffic.slices = tracked->slices;
      tracked->dirty = false;
    }
    absl::Status written = store_->PutTraffic(tracked->spec, traffic);
    if (!written.ok()) {
      absl::MutexLock lock(&tracked->mu);
      tracked->dirty = true;
      if (first_error.ok()) first_error = written;
    }
  }
  return first_error;
}

void TrafficMonitor::Forget(absl::string_view dataset) {
  absl::MutexLock lock(&mu_);
  auto first = tracked_.lower_bound(TrafficKey{std::string(dataset), 0});
  auto last = first;
  while (last != tracked_.end() && last->first.dataset == dataset) ++last;
  tracked_.erase(first, last);
}

}  // namespace normd
