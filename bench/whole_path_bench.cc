// The whole path from a C++ caller's tensor to normd's kernels and back, beside its
// yardsticks, at the sizes a user sends: the in-process kernels (what normd could
// give at best), memcpy, a bare gRPC echo of the same bytes (what gRPC itself costs),
// and normd's Normalize and Ingest over TCP, over a Unix socket and through shared
// memory. bench/whole_path.py starts normd and the echo server, runs this and the
// Python side in one run, and prints the ratios; alone it needs
//   NORMD_TCP=host:port NORMD_UNIX=unix:/path ECHO_TCP=host:port ECHO_UNIX=unix:/path
// and datasets "tab" (NC, 256 channels) and "img" (NCHW, 3 channels), frozen.
//
// Every figure counts the tensor's bytes once (the input), so rows compare directly;
// p50_us and p99_us are per call (per Ingest stream for the Ingest rows).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"
#include "client/cpp/normd_client.h"
#include "client/cpp/shared_buffer.h"
#include "core/apply_scale_shift.h"
#include "core/batch_moments.h"
#include "core/frozen_scheme.h"
#include "core/layout.h"
#include "core/worker_pool.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/impl/codegen/client_unary_call.h"
#include "grpcpp/support/byte_buffer.h"

namespace normd {
namespace {

constexpr int64_t kImageBytes = int64_t{64} * 3 * 224 * 224 * 4;  // 38.5 MB

// The tensor of `bytes` float32: [64, 3, 224, 224] NCHW for the image size, else
// [N, 256] NC.
struct Payload {
  explicit Payload(int64_t bytes) {
    if (bytes == kImageBytes) {
      dataset = "img";
      layout = Layout::kNCHW;
      channels = 3;
      shape = {64, 3, 224, 224};
    } else {
      dataset = "tab";
      layout = Layout::kNC;
      channels = 256;
      shape = {bytes / 4 / 256, 256};
    }
    values.resize(static_cast<size_t>(bytes / 4));
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(3.0f, 2.0f);
    for (float& v : values) v = normal(rng);
  }
  size_t bytes() const { return values.size() * 4; }
  v1::Tensor Inline() const {
    v1::Tensor tensor;
    tensor.mutable_shape()->Add(shape.begin(), shape.end());
    tensor.set_dtype(v1::DTYPE_FLOAT32);
    tensor.set_data(values.data(), bytes());  // the one copy a caller makes
    return tensor;
  }

  std::string dataset;
  Layout layout;
  int64_t channels;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// Per-call latencies of a run, reported as counters beside the throughput.
class Latencies {
 public:
  void Add(std::chrono::steady_clock::duration d) {
    micros_.push_back(std::chrono::duration<double, std::micro>(d).count());
  }
  void Report(benchmark::State& state, int64_t bytes_per_call) {
    state.SetBytesProcessed(state.iterations() * bytes_per_call);
    if (micros_.empty()) return;
    std::sort(micros_.begin(), micros_.end());
    state.counters["p50_us"] = micros_[micros_.size() / 2];
    state.counters["p99_us"] = micros_[std::min(micros_.size() - 1, micros_.size() * 99 / 100)];
  }

