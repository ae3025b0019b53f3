#include "server/open_store.h"

#include <filesystem>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/store/rocksdb/rocksdb_store.h"

namespace normd {

absl::StatusOr<std::unique_ptr<DatasetStore>> OpenStore(absl::string_view backend,
                                                        const std::string& data_dir) {
  if (backend == "rocksdb") {
    return RocksDbStore::Open((std::filesystem::path(data_dir) / "db").string());
  }
  return absl::InvalidArgumentError(
      absl::StrCat("store must be one of ", kStoreBackends, ", got \"", backend, "\""));
}

}  // namespace normd
