// Exactly-once ingest and concurrency: resends, racing streams, sequence checks,
// readers during freezes.
#include <atomic>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/server/service_fixture.h"

namespace normd::testing {
namespace {

TEST_F(ServiceTest, AWritersResentBatchesAreCountedOnce) {
  Create("tabular", v1::LAYOUT_NC, 2);
  Create("clean", v1::LAYOUT_NC, 2);
  ASSERT_TRUE(Ingest("clean", v1::SPLIT_TRAIN, NumberedBatches(1, 5)).ok());
  const std::string clean = StatsBytes("clean", 0);

  absl::StatusOr<v1::IngestResponse> first =
      Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(1, 2), {"job-7", 1});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->batches(), 2u);
  EXPECT_EQ(first->writer_sequence(), 2u);
  // The client lost the reply and resends 1..2 together with 3..5.
  absl::StatusOr<v1::IngestResponse> resent =
      Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(1, 5), {"job-7", 1});
  ASSERT_TRUE(resent.ok()) << resent.status();
  EXPECT_EQ(resent->duplicate_batches(), 2u);
  EXPECT_EQ(resent->batches(), 3u);
  EXPECT_EQ(resent->writer_sequence(), 5u);
  // And once more, after a restart: nothing new.
  RestartServer();
  resent = Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(1, 5), {"job-7", 1});
  ASSERT_TRUE(resent.ok()) << resent.status();
  EXPECT_EQ(resent->duplicate_batches(), 5u);
  EXPECT_EQ(resent->batches(), 0u);

  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats("tabular", 0, v1::SPLIT_TRAIN);
  absl::StatusOr<v1::GetStatsResponse> expected = client_->GetStats("clean", 0, v1::SPLIT_TRAIN);
  ASSERT_TRUE(stats.ok() && expected.ok());
  EXPECT_EQ(stats->stats().SerializeAsString(), expected->stats().SerializeAsString());
  EXPECT_EQ(StatsBytes("clean", 0), clean);
}

TEST_F(ServiceTest, ConcurrentResendsOfOneWriterApplyEachBatchOnce) {
  Create("tabular", v1::LAYOUT_NC, 2);
  Create("clean", v1::LAYOUT_NC, 2);
  ASSERT_TRUE(Ingest("clean", v1::SPLIT_TRAIN, NumberedBatches(1, 12)).ok());
  // Eight clients resend overlapping ranges of one writer at once; an ABORTED stream
  // (overtaken by another's commit) is resent, as a client would.
  std::vector<std::thread> threads;
  std::atomic<int> failures = 0;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const uint64_t last = 4 + t;  // streams 1..4, 1..5, ..., 1..11
      for (int attempt = 0; attempt < 100; ++attempt) {
        absl::StatusOr<v1::IngestResponse> r =
            Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(1, last), {"shared", 1});
        if (r.ok()) return;
        if (r.status().code() != absl::StatusCode::kAborted) break;
      }
      ++failures;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures, 0);
  ASSERT_TRUE(Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(1, 12), {"shared", 1}).ok());
  EXPECT_EQ(client_->GetStats("tabular", 0, v1::SPLIT_TRAIN)->stats().SerializeAsString(),
            client_->GetStats("clean", 0, v1::SPLIT_TRAIN)->stats().SerializeAsString());
}

TEST_F(ServiceTest, SequenceGapsAndBadIdentitiesChangeNothing) {
  Create("tabular", v1::LAYOUT_NC, 2);
  ASSERT_TRUE(Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(1, 4), {"w", 1}).ok());
  const std::string before = StatsBytes("tabular", 0);
  ExpectCode(Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(6, 7), {"w", 6}).status(),
             absl::StatusCode::kFailedPrecondition,
             "writer \"w\" has committed up to sequence 4 in dataset \"tabular\"; the next "
             "batch must be 5, got 6");
  ExpectCode(Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(1, 1), {"new-writer", 3}).status(),
             absl::StatusCode::kFailedPrecondition, "the next batch must be 1, got 3");
  ExpectCode(Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(1, 1), {"w/../x", 5}).status(),
             absl::StatusCode::kInvalidArgument, "writer_id \"w/../x\" has a disallowed character");
  ExpectCode(Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(1, 1), {"w", 0}).status(),
             absl::StatusCode::kInvalidArgument, "sequences start at 1");

  // A sequence that skips within the stream, and a writer that changes mid-stream,
  // sent message by message.
  const auto raw_ingest = [&](std::vector<std::pair<std::string, uint64_t>> identities) {
    auto stub = v1::Normd::NewStub(
        grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    v1::IngestResponse response;
    auto writer = stub->Ingest(&context, &response);
    for (const auto& [writer_id, sequence] : identities) {
      v1::IngestRequest request;
      request.set_dataset("tabular");
      request.set_split(v1::SPLIT_TRAIN);
      request.set_writer_id(writer_id);
      request.set_sequence(sequence);
      *request.mutable_batch() = NumberedBatch(sequence);
      if (!writer->Write(request)) break;
    }
    writer->WritesDone();
    return FromGrpcStatus(writer->Finish());
  };
  ExpectCode(raw_ingest({{"w", 5}, {"w", 7}}), absl::StatusCode::kInvalidArgument,
             "batch 1 rejected, nothing from this stream was applied: sequence must rise by one "
             "within a stream: expected 6, got 7");
  ExpectCode(raw_ingest({{"w", 5}, {"v", 6}}), absl::StatusCode::kInvalidArgument,
             "writer_id \"v\" differs from the stream's first batch, which named \"w\"");
  ExpectCode(raw_ingest({{"", 5}}), absl::StatusCode::kInvalidArgument,
             "sequence 5 without a writer_id");
  EXPECT_EQ(StatsBytes("tabular", 0), before);
  // Later batches may leave the writer empty; the stream keeps its first one.
  EXPECT_TRUE(raw_ingest({{"w", 5}, {"", 6}}).ok());
  EXPECT_EQ(client_->GetStats("tabular", 0, v1::SPLIT_TRAIN)->stats().batches(), 6u);
}