 private:
  std::vector<double> micros_;
};

template <typename Call>
void Timed(benchmark::State& state, int64_t bytes_per_call, Call call) {
  Latencies latencies;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    if (!call()) return;
    latencies.Add(std::chrono::steady_clock::now() - start);
  }
  latencies.Report(state, bytes_per_call);
}

const char* Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

std::unique_ptr<NormdClient> Client(benchmark::State& state, const char* env) {
  const char* target = Env(env);
  if (target == nullptr) {
    state.SkipWithError((std::string(env) + " is not set").c_str());
    return nullptr;
  }
  return NormdClient::Connect(target);
}

bool Fail(benchmark::State& state, const absl::Status& status) {
  state.SkipWithError(status.ToString().c_str());
  return false;
}

// ---- in process -----------------------------------------------------------------

void BM_Memcpy(benchmark::State& state) {
  const Payload payload(state.range(0));
  std::vector<float> out(payload.values.size(), 1.0f);
  Timed(state, static_cast<int64_t>(payload.bytes()), [&] {
    std::memcpy(out.data(), payload.values.data(), payload.bytes());
    benchmark::ClobberMemory();
    return true;
  });
}

WorkerPool& ServerLikePool() {  // as normd sizes its pool: one fewer than the CPUs
  static WorkerPool pool(std::max(1u, std::thread::hardware_concurrency()) - 1);
  return pool;
}

void BM_KernelZScore(benchmark::State& state) {
  const Payload payload(state.range(0));
  const TensorView view{DType::kFloat32, payload.shape, std::as_bytes(std::span(payload.values))};
  const ChannelGeometry geometry =
      *ResolveGeometry(payload.layout, payload.channels, payload.shape);
  ReferenceStatistics stats;
  stats.count.assign(payload.channels, 100);
  stats.mean.assign(payload.channels, 3.0);
  stats.variance.assign(payload.channels, 4.0);
  stats.min.assign(payload.channels, -5.0);
  stats.max.assign(payload.channels, 11.0);
  const ScaleShift factors = *FoldScaleShift(ZScoreScheme{}, stats, payload.channels);
  std::vector<std::byte> out(payload.bytes(), std::byte{1});
  const OutputDType f32 = *ValidateOutputDType(DType::kFloat32);
  Timed(state, static_cast<int64_t>(payload.bytes()), [&] {
    benchmark::DoNotOptimize(ApplyScaleShift(view, geometry, factors, f32, out, &ServerLikePool()));
    benchmark::ClobberMemory();
    return true;
  });
}

void BM_KernelFit(benchmark::State& state) {
  const Payload payload(state.range(0));
  const TensorView view{DType::kFloat32, payload.shape, std::as_bytes(std::span(payload.values))};
  const ChannelGeometry geometry =
      *ResolveGeometry(payload.layout, payload.channels, payload.shape);
  std::vector<ChannelMoments> moments(static_cast<size_t>(payload.channels));
  Timed(state, static_cast<int64_t>(payload.bytes()), [&] {
    benchmark::DoNotOptimize(
        ComputeBatchMoments(view, geometry, NonFinitePolicy::kReject, moments, &ServerLikePool()));
    return true;
  });
}

// ---- gRPC -----------------------------------------------------------------------

void Echo(benchmark::State& state, const char* env) {
  const char* target = Env(env);
  if (target == nullptr) {
    state.SkipWithError((std::string(env) + " is not set").c_str());
    return;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  const auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  const Payload payload(state.range(0));
  const grpc::internal::RpcMethod method("/bench.Echo/Echo", grpc::internal::RpcMethod::NORMAL_RPC);
  Timed(state, static_cast<int64_t>(payload.bytes()), [&] {
    // As a caller would: its bytes copied into a message, the reply received.
    grpc::Slice slice(payload.values.data(), payload.bytes());
    const grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer reply;
    grpc::ClientContext context;
    const grpc::Status status =
        grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
            channel.get(), method, &context, request, &reply);
    if (!status.ok()) return Fail(state, absl::UnavailableError(status.error_message()));
    std::vector<grpc::Slice> slices;
    (void)reply.Dump(&slices);
    benchmark::DoNotOptimize(slices.data());
    return true;
  });
}

v1::NormalizeRequest ZScoreRequest(const Payload& payload) {
  v1::NormalizeRequest request;
  request.set_dataset(payload.dataset);
  request.mutable_zscore();
  return request;
}

// NormdClient::NormalizeInto: the caller's values in, its output buffer filled.
void Normalize(benchmark::State& state, const char* env) {
  std::unique_ptr<NormdClient> client = Client(state, env);
  if (client == nullptr) return;
  const Payload payload(state.range(0));
  v1::NormalizeRequest call = ZScoreRequest(payload);
  call.mutable_input()->mutable_shape()->Add(payload.shape.begin(), payload.shape.end());
  call.mutable_input()->set_dtype(v1::DTYPE_FLOAT32);
  std::vector<std::byte> output(payload.bytes());
  Timed(state, static_cast<int64_t>(payload.bytes()), [&] {
    absl::StatusOr<uint64_t> version =
        client->NormalizeInto(call, std::as_bytes(std::span(payload.values)), output);
    return version.ok() || Fail(state, version.status());
  });
}

// NormdClient::Normalize, the protobuf messages: the request built from the
// caller's values, the reply's values read from the message.
void NormalizeMessages(benchmark::State& state, const char* env) {
  std::unique_ptr<NormdClient> client = Client(state, env);
  if (client == nullptr) return;
  const Payload payload(state.range(0));
  Timed(state, static_cast<int64_t>(payload.bytes()), [&] {
    v1::NormalizeRequest request = ZScoreRequest(payload);
    *request.mutable_input() = payload.Inline();
    absl::StatusOr<v1::NormalizeResponse> reply = client->Normalize(request);
    if (!reply.ok()) return Fail(state, reply.status());
    benchmark::DoNotOptimize(reply->output().data().data());
    return true;
  });
}

// Batches per Ingest stream: about 8 MiB of them, one commit (an fsync) per stream.
int64_t BatchesPerStream(int64_t bytes) {
  return std::clamp<int64_t>((int64_t{8} << 20) / bytes, 1, 256);
}

// IngestStream::WriteValues: each batch serialised once from the caller's values.
void Ingest(benchmark::State& state, const char* env) {
  std::unique_ptr<NormdClient> client = Client(state, env);
  if (client == nullptr) return;
  const Payload payload(state.range(0));
  const int64_t batches = BatchesPerStream(state.range(0));
  v1::Tensor meta;
  meta.mutable_shape()->Add(payload.shape.begin(), payload.shape.end());
  meta.set_dtype(v1::DTYPE_FLOAT32);
  const std::span<const std::byte> values = std::as_bytes(std::span(payload.values));
  Timed(state, batches * static_cast<int64_t>(payload.bytes()), [&] {
    std::unique_ptr<IngestStream> stream = client->StartIngest(payload.dataset);
    for (int64_t b = 0; b < batches; ++b) {
      if (!stream->WriteValues(v1::SPLIT_VALIDATION, meta, values).ok()) break;
    }
    absl::StatusOr<v1::IngestResponse> reply = stream->Finish();
    return reply.ok() || Fail(state, reply.status());
  });
}

// ---- shared memory --------------------------------------------------------------

void SharedNormalize(benchmark::State& state) {
  std::unique_ptr<NormdClient> client = Client(state, "NORMD_UNIX");
  if (client == nullptr) return;
  const Payload payload(state.range(0));
  absl::StatusOr<std::unique_ptr<SharedBuffer>> in =
      SharedBuffer::Create(*client, "bench-in", payload.bytes());
  absl::StatusOr<std::unique_ptr<SharedBuffer>> out =
      SharedBuffer::Create(*client, "bench-out", payload.bytes());
  if (!in.ok() || !out.ok()) {
    Fail(state, in.ok() ? out.status() : in.status());
    return;
  }
  std::memcpy((*in)->bytes().data(), payload.values.data(), payload.bytes());
  v1::NormalizeRequest request = ZScoreRequest(payload);
  *request.mutable_input() = (*in)->Tensor(payload.shape, v1::DTYPE_FLOAT32, 0);
  *request.mutable_output_region() = (*out)->Slice(0);
  Timed(state, static_cast<int64_t>(payload.bytes()), [&] {
    absl::StatusOr<v1::NormalizeResponse> reply = client->Normalize(request);
    return reply.ok() || Fail(state, reply.status());
  });
}

void SharedIngest(benchmark::State& state) {
  std::unique_ptr<NormdClient> client = Client(state, "NORMD_UNIX");
  if (client == nullptr) return;
  const Payload payload(state.range(0));
  absl::StatusOr<std::unique_ptr<SharedBuffer>> in =
      SharedBuffer::Create(*client, "bench-batch", payload.bytes());
  if (!in.ok()) {
    Fail(state, in.status());
    return;
  }
  std::memcpy((*in)->bytes().data(), payload.values.data(), payload.bytes());
  const int64_t batches = BatchesPerStream(state.range(0));
  const v1::Tensor batch = (*in)->Tensor(payload.shape, v1::DTYPE_FLOAT32, 0);
  Timed(state, batches * static_cast<int64_t>(payload.bytes()), [&] {
    std::unique_ptr<IngestStream> stream = client->StartIngest(payload.dataset);
    for (int64_t b = 0; b < batches; ++b) {
      if (!stream->Write(v1::SPLIT_VALIDATION, batch).ok()) break;
    }
    absl::StatusOr<v1::IngestResponse> reply = stream->Finish();
    return reply.ok() || Fail(state, reply.status());
  });
}

void Sizes(benchmark::internal::Benchmark* b) {
  // NORMD_BENCH_SMOKE=1: the smallest size only, as CI runs it.
  b->Arg(4096);
  if (Env("NORMD_BENCH_SMOKE") == nullptr) b->Arg(192 << 10)->Arg(1 << 20)->Arg(kImageBytes);
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_Memcpy)->Apply(Sizes);
BENCHMARK(BM_KernelZScore)->Apply(Sizes);
BENCHMARK(BM_KernelFit)->Apply(Sizes);
BENCHMARK_CAPTURE(Echo, tcp, "ECHO_TCP")->Apply(Sizes);
BENCHMARK_CAPTURE(Echo, unix, "ECHO_UNIX")->Apply(Sizes);
BENCHMARK_CAPTURE(Normalize, tcp, "NORMD_TCP")->Apply(Sizes);
BENCHMARK_CAPTURE(Normalize, unix, "NORMD_UNIX")->Apply(Sizes);
BENCHMARK_CAPTURE(NormalizeMessages, tcp, "NORMD_TCP")->Apply(Sizes);
BENCHMARK(SharedNormalize)->Apply(Sizes);
BENCHMARK_CAPTURE(Ingest, tcp, "NORMD_TCP")->Apply(Sizes);
BENCHMARK_CAPTURE(Ingest, unix, "NORMD_UNIX")->Apply(Sizes);
BENCHMARK(SharedIngest)->Apply(Sizes);

}  // namespace
}  // namespace normd

BENCHMARK_MAIN();
