// Structured logs: one JSON object per line on stderr, so that a log pipeline
// (Fluent Bit, Loki, Cloud Logging) can index every field without a parser.
// Abseil's logging (absl/log) is newer than the Abseil in Debian bookworm
// (20220623), so this is a small writer of its own with the same levels.
#ifndef NORMD_SERVER_OBSERVABILITY_STRUCTURED_LOG_H_
#define NORMD_SERVER_OBSERVABILITY_STRUCTURED_LOG_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <variant>

#include "absl/strings/string_view.h"

namespace normd {

enum class LogLevel { kInfo, kWarning, kError };

struct LogField {
  LogField(absl::string_view key, absl::string_view value) : key(key), value(value) {}
  LogField(absl::string_view key, const char* value) : key(key), value(absl::string_view(value)) {}
  LogField(absl::string_view key, const std::string& value)
      : key(key), value(absl::string_view(value)) {}
  LogField(absl::string_view key, int64_t value) : key(key), value(value) {}
  LogField(absl::string_view key, int value) : key(key), value(int64_t{value}) {}
  LogField(absl::string_view key, double value) : key(key), value(value) {}
  LogField(absl::string_view key, bool value) : key(key), value(value) {}

  absl::string_view key;
  std::variant<absl::string_view, int64_t, double, bool> value;
};

// {"time":"2026-11-24T18:00:00.123456Z","level":"info","event":EVENT,FIELDS...}
// Keys are written as given; values are JSON-escaped.
std::string FormatLogLine(LogLevel level, absl::string_view event,
                          std::initializer_list<LogField> fields);

// Writes FormatLogLine(...) and a newline to stderr in one write(2), so that lines
// from concurrent threads never interleave.
void Log(LogLevel level, absl::string_view event, std::initializer_list<LogField> fields = {});

}  // namespace normd

#endif  // NORMD_SERVER_OBSERVABILITY_STRUCTURED_LOG_H_
