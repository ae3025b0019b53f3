// Serialisation of the store's domain records as normd.storage.v1 messages.
#ifndef NORMD_SERVER_STORE_RECORDS_H_
#define NORMD_SERVER_STORE_RECORDS_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "server/store/stored_dataset.h"

namespace normd {

std::string EncodeDatasetRecord(const StoredDataset& dataset);
absl::StatusOr<StoredDataset> DecodeDatasetRecord(absl::string_view bytes);

std::string EncodeSnapshotRecord(const FrozenSnapshot& snapshot);
// `spec` gives the channel count and accumulator kind the record must match.
absl::StatusOr<FrozenSnapshot> DecodeSnapshotRecord(absl::string_view bytes,
                                                    const DatasetSpec& spec);

}  // namespace normd

#endif  // NORMD_SERVER_STORE_RECORDS_H_
