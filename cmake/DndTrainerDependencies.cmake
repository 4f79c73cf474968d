# The dependencies of the trainer-only build (DND_TRAINER_ONLY): LibTorch (CPU or CUDA), zlib, and
# the header-only CLI11 and nlohmann_json. The header-only ones are taken from their CMake packages
# when installed, else from any include directory that holds them (-DCMAKE_INCLUDE_PATH=DIR), so a
# machine with only LibTorch needs the two header trees copied, nothing built.
find_package(Threads REQUIRED)
# LibTorch: its CMake package (-DCMAKE_PREFIX_PATH=$(python3 -c 'import torch;
# print(torch.utils.cmake_prefix_path)') for PyTorch's own copy), or, where that package cannot
# configure (a CUDA LibTorch whose package looks for a CUDA toolkit the machine lacks),
# -DDND_TORCH_ROOT=DIR with DIR/include and DIR/lib as in LibTorch's zip and PyTorch's wheel.
set(DND_TORCH_ROOT "" CACHE PATH "LibTorch directory (include/, lib/) instead of its CMake package")
if(DND_TORCH_ROOT)
  add_library(dnd_torch_by_hand INTERFACE)
  target_include_directories(dnd_torch_by_hand SYSTEM INTERFACE
    ${DND_TORCH_ROOT}/include ${DND_TORCH_ROOT}/include/torch/csrc/api/include)
  target_link_directories(dnd_torch_by_hand INTERFACE ${DND_TORCH_ROOT}/lib)
  # The CUDA libraries register their kernels when loaded, and nothing of ours calls them directly:
  # keep them linked (--no-as-needed), as LibTorch's own package does.
  set(_dnd_torch_libs torch torch_cpu c10)
  foreach(lib torch_cuda c10_cuda)
    if(EXISTS ${DND_TORCH_ROOT}/lib/lib${lib}.so)
      list(PREPEND _dnd_torch_libs ${lib})
    endif()
  endforeach()
  list(JOIN _dnd_torch_libs ",-l" _dnd_torch_joined)
  target_link_options(dnd_torch_by_hand INTERFACE
    "LINKER:--no-as-needed,-l${_dnd_torch_joined},--as-needed" "LINKER:-rpath,${DND_TORCH_ROOT}/lib")
  set(TORCH_LIBRARIES dnd_torch_by_hand)
  set(Torch_VERSION "at ${DND_TORCH_ROOT}")
else()
  find_package(Torch REQUIRED)
endif()
find_package(ZLIB REQUIRED)

# TARGET from its CMake package when installed, else an interface target over the include
# directory that holds HEADER.
function(dnd_header_only_dependency package target header)
  find_package(${package} CONFIG QUIET)
  if(NOT TARGET ${target})
    find_path(DND_${package}_INCLUDE_DIR ${header} REQUIRED)
    add_library(${target} INTERFACE IMPORTED GLOBAL)
    target_include_directories(${target} INTERFACE ${DND_${package}_INCLUDE_DIR})
  endif()
endfunction()
dnd_header_only_dependency(CLI11 CLI11::CLI11 CLI/CLI.hpp)
dnd_header_only_dependency(nlohmann_json nlohmann_json::nlohmann_json nlohmann/json.hpp)
message(STATUS "dnd: trainer-only build against LibTorch ${Torch_VERSION} (${TORCH_LIBRARIES})")
