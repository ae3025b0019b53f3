// Runs a test body once for every SIMD target this CPU supports and this build
// compiled, by pinning Highway's dynamic dispatch to that target.
#ifndef NORMD_TESTS_SUPPORT_SIMD_TARGETS_H_
#define NORMD_TESTS_SUPPORT_SIMD_TARGETS_H_

#include <cstdint>

#include "gtest/gtest.h"
#include "hwy/targets.h"

namespace normd::testing {

template <typename Fn>
void ForEachSimdTarget(Fn&& body) {
  const auto targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    body(target);
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace normd::testing

#endif  // NORMD_TESTS_SUPPORT_SIMD_TARGETS_H_
