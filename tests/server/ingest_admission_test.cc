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

// Two token holders, "idler" (admin) and "writer", on a server with these slot
// limits; the idler has made dataset "tabular" and holds four streams that each sent
// one batch and now wait.
class TwoCallersTest : public ServiceTest {
 protected:
  void StartWithQuietIdler(int max_concurrent_ingests, int max_ingests_per_caller) {
    const std::string tokens = dir_.path() + "/tokens";
    std::ofstream(tokens) << "admin idler-token-0123456789 idler\n"
                             "writer writer-token-0123456789 writer\n";
    RestartServer([&](ServerOptions& options) {
      options.tokens_file = tokens;
      options.limits.max_concurrent_ingests = max_concurrent_ingests;
      options.limits.max_ingests_per_caller = max_ingests_per_caller;
    });
    absl::StatusOr<std::unique_ptr<NormdClient>> idler =
        NormdClient::Connect(server_->address(), {.token = "idler-token-0123456789"});
    absl::StatusOr<std::unique_ptr<NormdClient>> writer =
        NormdClient::Connect(server_->address(), {.token = "writer-token-0123456789"});
    ASSERT_TRUE(idler.ok() && writer.ok());
    idler_ = *std::move(idler);
    writer_ = *std::move(writer);
    v1::DatasetSpec spec;
    spec.set_name("tabular");
    spec.set_layout(v1::LAYOUT_NC);
    spec.set_channels(2);
    ASSERT_TRUE(idler_->CreateDataset(spec).ok());
    for (uint64_t k = 1; k <= 4; ++k) {
      quiet_.push_back(idler_->StartIngest("tabular"));
      ASSERT_TRUE(quiet_.back()->Write(v1::SPLIT_TRAIN, NumberedBatch(k)).ok());
    }
    AwaitActiveIngests(*server_, 4);
  }

  std::unique_ptr<NormdClient> idler_;
  std::unique_ptr<NormdClient> writer_;
  std::vector<std::unique_ptr<IngestStream>> quiet_;
};

TEST_F(TwoCallersTest, AQuietCallerHoldsOnlyItsShareOfTheIngestSlots) {
  StartWithQuietIdler(/*max_concurrent_ingests=*/64, /*max_ingests_per_caller=*/4);
  std::unique_ptr<IngestStream> fifth = idler_->StartIngest("tabular");
  (void)fifth->Write(v1::SPLIT_TRAIN, NumberedBatch(5));
  ExpectCode(fifth->Finish().status(), absl::StatusCode::kResourceExhausted,
             "this caller already has 4 Ingest streams open, its share");

  // Another caller fits while the quiet ones idle.
  std::unique_ptr<IngestStream> stream = writer_->StartIngest("tabular");
  ASSERT_TRUE(stream->Write(v1::SPLIT_TRAIN, NumberedBatch(9)).ok());
  absl::StatusOr<v1::IngestResponse> fitted = stream->Finish();
  ASSERT_TRUE(fitted.ok()) << fitted.status();
  EXPECT_EQ(fitted->batches(), 1u);
  for (std::unique_ptr<IngestStream>& s : quiet_) EXPECT_TRUE(s->Finish().ok());
  EXPECT_EQ(writer_->GetStats("tabular", 0, v1::SPLIT_TRAIN)->stats().batches(), 5u);
}

TEST_F(TwoCallersTest, WhenEverySlotIsTakenTheLargestHoldersWaitingStreamMakesRoom) {
  // One token holds every slot of the server with streams that wait; another's
  // stream is admitted in place of one of them, which ends ABORTED with nothing
  // applied (the client resends it); the rest commit.
  StartWithQuietIdler(/*max_concurrent_ingests=*/4, /*max_ingests_per_caller=*/4);
  // The idler itself gets no more: it already holds the most.
  std::unique_ptr<IngestStream> fifth = idler_->StartIngest("tabular");
  (void)fifth->Write(v1::SPLIT_TRAIN, NumberedBatch(5));
  ExpectCode(fifth->Finish().status(), absl::StatusCode::kResourceExhausted,
             "already serves 4 Ingest streams (--max_concurrent_ingests), and no caller holding "
             "more than this one has a stream waiting");

  // Until the idler's streams have taken their first batch they are busy, not
  // waiting, and none can be asked to make room: the writer is refused until then.
  absl::StatusOr<v1::IngestResponse> fitted;
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  do {
    std::unique_ptr<IngestStream> stream = writer_->StartIngest("tabular");
    (void)stream->Write(v1::SPLIT_TRAIN, NumberedBatch(9));
    fitted = stream->Finish();
  } while (absl::IsResourceExhausted(fitted.status()) && absl::Now() < give_up);
  ASSERT_TRUE(fitted.ok()) << fitted.status();
  int made_room = 0;
  for (std::unique_ptr<IngestStream>& s : quiet_) {
    const absl::StatusOr<v1::IngestResponse> finished = s->Finish();
    if (finished.ok()) continue;
    ++made_room;
    ExpectCode(finished.status(), absl::StatusCode::kAborted,
               "this caller held the most, so its stream that had waited longest for a message "
               "made room for another caller's; nothing from it was applied");
  }
  EXPECT_EQ(made_room, 1);
  EXPECT_EQ(writer_->GetStats("tabular", 0, v1::SPLIT_TRAIN)->stats().batches(), 4u);
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
