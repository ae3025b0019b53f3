// normctl: the command-line client for normd.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/cpp/backoff.h"
#include "client/cpp/exactly_once_fit.h"
#include "client/cpp/normd_client.h"
#include "client/cpp/npy.h"
#include "client/cpp/progress_bar.h"
#include "client/cpp/stats_json.h"

ABSL_FLAG(std::string, server, "",
          "normd address HOST:PORT (default: $NORMD_SERVER, else 127.0.0.1:50051)");
ABSL_FLAG(std::string, token_file, "",
          "file holding the bearer token to send (default: the token in $NORMD_TOKEN, if any); "
          "a file keeps the token out of the process list");
ABSL_FLAG(std::string, ca_file, "", "TLS: PEM CA that signed the server's certificate");
ABSL_FLAG(std::string, cert_file, "", "mutual TLS: this client's PEM certificate");
ABSL_FLAG(std::string, key_file, "", "mutual TLS: the PEM key of --cert_file");
// create
ABSL_FLAG(std::string, layout, "NC",
          "create: NC, NCHW or NHWC; normalize: the input's layout for instancenorm and "
          "groupnorm when NAME is - (no dataset)");
ABSL_FLAG(int64_t, channels, 0, "create: number of channels (features)");
ABSL_FLAG(std::string, accumulator, "exact", "create: exact or running");
ABSL_FLAG(std::string, momentum, "",
          "create: running-average momentum in (0, 1]; empty: cumulative average");
ABSL_FLAG(std::string, nonfinite, "reject", "create: reject or skip NaN/Inf values");
// ingest, stats
ABSL_FLAG(std::string, split, "train", "ingest, stats: train, validation or test");
ABSL_FLAG(int64_t, chunk_bytes, 4 << 20, "ingest, normalize: bytes of data per message");
ABSL_FLAG(std::string, writer_id, "",
          "ingest: exactly-once writer id (default: a random one per run); run the same ingest "
          "again with the same id and the batches already committed are skipped");
ABSL_FLAG(int64_t, retry_seconds, 300,
          "ingest: how long to keep resending after UNAVAILABLE, ABORTED or CANCELLED");
ABSL_FLAG(std::string, version, "",
          "stats: version, 'latest', or empty for live; normalize: version, empty for latest");
ABSL_FLAG(bool, json, false, "stats: print one JSON object");
// normalize
ABSL_FLAG(std::string, scheme, "zscore",
          "normalize: zscore, minmax, scale, batchnorm (frozen statistics), or layernorm, "
          "instancenorm, groupnorm (each sample's own statistics)");
ABSL_FLAG(int64_t, groups, 0, "normalize: groupnorm's group count, dividing the channels");
ABSL_FLAG(std::string, normalized_shape, "",
          "normalize: layernorm's trailing dims, comma-separated (default: all but the first)");
ABSL_FLAG(std::string, eps, "", "normalize: eps for zscore and batchnorm (default 1e-5)");
ABSL_FLAG(double, low, 0.0, "normalize: minmax lower bound");
ABSL_FLAG(double, high, 1.0, "normalize: minmax upper bound");
ABSL_FLAG(double, factor, 1.0, "normalize: scale factor, e.g. 0.00392156862745098 for 1/255");
ABSL_FLAG(double, offset, 0.0, "normalize: scale offset");
ABSL_FLAG(std::string, gamma, "",
          "normalize: gamma, comma-separated, one per channel (layernorm: per normalized element)");
ABSL_FLAG(std::string, beta, "",
          "normalize: beta, comma-separated, one per channel (layernorm: per normalized element)");
ABSL_FLAG(std::string, output_dtype, "float32", "normalize: float32 or float64");

