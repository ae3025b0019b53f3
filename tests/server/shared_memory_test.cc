// Shared-memory regions against a real server: memfds made, sealed and handed over
// as a same-host client does, tensors read and written in place, and every way a
// region can be misused refused with nothing changed.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <thread>

#include "client/cpp/shared_buffer.h"
#include "tests/server/service_fixture.h"

namespace normd::testing {
namespace {

constexpr int64_t kRows = 256;
constexpr int64_t kChannels = 3;

class SharedMemoryTest : public ServiceTest {
 protected:
  std::unique_ptr<SharedBuffer> Buffer(const std::string& name, size_t bytes,
                                       NormdClient* client = nullptr) {
    absl::StatusOr<std::unique_ptr<SharedBuffer>> buffer =
        SharedBuffer::Create(client ? *client : *client_, name, bytes);
    EXPECT_TRUE(buffer.ok()) << buffer.status();
    return buffer.ok() ? *std::move(buffer) : nullptr;
  }

  // A frozen [N, 3] dataset "fit" with the values below.
  void FitAndFreeze() {
    Create("fit", v1::LAYOUT_NC, kChannels);
    ASSERT_TRUE(
        Ingest("fit", v1::SPLIT_TRAIN, {Float64Tensor({kRows, kChannels}, Values(1))}).ok());
    ASSERT_TRUE(client_->Freeze("fit").ok());
  }

  static std::vector<double> Values(uint64_t seed) {
    return GaussianValues(kRows * kChannels, 5.0, 3.0, seed);
  }

  static v1::NormalizeRequest ZScore(v1::Tensor input) {
    v1::NormalizeRequest request;
    request.set_dataset("fit");
    request.mutable_zscore();
    request.set_output_dtype(v1::DTYPE_FLOAT64);
    *request.mutable_input() = std::move(input);
    return request;
  }
};

const std::vector<int64_t> kShape = {kRows, kChannels};
constexpr size_t kBytes = kRows * kChannels * sizeof(double);

TEST_F(SharedMemoryTest, NormalizeReadsAndWritesRegionsInPlace) {
  FitAndFreeze();
  const std::vector<double> input = Values(2);
  // Inline: the reference the region path must match bit for bit (the inline path
  // itself is checked against PyTorch in tests/python).
  absl::StatusOr<v1::NormalizeResponse> inline_reply =
      client_->Normalize(ZScore(Float64Tensor(kShape, input)));
  ASSERT_TRUE(inline_reply.ok()) << inline_reply.status();

  std::unique_ptr<SharedBuffer> in = Buffer("in", kBytes + 64);
  std::unique_ptr<SharedBuffer> out = Buffer("out", kBytes);
  ASSERT_TRUE(in && out);
  std::memcpy(in->bytes().data() + 64, input.data(), kBytes);
  v1::NormalizeRequest request = ZScore(in->Tensor(kShape, v1::DTYPE_FLOAT64, 64));
  *request.mutable_output_region() = out->Slice(0);
  absl::StatusOr<v1::NormalizeResponse> reply = client_->Normalize(request);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(reply->output().data().empty());
  EXPECT_EQ(reply->output().region().name(), "out");
  EXPECT_EQ(reply->version(), 1u);
  EXPECT_EQ(std::memcmp(out->bytes().data(), inline_reply->output().data().data(), kBytes), 0);

  // A region input with an inline reply.
  reply = client_->Normalize(ZScore(in->Tensor(kShape, v1::DTYPE_FLOAT64, 64)));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->output().data(), inline_reply->output().data());
}

TEST_F(SharedMemoryTest, IngestFromARegionFitsExactlyAsInline) {
  Create("inline", v1::LAYOUT_NC, kChannels);
  Create("shared", v1::LAYOUT_NC, kChannels);
  const std::vector<double> values = Values(3);
  ASSERT_TRUE(Ingest("inline", v1::SPLIT_TRAIN, {Float64Tensor(kShape, values)}).ok());
  std::unique_ptr<SharedBuffer> batch = Buffer("batch", kBytes);
  ASSERT_TRUE(batch);
  std::memcpy(batch->bytes().data(), values.data(), kBytes);
  absl::StatusOr<v1::IngestResponse> reply =
      Ingest("shared", v1::SPLIT_TRAIN, {batch->Tensor(kShape, v1::DTYPE_FLOAT64, 0)});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->values(), static_cast<uint64_t>(kRows * kChannels));
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats("shared", 0, v1::SPLIT_TRAIN);
  ASSERT_TRUE(stats.ok());
  for (int64_t c = 0; c < kChannels; ++c) {  // against exact rational arithmetic
    std::vector<double> channel;
    for (int64_t r = 0; r < kRows; ++r) channel.push_back(values[r * kChannels + c]);
    const ExactMoments exact = ComputeExactMoments(channel);
    EXPECT_LE(RelativeError(stats->stats().mean(c), exact.Mean()), 1e-12);
    EXPECT_LE(RelativeError(stats->stats().variance(c), exact.PopulationVariance()), 1e-12);
  }
  absl::StatusOr<v1::GetStatsResponse> inline_stats =
      client_->GetStats("inline", 0, v1::SPLIT_TRAIN);
  ASSERT_TRUE(inline_stats.ok());
  EXPECT_EQ(stats->stats().SerializeAsString(), inline_stats->stats().SerializeAsString());
}

