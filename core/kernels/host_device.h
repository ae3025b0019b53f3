// NORMD_HD marks a function that the CUDA kernels run on the device and the host
// tests run on the CPU: the same source, so that a host test of the device code's
// indexing, tiling and arithmetic tests what the GPU runs. Plain C++ elsewhere.
#ifndef NORMD_CORE_KERNELS_HOST_DEVICE_H_
#define NORMD_CORE_KERNELS_HOST_DEVICE_H_

#ifdef __CUDACC__
#define NORMD_HD __host__ __device__
#else
#define NORMD_HD
#endif

#endif  // NORMD_CORE_KERNELS_HOST_DEVICE_H_
