// The etcd store's keys, built and parsed here only (etcd_store.h lists them). Numbers
// in keys are zero-padded to 20 digits, so that key order is numeric order.
#ifndef NORMD_SERVER_STORE_ETCD_ETCD_KEYS_H_
#define NORMD_SERVER_STORE_ETCD_ETCD_KEYS_H_

#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace normd {

class EtcdKeys {
 public:
  explicit EtcdKeys(std::string prefix) : prefix_(std::move(prefix)) {}

  std::string CatalogPrefix() const { return absl::StrCat(prefix_, "catalog/"); }
  std::string Catalog(absl::string_view name) const { return CatalogPrefix() + std::string(name); }
  // The dataset `catalog_key` names.
  std::string NameOf(absl::string_view catalog_key) const {
    return std::string(absl::StripPrefix(catalog_key, CatalogPrefix()));
  }
  std::string Retired(absl::string_view name) const {
    return absl::StrCat(prefix_, "retired/", name);
  }
  std::string PartPrefix(absl::string_view name) const {
    return absl::StrCat(prefix_, "part/", name, "/");
  }
  std::string Part(absl::string_view name, absl::string_view partition) const {
    return PartPrefix(name) + std::string(partition);
  }
  std::string TotalPrefix(absl::string_view name) const {
    return absl::StrCat(prefix_, "total/", name, "/");
  }
  std::string Total(absl::string_view name, absl::string_view partition) const {
    return TotalPrefix(name) + std::string(partition);
  }
  std::string VersionPrefix(absl::string_view name) const {
    return absl::StrCat(prefix_, "version/", name, "/");
  }
  std::string Version(absl::string_view name, uint64_t version) const {
    return absl::StrCat(VersionPrefix(name), absl::StrFormat("%020d", version));
  }
  std::string TrafficPrefix(absl::string_view name) const {
    return absl::StrCat(prefix_, "traffic/", name, "/");
  }
  std::string Traffic(absl::string_view name, uint64_t version, absl::string_view replica) const {
    return absl::StrCat(TrafficPrefix(name), absl::StrFormat("%020d", version), "/", replica);
  }

 private:
  const std::string prefix_;
};

}  // namespace normd

#endif  // NORMD_SERVER_STORE_ETCD_ETCD_KEYS_H_