TEST_F(SharedMemoryTest, BadReferencesAreRefusedPrecisely) {
  FitAndFreeze();
  std::unique_ptr<SharedBuffer> buffer = Buffer("buf", kBytes);
  ASSERT_TRUE(buffer);
  const std::string before = StatsBytes("fit", 0);

  v1::Tensor unknown = buffer->Tensor(kShape, v1::DTYPE_FLOAT64, 0);
  unknown.mutable_region()->set_name("nope");
  ExpectCode(client_->Normalize(ZScore(unknown)).status(), absl::StatusCode::kNotFound,
             "no region named \"nope\"");

  ExpectCode(client_->Normalize(ZScore(buffer->Tensor(kShape, v1::DTYPE_FLOAT64, 8))).status(),
             absl::StatusCode::kOutOfRange, "needs 6144 bytes at offset 8");
  v1::Tensor huge = buffer->Tensor({kRows, kChannels}, v1::DTYPE_FLOAT64, UINT64_MAX - 4);
  ExpectCode(client_->Normalize(ZScore(huge)).status(), absl::StatusCode::kOutOfRange,
             "region holds 6144 bytes");

  v1::Tensor both = buffer->Tensor(kShape, v1::DTYPE_FLOAT64, 0);
  both.set_data(std::string(kBytes, '\0'));
  ExpectCode(client_->Normalize(ZScore(both)).status(), absl::StatusCode::kInvalidArgument,
             "both inline data (6144 bytes) and region \"buf\"");

  v1::NormalizeRequest overlap =
      ZScore(buffer->Tensor({kRows / 2, kChannels}, v1::DTYPE_FLOAT64, 0));
  *overlap.mutable_output_region() = buffer->Slice(kBytes / 4);
  ExpectCode(client_->Normalize(overlap).status(), absl::StatusCode::kInvalidArgument,
             "overlaps the input");

  v1::NormalizeRequest too_small = ZScore(Float64Tensor(kShape, Values(4)));
  *too_small.mutable_output_region() = buffer->Slice(8);
  ExpectCode(client_->Normalize(too_small).status(), absl::StatusCode::kOutOfRange,
             "the output in region \"buf\" needs 6144 bytes at offset 8");

  // An Ingest batch naming a missing region rejects its stream with nothing applied.
  v1::Tensor missing = buffer->Tensor(kShape, v1::DTYPE_FLOAT64, 0);
  missing.mutable_region()->set_name("gone");
  ExpectCode(Ingest("fit", v1::SPLIT_TRAIN, {Float64Tensor(kShape, Values(5)), missing}).status(),
             absl::StatusCode::kNotFound, "batch 1 rejected, nothing from this stream");
  EXPECT_EQ(StatsBytes("fit", 0), before);
}

