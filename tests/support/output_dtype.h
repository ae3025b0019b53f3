// An output dtype a test knows to be valid (normalisation writes only the types
// ValidateOutputDType admits), without unwrapping a StatusOr each time.
#ifndef NORMD_TESTS_SUPPORT_OUTPUT_DTYPE_H_
#define NORMD_TESTS_SUPPORT_OUTPUT_DTYPE_H_

#include "core/dtype.h"

namespace normd::testing {

inline OutputDType Out(DType dtype) { return *ValidateOutputDType(dtype); }

}  // namespace normd::testing

#endif  // NORMD_TESTS_SUPPORT_OUTPUT_DTYPE_H_
