// Chooses a storage backend by name: the one place that knows them all. A new
// backend is a folder under server/store/ and a name here.
#ifndef NORMD_SERVER_OPEN_STORE_H_
#define NORMD_SERVER_OPEN_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/worker_pool.h"
#include "server/engine/dataset_engine.h"
#include "server/store/etcd/etcd_store.h"

namespace normd {

// The backends there are, for flag help and messages.
inline constexpr absl::string_view kStoreBackends = "rocksdb, etcd:http://HOST:PORT[,...]";

// Opens backend `backend` and the engine over it: "rocksdb", an embedded RocksDB in
// data_dir/db; "etcd:http://a:2379,http://b:2379", a cluster shared with other
// replicas (`etcd` tunes it; its endpoints come from `backend`). INVALID_ARGUMENT for
// an unknown backend.
absl::StatusOr<std::unique_ptr<DatasetEngine>> OpenEngine(absl::string_view backend,
                                                          const std::string& data_dir,
                                                          EtcdStoreOptions etcd, WorkerPool* pool,
                                                          const TrafficOptions& traffic = {});

}  // namespace normd

#endif  // NORMD_SERVER_OPEN_STORE_H_