namespace normd {
namespace {

constexpr char kUsage[] = R"(normctl: command-line client for normd.

Usage: normctl [--server=HOST:PORT] COMMAND ARGS... [FLAGS]
  create NAME --layout=NC|NCHW|NHWC --channels=C [--accumulator=exact|running]
              [--momentum=M] [--nonfinite=reject|skip]
  ingest NAME FILE.npy... [--split=train|validation|test] [--writer_id=ID]
  freeze NAME
  stats NAME [--version=V|latest] [--split=...] [--json]
  normalize NAME IN.npy OUT.npy [--scheme=zscore|minmax|scale|batchnorm] [--version=V]
              [--eps=E] [--low=L --high=H] [--factor=F --offset=O] [--gamma=.. --beta=..]
              [--output_dtype=float32|float64]
  normalize NAME|- IN.npy OUT.npy --scheme=layernorm|instancenorm|groupnorm [--groups=G]
              [--normalized_shape=D,..] [--layout=NC|NCHW|NHWC, with -: no dataset]
              [--eps --gamma --beta --output_dtype]
  info NAME | list | delete NAME | health
All files of one `ingest` travel in one stream: the server applies all or none.)";

struct UsageError {
  std::string message;
};

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "normctl: %s: %s\n", absl::StatusCodeToString(status.code()).c_str(),
               std::string(status.message()).c_str());
  return 1;
}

int Usage(const std::string& message) {
  std::fprintf(stderr, "normctl: %s\n\n%s\n", message.c_str(), kUsage);
  return 2;
}

std::string ServerAddress() {
  std::string server = absl::GetFlag(FLAGS_server);
  if (server.empty()) {
    const char* env = std::getenv("NORMD_SERVER");
    server = env != nullptr && *env != '\0' ? env : "127.0.0.1:50051";
  }
  return server;
}

absl::StatusOr<ConnectOptions> ConnectOptionsFromFlags() {
  ConnectOptions options;
  options.ca_file = absl::GetFlag(FLAGS_ca_file);
  options.cert_file = absl::GetFlag(FLAGS_cert_file);
  options.key_file = absl::GetFlag(FLAGS_key_file);
  const std::string token_file = absl::GetFlag(FLAGS_token_file);
  if (!token_file.empty()) {
    std::ifstream file(token_file);
    if (!file || !std::getline(file, options.token) || options.token.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot read a token from the first line of ", token_file));
    }
    options.token = std::string(absl::StripAsciiWhitespace(options.token));
  } else if (const char* env = std::getenv("NORMD_TOKEN"); env != nullptr) {
    options.token = env;
  }
  return options;
}

absl::StatusOr<v1::Split> ParseSplitFlag() {
  const std::string split = absl::GetFlag(FLAGS_split);
  if (split == "train") return v1::SPLIT_TRAIN;
  if (split == "validation") return v1::SPLIT_VALIDATION;
  if (split == "test") return v1::SPLIT_TEST;
  return absl::InvalidArgumentError(
      absl::StrCat("--split must be train, validation or test, got '", split, "'"));
}

absl::StatusOr<v1::Layout> ParseLayoutFlag() {
  const std::string layout = absl::GetFlag(FLAGS_layout);
  if (layout == "NC") return v1::LAYOUT_NC;
  if (layout == "NCHW") return v1::LAYOUT_NCHW;
  if (layout == "NHWC") return v1::LAYOUT_NHWC;
  return absl::InvalidArgumentError(
      absl::StrCat("--layout must be NC, NCHW or NHWC, got '", layout, "'"));
}

absl::StatusOr<std::vector<double>> ParseDoubles(const std::string& flag, const std::string& text) {
  std::vector<double> values;
  if (text.empty()) return values;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    double value = 0;
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(part), &value)) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, ": '", part, "' is not a number"));
    }
    values.push_back(value);
  }
  return values;
}

absl::StatusOr<double> ParseDouble(const std::string& flag, const std::string& text) {
  double value = 0;
  if (!absl::SimpleAtod(text, &value)) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": '", text, "' is not a number"));
  }
  return value;
}

