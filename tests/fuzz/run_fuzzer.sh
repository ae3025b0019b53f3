#!/usr/bin/env bash
# Runs one libFuzzer target (the arguments are its command line) and prints only its
# final statistics, or the last 60 lines of its log when it fails (a crash, a leak, a
# sanitizer report), so the CI log stays short either way.
set -uo pipefail
log=$(mktemp)
"$@" >"$log" 2>&1
status=$?
if [[ $status -eq 0 ]]; then
  grep -E '^(Done|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb))' "$log"
else
  tail -n 60 "$log"
fi
rm -f "$log"
exit $status
