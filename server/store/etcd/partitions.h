// The etcd store's partitions of a dataset's live statistics, as pure functions of what
// was read: their size limit, their merge into the live statistics, what a commit does
// to one, and the fold of the oldest into the shared one. No etcd calls here.
//
// A named writer's partition is its own key, so data-loader workers never contend;
// ".shared" (no writer id can start with '.') takes writers without a name, every
// writer of a running-average dataset (order matters there: one key, serialised), and
// the writers folded into it once a dataset has many partitions.
#ifndef NORMD_SERVER_STORE_ETCD_PARTITIONS_H_
#define NORMD_SERVER_STORE_ETCD_PARTITIONS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/dataset_spec.h"
#include "core/dataset_statistics.h"
#include "server/store/etcd/etcd_keys.h"
#include "server/store/etcd/etcd_txn.h"
#include "server/store/records.h"
#include "server/store/shared_dataset_store.h"

namespace normd {

inline constexpr absl::string_view kSharedPartition = ".shared";
// etcd's default --max-request-bytes is 1.5 MiB; a partition's statistics get 1 MiB
// of it, its writer marks and the rest of the Txn what is left.
inline constexpr size_t kMaxStatisticsBytes = size_t{1} << 20;

// The most channels a dataset of `spec` can have in this store: a partition and a
// snapshot are one etcd value each, and etcd refuses a request over 1.5 MiB by
// default. Quantile sketches count at their worst (max_buckets in every split).
int64_t EtcdMaxChannels(const DatasetSpec& spec);
// Worst-case bytes of one channel's sketches and fixed histograms in a partition.
size_t SketchBytesPerChannel(const DatasetSpec& spec);

// A partition as a read found it.
struct Partition {
  std::string name;
  int64_t mod_revision = 0;  // 0: absent
  StoredPartition record;
};

// The live statistics of a dataset from its partitions, merged in the order given
// (key order), so that every replica computes the same bits.
DatasetStatistics MergePartitions(const DatasetSpec& spec, const std::vector<Partition>& partitions);

// What a commit does to a partition as read: apply the delta (`next`), or nothing
// because the writer committed these batches already (`committed` covers them).
struct CommitDecision {
  bool apply = false;
  uint64_t committed = 0;  // the writer's sequence before this commit
  StoredPartition next;
};
// `shared_marks`: the shared partition's marks, where a folded writer's mark lives
// (null when the partition read is the shared one, or there is none). ABORTED when
// another stream of the writer moved past the commit's first batch without covering
// its last.
absl::StatusOr<CommitDecision> DecideCommit(const SharedCommit& commit,
                                            const StoredPartition& partition,
                                            const StoredPartition* shared_marks,
                                            uint64_t commit_id);

// The guarded Txn that folds a dataset's oldest partitions into its shared one (their
// statistics merged, their writers' marks kept), when it has more than `fold_above`;
// nothing when it has not, or when the dataset is a running average. `folded` gets
// how many partitions it moves. Every partition it moves is guarded by the revision
// it was read at, so each is counted once however the Txn fares.
std::optional<EtcdTxn> FoldTxn(const EtcdKeys& keys, const StoredDataset& dataset,
                               const std::vector<Partition>& partitions, size_t fold_above,
                               uint64_t fold_id, size_t* folded);

}  // namespace normd

#endif  // NORMD_SERVER_STORE_ETCD_PARTITIONS_H_