// "" -> 0; "latest" -> the dataset's latest version; "N" -> N.
absl::StatusOr<uint64_t> ResolveVersion(NormdClient& client, const std::string& name) {
  const std::string text = absl::GetFlag(FLAGS_version);
  if (text.empty()) return 0;
  if (text == "latest") {
    absl::StatusOr<v1::DatasetInfo> info = client.GetDataset(name);
    if (!info.ok()) return info.status();
    if (info->latest_version() == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("dataset ", name, " has no frozen version"));
    }
    return info->latest_version();
  }
  uint64_t version = 0;
  if (!absl::SimpleAtoi(text, &version) || version == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--version must be a positive integer or 'latest', got '", text, "'"));
  }
  return version;
}

std::string LayoutText(v1::Layout layout) {
  switch (layout) {
    case v1::LAYOUT_NC:
      return "NC";
    case v1::LAYOUT_NCHW:
      return "NCHW";
    case v1::LAYOUT_NHWC:
      return "NHWC";
    default:
      return "?";
  }
}

std::string AccumulatorText(const v1::DatasetSpec& spec) {
  if (!spec.has_running_average()) return "exact";
  return spec.running_average().has_momentum()
             ? absl::StrCat("running(momentum=", spec.running_average().momentum(), ")")
             : "running(cumulative)";
}

void PrintInfo(const v1::DatasetInfo& info) {
  const v1::DatasetSpec& spec = info.spec();
  std::printf("%s: layout %s, %lld channels, %s, non-finite %s\n", spec.name().c_str(),
              LayoutText(spec.layout()).c_str(), static_cast<long long>(spec.channels()),
              AccumulatorText(spec).c_str(),
              spec.nonfinite_policy() == v1::NONFINITE_POLICY_SKIP ? "skipped" : "rejected");
  for (const v1::SplitTotals& t : info.totals()) {
    std::printf("  %-10s %llu batches, %llu samples\n",
                absl::AsciiStrToLower(v1::Split_Name(t.split()).substr(6)).c_str(),
                static_cast<unsigned long long>(t.batches()),
                static_cast<unsigned long long>(t.samples()));
  }
  for (const v1::VersionInfo& v : info.versions()) {
    std::printf("  version %llu: %llu train samples\n",
                static_cast<unsigned long long>(v.version()),
                static_cast<unsigned long long>(v.train_samples()));
  }
}

int Create(NormdClient& client, const std::vector<char*>& args) {
  if (args.size() != 1) return Usage("create takes one dataset name");
  v1::DatasetSpec spec;
  spec.set_name(args[0]);
  absl::StatusOr<v1::Layout> layout = ParseLayoutFlag();
  if (!layout.ok()) return Usage(std::string(layout.status().message()));
  spec.set_layout(*layout);
  spec.set_channels(absl::GetFlag(FLAGS_channels));
  const std::string accumulator = absl::GetFlag(FLAGS_accumulator);
  if (accumulator == "running") {
    v1::RunningAverageAccumulator* running = spec.mutable_running_average();
    if (!absl::GetFlag(FLAGS_momentum).empty()) {
      absl::StatusOr<double> momentum = ParseDouble("momentum", absl::GetFlag(FLAGS_momentum));
      if (!momentum.ok()) return Usage(std::string(momentum.status().message()));
      running->set_momentum(*momentum);
    }
  } else if (accumulator == "exact") {
    spec.mutable_exact();
  } else {
    return Usage(absl::StrCat("--accumulator must be exact or running, got '", accumulator, "'"));
  }
  const std::string nonfinite = absl::GetFlag(FLAGS_nonfinite);
  if (nonfinite != "reject" && nonfinite != "skip") {
    return Usage(absl::StrCat("--nonfinite must be reject or skip, got '", nonfinite, "'"));
  }
  spec.set_nonfinite_policy(nonfinite == "skip" ? v1::NONFINITE_POLICY_SKIP
                                                : v1::NONFINITE_POLICY_REJECT);
  absl::StatusOr<v1::DatasetInfo> info = client.CreateDataset(spec);
  if (!info.ok()) return Fail(info.status());
  std::printf("created ");
  PrintInfo(*info);
  return 0;
}

