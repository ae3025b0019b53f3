#include "client/cpp/normctl/command_table.h"

#include <algorithm>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace normd {
namespace {

// The connection flags: every command takes them.
constexpr const char* kConnectionFlags[] = {"server", "token_file", "ca_file", "cert_file",
                                            "key_file"};

const std::vector<CommandInfo>& Table() {
  static const std::vector<CommandInfo> table = {
      {"create", "NAME --channels=C", "make a dataset (quantile sketches kept unless --nosketch)",
       {"layout", "channels", "accumulator", "momentum", "nonfinite", "sketch",
        "sketch_accuracy", "sketch_max_buckets", "sketch_center", "histogram_edges"},
       Create},
      {"ingest", "NAME FILE.npy...",
       "stream the files' rows into a split, as one transaction, exactly once",
       {"split", "chunk_bytes", "weights", "writer_id", "retry_seconds"}, Ingest},
      {"freeze", "NAME", "snapshot the live statistics as a new version",
       {"min_train_count", "drift_gate", "thresholds", "mark"}, Freeze},
      {"stats", "NAME", "live or frozen statistics, quantiles and histograms",
       {"version", "split", "quantiles", "histogram_bins", "json", "traffic", "window"}, Stats},
      {"compare", "NAME", "drift between two sources of statistics",
       {"reference", "candidate", "thresholds", "bins", "fail_on", "json"}, Compare},
      {"pin", "NAME VERSION | NAME --rollback", "pin the version serving uses (0: unpin)",
       {"rollback"}, Pin},
      {"export", "NAME", "a frozen version for another framework",
       {"version", "format", "eps", "pixel_scale"}, Export},
      {"normalize", "NAME|- IN.npy OUT.npy", "normalise a .npy file through normd",
       {"scheme", "version", "quantile_clip", "eps", "low", "high", "factor", "offset", "gamma",
        "beta", "output_dtype", "chunk_bytes", "shared_memory", "groups", "normalized_shape",
        "layout", "n_quantiles", "normal_output", "ranks"},
       Normalize},
      {"info", "NAME", "a dataset's spec and versions", {}, Info},
      {"list", "", "every dataset", {}, List},
      {"delete", "NAME", "delete a dataset and its versions", {}, Delete},
      {"health", "", "whether normd serves", {}, Health},
  };
  return table;
}

std::string FlagLine(absl::string_view name) {
  const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  if (flag == nullptr) return absl::StrCat("  --", name, "\n");
  return absl::StrCat("  --", name, " (default: \"", flag->DefaultValue(), "\")\n      ",
                      flag->Help(), "\n");
}

}  // namespace

std::span<const CommandInfo> Commands() { return Table(); }

const CommandInfo* FindCommand(const std::string& name) {
  for (const CommandInfo& command : Table()) {
    if (name == command.name) return &command;
  }
  return nullptr;
}

std::string GeneralHelp() {
  std::string help =
      "normctl: the command-line client for normd.\n\n"
      "Usage: normctl [--server=HOST:PORT] COMMAND ARGS... [FLAGS]\n\nCommands:\n";
  for (const CommandInfo& command : Table()) {
    absl::StrAppend(&help, "  ", command.name, *command.arguments ? " " : "",
                    command.arguments, "\n      ", command.summary, "\n");
  }
  absl::StrAppend(&help,
                  "\n`normctl help COMMAND` (or `normctl COMMAND --help`) lists a command's "
                  "flags.\nEvery command takes the connection flags:\n");
  for (const char* name : kConnectionFlags) help += FlagLine(name);
  absl::StrAppend(&help,
                  "\nExit codes: 0 done; 1 normd refused or failed the request; 2 a local error "
                  "(a bad command, flag or file), with nothing sent.\n");
  return help;
}

std::string CommandHelp(const CommandInfo& command) {
  std::string help = absl::StrCat("Usage: normctl ", command.name, *command.arguments ? " " : "",
                                  command.arguments, " [FLAGS]\n", command.summary, "\n");
  if (!command.flags.empty()) help += "\nFlags:\n";
  for (const char* name : command.flags) help += FlagLine(name);
  help += "\nConnection flags:\n";
  for (const char* name : kConnectionFlags) help += FlagLine(name);
  return help;
}

absl::Status CheckFlagsApply(const CommandInfo& command, std::span<char* const> argv) {
  const auto applies = [&](absl::string_view name) {
    const auto is = [&](const char* candidate) { return name == candidate; };
    return std::any_of(std::begin(kConnectionFlags), std::end(kConnectionFlags), is) ||
           std::any_of(command.flags.begin(), command.flags.end(), is);
  };
  for (const char* arg : argv) {
    absl::string_view text(arg);
    if (text == "--") break;  // positional arguments only after it
    if (!absl::StartsWith(text, "-") || text == "-") continue;
    text.remove_prefix(absl::StartsWith(text, "--") ? 2 : 1);
    const absl::string_view name = text.substr(0, text.find('='));
    // A boolean flag given as --noNAME.
    const bool negated = absl::StartsWith(name, "no") && absl::FindCommandLineFlag(name) == nullptr;
    const absl::string_view flag = negated ? name.substr(2) : name;
    if (applies(flag)) continue;
    std::vector<std::string> own;
    for (const char* f : command.flags) own.push_back(absl::StrCat("--", f));
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, " does not apply to ", command.name, "; its flags: ",
        own.empty() ? "none but the connection flags" : absl::StrJoin(own, " "),
        " (normctl help ", command.name, ")"));
  }
  return absl::OkStatus();
}

}  // namespace normd
