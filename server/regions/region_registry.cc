#include "server/regions/region_registry.h"

#include <sys/random.h>

#include <algorithm>
#include <array>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/dataset_spec.h"

namespace normd {
namespace {

std::string NewClaim() {
  std::array<char, 16> bytes;
  size_t filled = 0;
  while (filled < bytes.size()) {
    const ssize_t got = getrandom(bytes.data() + filled, bytes.size() - filled, 0);
    if (got > 0) filled += static_cast<size_t>(got);
  }
  return absl::BytesToHexString(absl::string_view(bytes.data(), bytes.size()));
}

}  // namespace

uint64_t RegionRegistry::OpenConnection(int64_t pid, uint32_t uid) {
  absl::MutexLock lock(&mu_);
  const uint64_t connection = next_connection_++;
  connection_peers_[connection] = Peer{pid, uid};
  return connection;
}

absl::Status RegionRegistry::AdmitOffer(uint64_t connection, uint64_t size) const {
  absl::MutexLock lock(&mu_);
  return AdmitOfferLocked(connection, size);
}

absl::Status RegionRegistry::AdmitOfferLocked(uint64_t connection, uint64_t size) const {
  const auto peer = connection_peers_.find(connection);
  if (peer == connection_peers_.end()) {
    return absl::FailedPreconditionError("the handoff connection has closed");
  }
  int on_connection = 0;
  int of_user = 0;
  uint64_t user_bytes = 0;
  for (const auto& [claim, offered] : offered_) {
    on_connection += offered.connection == connection;
    const auto other = connection_peers_.find(offered.connection);
    if (other == connection_peers_.end() || other->second.uid != peer->second.uid) continue;
    ++of_user;
    user_bytes += offered.region->size();
  }
  if (on_connection >= limits_.max_unclaimed_per_connection) {
    return absl::ResourceExhaustedError(
        absl::StrCat("this connection already holds ", on_connection,
                     " unclaimed regions; claim them (RegisterRegion) before handing over more"));
  }
  if (of_user >= limits_.max_regions_per_caller) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "uid ", peer->second.uid, " already has ", of_user,
        " regions handed over and not claimed, the most it may hold (--max_regions_per_caller); "
        "claim them or close their connections first"));
  }
  if (size > limits_.max_region_bytes_per_caller - user_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "a ", size, "-byte region would bring uid ", peer->second.uid,
        "'s unclaimed regions to more than ", limits_.max_region_bytes_per_caller,
        " bytes (--max_region_bytes_per_caller); it has ", user_bytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RegionRegistry::Offer(uint64_t connection,
                                                  std::shared_ptr<SharedRegion> region) {
  absl::MutexLock lock(&mu_);
  NORMD_RETURN_IF_ERROR(AdmitOfferLocked(connection, region->size()));
  std::string claim = NewClaim();
  offered_.emplace(claim, Offered{connection, std::move(region)});
  return claim;
}

void RegionRegistry::CloseConnection(uint64_t connection) {
  // Declared before the lock, so the regions are unmapped after it is released.
  std::vector<std::shared_ptr<SharedRegion>> released;
  absl::MutexLock lock(&mu_);
  connection_peers_.erase(connection);
  absl::erase_if(offered_, [&](auto& entry) {
    if (entry.second.connection != connection) return false;
    released.push_back(std::move(entry.second.region));
    return true;
  });
  std::erase_if(registered_, [&](auto& entry) {
    if (entry.second.connection != connection) return false;
    released.push_back(std::move(entry.second.region));
    return true;
  });
}

absl::StatusOr<RegionSummary> RegionRegistry::Claim(absl::string_view owner, absl::string_view name,
                                                    absl::string_view claim,
                                                    std::optional<uint32_t> caller_uid) {
  NORMD_RETURN_IF_ERROR(ValidateName("region name", name));
  absl::MutexLock lock(&mu_);
  const auto offered = offered_.find(claim);
  const auto peer = offered == offered_.end()
                        ? connection_peers_.end()
                        : connection_peers_.find(offered->second.connection);
  // Another user's claim is answered as no claim at all: it learns nothing.
  if (offered == offered_.end() || peer == connection_peers_.end() ||
      (caller_uid.has_value() && *caller_uid != peer->second.uid)) {
    return absl::NotFoundError(
        "no region was handed over with this claim by this caller's user, or its handoff "
        "connection has closed; hand the memfd over on the socket ListRegions names and use the "
        "claim it answers");
  }
  if (registered_.contains(Key(owner, name))) {
    return absl::AlreadyExistsError(
        absl::StrCat("a region named \"", name, "\" is already registered by this caller"));
  }
  int count = 0;
  uint64_t bytes = 0;
  for (auto it = registered_.lower_bound(Key(owner, ""));
       it != registered_.end() && it->first.first == owner; ++it) {
    ++count;
    bytes += it->second.summary.size;
  }
  const uint64_t size = offered->second.region->size();
  if (count >= limits_.max_regions_per_caller) {
    return absl::ResourceExhaustedError(
        absl::StrCat("this caller already has ", count, " regions, the most it may hold (",
                     "--max_regions_per_caller); unregister one first"));
  }
  if (size > limits_.max_region_bytes_per_caller - bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("a ", size, "-byte region would bring this caller's regions to more than ",
                     limits_.max_region_bytes_per_caller,
                     " bytes (--max_region_bytes_per_caller); it has ", bytes));
  }
  const bool writable = offered->second.region->writable();
  Registered entry{offered->second.connection, std::move(offered->second.region),
                   RegionSummary{.name = std::string(name),
                                 .size = size,
                                 .writable = writable,
                                 .register_time = absl::Now(),
                                 .client_pid = peer->second.pid,
                                 .client_uid = peer->second.uid}};
  offered_.erase(offered);
  RegionSummary summary = entry.summary;
  registered_.emplace(Key(owner, name), std::move(entry));
  return summary;
}

absl::Status RegionRegistry::Unregister(absl::string_view owner, absl::string_view name) {
  std::shared_ptr<SharedRegion> released;  // unmapped after the lock is released
  absl::MutexLock lock(&mu_);
  const auto found = registered_.find(Key(owner, name));
  if (found == registered_.end()) {
    return absl::NotFoundError(
        absl::StrCat("no region named \"", name, "\" is registered by this caller"));
  }
  released = std::move(found->second.region);
  registered_.erase(found);
  return absl::OkStatus();
}

std::vector<RegionSummary> RegionRegistry::List(absl::string_view owner) const {
  std::vector<RegionSummary> regions;
  absl::MutexLock lock(&mu_);
  for (auto it = registered_.lower_bound(Key(owner, ""));
       it != registered_.end() && it->first.first == owner; ++it) {
    regions.push_back(it->second.summary);
  }
  return regions;
}

absl::StatusOr<std::shared_ptr<const SharedRegion>> RegionRegistry::Find(
    absl::string_view owner, absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  const auto found = registered_.find(Key(owner, name));
  if (found == registered_.end()) {
    return absl::NotFoundError(absl::StrCat(
        "no region named \"", name,
        "\" is registered by this caller (regions belong to the token that registered them)"));
  }
  return found->second.region;
}

}  // namespace normd