// The files, opened (again, for a resend) and checked.
absl::StatusOr<std::vector<NpyReader>> OpenBatchFiles(const std::vector<char*>& files) {
  std::vector<NpyReader> readers;
  for (const char* file : files) {
    absl::StatusOr<NpyReader> reader = NpyReader::Open(file);
    if (!reader.ok()) return reader.status();
    if (reader->header().shape.size() < 2) {
      return absl::InvalidArgumentError(absl::StrCat(file, " has shape [",
                                                     absl::StrJoin(reader->header().shape, ", "),
                                                     "]; expected at least 2 dims, [N, C, ...]"));
    }
    readers.push_back(*std::move(reader));
  }
  return readers;
}

// One attempt: every file in chunks of rows, as one stream numbered from 1.
absl::StatusOr<v1::IngestResponse> SendFiles(IngestStream& stream, std::vector<NpyReader>& readers,
                                             v1::Split split, const std::string& label) {
  uint64_t total_bytes = 0;
  for (const NpyReader& reader : readers) {
    total_bytes += reader.row_bytes() * static_cast<uint64_t>(reader.rows());
  }
  ProgressBar progress(label, total_bytes);
  std::string chunk;
  for (NpyReader& reader : readers) {
    const int64_t rows_per_chunk =
        std::max<int64_t>(1, absl::GetFlag(FLAGS_chunk_bytes) /
                                 static_cast<int64_t>(std::max<size_t>(1, reader.row_bytes())));
    while (reader.rows_left() > 0) {
      const int64_t rows = std::min(rows_per_chunk, reader.rows_left());
      if (absl::Status status = reader.ReadRows(rows, &chunk); !status.ok()) {
        stream.Cancel();
        return status;
      }
      v1::Tensor batch;
      batch.set_dtype(reader.header().dtype);
      batch.add_shape(rows);
      for (size_t axis = 1; axis < reader.header().shape.size(); ++axis) {
        batch.add_shape(reader.header().shape[axis]);
      }
      const uint64_t bytes = chunk.size();
      batch.set_data(std::move(chunk));
      chunk.clear();
      if (!stream.Write(split, std::move(batch)).ok()) return stream.Finish();  // says why
      progress.Advance(bytes);
    }
  }
  absl::StatusOr<v1::IngestResponse> response = stream.Finish();
  progress.Finish();
  return response;
}

int Ingest(NormdClient& client, const std::vector<char*>& args) {
  if (args.size() < 2) return Usage("ingest takes a dataset name and at least one .npy file");
  absl::StatusOr<v1::Split> split = ParseSplitFlag();
  if (!split.ok()) return Usage(std::string(split.status().message()));
  const std::vector<char*> files(args.begin() + 1, args.end());
  std::string writer = absl::GetFlag(FLAGS_writer_id);
  if (writer.empty())
    writer = absl::StrCat("normctl-", absl::Hex(absl::Uniform<uint64_t>(absl::BitGen())));
  const absl::Time deadline = absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_retry_seconds));
  absl::StatusOr<v1::IngestResponse> response;
  // The files are read again for a resend: the whole ingest is one stream, one
  // transaction, and the server drops the batches it had already committed.
  Backoff backoff;
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<std::vector<NpyReader>> readers = OpenBatchFiles(files);
    if (!readers.ok()) return Fail(readers.status());
    // A resend waits for the server to come back; the server skips what it committed.
    std::unique_ptr<IngestStream> stream = client.StartIngest(
        args[0], {writer, 1}, attempt > 0, attempt > 0 ? deadline : absl::InfiniteFuture());
    response = SendFiles(*stream, *readers, *split, absl::StrCat("ingest ", args[0]));
    if (response.ok() || !IsWorthResending(response.status()) || absl::Now() >= deadline) break;
    std::fprintf(stderr, "normctl: %s; resending as writer %s\n",
                 response.status().ToString().c_str(), writer.c_str());
    backoff.Wait(deadline);
  }
  if (!response.ok()) return Fail(response.status());
  std::printf("ingested %llu batches, %llu samples, %llu values into %s",
              static_cast<unsigned long long>(response->batches()),
              static_cast<unsigned long long>(response->samples()),
              static_cast<unsigned long long>(response->values()), response->dataset().c_str());
  if (response->duplicate_batches() > 0) {
    std::printf(" (%llu batches were already committed by writer %s)",
                static_cast<unsigned long long>(response->duplicate_batches()), writer.c_str());
  }
  if (response->skipped_nonfinite() > 0) {
    std::printf(" (%llu non-finite values skipped)",
                static_cast<unsigned long long>(response->skipped_nonfinite()));
  }
  std::printf("\n");
  return 0;
}

