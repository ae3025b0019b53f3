#include "client/cpp/normctl/flags.h"

#include "absl/flags/flag.h"

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
ABSL_FLAG(bool, sketch, true, "create: keep per-channel quantile sketches (--nosketch: none)");
ABSL_FLAG(double, sketch_accuracy, 0.0,
          "create: the sketches' relative accuracy in [2^-11, 0.5]; 0: 0.01");
ABSL_FLAG(uint32_t, sketch_max_buckets, 0,
          "create: buckets a channel's sketch may hold, in [16, 65536]; 0: 2048");
ABSL_FLAG(std::string, sketch_center, "",
          "create: comma-separated value per channel the sketches centre on (near data far "
          "from 0); empty: 0");
ABSL_FLAG(std::string, histogram_edges, "",
          "create: comma-separated bin edges (every channel's) of exact histograms kept beside "
          "the sketches; empty: none");
ABSL_FLAG(std::string, quantiles, "",
          "stats: comma-separated ranks in [0, 1] to report quantiles at, from the sketches");
ABSL_FLAG(uint32_t, histogram_bins, 0, "stats: a histogram of at most this many bins a channel");
ABSL_FLAG(std::string, quantile_clip, "",
          "normalize: LOW,HIGH ranks of the train quantiles to clip inputs to (zscore, minmax, "
          "batchnorm, robust; required for --scheme=clip)");
// ingest, stats
ABSL_FLAG(std::string, split, "train", "ingest, stats: train, validation or test");
ABSL_FLAG(int64_t, chunk_bytes, 4 << 20, "ingest, normalize: bytes of data per message");
ABSL_FLAG(std::string, weights, "",
          "ingest: comma-separated .npy files of sample weights or masks, one per batch file, "
          "each [N] or [N, ...] as a leading part of its file's shape (0 leaves values out)");
ABSL_FLAG(std::string, writer_id, "",
          "ingest: exactly-once writer id (default: a random one per run); run the same ingest "
          "again with the same id and the batches already committed are skipped");
ABSL_FLAG(int64_t, retry_seconds, -1,
          "ingest: how long to wait for normd and resend after UNAVAILABLE, ABORTED or "
          "CANCELLED; unset (-1): 300, or 30 when stderr is a terminal");
ABSL_FLAG(std::string, version, "",
          "stats: version, 'latest', or empty for live; normalize: version, empty for latest");
ABSL_FLAG(bool, json, false, "stats: print one JSON object");
ABSL_FLAG(std::string, format, "json", "export: json, torchvision or dali");
ABSL_FLAG(std::string, pixel_scale, "",
          "export --format=dali: dataset units to pixel units (default 255 when the data "
          "were fit in [0, 1], else 1)");
// normalize
ABSL_FLAG(std::string, scheme, "zscore",
          "normalize: zscore, minmax, scale, batchnorm, robust, clip, quantile, bucketize "
          "(a frozen version's statistics), or layernorm, instancenorm, groupnorm (each "
          "sample's own statistics)");
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
ABSL_FLAG(std::string, output_dtype, "float32", "normalize: float32, float64 or float16");
ABSL_FLAG(uint32_t, n_quantiles, 1000,
          "normalize --scheme=quantile: quantiles of the train split the map runs through, "
          "in [2, 1000]");
ABSL_FLAG(bool, normal_output, false,
          "normalize --scheme=quantile: map to a standard normal rather than uniform [0, 1]");
ABSL_FLAG(std::string, ranks, "",
          "normalize --scheme=bucketize: comma-separated ranks in [0, 1], rising; a value's "
          "bucket is the number of the train split's quantiles at these ranks at or below it");
ABSL_FLAG(bool, shared_memory, false,
          "normalize: on the server's host, pass each chunk and its result through shared "
          "memory instead of the socket");
ABSL_FLAG(std::string, reference, "",
          "compare: live:SPLIT, version:N[:SPLIT] or traffic:N[:WINDOW]; default: the latest "
          "version's train split");
ABSL_FLAG(std::string, candidate, "",
          "compare: the same forms; default: the latest version's live traffic since start");
ABSL_FLAG(std::string, thresholds, "",
          "compare, freeze --drift_gate: MEASURE=WARN:FAIL,... (standardized_mean_difference, "
          "variance_ratio, ks, psi, js_divergence); the rest keep their defaults");
ABSL_FLAG(uint32_t, bins, 0, "compare: bins for PSI and JS (0: 10, the reference's deciles)");
ABSL_FLAG(std::string, fail_on, "never",
          "compare: exit with 3 when the worst channel is at this level or above: never, warn "
          "or fail");
ABSL_FLAG(bool, rollback, false, "pin: restore the pin set before the current one");
ABSL_FLAG(uint64_t, min_train_count, 0,
          "freeze: refuse unless every channel has this many "
          "train values");
ABSL_FLAG(bool, drift_gate, false,
          "freeze: refuse when the train statistics fail against the previous version's "
          "(--thresholds)");
ABSL_FLAG(bool, mark, false, "freeze: with a gate, freeze anyway and keep what it found");
ABSL_FLAG(bool, traffic, false,
          "stats: what Normalize saw with --version (default: the pinned or latest) instead "
          "of a split");
ABSL_FLAG(std::string, window, "since_start", "stats --traffic: since_start or last_hour");
