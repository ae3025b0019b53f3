// Serialisation of the store's domain records as normd.storage.v1 messages, shared
// by every backend. Each record is one key's value: a dataset's catalogue entry, its
// live statistics, one writer's mark, one frozen snapshot.
#ifndef NORMD_SERVER_STORE_RECORDS_H_
#define NORMD_SERVER_STORE_RECORDS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/store/stored_dataset.h"

namespace normd {

// The catalogue entry: spec, create time, next version and the versions' summaries;
// not the live statistics or the writers, which have records of their own.
std::string EncodeDatasetRecord(const StoredDataset& dataset);
// Fills everything but `live` (left empty for the spec) and `writers`, unless the
// bytes are a record written before those had keys of their own, which held both:
// then `legacy` is set and they are filled from it.
absl::StatusOr<StoredDataset> DecodeDatasetRecord(absl::string_view bytes, bool* legacy = nullptr);

std::string EncodeStatisticsRecord(const DatasetStatistics& stats);
absl::StatusOr<DatasetStatistics> DecodeStatisticsRecord(absl::string_view bytes,
                                                         const DatasetSpec& spec);

std::string EncodeWriterRecord(const WriterMark& mark);
absl::StatusOr<WriterMark> DecodeWriterRecord(absl::string_view bytes);

std::string EncodeSnapshotRecord(const FrozenSnapshot& snapshot);
// `spec` gives the channel count and accumulator kind the record must match.
absl::StatusOr<FrozenSnapshot> DecodeSnapshotRecord(absl::string_view bytes,
                                                    const DatasetSpec& spec);

// One partition of a dataset's live statistics in a shared store (see
// PartitionRecord in storage.proto).
struct StoredPartition {
  DatasetStatistics stats;
  WriterMarks writers;
  uint64_t last_commit = 0;
};

std::string EncodePartitionRecord(const StoredPartition& partition);
absl::StatusOr<StoredPartition> DecodePartitionRecord(absl::string_view bytes,
                                                      const DatasetSpec& spec);

// Only the batches and samples of each split, which a dataset's totals sum.
std::string EncodeTotalsRecord(const DatasetStatistics& stats);
// Adds the record's batches and samples to `totals`' splits.
absl::Status AddTotalsRecord(absl::string_view bytes, DatasetStatistics& totals);

// What Normalize saw with one version (server/engine/traffic_monitor.h keeps it).
std::string EncodeTrafficRecord(const StoredTraffic& traffic);
absl::StatusOr<StoredTraffic> DecodeTrafficRecord(absl::string_view bytes, const DatasetSpec& spec);

}  // namespace normd

#endif  // NORMD_SERVER_STORE_RECORDS_H_
