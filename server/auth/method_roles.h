// The role each normd.v1.Normd method needs: the one table, read by the service's
// single admission wrapper (as TF Serving keeps one). reader: Normalize, GetStats,
// GetDataset, ListDatasets and the shared-memory regions (a region only
// ever holds its caller's own bytes); writer: Ingest, Freeze; admin: CreateDataset,
// DeleteDataset. Roles are ordered, so a writer may also read and an admin do all.
#ifndef NORMD_SERVER_AUTH_METHOD_ROLES_H_
#define NORMD_SERVER_AUTH_METHOD_ROLES_H_

#include "absl/strings/string_view.h"
#include "server/auth/access_policy.h"

namespace normd {

// The methods of normd.v1.Normd, in the order of the service definition.
enum class Method {
  kCreateDataset,
  kGetDataset,
  kListDatasets,
  kDeleteDataset,
  kIngest,
  kFreeze,
  kGetStats,
  kNormalize,
  kRegisterRegion,
  kUnregisterRegion,
  kListRegions,
  kDenormalize,
  kCompare,
  kPinVersion,
};

absl::string_view MethodName(Method method);
Role RequiredRole(Method method);

}  // namespace normd

#endif  // NORMD_SERVER_AUTH_METHOD_ROLES_H_
