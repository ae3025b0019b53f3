// normctl: the command-line client for normd.
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "client/cpp/normctl/commands.h"
#include "client/cpp/normctl/options.h"
#include "client/cpp/normctl/output.h"
#include "common/status_macros.h"

namespace normd {
namespace {

int Run(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() < 2) return Usage("no command given");
  const std::string command = positional[1];
  const std::vector<char*> args(positional.begin() + 2, positional.end());
  NORMD_ASSIGN_OR_RETURN(ConnectOptions options, ConnectOptionsFromFlags(),
                         Usage(std::string(_.message())));
  NORMD_ASSIGN_OR_RETURN(std::unique_ptr<NormdClient> connected,
                         NormdClient::Connect(ServerAddress(), options), Fail(_));
  std::unique_ptr<NormdClient>& client = connected;
  if (command == "create") return Create(*client, args);
  if (command == "ingest") return Ingest(*client, args);
  if (command == "freeze") return Freeze(*client, args);
  if (command == "stats") return Stats(*client, args);
  if (command == "export") return Export(*client, args);
  if (command == "normalize") return Normalize(*client, args);
  if (command == "info") return Info(*client, args);
  if (command == "list") return List(*client, args);
  if (command == "delete") return Delete(*client, args);
  if (command == "health") return Health(*client, args);
  if (command == "compare") return Compare(*client, args);
  if (command == "pin") return Pin(*client, args);
  return Usage(absl::StrCat("unknown command '", command, "'"));
}

}  // namespace
}  // namespace normd

int main(int argc, char** argv) { return normd::Run(argc, argv); }
