# normd_cc_library(NAME SRCS <files...> DEPS <targets...> [INTERFACE])
#
# One static library per folder, as Abseil's absl_cc_library: a folder's target names
# the targets it may use, and nothing else. Dependencies are PUBLIC because headers
# of a folder include the headers of the folders below it.
function(normd_cc_library name)
  cmake_parse_arguments(ARG "INTERFACE" "" "SRCS;DEPS" ${ARGN})
  if(ARG_INTERFACE)
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${name} INTERFACE ${ARG_DEPS})
    return()
  endif()
  add_library(${name} ${ARG_SRCS})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_options(${name} PRIVATE ${NORMD_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()