// Makes a memfd of `bytes` with `seals` and hands it to the server; returns the
// claim, or the server's refusal. `connection` is left open.
absl::StatusOr<std::string> HandOver(const std::string& socket_path, size_t bytes, int seals,
                                     int& connection) {
  const int memfd = memfd_create("raw", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  EXPECT_EQ(ftruncate(memfd, static_cast<off_t>(bytes)), 0);
  if (seals != 0) {
    EXPECT_EQ(fcntl(memfd, F_ADD_SEALS, seals), 0);
  }
  connection = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  absl::StatusOr<std::string> claim = HandOverDescriptor(connection, socket_path, memfd);
  close(memfd);
  return claim;
}

TEST_F(SharedMemoryTest, OnlySealedMemfdsAreTakenAndReadOnlyOnesOnlyRead) {
  FitAndFreeze();
  int connection = -1;
  ExpectCode(HandOver(server_->region_socket(), 4096, 0, connection).status(),
             absl::StatusCode::kInvalidArgument,
             "ERR the memfd is not sealed with F_SEAL_SHRINK; a region that can shrink under the "
             "server is refused");
  close(connection);
  absl::StatusOr<std::string> claim = HandOver(
      server_->region_socket(), kBytes, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE, connection);
  ASSERT_TRUE(claim.ok()) << claim.status();
  EXPECT_EQ(claim->size(), 32u);
  ExpectCode(client_->RegisterRegion("ro", "0123456789abcdef0123456789abcdef").status(),
             absl::StatusCode::kNotFound, "no region was handed over with this claim");
  absl::StatusOr<v1::RegionInfo> info = client_->RegisterRegion("ro", *claim);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_FALSE(info->writable());
  EXPECT_EQ(info->client_pid(), getpid());
  v1::NormalizeRequest request = ZScore(Float64Tensor(kShape, Values(6)));
  v1::RegionSlice* target = request.mutable_output_region();
  target->set_name("ro");
  ExpectCode(client_->Normalize(request).status(), absl::StatusCode::kFailedPrecondition,
             "sealed against writes");
  // Inputs from it work (its bytes are zeros: every output is (0 - mean) / std).
  v1::Tensor input;
  input.mutable_shape()->Add(kShape.begin(), kShape.end());
  input.set_dtype(v1::DTYPE_FLOAT64);
  input.mutable_region()->set_name("ro");
  EXPECT_TRUE(client_->Normalize(ZScore(input)).ok());
  close(connection);
}

TEST_F(SharedMemoryTest, TruncationIsRefusedByTheSealWhileTheServerReads) {
  FitAndFreeze();
  std::unique_ptr<SharedBuffer> in = Buffer("in", kBytes);
  std::unique_ptr<SharedBuffer> out = Buffer("out", kBytes);
  ASSERT_TRUE(in && out);
  const std::vector<double> input = Values(7);
  std::memcpy(in->bytes().data(), input.data(), kBytes);
  absl::StatusOr<v1::NormalizeResponse> expected =
      client_->Normalize(ZScore(Float64Tensor(kShape, input)));
  ASSERT_TRUE(expected.ok());
  const std::string before = StatsBytes("fit", 0);
  std::atomic<bool> done = false;
  std::atomic<int> refused = 0;
  std::thread truncator([&] {  // a client shrinking its regions under the server
    while (!done) {
      for (const SharedBuffer* buffer : {in.get(), out.get()}) {
        if (ftruncate(buffer->fd(), 0) != 0 && errno == EPERM) ++refused;
      }
    }
  });
  for (int i = 0; i < 200; ++i) {
    v1::NormalizeRequest request = ZScore(in->Tensor(kShape, v1::DTYPE_FLOAT64, 0));
    *request.mutable_output_region() = out->Slice(0);
    ASSERT_TRUE(client_->Normalize(request).ok());
    ASSERT_TRUE(
        Ingest("fit", v1::SPLIT_VALIDATION, {in->Tensor(kShape, v1::DTYPE_FLOAT64, 0)}).ok());
  }
  done = true;
  truncator.join();
  EXPECT_GT(refused.load(), 0);
  EXPECT_EQ(std::memcmp(out->bytes().data(), expected->output().data().data(), kBytes), 0);
  EXPECT_EQ(StatsBytes("fit", 0), before);  // the train split: validation batches only went in
}

TEST_F(SharedMemoryTest, RegionsCountAgainstPerCallerLimits) {
  RestartServer([](ServerOptions& options) {
    options.region_limits.max_regions_per_caller = 2;
    options.region_limits.max_region_bytes_per_caller = 3 * 4096;
  });
  std::unique_ptr<SharedBuffer> a = Buffer("a", 4096);
  std::unique_ptr<SharedBuffer> b = Buffer("b", 4096);
  ASSERT_TRUE(a && b);
  ExpectCode(SharedBuffer::Create(*client_, "c", 4096).status(),
             absl::StatusCode::kResourceExhausted, "already has 2 regions");
  b.reset();  // unregisters, freeing a slot
  ExpectCode(SharedBuffer::Create(*client_, "d", 3 * 4096).status(),
             absl::StatusCode::kResourceExhausted, "--max_region_bytes_per_caller");
  ExpectCode(SharedBuffer::Create(*client_, "a", 4096).status(), absl::StatusCode::kAlreadyExists,
             "a region named \"a\" is already registered");
  std::unique_ptr<SharedBuffer> e = Buffer("e", 2 * 4096);
  ASSERT_TRUE(e);
  absl::StatusOr<v1::ListRegionsResponse> listed = client_->ListRegions();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->regions_size(), 2);
  EXPECT_EQ(listed->regions(0).name(), "a");
  EXPECT_EQ(listed->regions(1).name(), "e");
  EXPECT_EQ(listed->regions(1).size(), 2u * 4096);
  EXPECT_EQ(listed->handoff_socket(), server_->region_socket());
}