int Freeze(NormdClient& client, const std::vector<char*>& args) {
  if (args.size() != 1) return Usage("freeze takes one dataset name");
  absl::StatusOr<v1::FreezeResponse> response = client.Freeze(args[0]);
  if (!response.ok()) return Fail(response.status());
  std::printf("froze %s as version %llu\n", args[0],
              static_cast<unsigned long long>(response->version()));
  return 0;
}

int Stats(NormdClient& client, const std::vector<char*>& args) {
  if (args.size() != 1) return Usage("stats takes one dataset name");
  absl::StatusOr<v1::Split> split = ParseSplitFlag();
  if (!split.ok()) return Usage(std::string(split.status().message()));
  absl::StatusOr<uint64_t> version = ResolveVersion(client, args[0]);
  if (!version.ok()) return Fail(version.status());
  absl::StatusOr<v1::GetStatsResponse> response = client.GetStats(args[0], *version, *split);
  if (!response.ok()) return Fail(response.status());
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("%s\n", StatsToJson(*response).c_str());
    return 0;
  }
  const v1::Statistics& s = response->stats();
  std::printf(
      "%s %s, %s split: %llu batches, %llu samples\n", args[0],
      response->version() == 0 ? "live" : absl::StrCat("version ", response->version()).c_str(),
      absl::GetFlag(FLAGS_split).c_str(), static_cast<unsigned long long>(s.batches()),
      static_cast<unsigned long long>(s.samples()));
  std::printf("%8s %12s %20s %14s %20s %20s\n", "channel", "count", "mean", "std", "min", "max");
  for (int c = 0; c < s.count_size(); ++c) {
    std::printf("%8d %12llu %20.12g %14.6g %20.12g %20.12g\n", c,
                static_cast<unsigned long long>(s.count(c)), s.mean(c), std::sqrt(s.variance(c)),
                s.min(c), s.max(c));
  }
  return 0;
}

// Sets gamma, beta and eps on any scheme message that has them.
template <typename Scheme>
absl::Status SetAffine(Scheme* scheme, std::optional<double> eps) {
  absl::StatusOr<std::vector<double>> gamma = ParseDoubles("gamma", absl::GetFlag(FLAGS_gamma));
  if (!gamma.ok()) return gamma.status();
  absl::StatusOr<std::vector<double>> beta = ParseDoubles("beta", absl::GetFlag(FLAGS_beta));
  if (!beta.ok()) return beta.status();
  scheme->mutable_gamma()->Add(gamma->begin(), gamma->end());
  scheme->mutable_beta()->Add(beta->begin(), beta->end());
  if (eps) scheme->set_eps(*eps);
  return absl::OkStatus();
}

