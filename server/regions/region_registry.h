// The shared-memory regions the server holds: offered on a handoff connection,
// claimed by name over gRPC, found by the calls that read or write them, and
// dropped when their caller unregisters them or its handoff connection closes.
#ifndef NORMD_SERVER_REGIONS_REGION_REGISTRY_H_
#define NORMD_SERVER_REGIONS_REGION_REGISTRY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/regions/shared_region.h"

namespace normd {

// Beyond these, RESOURCE_EXHAUSTED. Mapped regions cost the server address space
// and descriptors, not memory: the pages belong to the caller's memfd.
struct RegionLimits {
  int max_regions_per_caller = 64;
  uint64_t max_region_bytes_per_caller = uint64_t{64} << 30;
  // Regions handed over on one connection and not yet claimed. Unclaimed regions
  // also count, per user, against the two limits above: mapped, they cost the
  // same address space whether or not they are ever claimed.
  int max_unclaimed_per_connection = 16;
};

struct RegionSummary {
  std::string name;
  uint64_t size = 0;
  bool writable = false;
  absl::Time register_time;
  int64_t client_pid = 0;  // who handed it over
  uint32_t client_uid = 0;
};

class RegionRegistry {
 public:
  explicit RegionRegistry(RegionLimits limits) : limits_(limits) {}

  // ---- the handoff side ----
  // A handoff connection from process `pid` of user `uid` (the kernel's word for
  // both: SO_PEERCRED) opened; returns its id.
  uint64_t OpenConnection(int64_t pid, uint32_t uid);
  // Whether a region of `size` bytes may be handed over on `connection`: asked
  // before it is mapped, and again by Offer.
  absl::Status AdmitOffer(uint64_t connection, uint64_t size) const;
  // A region arrived on `connection`; returns the claim to name it by in Claim (32
  // hex digits from the kernel's random source, so one caller cannot guess
  // another's).
  absl::StatusOr<std::string> Offer(uint64_t connection, std::shared_ptr<SharedRegion> region);
  // The connection closed (its process may have died): its regions, claimed or not,
  // go. Calls still using one keep it mapped until they finish.
  void CloseConnection(uint64_t connection);

  // ---- the RPC side; `owner` is the caller's token id, or without tokens its
  // uid ("uid:1000"): regions, and their limits, are each owner's own ----
  // `caller_uid`, when given (no tokens), must be the uid that handed the region
  // over: a claim overheard by another user is of no use to it.
  absl::StatusOr<RegionSummary> Claim(absl::string_view owner, absl::string_view name,
                                      absl::string_view claim,
                                      std::optional<uint32_t> caller_uid = std::nullopt);
  absl::Status Unregister(absl::string_view owner, absl::string_view name);
  std::vector<RegionSummary> List(absl::string_view owner) const;
  // The region, held for as long as the caller keeps the pointer.
  absl::StatusOr<std::shared_ptr<const SharedRegion>> Find(absl::string_view owner,
                                                           absl::string_view name) const;

 private:
  struct Offered {
    uint64_t connection;
    std::shared_ptr<SharedRegion> region;
  };
  struct Registered {
    uint64_t connection;
    std::shared_ptr<SharedRegion> region;
    RegionSummary summary;
  };
  using Key = std::pair<std::string, std::string>;  // owner, name

  absl::Status AdmitOfferLocked(uint64_t connection, uint64_t size) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RegionLimits limits_;
  mutable absl::Mutex mu_;
  uint64_t next_connection_ ABSL_GUARDED_BY(mu_) = 1;
  struct Peer {
    int64_t pid;
    uint32_t uid;
  };
  absl::flat_hash_map<uint64_t, Peer> connection_peers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Offered> offered_ ABSL_GUARDED_BY(mu_);
  std::map<Key, Registered> registered_ ABSL_GUARDED_BY(mu_);  // sorted for List
};

}  // namespace normd

#endif  // NORMD_SERVER_REGIONS_REGION_REGISTRY_H_
