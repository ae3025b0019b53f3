// normctl's commands: each takes the connected client and its positional
// arguments, prints what it did, and returns the process exit code.
#ifndef NORMD_CLIENT_CPP_NORMCTL_COMMANDS_H_
#define NORMD_CLIENT_CPP_NORMCTL_COMMANDS_H_

#include <vector>

#include "client/cpp/normd_client.h"

namespace normd {

using CommandArgs = std::vector<char*>;

int Create(NormdClient& client, const CommandArgs& args);
int Ingest(NormdClient& client, const CommandArgs& args);  // ingest_command.cc
int Freeze(NormdClient& client, const CommandArgs& args);
int Stats(NormdClient& client, const CommandArgs& args);
int Export(NormdClient& client, const CommandArgs& args);
int Normalize(NormdClient& client, const CommandArgs& args);  // normalize_command.cc
int Info(NormdClient& client, const CommandArgs& args);
int List(NormdClient& client, const CommandArgs& args);
int Delete(NormdClient& client, const CommandArgs& args);
int Health(NormdClient& client, const CommandArgs& args);
int Compare(NormdClient& client, const CommandArgs& args);  // drift_commands.cc
int Pin(NormdClient& client, const CommandArgs& args);      // drift_commands.cc

}  // namespace normd

#endif  // NORMD_CLIENT_CPP_NORMCTL_COMMANDS_H_
