// RocksDB's diagnostics on normd's stderr instead of a LOG file in the data directory.
//
// Two reasons. A container's logs belong on stderr, where the runtime collects them.
// And the LOG file shares the disk with the store: when that disk fills, Debian's
// RocksDB (built with assertions on) aborts the whole process on its next write to a
// LOG file that has already failed once, so one full disk would take the server down
// instead of turning writes into UNAVAILABLE.
#ifndef NORMD_SERVER_STORE_ROCKSDB_STDERR_LOGGER_H_
#define NORMD_SERVER_STORE_ROCKSDB_STDERR_LOGGER_H_

#include <cstdarg>

#include "rocksdb/env.h"

namespace normd {

class StderrLogger : public rocksdb::Logger {
 public:
  explicit StderrLogger(rocksdb::InfoLogLevel level) : rocksdb::Logger(level) {}

  using rocksdb::Logger::Logv;
  void Logv(rocksdb::InfoLogLevel level, const char* format, va_list ap) override;
};

}  // namespace normd

#endif  // NORMD_SERVER_STORE_ROCKSDB_STDERR_LOGGER_H_
