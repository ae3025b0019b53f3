// normctl normalize: an .npy file normalised in chunks into another.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/cpp/normctl/commands.h"
#include "client/cpp/normctl/flags.h"
#include "client/cpp/normctl/npy.h"
#include "client/cpp/normctl/options.h"
#include "client/cpp/normctl/output.h"
#include "client/cpp/normctl/progress_bar.h"
#include "client/cpp/shared_buffer.h"
#include "common/status_macros.h"

namespace normd {
namespace {

// Sets gamma, beta and eps on any scheme message that has them.
template <typename Scheme>
absl::Status SetAffine(Scheme* scheme, std::optional<double> eps) {
  NORMD_ASSIGN_OR_RETURN(std::vector<double> gamma,
                         ParseDoubles("gamma", absl::GetFlag(FLAGS_gamma)));
  NORMD_ASSIGN_OR_RETURN(std::vector<double> beta, ParseDoubles("beta", absl::GetFlag(FLAGS_beta)));
  scheme->mutable_gamma()->Add(gamma.begin(), gamma.end());
  scheme->mutable_beta()->Add(beta.begin(), beta.end());
  if (eps) scheme->set_eps(*eps);
  return absl::OkStatus();
}

absl::StatusOr<v1::NormalizeRequest> NormalizeTemplate(const std::string& name) {
  v1::NormalizeRequest request;
  if (name != "-") request.set_dataset(name);
  const std::string scheme = absl::GetFlag(FLAGS_scheme);
  std::optional<double> eps;
  if (!absl::GetFlag(FLAGS_eps).empty()) {
    NORMD_ASSIGN_OR_RETURN(double parsed, ParseDouble("eps", absl::GetFlag(FLAGS_eps)));
    eps = parsed;
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
  } else if (scheme == "robust") {
    request.mutable_robust();  // RobustScaler's defaults: median and 25-75 range
  } else if (scheme == "clip") {
    request.mutable_clip();
  } else if (scheme == "quantile") {
    request.mutable_quantile()->set_n_quantiles(absl::GetFlag(FLAGS_n_quantiles));
    request.mutable_quantile()->set_normal_output(absl::GetFlag(FLAGS_normal_output));
  } else if (scheme == "bucketize") {
    NORMD_ASSIGN_OR_RETURN(const std::vector<double> ranks,
                           ParseDoubles("ranks", absl::GetFlag(FLAGS_ranks)));
    if (ranks.empty()) {
      return absl::InvalidArgumentError(
          "--scheme=bucketize needs --ranks=R,... (ranks in [0, 1], rising)");
    }
    request.mutable_bucketize()->mutable_ranks()->Add(ranks.begin(), ranks.end());
  } else if (scheme == "layernorm") {
    NORMD_ASSIGN_OR_RETURN(std::vector<double> dims,
                           ParseDoubles("normalized_shape", absl::GetFlag(FLAGS_normalized_shape)));
    for (double dim : dims)
      request.mutable_layernorm()->add_normalized_shape(static_cast<int64_t>(dim));
    status = SetAffine(request.mutable_layernorm(), eps);
  } else if (scheme == "instancenorm") {
    status = SetAffine(request.mutable_instancenorm(), eps);
  } else if (scheme == "groupnorm") {
    request.mutable_groupnorm()->set_num_groups(absl::GetFlag(FLAGS_groups));
    status = SetAffine(request.mutable_groupnorm(), eps);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--scheme must be zscore, minmax, scale, batchnorm, robust, clip, quantile, "
                     "bucketize, layernorm, instancenorm or groupnorm, got '",
                     scheme, "'"));
  }
  NORMD_RETURN_IF_ERROR(status);
  if (!absl::GetFlag(FLAGS_quantile_clip).empty()) {
    NORMD_ASSIGN_OR_RETURN(const std::vector<double> ranks,
                           ParseDoubles("quantile_clip", absl::GetFlag(FLAGS_quantile_clip)));
    v1::QuantileClip clip;
    if (ranks.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("--quantile_clip takes two ranks, LOW,HIGH, got ", ranks.size(), " values"));
    }
    clip.set_low(ranks[0]);
    clip.set_high(ranks[1]);
    if (scheme == "zscore") *request.mutable_zscore()->mutable_quantile_clip() = clip;
    if (scheme == "minmax") *request.mutable_minmax()->mutable_quantile_clip() = clip;
    if (scheme == "batchnorm") *request.mutable_batchnorm()->mutable_quantile_clip() = clip;
    if (scheme == "robust") *request.mutable_robust()->mutable_quantile_clip() = clip;
    if (scheme == "clip") *request.mutable_clip()->mutable_quantile_clip() = clip;
  }
  if (name == "-" && (scheme == "instancenorm" || scheme == "groupnorm")) {
    NORMD_ASSIGN_OR_RETURN(v1::Layout layout, ParseLayoutFlag());
    request.set_layout(layout);
  }
  const std::string output = absl::GetFlag(FLAGS_output_dtype);
  if (output == "float32") {
    request.set_output_dtype(v1::DTYPE_FLOAT32);
  } else if (output == "float64") {
    request.set_output_dtype(v1::DTYPE_FLOAT64);
  } else if (output == "float16") {
    request.set_output_dtype(v1::DTYPE_FLOAT16);
  } else if (output == "bfloat16") {
    return absl::InvalidArgumentError(
        "--output_dtype=bfloat16: a .npy file has no bfloat16 type (numpy has none); write "
        "float16 or float32, or use the Python client, which returns torch.bfloat16");
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--output_dtype must be float32, float64 or float16, got '", output, "'"));
  }
  return request;
}

