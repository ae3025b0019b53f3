// +∞ as a double: the edge of the first and last pieces of a map, the start of an empty
// min/max. One definition, so that the core's files can share a unity-build source.
#ifndef NORMD_CORE_INFINITY_H_
#define NORMD_CORE_INFINITY_H_

#include <limits>

namespace normd {

inline constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace normd

#endif  // NORMD_CORE_INFINITY_H_
