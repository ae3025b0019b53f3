// Early returns for absl::Status and absl::StatusOr, after TensorStore's
// TENSORSTORE_RETURN_IF_ERROR / TENSORSTORE_ASSIGN_OR_RETURN (Debian's Abseil has
// none of its own).
//
//   NORMD_RETURN_IF_ERROR(store.Write(batch));
//   NORMD_ASSIGN_OR_RETURN(DatasetSpec spec, DatasetSpecFromProto(proto));
//   NORMD_ASSIGN_OR_RETURN(auto reply, client.Call(), ToGrpcStatus(_));
//
// The optional last argument is what to return instead of the status itself; `_`
// names the failed status there. Both macros evaluate their expression once.
#ifndef NORMD_COMMON_STATUS_MACROS_H_
#define NORMD_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace normd::status_internal {

inline const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

}  // namespace normd::status_internal

#define NORMD_STATUS_CONCAT_INNER_(a, b) a##b
#define NORMD_STATUS_CONCAT_(a, b) NORMD_STATUS_CONCAT_INNER_(a, b)

// Picks the two- or three-argument form of NORMD_ASSIGN_OR_RETURN, and the one- or
// two-argument form of NORMD_RETURN_IF_ERROR.
#define NORMD_STATUS_SELECT_(_1, _2, _3, NAME, ...) NAME

#define NORMD_RETURN_IF_ERROR(...)                                                              \
  NORMD_STATUS_SELECT_(__VA_ARGS__, unused, NORMD_RETURN_IF_ERROR_2_, NORMD_RETURN_IF_ERROR_1_, \
                       unused)                                                                  \
  (__VA_ARGS__)

#define NORMD_RETURN_IF_ERROR_1_(expr) NORMD_RETURN_IF_ERROR_2_(expr, _)

#define NORMD_RETURN_IF_ERROR_2_(expr, error_expression)                              \
  do {                                                                                \
    if (const ::absl::Status _ = ::normd::status_internal::StatusOf(expr); !_.ok()) { \
      return error_expression;                                                        \
    }                                                                                 \
  } while (false)

#define NORMD_ASSIGN_OR_RETURN(...)                                                               \
  NORMD_STATUS_SELECT_(__VA_ARGS__, NORMD_ASSIGN_OR_RETURN_3_, NORMD_ASSIGN_OR_RETURN_2_, unused, \
                       unused)                                                                    \
  (__VA_ARGS__)

#define NORMD_ASSIGN_OR_RETURN_2_(lhs, expr) NORMD_ASSIGN_OR_RETURN_3_(lhs, expr, _)

#define NORMD_ASSIGN_OR_RETURN_3_(lhs, expr, error_expression)                              \
  NORMD_ASSIGN_OR_RETURN_IMPL_(NORMD_STATUS_CONCAT_(normd_status_or_, __LINE__), lhs, expr, \
                               error_expression)

#define NORMD_ASSIGN_OR_RETURN_IMPL_(status_or, lhs, expr, error_expression) \
  auto status_or = (expr);                                                   \
  if (!status_or.ok()) {                                                     \
    const ::absl::Status& _ = status_or.status();                            \
    (void)_;                                                                 \
    return error_expression;                                                 \
  }                                                                          \
  lhs = *std::move(status_or)

#endif  // NORMD_COMMON_STATUS_MACROS_H_
