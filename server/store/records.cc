#include "server/store/records.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "normd/storage/v1/storage.pb.h"
#include "wire/core_proto.h"

namespace normd {
namespace {
namespace pb = ::normd::storage::v1;

absl::Status MomentsFromRecord(const pb::MomentsRecord& record, size_t channels,
                               std::vector<ChannelMoments>& out) {
  std::optional<std::vector<ChannelMoments>> moments = MomentsFromArrays(record, channels);
  if (!moments.has_value()) {
    return absl::DataLossError(
        absl::StrCat("stored moments do not hold ", channels, " channels in every field"));
  }
  out = *std::move(moments);
  return absl::OkStatus();
}

void SplitToRecord(const SplitStatistics& s, pb::SplitRecord* record) {
  record->set_batches(s.batches);
  record->set_samples(s.samples);
  AppendMomentArrays(s.moments, record->mutable_moments());
  for (const QuantileSketch& sketch : s.sketches) SketchToProto(sketch, record->add_sketches());
  for (const FixedHistogram& histogram : s.fixed_histograms) {
    FixedHistogramToProto(histogram, record->add_fixed_histograms());
  }
}

void StatisticsToRecord(const DatasetStatistics& stats, pb::StatisticsRecord* out) {
  for (Split split : kAllSplits) {
    pb::SplitRecord* record = out->add_splits();
    record->set_split(SplitToProto(split));
    SplitToRecord(stats.split(split), record);
  }
  if (stats.running.has_value()) {
    pb::RunningRecord* running = out->mutable_running();
    running->mutable_mean()->Add(stats.running->mean.begin(), stats.running->mean.end());
    running->mutable_var()->Add(stats.running->var.begin(), stats.running->var.end());
    running->set_num_batches_tracked(stats.running->num_batches_tracked);
  }
}

// `s` holds the spec's empty statistics of a split.
absl::Status SplitFromRecord(const pb::SplitRecord& split_record, const DatasetSpec& spec,
                             SplitStatistics& s) {
  const auto channels = static_cast<size_t>(spec.channels);
  s.batches = split_record.batches();
  s.samples = split_record.samples();
  NORMD_RETURN_IF_ERROR(MomentsFromRecord(split_record.moments(), channels, s.moments));
  if (!spec.histogram_edges.empty()) {
    if (split_record.fixed_histograms_size() != static_cast<int>(channels)) {
      return absl::DataLossError(absl::StrCat("stored statistics hold ",
                                              split_record.fixed_histograms_size(),
                                              " fixed histograms, expected ", channels));
    }
    for (size_t c = 0; c < channels; ++c) {
      s.fixed_histograms[c] =
          FixedHistogramFromProto(split_record.fixed_histograms(static_cast<int>(c)));
      if (s.fixed_histograms[c].counts.size() + 1 != spec.histogram_edges.Of(c).size()) {
        return absl::DataLossError(absl::StrCat(
            "stored fixed histogram of channel ", c, " holds ", s.fixed_histograms[c].counts.size(),
            " bins, expected ", spec.histogram_edges.Of(c).size() - 1));
      }
    }
  }
  if (!spec.sketch.has_value()) return absl::OkStatus();
  if (split_record.sketches_size() != static_cast<int>(channels)) {
    return absl::DataLossError(absl::StrCat("stored statistics hold ", split_record.sketches_size(),
                                            " quantile sketches, expected ", channels));
  }
  for (size_t c = 0; c < channels; ++c) {
    NORMD_ASSIGN_OR_RETURN(s.sketches[c],
                           SketchFromProto(split_record.sketches(static_cast<int>(c)), "sketch"),
                           absl::DataLossError(_.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<DatasetStatistics> StatisticsFromRecord(const pb::StatisticsRecord& record,
                                                       const DatasetSpec& spec) {
  DatasetStatistics stats = DatasetStatistics::Empty(spec);
  const auto channels = static_cast<size_t>(spec.channels);
  if (record.splits_size() != static_cast<int>(kAllSplits.size())) {
    return absl::DataLossError(absl::StrCat("stored statistics hold ", record.splits_size(),
                                            " splits, expected ", kAllSplits.size()));
  }
  for (const pb::SplitRecord& split_record : record.splits()) {
    NORMD_ASSIGN_OR_RETURN(const Split split, SplitFromProto(split_record.split(), false),
                           absl::DataLossError(_.message()));
    NORMD_RETURN_IF_ERROR(SplitFromRecord(split_record, spec, stats.split(split)));
  }
  if (stats.running.has_value()) {
    const pb::RunningRecord& running = record.running();
    if (running.mean_size() != static_cast<int>(channels) ||
        running.var_size() != static_cast<int>(channels)) {
      return absl::DataLossError(
          absl::StrCat("stored running average does not hold ", channels, " channels"));
    }
    stats.running->mean.assign(running.mean().begin(), running.mean().end());
    stats.running->var.assign(running.var().begin(), running.var().end());
    stats.running->num_batches_tracked = running.num_batches_tracked();
  }
  return stats;
}

void WriterMarkToRecord(const WriterMark& mark, pb::WriterRecord* out) {
  out->set_sequence(mark.sequence);
  TimeToProto(mark.commit_time, out->mutable_commit_time());
}

WriterMark WriterMarkFromRecord(const pb::WriterRecord& record) {
  return WriterMark{record.sequence(), TimeFromProto(record.commit_time())};
}

// A record's message; a damaged one is DATA_LOSS naming `what` it was.
template <typename Record>
absl::StatusOr<Record> ParseRecord(absl::string_view bytes, absl::string_view what) {
  Record record;
  if (!record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(absl::StrCat(what, " record does not parse"));
  }
  return record;
}

}  // namespace

std::string EncodeDatasetRecord(const StoredDataset& dataset) {
  pb::DatasetRecord record;
  *record.mutable_spec() = DatasetSpecToProto(dataset.spec);
  TimeToProto(dataset.create_time, record.mutable_create_time());
  record.set_next_version(dataset.next_version);
  record.set_last_write(dataset.last_write);
  for (const VersionSummary& v : dataset.versions) {
    v1::VersionInfo* info = record.add_versions();
    info->set_version(v.version);
    TimeToProto(v.freeze_time, info->mutable_freeze_time());
    info->set_train_samples(v.train_samples);
    for (const std::string& finding : v.gate_findings) info->add_gate_findings(finding);
  }
  record.set_pinned_version(dataset.pinned_version);
  record.set_previous_pinned_version(dataset.previous_pinned_version);
  record.set_pin_rollback(dataset.pin_rollback);
  return record.SerializeAsString();
}

absl::StatusOr<StoredDataset> DecodeDatasetRecord(absl::string_view bytes, bool* legacy) {
  NORMD_ASSIGN_OR_RETURN(const pb::DatasetRecord record,
                         ParseRecord<pb::DatasetRecord>(bytes, "dataset"));
  StoredDataset dataset;
  NORMD_ASSIGN_OR_RETURN(
      dataset.spec, DatasetSpecFromProto(record.spec(), UnsetSketch::kNone),
      absl::DataLossError(absl::StrCat("stored spec is invalid: ", _.message())));
  dataset.create_time = TimeFromProto(record.create_time());
  dataset.next_version = record.next_version();
  dataset.last_write = record.last_write();
  for (const v1::VersionInfo& info : record.versions()) {
    dataset.versions.push_back(
        {info.version(), TimeFromProto(info.freeze_time()), info.train_samples(),
         std::vector<std::string>(info.gate_findings().begin(), info.gate_findings().end())});
  }
  dataset.pinned_version = record.pinned_version();
  dataset.previous_pinned_version = record.previous_pinned_version();
  dataset.pin_rollback = record.pin_rollback();
  const bool old_layout = record.has_live();
  if (legacy != nullptr) *legacy = old_layout;
  if (!old_layout) {
    dataset.live = DatasetStatistics::Empty(dataset.spec);
    return dataset;
  }
  NORMD_ASSIGN_OR_RETURN(dataset.live, StatisticsFromRecord(record.live(), dataset.spec));
  for (const auto& [writer, mark] : record.writers()) {
    dataset.writers.emplace(writer, WriterMarkFromRecord(mark));
  }
  return dataset;
}

std::string EncodeStatisticsRecord(const DatasetStatistics& stats) {
  pb::StatisticsRecord record;
  StatisticsToRecord(stats, &record);
  return record.SerializeAsString();
}

absl::StatusOr<DatasetStatistics> DecodeStatisticsRecord(absl::string_view bytes,
                                                         const DatasetSpec& spec) {
  NORMD_ASSIGN_OR_RETURN(const pb::StatisticsRecord record,
                         ParseRecord<pb::StatisticsRecord>(bytes, "statistics"));
  return StatisticsFromRecord(record, spec);
}

std::string EncodeWriterRecord(const WriterMark& mark) {
  pb::WriterRecord record;
  WriterMarkToRecord(mark, &record);
  return record.SerializeAsString();
}

absl::StatusOr<WriterMark> DecodeWriterRecord(absl::string_view bytes) {
  NORMD_ASSIGN_OR_RETURN(const pb::WriterRecord record,
                         ParseRecord<pb::WriterRecord>(bytes, "writer"));
  return WriterMarkFromRecord(record);
}

std::string EncodeSnapshotRecord(const FrozenSnapshot& snapshot) {
  pb::SnapshotRecord record;
  record.set_version(snapshot.version);
  TimeToProto(snapshot.freeze_time, record.mutable_freeze_time());
  StatisticsToRecord(snapshot.stats, record.mutable_stats());
  return record.SerializeAsString();
}

absl::StatusOr<FrozenSnapshot> DecodeSnapshotRecord(absl::string_view bytes,
                                                    const DatasetSpec& spec) {
  NORMD_ASSIGN_OR_RETURN(const pb::SnapshotRecord record,
                         ParseRecord<pb::SnapshotRecord>(bytes, "snapshot"));
  FrozenSnapshot snapshot;
  NORMD_ASSIGN_OR_RETURN(snapshot.stats, StatisticsFromRecord(record.stats(), spec));
  snapshot.version = record.version();
  snapshot.freeze_time = TimeFromProto(record.freeze_time());
  return snapshot;
}

std::string EncodePartitionRecord(const StoredPartition& partition) {
  pb::PartitionRecord record;
  StatisticsToRecord(partition.stats, record.mutable_stats());
  for (const auto& [writer, mark] : partition.writers) {
    WriterMarkToRecord(mark, &(*record.mutable_writers())[writer]);
  }
  record.set_last_commit(partition.last_commit);
  // Deterministic: the same partition is the same bytes on every replica.
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  record.SerializeToCodedStream(&coded);
  coded.Trim();
  return bytes;
}

absl::StatusOr<StoredPartition> DecodePartitionRecord(absl::string_view bytes,
                                                      const DatasetSpec& spec) {
  NORMD_ASSIGN_OR_RETURN(const pb::PartitionRecord record,
                         ParseRecord<pb::PartitionRecord>(bytes, "partition"));
  StoredPartition partition;
  NORMD_ASSIGN_OR_RETURN(partition.stats, StatisticsFromRecord(record.stats(), spec));
  for (const auto& [writer, mark] : record.writers()) {
    partition.writers.emplace(writer, WriterMarkFromRecord(mark));
  }
  partition.last_commit = record.last_commit();
  return partition;
}

std::string EncodeTotalsRecord(const DatasetStatistics& stats) {
  pb::StatisticsRecord record;
  for (Split split : kAllSplits) {
    pb::SplitRecord* out = record.add_splits();
    out->set_split(SplitToProto(split));
    out->set_batches(stats.split(split).batches);
    out->set_samples(stats.split(split).samples);
  }
  return record.SerializeAsString();
}

absl::Status AddTotalsRecord(absl::string_view bytes, DatasetStatistics& totals) {
  NORMD_ASSIGN_OR_RETURN(const pb::StatisticsRecord record,
                         ParseRecord<pb::StatisticsRecord>(bytes, "totals"));
  for (const pb::SplitRecord& split_record : record.splits()) {
    NORMD_ASSIGN_OR_RETURN(const Split split, SplitFromProto(split_record.split(), false),
                           absl::DataLossError(_.message()));
    totals.split(split).batches += split_record.batches();
    totals.split(split).samples += split_record.samples();
  }
  return absl::OkStatus();
}

std::string EncodeTrafficRecord(const StoredTraffic& traffic) {
  pb::TrafficRecord record;
  record.set_version(traffic.version);
  record.set_requests(traffic.requests);
  record.set_sampled_requests(traffic.sampled_requests);
  record.set_replica(traffic.replica);
  record.set_incarnation(traffic.incarnation);
  SplitToRecord(traffic.settled, record.mutable_settled());
  for (const auto& [start, stats] : traffic.slices) {
    pb::TrafficRecord::Slice* slice = record.add_slices();
    slice->set_start_unix_seconds(absl::ToUnixSeconds(start));
    SplitToRecord(stats, slice->mutable_stats());
  }
  return record.SerializeAsString();
}

absl::StatusOr<StoredTraffic> DecodeTrafficRecord(absl::string_view bytes,
                                                  const DatasetSpec& spec) {
  NORMD_ASSIGN_OR_RETURN(const pb::TrafficRecord record,
                         ParseRecord<pb::TrafficRecord>(bytes, "traffic"));
  const SplitStatistics empty = DatasetStatistics::Empty(spec).split(Split::kTrain);
  StoredTraffic traffic;
  traffic.version = record.version();
  traffic.requests = record.requests();
  traffic.sampled_requests = record.sampled_requests();
  traffic.replica = record.replica();
  traffic.incarnation = record.incarnation();
  traffic.settled = empty;
  NORMD_RETURN_IF_ERROR(SplitFromRecord(record.settled(), spec, traffic.settled));
  for (const pb::TrafficRecord::Slice& slice : record.slices()) {
    SplitStatistics stats = empty;
    NORMD_RETURN_IF_ERROR(SplitFromRecord(slice.stats(), spec, stats));
    traffic.slices.emplace_back(absl::FromUnixSeconds(slice.start_unix_seconds()),
                                std::move(stats));
  }
  return traffic;
}

}  // namespace normd
