// A one-line progress bar on stderr, drawn only when stderr is a terminal.
#ifndef NORMD_CLIENT_CPP_NORMCTL_PROGRESS_BAR_H_
#define NORMD_CLIENT_CPP_NORMCTL_PROGRESS_BAR_H_

#include <cstdint>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace normd {

class ProgressBar {
 public:
  ProgressBar(std::string label, uint64_t total_bytes);
  void Advance(uint64_t bytes);
  // Ends the line; call once at the end.
  void Finish();

 private:
  void Draw();

  std::string label_;
  uint64_t total_ = 0;
  uint64_t done_ = 0;
  bool enabled_ = false;
  absl::Time start_;
  absl::Time last_draw_;
};

}  // namespace normd

#endif  // NORMD_CLIENT_CPP_NORMCTL_PROGRESS_BAR_H_