// A region name of this process's own: normctl runs may share a token.
std::string NewRegionName(absl::string_view role) {
  return absl::StrCat("normctl-", getpid(), "-", role, "-",
                      absl::Uniform<uint32_t>(absl::BitGen()));
}

}  // namespace

int Normalize(NormdClient& client, const std::vector<char*>& args) {
  if (args.size() != 3) return Usage("normalize takes NAME IN.npy OUT.npy");
  NORMD_ASSIGN_OR_RETURN(v1::NormalizeRequest request, NormalizeTemplate(args[0]),
                         Usage(std::string(_.message())));
  // The input first: a file that cannot be read fails at once, before any call.
  NORMD_ASSIGN_OR_RETURN(NpyReader reader, NpyReader::Open(args[1]), FailLocal(_));
  NORMD_ASSIGN_OR_RETURN(uint64_t version, ResolveVersion(client, args[0]), Fail(_));
  request.set_version(version);
  NpyHeader out_header{request.output_dtype(), reader.header().shape};
  NORMD_ASSIGN_OR_RETURN(NpyWriter writer, NpyWriter::Create(args[2], out_header),
                         FailLocal(_));

  const size_t out_row_bytes =
      reader.row_bytes() / NpyItemSize(reader.header().dtype) * NpyItemSize(out_header.dtype);
  const int64_t rows_per_chunk = std::max<int64_t>(
      1, absl::GetFlag(FLAGS_chunk_bytes) /
             static_cast<int64_t>(std::max<size_t>({1, reader.row_bytes(), out_row_bytes})));
  ProgressBar progress(absl::StrCat("normalize ", args[1]),
                       reader.row_bytes() * static_cast<uint64_t>(reader.rows()));
  v1::Tensor* input = request.mutable_input();
  input->set_dtype(reader.header().dtype);
  // With --shared_memory, each chunk is read from the file straight into memory the
  // server reads, and its result written from memory the server wrote.
  std::unique_ptr<SharedBuffer> shared_in, shared_out;
  if (absl::GetFlag(FLAGS_shared_memory)) {
    const auto rows = static_cast<size_t>(std::min(rows_per_chunk, reader.rows()));
    NORMD_ASSIGN_OR_RETURN(
        shared_in, SharedBuffer::Create(client, NewRegionName("in"), rows * reader.row_bytes()),
        Fail(_));
    NORMD_ASSIGN_OR_RETURN(shared_out,
                           SharedBuffer::Create(client, NewRegionName("out"), rows * out_row_bytes),
                           Fail(_));
    *input->mutable_region() = shared_in->Slice(0);
    *request.mutable_output_region() = shared_out->Slice(0);
  }
  while (reader.rows_left() > 0) {
    const int64_t rows = std::min(rows_per_chunk, reader.rows_left());
    size_t bytes = 0;
    if (shared_in != nullptr) {
      NORMD_ASSIGN_OR_RETURN(bytes, reader.ReadRows(rows, shared_in->bytes()), Fail(_));
    } else {
      NORMD_RETURN_IF_ERROR(reader.ReadRows(rows, input->mutable_data()), Fail(_));
      bytes = input->data().size();
    }
    input->clear_shape();
    input->add_shape(rows);
    for (size_t axis = 1; axis < reader.header().shape.size(); ++axis) {
      input->add_shape(reader.header().shape[axis]);
    }
    NORMD_ASSIGN_OR_RETURN(v1::NormalizeResponse response, client.Normalize(request), Fail(_));
    // Every chunk uses the version the first one resolved, even if a freeze lands meanwhile.
    request.set_version(response.version());
    if (shared_out != nullptr) {
      NORMD_RETURN_IF_ERROR(
          writer.Append(absl::string_view(reinterpret_cast<const char*>(shared_out->bytes().data()),
                                          static_cast<size_t>(rows) * out_row_bytes)),
          Fail(_));
    } else {
      NORMD_RETURN_IF_ERROR(writer.Append(response.output().data()), Fail(_));
    }
    progress.Advance(bytes);
  }
  progress.Finish();
  NORMD_RETURN_IF_ERROR(writer.Close(), Fail(_));
  std::printf("normalized %lld rows of %s with %s (version %llu) into %s\n",
              static_cast<long long>(reader.rows()), args[1], absl::GetFlag(FLAGS_scheme).c_str(),
              static_cast<unsigned long long>(request.version()), args[2]);
  return 0;
}

}  // namespace normd
