// Human-readable shapes for error messages, e.g. "[64, 3, 224, 224]".
#ifndef NORMD_CORE_SHAPE_FORMAT_H_
#define NORMD_CORE_SHAPE_FORMAT_H_

#include <cstdint>
#include <span>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace normd {

inline std::string FormatShape(std::span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

}  // namespace normd

#endif  // NORMD_CORE_SHAPE_FORMAT_H_
