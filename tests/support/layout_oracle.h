// Which channel a flat element belongs to, computed from coordinates rather than
// from the kernels' walk, for tests that need an independent answer.
#ifndef NORMD_TESTS_SUPPORT_LAYOUT_ORACLE_H_
#define NORMD_TESTS_SUPPORT_LAYOUT_ORACLE_H_

#include <cstdint>
#include <vector>

#include "core/layout.h"

namespace normd::testing {

inline int64_t ChannelAxis(Layout layout, size_t rank) {
  return layout == Layout::kNHWC ? static_cast<int64_t>(rank) - 1 : 1;
}

// Coordinate of element `flat` along `axis` of a C-ordered `shape`.
inline int64_t CoordinateAt(const std::vector<int64_t>& shape, int64_t axis, int64_t flat) {
  for (int64_t a = static_cast<int64_t>(shape.size()) - 1; a > axis; --a) flat /= shape[a];
  return flat % shape[axis];
}

inline int64_t ElementCount(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace normd::testing

#endif  // NORMD_TESTS_SUPPORT_LAYOUT_ORACLE_H_