TEST_F(SharedMemoryTest, ARegionBelongsToTheTokenThatRegisteredIt) {
  const std::string tokens = dir_.path() + "/tokens";
  std::ofstream(tokens) << "reader alice-token-0123456789 alice\n"
                           "reader bob-token-0123456789 bob\n"
                           "admin admin-token-0123456789 admin\n";
  RestartServer([&](ServerOptions& options) { options.tokens_file = tokens; });
  const auto connect = [&](const std::string& token) {
    absl::StatusOr<std::unique_ptr<NormdClient>> client =
        NormdClient::Connect(server_->address(), {.token = token});
    EXPECT_TRUE(client.ok());
    return *std::move(client);
  };
  std::unique_ptr<NormdClient> alice = connect("alice-token-0123456789");
  std::unique_ptr<NormdClient> bob = connect("bob-token-0123456789");
  std::unique_ptr<SharedBuffer> mine = Buffer("mine", kBytes, alice.get());
  ASSERT_TRUE(mine);
  v1::NormalizeRequest request;
  request.mutable_scale()->set_factor(2);
  *request.mutable_input() = mine->Tensor(kShape, v1::DTYPE_FLOAT64, 0);
  EXPECT_TRUE(alice->Normalize(request).ok());
  ExpectCode(bob->Normalize(request).status(), absl::StatusCode::kNotFound,
             "regions belong to the token that registered them");
  ExpectCode(bob->UnregisterRegion("mine"), absl::StatusCode::kNotFound, "no region named");
  absl::StatusOr<v1::ListRegionsResponse> bobs = bob->ListRegions();
  ASSERT_TRUE(bobs.ok());
  EXPECT_EQ(bobs->regions_size(), 0);
  std::unique_ptr<SharedBuffer> bobs_own =
      Buffer("mine", kBytes, bob.get());  // names are per token
  EXPECT_TRUE(bobs_own != nullptr);
}

TEST_F(SharedMemoryTest, WithoutAPlaceForTheSocketTheServerRunsWithoutSharedMemory) {
  const std::string long_dir = dir_.path() + "/" + std::string(100, 'd');
  RestartServer([&](ServerOptions& options) { options.data_dir = long_dir; });
  EXPECT_EQ(server_->region_socket(), "");
  absl::StatusOr<v1::ListRegionsResponse> listed = client_->ListRegions();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->handoff_socket(), "");
  ExpectCode(SharedBuffer::Create(*client_, "x", 4096).status(),
             absl::StatusCode::kFailedPrecondition, "the server has no shared memory");
  v1::NormalizeRequest request;
  request.mutable_scale()->set_factor(2);
  request.mutable_input()->add_shape(2);
  request.mutable_input()->add_shape(2);
  request.mutable_input()->set_dtype(v1::DTYPE_FLOAT32);
  request.mutable_input()->mutable_region()->set_name("x");
  ExpectCode(client_->Normalize(request).status(), absl::StatusCode::kFailedPrecondition,
             "this server has no shared memory");

  // Named explicitly, a path that cannot hold a socket stops the start.
  ServerOptions explicit_path = LoopbackServerOptions(dir_.path() + "/other");
  explicit_path.region_socket = long_dir + "/regions.sock";
  ExpectCode(NormdServer::Start(explicit_path).status(), absl::StatusCode::kInvalidArgument,
             "the region socket path must be absolute and shorter than 108 bytes");
}

}  // namespace
}  // namespace normd::testing
