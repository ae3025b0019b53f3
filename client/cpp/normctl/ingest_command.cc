// normctl ingest: .npy files sent as one exactly-once stream, resent while the
// server restarts.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/cpp/normctl/commands.h"
#include "client/cpp/normctl/flags.h"
#include "client/cpp/normctl/npy.h"
#include "client/cpp/normctl/options.h"
#include "client/cpp/normctl/output.h"
#include "client/cpp/normctl/progress_bar.h"
#include "client/cpp/resend.h"
#include "common/status_macros.h"

namespace normd {
namespace {

// The weight files of --weights, one per batch file, each with the same rows: opened
// (again, for a resend) beside them. None without the flag.
absl::StatusOr<std::vector<NpyReader>> OpenWeightFiles(const std::vector<NpyReader>& batches) {
  std::vector<NpyReader> readers;
  const std::string flag = absl::GetFlag(FLAGS_weights);
  if (flag.empty()) return readers;
  const std::vector<std::string> files = absl::StrSplit(flag, ',');
  if (files.size() != batches.size()) {
    return absl::InvalidArgumentError(absl::StrCat("--weights names ", files.size(), " files for ",
                                                   batches.size(),
                                                   " batch files; expected one each"));
  }
  for (size_t i = 0; i < files.size(); ++i) {
    NORMD_ASSIGN_OR_RETURN(NpyReader reader, NpyReader::Open(files[i]));
    if (reader.header().shape.empty() || reader.rows() != batches[i].rows()) {
      return absl::InvalidArgumentError(
          absl::StrCat(files[i], " has shape [", absl::StrJoin(reader.header().shape, ", "),
                       "]; expected ", batches[i].rows(), " rows, as its batch file"));
    }
    readers.push_back(std::move(reader));
  }
  return readers;
}

// The files, opened (again, for a resend) and checked.
absl::StatusOr<std::vector<NpyReader>> OpenBatchFiles(const std::vector<char*>& files) {
  std::vector<NpyReader> readers;
  for (const char* file : files) {
    NORMD_ASSIGN_OR_RETURN(NpyReader reader, NpyReader::Open(file));
    if (reader.header().shape.size() < 2) {
      return absl::InvalidArgumentError(absl::StrCat(file, " has shape [",
                                                     absl::StrJoin(reader.header().shape, ", "),
                                                     "]; expected at least 2 dims, [N, C, ...]"));
    }
    readers.push_back(std::move(reader));
  }
  return readers;
}

// `rows` rows of `reader` as a tensor of its dtype.
absl::StatusOr<v1::Tensor> ReadTensor(NpyReader& reader, int64_t rows, std::string& chunk) {
  NORMD_RETURN_IF_ERROR(reader.ReadRows(rows, &chunk));
  v1::Tensor tensor;
  tensor.set_dtype(reader.header().dtype);
  tensor.add_shape(rows);
  for (size_t axis = 1; axis < reader.header().shape.size(); ++axis) {
    tensor.add_shape(reader.header().shape[axis]);
  }
  tensor.set_data(std::move(chunk));
  chunk.clear();
  return tensor;
}

// One attempt: every file in chunks of rows (and its weights' same rows), as one
// stream numbered from 1.
absl::StatusOr<v1::IngestResponse> SendFiles(IngestStream& stream, std::vector<NpyReader>& readers,
                                             std::vector<NpyReader>& weights, v1::Split split,
                                             const std::string& label) {
  uint64_t total_bytes = 0;
  for (const NpyReader& reader : readers) {
    total_bytes += reader.row_bytes() * static_cast<uint64_t>(reader.rows());
  }
  ProgressBar progress(label, total_bytes);
  std::string chunk;
  for (size_t f = 0; f < readers.size(); ++f) {
    NpyReader& reader = readers[f];
    const int64_t rows_per_chunk =
        std::max<int64_t>(1, absl::GetFlag(FLAGS_chunk_bytes) /
                                 static_cast<int64_t>(std::max<size_t>(1, reader.row_bytes())));
    while (reader.rows_left() > 0) {
      const int64_t rows = std::min(rows_per_chunk, reader.rows_left());
      absl::StatusOr<v1::Tensor> batch = ReadTensor(reader, rows, chunk);
      std::optional<v1::Tensor> batch_weights;
      if (batch.ok() && !weights.empty()) {
        absl::StatusOr<v1::Tensor> read = ReadTensor(weights[f], rows, chunk);
        if (!read.ok()) batch = read.status();
        if (read.ok()) batch_weights = *std::move(read);
      }
      if (!batch.ok()) {
        stream.Cancel();
        return batch.status();
      }
      const uint64_t bytes = batch->data().size();
      if (!stream.Write(split, *std::move(batch), std::move(batch_weights)).ok()) {
        return stream.Finish();  // says why
      }
      progress.Advance(bytes);
    }
  }
  absl::StatusOr<v1::IngestResponse> response = stream.Finish();
  progress.Finish();
  return response;
}

// --retry_seconds as given; unset, 300 s, or 30 s when a person watches the terminal.
absl::Duration RetryFor() {
  const int64_t given = absl::GetFlag(FLAGS_retry_seconds);
  if (given >= 0) return absl::Seconds(given);
  return absl::Seconds(isatty(STDERR_FILENO) ? 30 : 300);
}

}  // namespace

int Ingest(NormdClient& client, const std::vector<char*>& args) {
  if (args.size() < 2) return Usage("ingest takes a dataset name and at least one .npy file");
  NORMD_ASSIGN_OR_RETURN(v1::Split split, ParseSplitFlag(), Usage(std::string(_.message())));
  const std::vector<char*> files(args.begin() + 1, args.end());
  std::string writer = absl::GetFlag(FLAGS_writer_id);
  if (writer.empty())
    writer = absl::StrCat("normctl-", absl::Hex(absl::Uniform<uint64_t>(absl::BitGen())));
  // The files are checked before anything is sent: a missing or malformed one fails at
  // once (exit 2), and is never taken for the server being away.
  {
    absl::StatusOr<std::vector<NpyReader>> readers = OpenBatchFiles(files);
    if (!readers.ok()) return FailLocal(readers.status());
    absl::StatusOr<std::vector<NpyReader>> weights = OpenWeightFiles(*readers);
    if (!weights.ok()) return FailLocal(weights.status());
  }
  const absl::Duration retry_for = RetryFor();
  const absl::Time deadline = absl::Now() + retry_for;
  // The files are read again for a resend: the whole ingest is one stream, one
  // transaction, and the server drops the batches it had already committed.
  const auto attempt = [&](bool resend) -> absl::StatusOr<v1::IngestResponse> {
    NORMD_ASSIGN_OR_RETURN(std::vector<NpyReader> readers, OpenBatchFiles(files));
    NORMD_ASSIGN_OR_RETURN(std::vector<NpyReader> weights, OpenWeightFiles(readers));
    // A resend waits for the server to come back; the server skips what it committed.
    std::unique_ptr<IngestStream> stream = client.StartIngest(
        args[0], {writer, 1}, resend, resend ? deadline : absl::InfiniteFuture());
    return SendFiles(*stream, readers, weights, split, absl::StrCat("ingest ", args[0]));
  };
  std::optional<absl::Status> cause;  // the last failure a resend was to mend
  const absl::StatusOr<v1::IngestResponse> response =
      SendWithResends(attempt, deadline, [&](const absl::Status& status) {
        cause = status;
        std::fprintf(stderr,
                     "normctl: waiting for normd at %s (up to %llds more, --retry_seconds); "
                     "then resending as writer %s: %s\n",
                     ServerAddress().c_str(),
                     static_cast<long long>(absl::ToInt64Seconds(deadline - absl::Now())),
                     writer.c_str(), status.ToString().c_str());
      });
  if (!response.ok() && cause.has_value() && absl::IsDeadlineExceeded(response.status())) {
    // The wait ran out: what kept the server away says more than the deadline.
    return Fail(absl::UnavailableError(absl::StrCat(
        "normd at ", ServerAddress(), " did not come back within ", absl::FormatDuration(retry_for),
        " (--retry_seconds); the last failure: ", cause->ToString())));
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

}  // namespace normd
