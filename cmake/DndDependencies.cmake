# Every third-party dependency, found once. All come from Debian packages installed by
# tools/install-deps.sh; nothing is downloaded at build time.
find_package(Threads REQUIRED)
find_package(CapnProto REQUIRED)        # libcapnp-dev + capnproto (schema compiler)
find_package(cppzmq REQUIRED)           # cppzmq-dev (header-only) over libzmq3-dev
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Eigen3 REQUIRED NO_MODULE)
find_package(nlohmann_json REQUIRED)
find_package(PNG REQUIRED)
find_package(Torch REQUIRED)            # libtorch-dev (LibTorch 1.13, CPU). Never a PUBLIC dependency.
if(DND_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
if(DND_BUILD_BENCHMARKS)
  find_package(benchmark REQUIRED)
endif()

# CUDA 13 + NCCL live under /usr/local/cuda-13.0 on these machines (compile and link only; there is
# no GPU). The NCCL parts are built only when both are found.
find_path(DND_NCCL_INCLUDE_DIR nccl.h
  HINTS ENV NCCL_HOME /usr/local/cuda-13.0 /usr/local/cuda PATH_SUFFIXES include)
find_library(DND_NCCL_LIBRARY nccl
  HINTS ENV NCCL_HOME /usr/local/cuda-13.0 /usr/local/cuda PATH_SUFFIXES lib lib64)
find_path(DND_CUDART_INCLUDE_DIR cuda_runtime_api.h
  HINTS /usr/local/cuda-13.0 /usr/local/cuda PATH_SUFFIXES include targets/x86_64-linux/include)
find_library(DND_CUDART_LIBRARY cudart
  HINTS /usr/local/cuda-13.0 /usr/local/cuda PATH_SUFFIXES lib64 lib targets/x86_64-linux/lib)
if(DND_NCCL_INCLUDE_DIR AND DND_NCCL_LIBRARY AND DND_CUDART_INCLUDE_DIR AND DND_CUDART_LIBRARY)
  set(_dnd_nccl_found ON)
else()
  set(_dnd_nccl_found OFF)
endif()
option(DND_WITH_NCCL "Build the NCCL tensor channel (default ON when CUDA and NCCL are found)"
  ${_dnd_nccl_found})
if(DND_WITH_NCCL AND NOT _dnd_nccl_found)
  message(FATAL_ERROR "DND_WITH_NCCL=ON but nccl.h/libnccl or the CUDA runtime were not found")
endif()
message(STATUS "dnd: NCCL tensor channel ${DND_WITH_NCCL} (${DND_NCCL_LIBRARY})")

# CurveZMQ needs libzmq built with libsodium; Debian's is. Fail early and clearly if it is not.
include(CheckCSourceRuns)
set(CMAKE_REQUIRED_LIBRARIES zmq)
check_c_source_runs("#include <zmq.h>\nint main(void){return zmq_has(\"curve\") ? 0 : 1;}"
  DND_ZMQ_HAS_CURVE)
unset(CMAKE_REQUIRED_LIBRARIES)
if(NOT DND_ZMQ_HAS_CURVE)
  message(FATAL_ERROR "libzmq was built without CURVE (zmq_has(\"curve\") is false)")
endif()
