// Loads of every input dtype as float64 lanes and stores of float64 lanes to every
// output dtype, exact (loads) or rounded once to nearest-even (stores), for all
// Highway targets. Highway 1.0.3's own float16/bfloat16 conversions are not used:
// its bfloat16 demotion truncates and its SSE4 float16 emulation mishandles
// infinities, and the kernels must agree bit for bit with the scalar reference.

// Per-target include guard, as Highway's own -inl.h headers do.
#if defined(NORMD_CORE_KERNELS_CONVERT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NORMD_CORE_KERNELS_CONVERT_INL_H_
#undef NORMD_CORE_KERNELS_CONVERT_INL_H_
#else
#define NORMD_CORE_KERNELS_CONVERT_INL_H_
#endif

#include <cmath>
#include <cstdint>

#include "core/dtype.h"
#include "core/kernels/narrow_float.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace normd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// ---- loads: Lanes(d) elements from p, widened exactly to float64 -------------------

template <class D>
HWY_INLINE hn::Vec<D> LoadAsDouble(D d, const double* p) {
  return hn::LoadU(d, p);
}

template <class D>
HWY_INLINE hn::Vec<D> LoadAsDouble(D d, const float* p) {
  const hn::Rebind<float, D> df;
  return hn::PromoteTo(d, hn::LoadU(df, p));
}

template <class D>
HWY_INLINE hn::Vec<D> LoadAsDouble(D d, const uint8_t* p) {
  const hn::Rebind<uint8_t, D> du8;
  const hn::Rebind<int32_t, D> di32;
  return hn::PromoteTo(d, hn::PromoteTo(di32, hn::LoadU(du8, p)));
}

template <class D>
HWY_INLINE hn::Vec<D> LoadAsDouble(D d, const BFloat16* p) {
  const hn::Rebind<uint16_t, D> du16;
  const hn::Rebind<uint32_t, D> du32;
  const hn::Rebind<float, D> df;
  const auto bits = hn::PromoteTo(du32, hn::LoadU(du16, reinterpret_cast<const uint16_t*>(p)));
  return hn::PromoteTo(d, hn::BitCast(df, hn::ShiftLeft<16>(bits)));
}

// binary16 -> binary32 by moving the exponent and significand into place and
// rescaling by 2^112 (exact for normals and subnormals alike), with infinities and
// NaNs mapped to the all-ones exponent.
template <class D>
HWY_INLINE hn::Vec<D> LoadAsDouble(D d, const Float16* p) {
  const hn::Rebind<uint16_t, D> du16;
  const hn::Rebind<uint32_t, D> du32;
  const hn::Rebind<float, D> df;
  const auto h = hn::PromoteTo(du32, hn::LoadU(du16, reinterpret_cast<const uint16_t*>(p)));
  const auto magnitude = hn::ShiftLeft<13>(hn::And(h, hn::Set(du32, 0x7fffu)));
  const auto finite = hn::BitCast(du32, hn::Mul(hn::BitCast(df, magnitude), hn::Set(df, 0x1p112f)));
  const auto exponent_all_ones = hn::Eq(hn::And(h, hn::Set(du32, 0x7c00u)), hn::Set(du32, 0x7c00u));
  const auto special = hn::Or(magnitude, hn::Set(du32, 0x7f800000u));
  const auto bits = hn::Or(hn::IfThenElse(exponent_all_ones, special, finite),
                           hn::ShiftLeft<16>(hn::And(h, hn::Set(du32, 0x8000u))));
  return hn::PromoteTo(d, hn::BitCast(df, bits));
}

// ---- stores: float64 lanes rounded once to the output type ----------------------------