absl::StatusOr<v1::NormalizeRequest> NormalizeTemplate(const std::string& name) {
  v1::NormalizeRequest request;
  if (name != "-") request.set_dataset(name);
  const std::string scheme = absl::GetFlag(FLAGS_scheme);
  std::optional<double> eps;
  if (!absl::GetFlag(FLAGS_eps).empty()) {
    absl::StatusOr<double> parsed = ParseDouble("eps", absl::GetFlag(FLAGS_eps));
    if (!parsed.ok()) return parsed.status();
    eps = *parsed;
  }
  absl::Status status;
  if (scheme == "zscore") {
    v1::ZScore* z = request.mutable_zscore();
    if (eps) z->set_eps(*eps);
  } else if (scheme == "minmax") {
    request.mutable_minmax()->set_low(absl::GetFlag(FLAGS_low));
    request.mutable_minmax()->set_high(absl::GetFlag(FLAGS_high));
  } else if (scheme == "scale") {
    request.mutable_scale()->set_factor(absl::GetFlag(FLAGS_factor));
    request.mutable_scale()->set_offset(absl::GetFlag(FLAGS_offset));
  } else if (scheme == "batchnorm") {
    status = SetAffine(request.mutable_batchnorm(), eps);
  } else if (scheme == "layernorm") {
    absl::StatusOr<std::vector<double>> dims =
        ParseDoubles("normalized_shape", absl::GetFlag(FLAGS_normalized_shape));
    if (!dims.ok()) return dims.status();
    for (double dim : *dims)
      request.mutable_layernorm()->add_normalized_shape(static_cast<int64_t>(dim));
    status = SetAffine(request.mutable_layernorm(), eps);
  } else if (scheme == "instancenorm") {
    status = SetAffine(request.mutable_instancenorm(), eps);
  } else if (scheme == "groupnorm") {
    request.mutable_groupnorm()->set_num_groups(absl::GetFlag(FLAGS_groups));
    status = SetAffine(request.mutable_groupnorm(), eps);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--scheme must be zscore, minmax, scale, batchnorm, layernorm, instancenorm or "
        "groupnorm, got '",
        scheme, "'"));
  }
  if (!status.ok()) return status;
  if (name == "-" && (scheme == "instancenorm" || scheme == "groupnorm")) {
    absl::StatusOr<v1::Layout> layout = ParseLayoutFlag();
    if (!layout.ok()) return layout.status();
    request.set_layout(*layout);
  }
  const std::string output = absl::GetFlag(FLAGS_output_dtype);
  if (output == "float32") {
    request.set_output_dtype(v1::DTYPE_FLOAT32);
  } else if (output == "float64") {
    request.set_output_dtype(v1::DTYPE_FLOAT64);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--output_dtype must be float32 or float64, got '", output, "'"));
  }
  return request;
}

int Normalize(NormdClient& client, const std::vector<char*>& args) {
  if (args.size() != 3) return Usage("normalize takes NAME IN.npy OUT.npy");
  absl::StatusOr<v1::NormalizeRequest> request = NormalizeTemplate(args[0]);
  if (!request.ok()) return Usage(std::string(request.status().message()));
  absl::StatusOr<uint64_t> version = ResolveVersion(client, args[0]);
  if (!version.ok()) return Fail(version.status());
  request->set_version(*version);
  absl::StatusOr<NpyReader> reader = NpyReader::Open(args[1]);
  if (!reader.ok()) return Fail(reader.status());
  NpyHeader out_header{request->output_dtype(), reader->header().shape};
  absl::StatusOr<NpyWriter> writer = NpyWriter::Create(args[2], out_header);
  if (!writer.ok()) return Fail(writer.status());

  const size_t out_row_bytes =
      reader->row_bytes() / NpyItemSize(reader->header().dtype) * NpyItemSize(out_header.dtype);
  const int64_t rows_per_chunk = std::max<int64_t>(
      1, absl::GetFlag(FLAGS_chunk_bytes) /
             static_cast<int64_t>(std::max<size_t>({1, reader->row_bytes(), out_row_bytes})));
  ProgressBar progress(absl::StrCat("normalize ", args[1]),
                       reader->row_bytes() * static_cast<uint64_t>(reader->rows()));
  v1::Tensor* input = request->mutable_input();
  input->set_dtype(reader->header().dtype);
  while (reader->rows_left() > 0) {
    const int64_t rows = std::min(rows_per_chunk, reader->rows_left());
    if (absl::Status status = reader->ReadRows(rows, input->mutable_data()); !status.ok()) {
      return Fail(status);
    }
    input->clear_shape();
    input->add_shape(rows);
    for (size_t axis = 1; axis < reader->header().shape.size(); ++axis) {
      input->add_shape(reader->header().shape[axis]);
    }
    absl::StatusOr<v1::NormalizeResponse> response = client.Normalize(*request);
    if (!response.ok()) return Fail(response.status());
    // Every chunk uses the version the first one resolved, even if a freeze lands meanwhile.
    request->set_version(response->version());
    if (absl::Status status = writer->Append(response->output().data()); !status.ok()) {
      return Fail(status);
    }
    progress.Advance(input->data().size());
  }
  progress.Finish();
  if (absl::Status status = writer->Close(); !status.ok()) return Fail(status);
  std::printf("normalized %lld rows of %s with %s (version %llu) into %s\n",
              static_cast<long long>(reader->rows()), args[1], absl::GetFlag(FLAGS_scheme).c_str(),
              static_cast<unsigned long long>(request->version()), args[2]);
  return 0;
}

