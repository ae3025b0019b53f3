#include "server/open_store.h"

#include <filesystem>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "server/store/rocksdb/rocksdb_store.h"

namespace normd {

absl::StatusOr<std::unique_ptr<DatasetEngine>> OpenEngine(absl::string_view backend,
                                                          const std::string& data_dir,
                                                          EtcdStoreOptions etcd, WorkerPool* pool,
                                                          const TrafficOptions& traffic) {
  if (backend == "rocksdb") {
    NORMD_ASSIGN_OR_RETURN(std::unique_ptr<RocksDbStore> store,
                           RocksDbStore::Open((std::filesystem::path(data_dir) / "db").string()));
    return DatasetEngine::Open(std::move(store), pool, traffic);
  }
  if (absl::string_view endpoints = backend; absl::ConsumePrefix(&endpoints, "etcd:")) {
    bool tls = false;
    NORMD_ASSIGN_OR_RETURN(etcd.etcd.endpoints, ParseEtcdEndpoints(endpoints, &tls));
    etcd.etcd.tls = etcd.etcd.tls || tls;
    NORMD_ASSIGN_OR_RETURN(std::unique_ptr<EtcdStore> store, EtcdStore::Open(std::move(etcd)));
    return DatasetEngine::OpenShared(std::move(store), pool, traffic);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("store must be one of ", kStoreBackends, ", got \"", backend, "\""));
}

}  // namespace normd
