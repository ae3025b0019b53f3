// normctl's commands as data: each one's name, arguments, what it does, the flags it
// reads and the function that runs it. Help is printed from this table, and a flag a
// command does not read is refused rather than silently ignored.
#ifndef NORMD_CLIENT_CPP_NORMCTL_COMMAND_TABLE_H_
#define NORMD_CLIENT_CPP_NORMCTL_COMMAND_TABLE_H_

#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/cpp/normctl/commands.h"

namespace normd {

struct CommandInfo {
  const char* name;
  const char* arguments;  // after the name, e.g. "NAME FILE.npy..."
  const char* summary;
  std::vector<const char*> flags;  // besides the connection flags every command takes
  int (*run)(NormdClient& client, const CommandArgs& args);
};

// Every command, in the order help lists them.
std::span<const CommandInfo> Commands();
const CommandInfo* FindCommand(const std::string& name);

// The help for all commands, or for one (its flags with their help and defaults).
std::string GeneralHelp();
std::string CommandHelp(const CommandInfo& command);

// The flags given on the command line (`--name`, `--name=value`, `--noname`), checked
// against what `command` reads: INVALID_ARGUMENT naming the first that does not apply.
absl::Status CheckFlagsApply(const CommandInfo& command, std::span<char* const> argv);

}  // namespace normd

#endif  // NORMD_CLIENT_CPP_NORMCTL_COMMAND_TABLE_H_