TEST_F(ServiceTest, ConcurrentStreamsAreEachCountedOnce) {
  Create("shared", v1::LAYOUT_NC, 2);
  constexpr int kThreads = 4;
  constexpr int kStreamsPerThread = 5;
  std::vector<std::vector<double>> sent(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int s = 0; s < kStreamsPerThread; ++s) {
        const std::vector<double> values = GaussianValues(2 * 64, 1e4 * t, 1.0 + s, t * 100 + s);
        absl::StatusOr<v1::IngestResponse> response =
            Ingest("shared", v1::SPLIT_TRAIN, {Float64Tensor({64, 2}, values)});
        EXPECT_TRUE(response.ok()) << response.status();
        sent[t].insert(sent[t].end(), values.begin(), values.end());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<double> channel0;
  for (const auto& values : sent) {
    for (size_t i = 0; i < values.size(); i += 2) channel0.push_back(values[i]);
  }
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats("shared", 0, v1::SPLIT_TRAIN);
  ASSERT_TRUE(stats.ok());
  const auto exact = ComputeExactMoments(channel0);
  EXPECT_EQ(stats->stats().count(0), exact.count);
  EXPECT_EQ(stats->stats().batches(), uint64_t{kThreads * kStreamsPerThread});
  EXPECT_LE(RelativeError(stats->stats().mean(0), exact.Mean()), 1e-12);
  EXPECT_LE(RelativeError(stats->stats().variance(0), exact.PopulationVariance()), 1e-12);
}

// Readers normalise against the latest version while a writer ingests and freezes new
// ones. Each reply must be exactly the output of the one version it names, computed again
// afterwards with that version pinned: a half-published version (some channels old, some
// new) would match none. The writer publishes version k + 1 only after every reader has
// been served version k, so every version is seen while the next one is being written.
TEST_F(ServiceTest, NormalizeNeverSeesAHalfUpdatedVersion) {
  constexpr int kChannels = 256;
  constexpr uint64_t kVersions = 10;
  constexpr int kReaders = 2;
  Create("moving", v1::LAYOUT_NC, kChannels);
  auto batch = [&](uint64_t k) {
    return Float64Tensor({4, kChannels}, GaussianValues(4 * kChannels, 100.0 * k, 1.0 + k, k));
  };
  ASSERT_TRUE(Ingest("moving", v1::SPLIT_TRAIN, {batch(1)}).ok());
  ASSERT_TRUE(client_->Freeze("moving").ok());

  v1::NormalizeRequest request;
  request.set_dataset("moving");
  request.mutable_zscore();
  *request.mutable_input() =
      Float64Tensor({2, kChannels}, GaussianValues(2 * kChannels, 0, 500, 99));
  std::atomic<uint64_t> newest_possible{1};  // raised before each Freeze is sent
  std::vector<std::atomic<uint64_t>> served(kReaders);
  std::vector<std::vector<v1::NormalizeResponse>> replies(kReaders);
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    served[r] = 0;
    readers.emplace_back([&, r] {
      while (served[r].load() < kVersions) {
        absl::StatusOr<v1::NormalizeResponse> reply = client_->Normalize(request);
        ASSERT_TRUE(reply.ok()) << reply.status();
        EXPECT_LE(reply->version(), newest_possible.load());
        served[r] = std::max(served[r].load(), reply->version());
        replies[r].push_back(*std::move(reply));
      }
    });
  }
  for (uint64_t k = 2; k <= kVersions; ++k) {
    for (const std::atomic<uint64_t>& reader : served) {
      while (reader.load() < k - 1) std::this_thread::yield();
    }
    ASSERT_TRUE(Ingest("moving", v1::SPLIT_TRAIN, {batch(k)}).ok());
    newest_possible = k;
    ASSERT_TRUE(client_->Freeze("moving").ok());
  }
  for (std::thread& reader : readers) reader.join();

  std::map<uint64_t, std::string> pinned;
  for (uint64_t k = 1; k <= kVersions; ++k) {
    request.set_version(k);
    absl::StatusOr<v1::NormalizeResponse> reply = client_->Normalize(request);
    ASSERT_TRUE(reply.ok()) << reply.status();
    pinned[k] = reply->output().data();
  }
  for (uint64_t k = 2; k <= kVersions; ++k) ASSERT_NE(pinned[k], pinned[k - 1]);
  size_t checked = 0;
  for (const auto& reader_replies : replies) {
    for (const v1::NormalizeResponse& reply : reader_replies) {
      ASSERT_TRUE(pinned.contains(reply.version())) << reply.version();
      EXPECT_EQ(reply.output().data(), pinned[reply.version()]) << "version " << reply.version();
      ++checked;
    }
  }
  EXPECT_GE(checked, kReaders * kVersions);
}

}  // namespace
}  // namespace normd::testing
