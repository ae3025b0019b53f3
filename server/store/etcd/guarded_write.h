// The loop every write of the etcd store runs, written once, after clientv3's
// concurrency.STM (etcd's clientv3/concurrency/stm.go): read, decide, write guarded by
// the revisions of what was read, and when the guard fails because another replica
// wrote meanwhile, read and decide again.
//
// What STM leaves to its caller is here too: a write whose answer was lost (a
// deadline, a member gone after the request left) may or may not have landed, so the
// next round reads again and the decision recognises its own landed write by the write
// id it carried, answering without writing twice; and the whole loop keeps to the
// client's retry budget, after which it answers UNAVAILABLE saying whether an attempt
// may have landed.
#ifndef NORMD_SERVER_STORE_ETCD_GUARDED_WRITE_H_
#define NORMD_SERVER_STORE_ETCD_GUARDED_WRITE_H_

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/observability/structured_log.h"
#include "server/store/etcd/etcd_client.h"
#include "server/store/etcd/etcd_txn.h"

namespace normd {

// What one round decided from what it read: an answer with nothing to write (the
// write recognised as landed, nothing to do, a refusal), or a guarded write and what
// to answer once it succeeds.
template <typename T>
struct GuardedStep {
  static GuardedStep Answer(absl::StatusOr<T> answer) {
    GuardedStep step;
    step.answer = std::move(answer);
    return step;
  }
  static GuardedStep Write(EtcdTxn txn,
                           std::function<absl::StatusOr<T>(const etcdserverpb::TxnResponse&)>
                               on_written) {
    GuardedStep step;
    step.txn = std::move(txn).Build();
    step.on_written = std::move(on_written);
    return step;
  }

  std::optional<absl::StatusOr<T>> answer;
  etcdserverpb::TxnRequest txn;
  std::function<absl::StatusOr<T>(const etcdserverpb::TxnResponse&)> on_written;
};

// Whether an earlier round's write may have landed unseen: the round's decision must
// then look for it (by its write id) before deciding anything else.
struct GuardedRound {
  bool answer_lost = false;
  int attempt = 0;  // 0 for the first round
};

// Runs `round` until it answers, or its guarded write succeeds. A round's error is
// the answer, but for UNAVAILABLE (its reads found no etcd within their own retries),
// which counts as a round that read nothing. `what` names the write in messages, as
// "the commit to dataset \"d\"".
template <typename T>
absl::StatusOr<T> RunGuardedWrite(
    EtcdClient& client, absl::string_view what,
    const std::function<absl::StatusOr<GuardedStep<T>>(const GuardedRound&)>& round) {
  const absl::Time give_up = client.Deadline();
  absl::Duration backoff = absl::Milliseconds(5);
  absl::Status last = absl::OkStatus();
  GuardedRound state;
  for (;; ++state.attempt) {
    if (state.attempt > 0 && absl::Now() > give_up) break;
    absl::StatusOr<GuardedStep<T>> step = round(state);
    if (!step.ok()) {
      if (!absl::IsUnavailable(step.status())) return step.status();
      last = step.status();
      absl::SleepFor(backoff);  // an election or a failover under way
      backoff = std::min(backoff * 2, absl::Milliseconds(200));
      continue;
    }
    if (step->answer.has_value()) return *std::move(step->answer);
    absl::StatusOr<etcdserverpb::TxnResponse> written = client.Txn(step->txn);
    if (written.ok()) {
      if (written->succeeded()) return step->on_written(*written);
      continue;  // a guard failed: what the round read has moved; read it again
    }
    if (!IsAmbiguous(written.status())) return written.status();
    Log(LogLevel::kWarning, "etcd_write_ambiguous",
        {{"write", std::string(what)}, {"error", written.status().ToString()}});
    state.answer_lost = true;
    last = written.status();
  }
  if (state.answer_lost) {
    return absl::UnavailableError(absl::StrCat(
        what, " could not be confirmed within the etcd retry budget (", last.message(),
        "); it may or may not have applied: resend it, the writer's sequence makes a resend "
        "count once"));
  }
  return absl::UnavailableError(
      absl::StrCat("etcd did not take ", what, " within its retry budget: ", last.message()));
}

}  // namespace normd

#endif  // NORMD_SERVER_STORE_ETCD_GUARDED_WRITE_H_