// Rounds float64 lanes to a narrow format's bits (in the low 16 bits of each u64
// lane): the significand is rounded to nearest-even by integer addition on the
// float64 bits (a carry correctly bumps the exponent), subnormal results are
// rounded by the 2^52 addition trick, overflow saturates to infinity.
template <NarrowFloatFormat kFormat, class D>
HWY_INLINE hn::Vec<hn::RebindToUnsigned<D>> NarrowFloatBits(D d, hn::Vec<D> v) {
  const hn::RebindToUnsigned<D> du;
  const hn::RebindToSigned<D> di;
  constexpr int kMantissaBits = kFormat.mantissa_bits;
  constexpr int kExponentBits = kFormat.exponent_bits;
  constexpr int kMinNormalExponent = kFormat.min_normal_exponent;
  constexpr int kShift = 52 - kMantissaBits;
  constexpr uint64_t kInfinity = ((uint64_t{1} << kExponentBits) - 1) << kMantissaBits;
  constexpr uint64_t kQuietNaN = kInfinity | (uint64_t{1} << (kMantissaBits - 1));
  constexpr int kBias = 1 - kMinNormalExponent;
  constexpr uint64_t kSignBit = uint64_t{1} << (kMantissaBits + kExponentBits);

  const auto bits = hn::BitCast(du, v);
  const auto magnitude = hn::And(bits, hn::Set(du, 0x7fffffffffffffffull));
  const auto sign =
      hn::And(hn::ShiftRight<63 - kMantissaBits - kExponentBits>(bits), hn::Set(du, kSignBit));

  const auto odd = hn::And(hn::ShiftRight<kShift>(magnitude), hn::Set(du, 1));
  const auto rounded = hn::ShiftRight<kShift>(
      hn::Add(hn::Add(magnitude, hn::Set(du, (uint64_t{1} << (kShift - 1)) - 1)), odd));
  const auto normal = hn::Sub(rounded, hn::Set(du, uint64_t(1023 - kBias) << kMantissaBits));

  const auto two52 = hn::Set(d, 0x1p52);
  const auto scaled = hn::Add(
      hn::Mul(hn::Abs(v), hn::Set(d, std::ldexp(1.0, kMantissaBits - kMinNormalExponent))), two52);
  const auto subnormal = hn::Sub(hn::BitCast(du, scaled), hn::BitCast(du, two52));

  const auto imagnitude = hn::BitCast(di, magnitude);
  const auto is_subnormal = hn::RebindMask(
      du, hn::Lt(imagnitude, hn::Set(di, int64_t(uint64_t(1023 + kMinNormalExponent) << 52))));
  const auto overflows =
      hn::RebindMask(du, hn::Gt(hn::BitCast(di, normal), hn::Set(di, int64_t(kInfinity))));
  const auto is_nan =
      hn::RebindMask(du, hn::Gt(imagnitude, hn::Set(di, int64_t(0x7ff0000000000000ll))));

  auto result = hn::IfThenElse(overflows, hn::Set(du, kInfinity), normal);
  result = hn::IfThenElse(is_subnormal, subnormal, result);
  result = hn::Or(result, sign);
  return hn::IfThenElse(is_nan, hn::Set(du, kQuietNaN), result);
}

// float64 -> float32 rounded to nearest-even, overflowing to infinity as IEEE 754
// (and the scalar reference's static_cast) do. Highway's emulated targets clamp to
// the largest float instead, so they convert lane by lane.
template <class D>
HWY_INLINE hn::Vec<hn::Rebind<float, D>> DemoteToFloat(D d, hn::Vec<D> v) {
  const hn::Rebind<float, D> df;
#if HWY_TARGET == HWY_EMU128 || HWY_TARGET == HWY_SCALAR
  HWY_ALIGN double wide[hn::MaxLanes(d)];
  HWY_ALIGN float narrow[hn::MaxLanes(d)];
  hn::Store(v, d, wide);
  for (size_t i = 0; i < hn::Lanes(d); ++i) narrow[i] = static_cast<float>(wide[i]);
  return hn::Load(df, narrow);
#else
  return hn::DemoteTo(df, v);
#endif
}

template <class D>
HWY_INLINE void StoreFromDouble(D d, hn::Vec<D> v, double* p) {
  hn::StoreU(v, d, p);
}

template <class D>
HWY_INLINE void StoreFromDouble(D d, hn::Vec<D> v, float* p) {
  const hn::Rebind<float, D> df;
  hn::StoreU(DemoteToFloat(d, v), df, p);
}

template <NarrowFloatFormat kFormat, class D>
HWY_INLINE void StoreNarrowFromDouble(D d, hn::Vec<D> v, void* p) {
  const hn::Rebind<uint16_t, D> du16;
  hn::StoreU(hn::TruncateTo(du16, NarrowFloatBits<kFormat>(d, v)), du16, static_cast<uint16_t*>(p));
}

template <class D>
HWY_INLINE void StoreFromDouble(D d, hn::Vec<D> v, Float16* p) {
  StoreNarrowFromDouble<kFloat16Format>(d, v, p);
}

template <class D>
HWY_INLINE void StoreFromDouble(D d, hn::Vec<D> v, BFloat16* p) {
  StoreNarrowFromDouble<kBFloat16Format>(d, v, p);
}

// Non-temporal stores of two vectors, a then b (2 * Lanes(d) elements), for
// float32 and float64 outputs; `p` must be aligned to Lanes(d) * 8 bytes. The float32
// halves are combined first because a non-temporal store of a partial vector would
// write (and need alignment for) a whole one. Narrow outputs use ordinary stores.
template <class D>
HWY_INLINE void StreamPairFromDouble(D d, hn::Vec<D> a, hn::Vec<D> b, double* p) {
  hn::Stream(a, d, p);
  hn::Stream(b, d, p + hn::Lanes(d));
}
template <class D>
HWY_INLINE void StreamPairFromDouble(D d, hn::Vec<D> a, hn::Vec<D> b, float* p) {
#if HWY_TARGET == HWY_SCALAR
  StoreFromDouble(d, a, p);
  StoreFromDouble(d, b, p + hn::Lanes(d));
#else
  const hn::Twice<hn::Rebind<float, D>> df;
  hn::Stream(hn::Combine(df, DemoteToFloat(d, b), DemoteToFloat(d, a)), df, p);
#endif
}
template <class D, typename Out>
HWY_INLINE void StreamPairFromDouble(D d, hn::Vec<D> a, hn::Vec<D> b, Out* p) {
  StoreFromDouble(d, a, p);
  StoreFromDouble(d, b, p + hn::Lanes(d));
}

}  // namespace HWY_NAMESPACE
}  // namespace normd
HWY_AFTER_NAMESPACE();

#endif  // include guard
