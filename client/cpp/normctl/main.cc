// normctl: the command-line client for normd.
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "client/cpp/normctl/command_table.h"
#include "client/cpp/normctl/commands.h"
#include "client/cpp/normctl/options.h"
#include "client/cpp/normctl/output.h"
#include "common/status_macros.h"

namespace normd {
namespace {

bool IsHelp(absl::string_view arg) { return arg == "--help" || arg == "-h" || arg == "-help"; }

// `normctl --help`, `normctl help [COMMAND]` and `normctl COMMAND --help`: answered
// before the flags are parsed (absl's own --help lists every flag of every library).
std::optional<int> Help(std::span<char* const> args) {
  const CommandInfo* command = nullptr;
  bool asked = false;
  for (const char* arg : args) {
    if (IsHelp(arg)) asked = true;
    if (absl::StartsWith(arg, "-")) continue;
    if (std::string(arg) == "help" && command == nullptr && !asked) {
      asked = true;
      continue;
    }
    if (command == nullptr) {
      command = FindCommand(arg);
      if (command == nullptr && asked) return Usage(absl::StrCat("unknown command '", arg, "'"));
    }
  }
  if (!asked) return std::nullopt;
  std::fputs((command == nullptr ? GeneralHelp() : CommandHelp(*command)).c_str(), stdout);
  return 0;
}

int Run(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  if (std::optional<int> helped = Help(std::span<char* const>(argv + 1, argc - 1))) {
    return *helped;
  }
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() < 2) return Usage("no command given");
  const CommandInfo* command = FindCommand(positional[1]);
  if (command == nullptr) return Usage(absl::StrCat("unknown command '", positional[1], "'"));
  NORMD_RETURN_IF_ERROR(CheckFlagsApply(*command, std::span<char* const>(argv + 1, argc - 1)),
                        Usage(std::string(_.message())));
  const std::vector<char*> args(positional.begin() + 2, positional.end());
  NORMD_ASSIGN_OR_RETURN(ConnectOptions options, ConnectOptionsFromFlags(),
                         Usage(std::string(_.message())));
  NORMD_ASSIGN_OR_RETURN(std::unique_ptr<NormdClient> client,
                         NormdClient::Connect(ServerAddress(), options), Fail(_));
  return command->run(*client, args);
}

}  // namespace
}  // namespace normd

int main(int argc, char** argv) { return normd::Run(argc, argv); }
