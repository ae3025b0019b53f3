#include "server/service/grpc_status.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace normd {
namespace {

bool Printable(char c) { return c >= 0x20 && c < 0x7f; }
size_t EscapedWidth(char c) { return Printable(c) ? 1 : 4; }

void AppendEscaped(char c, std::string& out) {
  if (Printable(c)) {
    out.push_back(c);
  } else {
    absl::StrAppendFormat(&out, "\\x%02x", static_cast<unsigned char>(c));
  }
}

// The escaped message, at most kMaxStatusMessageBytes long including the note.
std::string CapAndEscape(absl::string_view message) {
  std::string out;
  size_t taken = 0;
  for (; taken < message.size(); ++taken) {
    if (out.size() + EscapedWidth(message[taken]) > kMaxStatusMessageBytes) break;
    AppendEscaped(message[taken], out);
  }
  if (taken == message.size()) return out;
  // Too long: give back characters until the note fits.
  constexpr size_t kNoteRoom = 40;  // "... [N more bytes cut]"
  while (out.size() > kMaxStatusMessageBytes - kNoteRoom) {
    --taken;
    out.resize(out.size() - EscapedWidth(message[taken]));
  }
  absl::StrAppend(&out, "... [", message.size() - taken, " more bytes cut]");
  return out;
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl::StatusCode and grpc::StatusCode share their numbering (both follow
  // google.rpc.Code), so the cast is exact for every code.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), CapAndEscape(status.message()));
}

}  // namespace normd
