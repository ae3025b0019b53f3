#include "server/dashboard/dashboard_routes.h"

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "normd/v1/normd.pb.h"
#include "server/dashboard/dashboard_assets.h"
#include "server/service/messages.h"
#include "server/service/queries.h"
#include "wire/core_proto.h"
#include "wire/drift_text.h"

namespace normd {
namespace {

constexpr absl::string_view kName = "([A-Za-z0-9._-]+)";
constexpr size_t kMaxDatasetsListed = 1000;

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kFailedPrecondition:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

HttpReply ErrorReply(const absl::Status& status) {
  HttpReply reply;
  reply.status = HttpStatusOf(status.code());
  std::string message;
  for (char c : status.message()) {
    if (c == '"' || c == '\\') message.push_back('\\');
    if (static_cast<unsigned char>(c) < 0x20) continue;
    message.push_back(c);
  }
  reply.body = absl::StrCat("{\"code\":\"", absl::StatusCodeToString(status.code()),
                            "\",\"message\":\"", message, "\"}");
  return reply;
}

HttpReply Json(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  HttpReply reply;
  if (!google::protobuf::util::MessageToJsonString(message, &reply.body, options).ok()) {
    return ErrorReply(absl::InternalError("the reply did not encode as JSON"));
  }
  return reply;
}

absl::StatusOr<uint64_t> Number(const HttpRequest& request, const std::string& key,
                                uint64_t fallback) {
  auto it = request.query.find(key);
  if (it == request.query.end() || it->second.empty()) return fallback;
  uint64_t value = 0;
  if (!absl::SimpleAtoi(it->second, &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, " must be a non-negative integer, got \"", it->second, "\""));
  }
  return value;
}

// Empty leaves the source unset (Compare's defaults).
absl::Status SourceOf(absl::string_view text, v1::StatisticsSource* out) {
  return text.empty() ? absl::OkStatus() : ParseStatisticsSource(text, out);
}

std::string Param(const HttpRequest& request, const std::string& key) {
  auto it = request.query.find(key);
  return it == request.query.end() ? std::string() : it->second;
}

absl::StatusOr<v1::GetStatsRequest> StatsRequestOf(const HttpRequest& request) {
  v1::GetStatsRequest stats;
  stats.set_dataset(request.captures.at(0));
  NORMD_ASSIGN_OR_RETURN(const uint64_t version, Number(request, "version", 0));
  stats.set_version(version);
  NORMD_ASSIGN_OR_RETURN(const v1::Split split, ParseSplitName(Param(request, "split")));
  stats.set_split(split);
  stats.set_traffic(Param(request, "traffic") == "1");
  NORMD_ASSIGN_OR_RETURN(const v1::TrafficWindow window,
                         ParseTrafficWindowName(Param(request, "window")));
  stats.set_traffic_window(window);
  NORMD_ASSIGN_OR_RETURN(const uint64_t bins, Number(request, "histogram_bins", 0));
  stats.set_histogram_bins(static_cast<uint32_t>(std::min<uint64_t>(bins, UINT32_MAX)));
  for (absl::string_view rank :
       absl::StrSplit(Param(request, "quantiles"), ',', absl::SkipEmpty())) {
    double value = 0;
    if (!absl::SimpleAtod(rank, &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("quantiles must be numbers in [0, 1], got \"", rank, "\""));
    }
    stats.add_quantiles(value);
  }
  return stats;
}

// Wraps `answer` with the token check and the status mapping.
HttpRoute Route(std::string pattern, const AccessPolicy* access,
                std::function<absl::StatusOr<HttpReply>(const HttpRequest&)> answer) {
  return HttpRoute{std::move(pattern),
                   [access, answer = std::move(answer)](const HttpRequest& request) {
                     if (access != nullptr) {
                       absl::StatusOr<Caller> caller =
                           access->Authorize(request.authorization, Role::kReader, "dashboard");
                       if (!caller.ok()) return ErrorReply(caller.status());
                     }
                     absl::StatusOr<HttpReply> reply = answer(request);
                     return reply.ok() ? *std::move(reply) : ErrorReply(reply.status());
                   }};
}

}  // namespace

std::vector<HttpRoute> DashboardRoutes(const DatasetEngine* engine, const AccessPolicy* access) {
  std::vector<HttpRoute> routes;
  // The page holds no data (it asks the endpoints, with the token it is given), so it
  // is served to anyone.
  routes.push_back(
      {"/(?:dashboard)?", [](const HttpRequest&) {
         return HttpReply{200, "text/html; charset=utf-8", std::string(kDashboardHtml)};
       }});
  routes.push_back(
      Route("/api/v1/datasets", access, [engine](const HttpRequest&) -> absl::StatusOr<HttpReply> {
        NORMD_ASSIGN_OR_RETURN(const std::vector<DatasetInfo> infos,
                               engine->List("", kMaxDatasetsListed));
        v1::ListDatasetsResponse list;
        for (const DatasetInfo& info : infos) {
          FillDatasetInfo(info, list.add_datasets());
        }
        return Json(list);
      }));
  routes.push_back(Route(absl::StrCat("/api/v1/datasets/", kName), access,
                         [engine](const HttpRequest& request) -> absl::StatusOr<HttpReply> {
                           NORMD_ASSIGN_OR_RETURN(const DatasetInfo info,
                                                  engine->Get(request.captures.at(0)));
                           v1::DatasetInfo out;
                           FillDatasetInfo(info, &out);
                           return Json(out);
                         }));
  routes.push_back(Route(absl::StrCat("/api/v1/datasets/", kName, "/stats"), access,
                         [engine](const HttpRequest& request) -> absl::StatusOr<HttpReply> {
                           NORMD_ASSIGN_OR_RETURN(const v1::GetStatsRequest stats,
                                                  StatsRequestOf(request));
                           v1::GetStatsResponse out;
                           NORMD_RETURN_IF_ERROR(AnswerGetStats(*engine, stats, &out));
                           return Json(out);
                         }));
  routes.push_back(Route(
      absl::StrCat("/api/v1/datasets/", kName, "/compare"), access,
      [engine](const HttpRequest& request) -> absl::StatusOr<HttpReply> {
        v1::CompareRequest compare;
        compare.set_dataset(request.captures.at(0));
        NORMD_RETURN_IF_ERROR(SourceOf(Param(request, "reference"), compare.mutable_reference()));
        NORMD_RETURN_IF_ERROR(SourceOf(Param(request, "candidate"), compare.mutable_candidate()));
        NORMD_ASSIGN_OR_RETURN(const uint64_t bins, Number(request, "bins", 0));
        compare.set_bins(static_cast<uint32_t>(std::min<uint64_t>(bins, 1u << 20)));
        compare.set_equal_width_bins(Param(request, "equal_width") == "1");
        v1::CompareResponse out;
        NORMD_RETURN_IF_ERROR(AnswerCompare(*engine, compare, &out));
        return Json(out);
      }));
  return routes;
}

}  // namespace normd
