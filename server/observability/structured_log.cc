#include "server/observability/structured_log.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/overloaded.h"

namespace normd {
namespace {

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

void AppendJsonString(absl::string_view text, std::string* out) {
  out->push_back('"');
  for (const char c : text) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

}  // namespace

std::string FormatLogLine(LogLevel level, absl::string_view event,
                          std::initializer_list<LogField> fields) {
  std::string line = "{\"time\":\"";
  line += absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone());
  absl::StrAppend(&line, "\",\"level\":\"", LevelName(level), "\",\"event\":");
  AppendJsonString(event, &line);
  for (const LogField& field : fields) {
    line.push_back(',');
    AppendJsonString(field.key, &line);
    line.push_back(':');
    std::visit(Overloaded{
                   [&](absl::string_view text) { AppendJsonString(text, &line); },
                   [&](int64_t number) { absl::StrAppend(&line, number); },
                   // JSON has no NaN or infinity; such a value is written as null.
                   // Six significant digits are plenty for a log.
                   [&](double number) {
                     if (std::isfinite(number)) {
                       absl::StrAppend(&line, number);
                     } else {
                       line.append("null");
                     }
                   },
                   [&](bool flag) { line.append(flag ? "true" : "false"); },
               },
               field.value);
  }
  line.push_back('}');
  return line;
}

void Log(LogLevel level, absl::string_view event, std::initializer_list<LogField> fields) {
  std::string line = FormatLogLine(level, event, fields);
  line.push_back('\n');
  const char* data = line.data();
  size_t left = line.size();
  while (left > 0) {
    const ssize_t written = ::write(STDERR_FILENO, data, left);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;  // stderr is gone; a log line is not worth failing for
    data += written;
    left -= static_cast<size_t>(written);
  }
}

}  // namespace normd
