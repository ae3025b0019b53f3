#ifndef NORMD_CORE_NONFINITE_POLICY_H_
#define NORMD_CORE_NONFINITE_POLICY_H_

namespace normd {

// What fitting does with NaN and +-Inf values.
enum class NonFinitePolicy {
  kReject,  // the batch is rejected whole
  kSkip,    // the value is left out; its channel's count excludes it
};

}  // namespace normd

#endif  // NORMD_CORE_NONFINITE_POLICY_H_
