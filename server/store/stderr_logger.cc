#include "server/store/stderr_logger.h"

#include <cstdio>
#include <string>

namespace normd {
namespace {

const char* LevelName(rocksdb::InfoLogLevel level) {
  switch (level) {
    case rocksdb::InfoLogLevel::DEBUG_LEVEL:
      return "debug";
    case rocksdb::InfoLogLevel::INFO_LEVEL:
      return "info";
    case rocksdb::InfoLogLevel::WARN_LEVEL:
      return "warning";
    case rocksdb::InfoLogLevel::ERROR_LEVEL:
      return "error";
    case rocksdb::InfoLogLevel::FATAL_LEVEL:
      return "fatal";
    default:
      return "header";
  }
}

}  // namespace

void StderrLogger::Logv(rocksdb::InfoLogLevel level, const char* format, va_list ap) {
  if (level < GetInfoLogLevel()) return;
  // One fputs per line, so that lines from concurrent threads do not interleave.
  char message[1024];
  std::vsnprintf(message, sizeof message, format, ap);
  std::string line = "normd: rocksdb ";
  line += LevelName(level);
  line += ": ";
  line += message;
  line += '\n';
  std::fputs(line.c_str(), stderr);
}

}  // namespace normd
