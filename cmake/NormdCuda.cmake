# The optional CUDA path (core/kernels/cuda, core/cuda): NORMD_CUDA=AUTO builds it where
# a CUDA compiler is found (nvcc on PATH, or /usr/local/cuda/bin/nvcc), ON requires one,
# OFF never builds it. Sanitizer and fuzz builds leave it out under AUTO: CUDA's runtime
# does not run under their runtimes. Sets NORMD_WITH_CUDA.
set(NORMD_CUDA AUTO CACHE STRING "Build the CUDA path: AUTO (where nvcc is found), ON or OFF")
set_property(CACHE NORMD_CUDA PROPERTY STRINGS AUTO ON OFF)

set(NORMD_WITH_CUDA OFF)
if(NORMD_CUDA STREQUAL "ON" OR (NORMD_CUDA STREQUAL "AUTO" AND NOT NORMD_SANITIZE AND NOT NORMD_FUZZ))
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # Hopper machine code, and PTX that later GPUs compile when they load it.
    if(NOT CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES "90-real;90-virtual")
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    # CMake 3.25 knows no C++20 flag for nvcc 13 (which has one): name it.
    if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
      set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
      set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
      list(APPEND CMAKE_CUDA_COMPILE_FEATURES cuda_std_20)
    endif()
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    set(NORMD_WITH_CUDA ON)
    message(STATUS "normd: CUDA path ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
                   "architectures ${CMAKE_CUDA_ARCHITECTURES})")
  elseif(NORMD_CUDA STREQUAL "ON")
    message(FATAL_ERROR "NORMD_CUDA=ON, but no CUDA compiler (nvcc) was found")
  else()
    message(STATUS "normd: no nvcc found, building without the CUDA path")
  endif()
endif()
