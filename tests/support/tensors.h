// Building wire tensors in tests.
#ifndef NORMD_TESTS_SUPPORT_TENSORS_H_
#define NORMD_TESTS_SUPPORT_TENSORS_H_

#include <cstring>
#include <random>
#include <vector>

#include "normd/v1/normd.pb.h"

namespace normd::testing {

template <typename T>
v1::Tensor MakeTensor(v1::DType dtype, const std::vector<int64_t>& shape,
                      const std::vector<T>& values) {
  v1::Tensor tensor;
  tensor.set_dtype(dtype);
  for (int64_t d : shape) tensor.add_shape(d);
  tensor.set_data(
      std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)));
  return tensor;
}

inline v1::Tensor Float64Tensor(const std::vector<int64_t>& shape,
                                const std::vector<double>& values) {
  return MakeTensor(v1::DTYPE_FLOAT64, shape, values);
}

inline v1::Tensor Float32Tensor(const std::vector<int64_t>& shape,
                                const std::vector<float>& values) {
  return MakeTensor(v1::DTYPE_FLOAT32, shape, values);
}

template <typename T>
std::vector<T> DecodeTensor(const v1::Tensor& tensor) {
  std::vector<T> values(tensor.data().size() / sizeof(T));
  std::memcpy(values.data(), tensor.data().data(), values.size() * sizeof(T));
  return values;
}

inline std::vector<double> GaussianValues(size_t n, double mean, double stddev, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> dist(mean, stddev);
  std::vector<double> values(n);
  for (double& v : values) v = dist(rng);
  return values;
}

}  // namespace normd::testing

#endif  // NORMD_TESTS_SUPPORT_TENSORS_H_
