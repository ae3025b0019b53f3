// A client of etcd's v3 gRPC API for the etcd store: Range and Txn calls with a
// deadline each, failover across the cluster's members, authentication and TLS, and
// a watch of one key range that survives member failures.
//
// No retrying of writes here: whether a failed Txn may have applied (a deadline or a
// lost connection after the request left) is the caller's question, answered by
// re-reading what the Txn guards (etcd_store.cc). Reads are retried here (Read,
// ReadRange), since they change nothing.
#ifndef NORMD_SERVER_STORE_ETCD_ETCD_CLIENT_H_
#define NORMD_SERVER_STORE_ETCD_ETCD_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "etcd/rpc.grpc.pb.h"

namespace normd {

struct EtcdOptions {
  // host:port of each member; a leading http:// or https:// is accepted (https
  // turns TLS on).
  std::vector<std::string> endpoints;
  // Every etcd call's deadline. A Txn that misses it may still apply.
  absl::Duration call_timeout = absl::Seconds(2);
  // How long one store operation keeps retrying (members failing over, a leader
  // election, a lost quorum) before it answers UNAVAILABLE.
  absl::Duration retry_budget = absl::Seconds(10);
  bool tls = false;
  std::string ca_file, cert_file, key_file;  // PEM; client certificate optional
  std::string user, password;                // etcd's own authentication, optional
};

// Parses "http://a:2379,http://b:2379" (the part after "etcd:" in --store).
absl::StatusOr<std::vector<std::string>> ParseEtcdEndpoints(absl::string_view list, bool* tls);

// True for failures after which a Txn may or may not have applied: the client maps
// every transient failure (a deadline, a lost member, no leader) to UNAVAILABLE.
bool IsAmbiguous(const absl::Status& status);

// The key just after every key that starts with `prefix` (etcd's range_end for a
// prefix range).
std::string PrefixEnd(absl::string_view prefix);

class EtcdClient {
 public:
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Connect(const EtcdOptions& options);
  ~EtcdClient();

  // One attempt each, on the member in use, with `timeout` (0: the call timeout); an
  // unreachable member is swapped for the next one before the error returns. Errors
  // are UNAVAILABLE when etcd could not answer (no member, no leader, deadline), or
  // etcd's own code otherwise.
  absl::StatusOr<etcdserverpb::RangeResponse> Range(const etcdserverpb::RangeRequest& request,
                                                    absl::Duration timeout = absl::ZeroDuration());
  absl::StatusOr<etcdserverpb::TxnResponse> Txn(const etcdserverpb::TxnRequest& request,
                                                absl::Duration timeout = absl::ZeroDuration());

  // Reads (a Range, or a Txn of ranges only), retried while etcd cannot answer for
  // the whole retry budget. Each attempt's deadline doubles from the call timeout: a
  // cluster slower than the call timeout (an election, a loaded host, a sanitizer
  // build) is waited out, since a read that is late changes nothing.
  absl::StatusOr<etcdserverpb::RangeResponse> ReadRange(const etcdserverpb::RangeRequest& request);
  absl::StatusOr<etcdserverpb::TxnResponse> Read(const etcdserverpb::TxnRequest& reads);

  // Calls `attempt` until it returns anything but UNAVAILABLE, backing off between
  // attempts, for at most the retry budget from now.
  template <typename T>
  absl::StatusOr<T> Retry(const std::function<absl::StatusOr<T>()>& attempt) {
    const absl::Time give_up = absl::Now() + options_.retry_budget;
    absl::Duration backoff = absl::Milliseconds(5);
    while (true) {
      absl::StatusOr<T> result = attempt();
      if (result.ok() || !absl::IsUnavailable(result.status()) || absl::Now() + backoff > give_up) {
        return result;
      }
      absl::SleepFor(backoff);  // waiting out an election, not synchronising with a test
      backoff = std::min(backoff * 2, absl::Milliseconds(200));
    }
  }
  absl::Time Deadline() const { return absl::Now() + options_.retry_budget; }


  // Watches [key, range_end) from `start_revision` on a thread of its own, calling
  // `on_events` with each batch of events and the revision they bring the watcher
  // to, or `on_reset` when it must start over from a fresh read (its revision was
  // compacted away), until the client is destroyed. Reconnects to another member
  // when one fails. One watch per client.
  void Watch(std::string key, std::string range_end, int64_t start_revision,
             std::function<void(const etcdserverpb::WatchResponse&)> on_events,
             std::function<int64_t()> on_reset);

  const EtcdOptions& options() const { return options_; }

 private:
  // Retry's loop for reads: `attempt` takes its deadline, which doubles each time.
  template <typename T>
  absl::StatusOr<T> RetryRead(const std::function<absl::StatusOr<T>(absl::Duration)>& attempt) {
    const absl::Time give_up = absl::Now() + options_.retry_budget;
    absl::Duration timeout = options_.call_timeout;
    return Retry<T>([&]() -> absl::StatusOr<T> {
      const absl::Duration left = std::max(give_up - absl::Now(), options_.call_timeout);
      absl::StatusOr<T> result = attempt(std::min(timeout, left));
      timeout = std::min(timeout * 2, options_.retry_budget);
      return result;
    });
  }

  explicit EtcdClient(EtcdOptions options);

  struct Member {
    std::string endpoint;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<etcdserverpb::KV::Stub> kv;
    std::unique_ptr<etcdserverpb::Watch::Stub> watch;
  };

  // The member in use, and a context with the call deadline and the auth token.
  size_t Current() const { return current_.load(std::memory_order_relaxed); }
  void Rotate(size_t from);
  std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout) const;
  absl::Status Authenticate();
  // etcd's gRPC status as an absl::Status, after swapping members or re-authenticating
  // when that is the cure.
  absl::Status Failed(size_t member, const grpc::Status& status, absl::string_view call);

  const EtcdOptions options_;
  std::vector<Member> members_;
  std::atomic<size_t> current_{0};
  mutable absl::Mutex token_mu_;
  std::string token_ ABSL_GUARDED_BY(token_mu_);

  std::atomic<bool> stopping_{false};
  absl::Mutex watch_mu_;
  grpc::ClientContext* watch_context_ ABSL_GUARDED_BY(watch_mu_) = nullptr;
  std::thread watch_thread_;
};

}  // namespace normd

#endif  // NORMD_SERVER_STORE_ETCD_ETCD_CLIENT_H_
