#include "server/store/rocksdb/stderr_logger.h"

#include <cstdio>

#include "server/observability/structured_log.h"

namespace normd {

void StderrLogger::Logv(rocksdb::InfoLogLevel level, const char* format, va_list ap) {
  if (level < GetInfoLogLevel()) return;
  char message[1024];
  std::vsnprintf(message, sizeof message, format, ap);
  Log(level >= rocksdb::InfoLogLevel::ERROR_LEVEL  ? LogLevel::kError
      : level == rocksdb::InfoLogLevel::WARN_LEVEL ? LogLevel::kWarning
                                                   : LogLevel::kInfo,
      "rocksdb", {{"message", message}});
}

}  // namespace normd
