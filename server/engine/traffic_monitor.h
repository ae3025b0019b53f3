// The live traffic: what Normalize sees while it normalises with a frozen version, kept
// per (dataset, version) as the same exact moments, sketches and fixed histograms a
// split keeps, so that drift against the version's training split is measured with
// the same arithmetic as everything else.
//
// Each request is counted; its input is folded in whole with probability
// `sample_rate` (a Bernoulli draw per request, so the folded statistics are exact
// moments of the sampled requests, and the rate is checkable against its binomial
// bound). Two windows: since start, and the last hour as 5-minute slices. Non-finite
// inputs are skipped (traffic never fails a request). Persist() writes what changed to
// the store, as this replica's records; Get() adds the other replicas' records, so
// that over a shared store every replica answers for the whole cluster (as of each
// replica's last write).
#ifndef NORMD_SERVER_ENGINE_TRAFFIC_MONITOR_H_
#define NORMD_SERVER_ENGINE_TRAFFIC_MONITOR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/dataset_spec.h"
#include "core/dataset_statistics.h"
#include "core/tensor_view.h"
#include "core/worker_pool.h"
#include "server/store/traffic_store.h"

namespace normd {

struct TrafficOptions {
  // The share of Normalize requests whose input is folded in; 0 turns traffic off.
  double sample_rate = 0.05;
  absl::Duration slice = absl::Minutes(5);
  int slices = 12;  // the "last hour" window
  // Versions of one dataset tracked at once; the oldest goes first.
  size_t max_versions_per_dataset = 4;
};

enum class TrafficWindowKind { kSinceStart, kLastHour };

struct TrafficSnapshot {
  uint64_t requests = 0;
  uint64_t sampled_requests = 0;
  SplitStatistics stats;
};

// One tracked (dataset, version), for the metrics.
struct TrafficKey {
  std::string dataset;
  uint64_t version = 0;
  friend bool operator<(const TrafficKey& a, const TrafficKey& b) {
    return std::tie(a.dataset, a.version) < std::tie(b.dataset, b.version);
  }
};

class TrafficMonitor {
 public:
  // `store` (may be null: nothing is persisted) and `pool` must outlive the monitor.
  TrafficMonitor(TrafficOptions options, TrafficStore* store, WorkerPool* pool);

  bool enabled() const { return options_.sample_rate > 0; }
  const TrafficOptions& options() const { return options_; }

  // Takes back this replica's records of `spec`'s dataset (of this `incarnation`:
  // StoredTraffic::incarnation).
  absl::Status Load(const DatasetSpec& spec, int64_t incarnation);

  // A Normalize with `version` of the dataset `spec` describes, whose input passed
  // validation against it. Cheap unless the draw folds it.
  void Observe(const DatasetSpec& spec, int64_t incarnation, uint64_t version,
               const ValidatedTensor& input);

  // This replica's traffic and the other replicas' stored records; NOT_FOUND naming
  // the dataset and version when no request used it anywhere.
  absl::StatusOr<TrafficSnapshot> Get(const DatasetSpec& spec, int64_t incarnation,
                                      uint64_t version, TrafficWindowKind window) const;

  std::vector<TrafficKey> Keys() const;
  // Writes every version whose traffic changed since it was last written.
  absl::Status Persist();
  void Forget(absl::string_view dataset);

 private:
  struct Tracked {
    DatasetSpec spec;  // the dataset's, with non-finite values skipped
    int64_t incarnation = 0;
    absl::Mutex mu;
    uint64_t requests ABSL_GUARDED_BY(mu) = 0;
    uint64_t sampled ABSL_GUARDED_BY(mu) = 0;
    SplitStatistics settled ABSL_GUARDED_BY(mu);  // since start = settled + slices
    std::vector<std::pair<absl::Time, SplitStatistics>> slices ABSL_GUARDED_BY(mu);
    bool dirty ABSL_GUARDED_BY(mu) = false;
  };

  std::shared_ptr<Tracked> Track(const DatasetSpec& spec, int64_t incarnation, uint64_t version);
  std::shared_ptr<Tracked> Find(absl::string_view dataset, uint64_t version) const;
  bool Draw();

  const TrafficOptions options_;
  TrafficStore* const store_;
  WorkerPool* const pool_;
  mutable absl::Mutex mu_;
  std::map<TrafficKey, std::shared_ptr<Tracked>> tracked_ ABSL_GUARDED_BY(mu_);
  absl::Mutex bits_mu_;
  absl::BitGen bits_ ABSL_GUARDED_BY(bits_mu_);
};

}  // namespace normd

#endif  // NORMD_SERVER_ENGINE_TRAFFIC_MONITOR_H_