int Info(NormdClient& client, const std::vector<char*>& args) {
  if (args.size() != 1) return Usage("info takes one dataset name");
  absl::StatusOr<v1::DatasetInfo> info = client.GetDataset(args[0]);
  if (!info.ok()) return Fail(info.status());
  PrintInfo(*info);
  return 0;
}

int List(NormdClient& client, const std::vector<char*>& args) {
  if (!args.empty()) return Usage("list takes no arguments");
  absl::StatusOr<std::vector<v1::DatasetInfo>> datasets = client.ListDatasets();
  if (!datasets.ok()) return Fail(datasets.status());
  std::printf("%-32s %-6s %9s %14s %8s\n", "NAME", "LAYOUT", "CHANNELS", "TRAIN_SAMPLES", "LATEST");
  for (const v1::DatasetInfo& info : *datasets) {
    uint64_t train = 0;
    for (const v1::SplitTotals& t : info.totals()) {
      if (t.split() == v1::SPLIT_TRAIN) train = t.samples();
    }
    std::printf("%-32s %-6s %9lld %14llu %8llu\n", info.spec().name().c_str(),
                LayoutText(info.spec().layout()).c_str(),
                static_cast<long long>(info.spec().channels()),
                static_cast<unsigned long long>(train),
                static_cast<unsigned long long>(info.latest_version()));
  }
  return 0;
}

int Delete(NormdClient& client, const std::vector<char*>& args) {
  if (args.size() != 1) return Usage("delete takes one dataset name");
  if (absl::Status status = client.DeleteDataset(args[0]); !status.ok()) return Fail(status);
  std::printf("deleted %s\n", args[0]);
  return 0;
}

int Health(NormdClient& client, const std::vector<char*>& args) {
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> status =
      client.CheckHealth();
  if (!status.ok()) return Fail(status.status());
  std::printf("%s\n", grpc::health::v1::HealthCheckResponse::ServingStatus_Name(*status).c_str());
  return *status == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

int Run(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() < 2) return Usage("no command given");
  const std::string command = positional[1];
  const std::vector<char*> args(positional.begin() + 2, positional.end());
  absl::StatusOr<ConnectOptions> options = ConnectOptionsFromFlags();
  if (!options.ok()) return Usage(std::string(options.status().message()));
  absl::StatusOr<std::unique_ptr<NormdClient>> connected =
      NormdClient::Connect(ServerAddress(), *options);
  if (!connected.ok()) return Fail(connected.status());
  std::unique_ptr<NormdClient>& client = *connected;
  if (command == "create") return Create(*client, args);
  if (command == "ingest") return Ingest(*client, args);
  if (command == "freeze") return Freeze(*client, args);
  if (command == "stats") return Stats(*client, args);
  if (command == "normalize") return Normalize(*client, args);
  if (command == "info") return Info(*client, args);
  if (command == "list") return List(*client, args);
  if (command == "delete") return Delete(*client, args);
  if (command == "health") return Health(*client, args);
  return Usage(absl::StrCat("unknown command '", command, "'"));
}

}  // namespace
}  // namespace normd

int main(int argc, char** argv) { return normd::Run(argc, argv); }
