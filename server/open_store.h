// Chooses a storage backend by name: the one place that knows them all. A new
// backend is a folder under server/store/ and a name here.
#ifndef NORMD_SERVER_OPEN_STORE_H_
#define NORMD_SERVER_OPEN_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/store/dataset_store.h"

namespace normd {

// The backends there are, for flag help and messages.
inline constexpr absl::string_view kStoreBackends = "rocksdb";

// Opens backend `backend` with its data under `data_dir` ("rocksdb": an embedded
// RocksDB in data_dir/db). INVALID_ARGUMENT for an unknown backend.
absl::StatusOr<std::unique_ptr<DatasetStore>> OpenStore(absl::string_view backend,
                                                        const std::string& data_dir);

}  // namespace normd

#endif  // NORMD_SERVER_OPEN_STORE_H_
