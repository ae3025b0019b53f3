#include "client/cpp/normctl/progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace normd {

ProgressBar::ProgressBar(std::string label, uint64_t total_bytes)
    : label_(std::move(label)),
      total_(total_bytes),
      enabled_(isatty(STDERR_FILENO) == 1),
      start_(absl::Now()),
      last_draw_(absl::InfinitePast()) {}

void ProgressBar::Advance(uint64_t bytes) {
  done_ += bytes;
  if (enabled_ && absl::Now() - last_draw_ > absl::Milliseconds(100)) Draw();
}

void ProgressBar::Draw() {
  constexpr int kWidth = 30;
  const double fraction = total_ == 0 ? 1.0 : std::min(1.0, double(done_) / double(total_));
  const int filled = static_cast<int>(fraction * kWidth);
  const double seconds = std::max(1e-9, absl::ToDoubleSeconds(absl::Now() - start_));
  std::fprintf(stderr, "\r%s [%.*s%*s] %3.0f%% %.1f/%.1f MiB %.1f MiB/s", label_.c_str(), filled,
               "##############################", kWidth - filled, "", fraction * 100,
               done_ / 1048576.0, total_ / 1048576.0, done_ / 1048576.0 / seconds);
  std::fflush(stderr);
  last_draw_ = absl::Now();
}

void ProgressBar::Finish() {
  if (!enabled_) return;
  Draw();
  std::fputc('\n', stderr);
}

}  // namespace normd
