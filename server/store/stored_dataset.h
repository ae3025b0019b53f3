// The domain records the store keeps: a dataset with its live statistics, and
// immutable frozen snapshots.
#ifndef NORMD_SERVER_STORE_STORED_DATASET_H_
#define NORMD_SERVER_STORE_STORED_DATASET_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "core/dataset_spec.h"
#include "core/dataset_statistics.h"

namespace normd {

struct VersionSummary {
  uint64_t version = 0;
  absl::Time freeze_time;
  uint64_t train_samples = 0;
  std::vector<std::string> gate_findings;  // a freeze gate's, with action MARK
};

// A writer's place in exactly-once ingest: its last committed batch sequence.
struct WriterMark {
  uint64_t sequence = 0;
  absl::Time commit_time;
};

// Writers' marks by writer id.
using WriterMarks = std::map<std::string, WriterMark, std::less<>>;

// The writer whose last commit is the oldest: the one a full memory of writers forgets
// first. `writers` must not be empty.
inline WriterMarks::const_iterator OldestWriter(const WriterMarks& writers) {
  auto oldest = writers.begin();
  for (auto it = writers.begin(); it != writers.end(); ++it) {
    if (it->second.commit_time < oldest->second.commit_time) oldest = it;
  }
  return oldest;
}

struct StoredDataset {
  DatasetSpec spec;
  absl::Time create_time;
  // Which incarnation of the name this is, in a shared store (etcd: the catalogue
  // key's create revision), so that a write meant for a dataset that was deleted and
  // re-created meanwhile fails; 0 where a store needs none.
  int64_t generation = 0;
  // A shared store's id of the write that last changed the catalogue entry; 0 elsewhere.
  uint64_t last_write = 0;
  uint64_t next_version = 1;
  DatasetStatistics live;
  std::vector<VersionSummary> versions;  // ascending
  WriterMarks writers;
  // The "prod" pin: what version 0 resolves to while set; and what a rollback restores.
  uint64_t pinned_version = 0;
  uint64_t previous_pinned_version = 0;
  bool pin_rollback = false;  // a pin change since the last rollback (previous may be 0)
};

struct FrozenSnapshot {
  uint64_t version = 0;
  absl::Time freeze_time;
  DatasetStatistics stats;
};

// The live traffic of one version: what Normalize saw, since the first request and in
// time slices (each keyed by its start).
struct StoredTraffic {
  std::string dataset;
  // Which incarnation of the name it belongs to (the dataset's create time, in Unix
  // microseconds): a record left by a deleted dataset never counts for a new one.
  int64_t incarnation = 0;
  std::string replica;  // TrafficStore::TrafficReplica() of the writer
  uint64_t version = 0;
  uint64_t requests = 0;
  uint64_t sampled_requests = 0;
  SplitStatistics settled;  // everything older than `slices`: since start = settled + slices
  std::vector<std::pair<absl::Time, SplitStatistics>> slices;
};

}  // namespace normd

#endif  // NORMD_SERVER_STORE_STORED_DATASET_H_
