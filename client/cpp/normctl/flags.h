// normctl's flags, defined in flags.cc and read by the commands.
#ifndef NORMD_CLIENT_CPP_NORMCTL_FLAGS_H_
#define NORMD_CLIENT_CPP_NORMCTL_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/flags/declare.h"

ABSL_DECLARE_FLAG(std::string, server);
ABSL_DECLARE_FLAG(std::string, token_file);
ABSL_DECLARE_FLAG(std::string, ca_file);
ABSL_DECLARE_FLAG(std::string, cert_file);
ABSL_DECLARE_FLAG(std::string, key_file);
ABSL_DECLARE_FLAG(std::string, layout);
ABSL_DECLARE_FLAG(int64_t, channels);
ABSL_DECLARE_FLAG(std::string, accumulator);
ABSL_DECLARE_FLAG(std::string, momentum);
ABSL_DECLARE_FLAG(std::string, nonfinite);
ABSL_DECLARE_FLAG(std::string, histogram_edges);
ABSL_DECLARE_FLAG(bool, sketch);
ABSL_DECLARE_FLAG(double, sketch_accuracy);
ABSL_DECLARE_FLAG(uint32_t, sketch_max_buckets);
ABSL_DECLARE_FLAG(std::string, sketch_center);
ABSL_DECLARE_FLAG(std::string, quantiles);
ABSL_DECLARE_FLAG(uint32_t, histogram_bins);
ABSL_DECLARE_FLAG(std::string, quantile_clip);
ABSL_DECLARE_FLAG(std::string, split);
ABSL_DECLARE_FLAG(int64_t, chunk_bytes);
ABSL_DECLARE_FLAG(std::string, writer_id);
ABSL_DECLARE_FLAG(std::string, weights);
ABSL_DECLARE_FLAG(int64_t, retry_seconds);
ABSL_DECLARE_FLAG(uint32_t, n_quantiles);
ABSL_DECLARE_FLAG(bool, normal_output);
ABSL_DECLARE_FLAG(std::string, ranks);
ABSL_DECLARE_FLAG(std::string, version);
ABSL_DECLARE_FLAG(bool, json);
ABSL_DECLARE_FLAG(std::string, format);
ABSL_DECLARE_FLAG(std::string, pixel_scale);
ABSL_DECLARE_FLAG(std::string, scheme);
ABSL_DECLARE_FLAG(int64_t, groups);
ABSL_DECLARE_FLAG(std::string, normalized_shape);
ABSL_DECLARE_FLAG(std::string, eps);
ABSL_DECLARE_FLAG(double, low);
ABSL_DECLARE_FLAG(double, high);
ABSL_DECLARE_FLAG(double, factor);
ABSL_DECLARE_FLAG(double, offset);
ABSL_DECLARE_FLAG(std::string, gamma);
ABSL_DECLARE_FLAG(std::string, beta);
ABSL_DECLARE_FLAG(std::string, output_dtype);
ABSL_DECLARE_FLAG(bool, shared_memory);
ABSL_DECLARE_FLAG(std::string, reference);
ABSL_DECLARE_FLAG(std::string, candidate);
ABSL_DECLARE_FLAG(std::string, thresholds);
ABSL_DECLARE_FLAG(uint32_t, bins);
ABSL_DECLARE_FLAG(std::string, fail_on);
ABSL_DECLARE_FLAG(bool, rollback);
ABSL_DECLARE_FLAG(uint64_t, min_train_count);
ABSL_DECLARE_FLAG(bool, drift_gate);
ABSL_DECLARE_FLAG(bool, mark);
ABSL_DECLARE_FLAG(bool, traffic);
ABSL_DECLARE_FLAG(std::string, window);

#endif  // NORMD_CLIENT_CPP_NORMCTL_FLAGS_H_
