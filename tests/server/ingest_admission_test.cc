// Ingest streams that go quiet must not lock writers out: each caller holds at most
// its share of the slots, and a stream idle past the timeout is cancelled with
// nothing applied. A real server; idle streams are real client streams that sent one
// batch and then nothing.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "tests/server/service_fixture.h"

namespace normd::testing {
namespace {

// Waits until the server serves `count` Ingest streams (they hold their slots once
// the server has seen them).
void AwaitActiveIngests(const NormdServer& server, int count) {
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (server.service().active_ingests() != count && absl::Now() < give_up) {
    std::this_thread::yield();
  }
  ASSERT_EQ(server.service().active_ingests(), count);
}

TEST_F(ServiceTest, AQuietCallerHoldsOnlyItsShareOfTheIngestSlots) {
  const std::string tokens = dir_.path() + "/tokens";
  std::ofstream(tokens) << "admin idler-token-0123456789 idler\n"
                           "writer writer-token-0123456789 writer\n";
  RestartServer([&](ServerOptions& options) {
    options.tokens_file = tokens;
    options.limits.max_concurrent_ingests = 64;
    options.limits.max_ingests_per_caller = 4;
  });
  absl::StatusOr<std::unique_ptr<NormdClient>> idler =
      NormdClient::Connect(server_->address(), {.token = "idler-token-0123456789"});
  absl::StatusOr<std::unique_ptr<NormdClient>> writer =
      NormdClient::Connect(server_->address(), {.token = "writer-token-0123456789"});
  ASSERT_TRUE(idler.ok() && writer.ok());
  v1::DatasetSpec spec;
  spec.set_name("tabular");
  spec.set_layout(v1::LAYOUT_NC);
  spec.set_channels(2);
  ASSERT_TRUE((*idler)->CreateDataset(spec).ok());

  std::vector<std::unique_ptr<IngestStream>> quiet;
  for (uint64_t k = 1; k <= 4; ++k) {
    quiet.push_back((*idler)->StartIngest("tabular"));
    ASSERT_TRUE(quiet.back()->Write(v1::SPLIT_TRAIN, NumberedBatch(k)).ok());
  }
  AwaitActiveIngests(*server_, 4);
  std::unique_ptr<IngestStream> fifth = (*idler)->StartIngest("tabular");
  (void)fifth->Write(v1::SPLIT_TRAIN, NumberedBatch(5));
  ExpectCode(fifth->Finish().status(), absl::StatusCode::kResourceExhausted,
             "this caller already has 4 Ingest streams open, its share");

  // Another caller fits while the quiet ones idle.
  std::unique_ptr<IngestStream> stream = (*writer)->StartIngest("tabular");
  ASSERT_TRUE(stream->Write(v1::SPLIT_TRAIN, NumberedBatch(9)).ok());
  absl::StatusOr<v1::IngestResponse> fitted = stream->Finish();
  ASSERT_TRUE(fitted.ok()) << fitted.status();
  EXPECT_EQ(fitted->batches(), 1u);
  for (std::unique_ptr<IngestStream>& s : quiet) EXPECT_TRUE(s->Finish().ok());
  EXPECT_EQ((*writer)->GetStats("tabular", 0, v1::SPLIT_TRAIN)->stats().batches(), 5u);
}

TEST_F(ServiceTest, AnIdleIngestStreamIsCancelledWithNothingApplied) {
  RestartServer([](ServerOptions& options) {
    options.limits.max_concurrent_ingests = 8;
    options.limits.ingest_idle_timeout = absl::Milliseconds(300);
  });
  Create("tabular", v1::LAYOUT_NC, 2);
  const std::string before = StatsBytes("tabular", 0);
  std::vector<std::unique_ptr<IngestStream>> quiet;
  for (uint64_t k = 1; k <= 8; ++k) {
    quiet.push_back(client_->StartIngest("tabular"));
    ASSERT_TRUE(quiet.back()->Write(v1::SPLIT_TRAIN, NumberedBatch(k)).ok());
  }
  AwaitActiveIngests(*server_, 8);
  // The server expires them all (no client closes anything), freeing every slot.
  AwaitActiveIngests(*server_, 0);
  for (std::unique_ptr<IngestStream>& s : quiet) {
    ExpectCode(s->Finish().status(), absl::StatusCode::kCancelled,
               "sent nothing for 300ms (--ingest_idle_timeout) and was cancelled; nothing from "
               "it was applied");
  }
  EXPECT_EQ(StatsBytes("tabular", 0), before);
  // Every slot is free again: a new stream is admitted, and fits. Under a sanitizer
  // on a loaded machine this client may itself pause past 300ms between messages and
  // be cancelled as idle, rightly; either answer shows a slot was given, a refusal
  // (RESOURCE_EXHAUSTED) would not.
  std::unique_ptr<IngestStream> next = client_->StartIngest("tabular");
  (void)next->Write(v1::SPLIT_TRAIN, NumberedBatch(9));
  const absl::StatusOr<v1::IngestResponse> finished = next->Finish();
  if (finished.ok()) {
    EXPECT_EQ(client_->GetStats("tabular", 0, v1::SPLIT_TRAIN)->stats().batches(), 1u);
  } else {
    ExpectCode(finished.status(), absl::StatusCode::kCancelled, "(--ingest_idle_timeout)");
    EXPECT_EQ(StatsBytes("tabular", 0), before);
  }
}

int ThreadsOfThisProcess() {
  return static_cast<int>(std::distance(std::filesystem::directory_iterator("/proc/self/task"),
                                        std::filesystem::directory_iterator()));
}

TEST_F(ServiceTest, AThousandIdleStreamsCostNoThreadEach) {
  RestartServer([](ServerOptions& options) {
    options.limits.max_concurrent_ingests = 1000;
    options.limits.max_ingests_per_caller = 1000;
  });
  Create("tabular", v1::LAYOUT_NC, 2);
  const int threads_before = ThreadsOfThisProcess();
  std::vector<std::unique_ptr<IngestStream>> quiet;
  for (uint64_t k = 1; k <= 1000; ++k) {
    quiet.push_back(client_->StartIngest("tabular"));
    ASSERT_TRUE(quiet.back()->Write(v1::SPLIT_TRAIN, NumberedBatch(k)).ok());
  }
  AwaitActiveIngests(*server_, 1000);
  EXPECT_LT(ThreadsOfThisProcess() - threads_before, 100);
  ExpectCode(Ingest("tabular", v1::SPLIT_TRAIN, {NumberedBatch(1)}).status(),
             absl::StatusCode::kResourceExhausted, "already serves 1000 Ingest streams");
  for (std::unique_ptr<IngestStream>& s : quiet) ASSERT_TRUE(s->Finish().ok());
  EXPECT_EQ(client_->GetStats("tabular", 0, v1::SPLIT_TRAIN)->stats().batches(), 1000u);
}

TEST_F(ServiceTest, AStreamThatKeepsSendingIsNeverIdle) {
  RestartServer(
      [](ServerOptions& options) { options.limits.ingest_idle_timeout = absl::Milliseconds(500); });
  Create("tabular", v1::LAYOUT_NC, 2);
  std::unique_ptr<IngestStream> stream = client_->StartIngest("tabular");
  // Each batch comes well within the timeout; the stream lasts many timeouts.
  const absl::Time until = absl::Now() + absl::Seconds(2);
  uint64_t sent = 0;
  while (absl::Now() < until) {
    ASSERT_TRUE(stream->Write(v1::SPLIT_TRAIN, NumberedBatch(++sent)).ok());
    absl::SleepFor(absl::Milliseconds(20));  // the client's pace, not synchronisation
  }
  absl::StatusOr<v1::IngestResponse> fitted = stream->Finish();
  ASSERT_TRUE(fitted.ok()) << fitted.status();
  EXPECT_EQ(fitted->batches(), sent);
}

}  // namespace
}  // namespace normd::testing
