// ThreadSanitizer defaults compiled into every binary of a NORMD_SANITIZE=thread build,
// so that normd started by the Python tests behaves like the GoogleTest binaries
// without any environment: the first report ends the process with exit code 66.
//
// The suppressions cover what is not ours and is not built with TSan, where TSan
// reports races it cannot judge:
// - Debian's gRPC (with upb, its message parser), RocksDB, OpenSSL (gRPC's TLS) and
//   cpp-httplib (the metrics endpoint's own threads). Their threads hand objects to
//   each other through their own atomics, which TSan cannot see, so memory they
//   allocate, copy and free seems to race across their threads. Only reports with one
//   of their frames are dropped. (upb was missing until 2026-12-08: a status string
//   gRPC core built on one thread and upb copied on another ended a replica under
//   test_etcd_replicas.py with exit 66, and its client waited out retry_for.)
// - A request's bytes (normd::ContiguousBytes): gRPC fills the reactor's ByteBuffer on
//   one of its threads (inline header code, compiled into our binary) and runs the
//   callback that hands it to normd's task queue on another, ordered by gRPC core's
//   atomics; TSan then reports the read as racing with that fill (seen once in Ingest's
//   reactor, 2026-12-03). Only this function's reads of the handed-over buffer are dropped.
// - Abseil's thread identities: Abseil (rebuilt with TSan by scripts/tsan-abseil.sh,
//   and found first through the binaries' RPATH, so that absl::Mutex is seen) maps the
//   per-thread wait record of a thread that blocks on a mutex and posts to it from the
//   unlocking thread inside the mutex's own annotated region, where TSan sees no edge.
// Races in normd's own code, and on anything guarded by absl::Mutex, are still reported.
extern "C" const char* __tsan_default_options() {
  return "halt_on_error=1 exitcode=66 second_deadlock_stack=1";
}

extern "C" const char* __tsan_default_suppressions() {
  return "called_from_lib:libgrpc.so.29\n"
         "called_from_lib:libgpr.so.29\n"
         "called_from_lib:libgrpc++.so.1.51\n"
         "race:libgrpc.so.29\n"
         "race:libgpr.so.29\n"
         "race:libgrpc++.so.1.51\n"
         "called_from_lib:libupb.so.29\n"
         "race:libupb.so.29\n"
         "called_from_lib:librocksdb.so.7.8\n"
         "race:librocksdb.so.7.8\n"
         "called_from_lib:libssl.so.3\n"
         "called_from_lib:libcrypto.so.3\n"
         "race:libssl.so.3\n"
         "race:libcrypto.so.3\n"
         "called_from_lib:libcpp-httplib.so.0.11\n"
         "race:libcpp-httplib.so.0.11\n"
         "race:normd::ContiguousBytes\n"
         "race:absl::*synchronization_internal::CreateThreadIdentity\n";
}
