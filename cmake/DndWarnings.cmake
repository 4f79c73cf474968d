# Warnings as an interface target, linked PRIVATE by every target of ours (never global flags).
add_library(dnd_warnings INTERFACE)
add_library(dnd::warnings ALIAS dnd_warnings)
target_compile_options(dnd_warnings INTERFACE
  $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra -Wpedantic -Wno-unused-parameter>)
