#include "server/auth/method_roles.h"

#include <array>

namespace normd {
namespace {

struct MethodRole {
  Method method;
  absl::string_view name;
  Role role;
};

constexpr std::array<MethodRole, 14> kMethodRoles = {{
    {Method::kCreateDataset, "CreateDataset", Role::kAdmin},
    {Method::kGetDataset, "GetDataset", Role::kReader},
    {Method::kListDatasets, "ListDatasets", Role::kReader},
    {Method::kDeleteDataset, "DeleteDataset", Role::kAdmin},
    {Method::kIngest, "Ingest", Role::kWriter},
    {Method::kFreeze, "Freeze", Role::kWriter},
    {Method::kGetStats, "GetStats", Role::kReader},
    {Method::kNormalize, "Normalize", Role::kReader},
    {Method::kRegisterRegion, "RegisterRegion", Role::kReader},
    {Method::kUnregisterRegion, "UnregisterRegion", Role::kReader},
    {Method::kListRegions, "ListRegions", Role::kReader},
    {Method::kDenormalize, "Denormalize", Role::kReader},
    {Method::kCompare, "Compare", Role::kReader},
    // The pin decides what every "latest" reader is served: as Freeze, a writer's call.
    {Method::kPinVersion, "PinVersion", Role::kWriter},
}};

// The table is indexed by the enum: a row out of place fails the build.
constexpr bool RowsInEnumOrder() {
  for (size_t i = 0; i < kMethodRoles.size(); ++i) {
    if (static_cast<size_t>(kMethodRoles[i].method) != i) return false;
  }
  return true;
}
static_assert(RowsInEnumOrder());

}  // namespace

absl::string_view MethodName(Method method) {
  return kMethodRoles[static_cast<size_t>(method)].name;
}

Role RequiredRole(Method method) { return kMethodRoles[static_cast<size_t>(method)].role; }

}  // namespace normd
