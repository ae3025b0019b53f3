// Where the live traffic of Normalize (server/engine/traffic_monitor.h) is kept between
// restarts. Each replica writes records of its own; every replica reads them all, so
// that the traffic a version saw is the sum over replicas (as of their last write).
#ifndef NORMD_SERVER_STORE_TRAFFIC_STORE_H_
#define NORMD_SERVER_STORE_TRAFFIC_STORE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/store/stored_dataset.h"

namespace normd {

class TrafficStore {
 public:
  virtual ~TrafficStore() = default;

  // This replica's traffic of one version (traffic.replica is TrafficReplica()),
  // replacing what it stored for that version before.
  virtual absl::Status PutTraffic(const DatasetSpec& spec, const StoredTraffic& traffic) = 0;
  // Every replica's stored traffic of the dataset, of any incarnation of its name.
  virtual absl::StatusOr<std::vector<StoredTraffic>> LoadTraffic(const DatasetSpec& spec) const = 0;
  // This process's name in those records: "" where one process owns the store (and
  // takes its records back when it restarts).
  virtual std::string TrafficReplica() const { return ""; }
};

}  // namespace normd

#endif  // NORMD_SERVER_STORE_TRAFFIC_STORE_H_
