# zwq_add_kernel_plugin(NAME SOURCES src.cpp... [LIBRARIES lib...] [OUTPUT_DIRECTORY dir])
#
# Builds a zwq kernel plugin: a shared module lib<NAME>.so that `zwq-worker --plugin PATH`
# loads. Its sources register kernels with ZWQ_KERNEL (#include <zwq/kernel_sdk.hpp>); see
# docs/PLUGINS.md. The function is installed with zwq's package (find_package(zwq)) and used
# in-tree by examples/ and tests/.
#
#   find_package(zwq REQUIRED)
#   zwq_add_kernel_plugin(my_kernels SOURCES my_kernels.cpp)
#
# The module links zwq::common statically (its code is copied in, so the plugin needs nothing
# of zwq at run time but the worker that loads it), compiles as C++20, hides every symbol but
# the two entry points (two plugins loaded into one worker never see each other's code), and
# refuses undefined symbols at link time rather than at dlopen().
function(zwq_add_kernel_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 ZWQ_PLUGIN "" "OUTPUT_DIRECTORY" "SOURCES;LIBRARIES")
  if(NOT ZWQ_PLUGIN_SOURCES)
    message(FATAL_ERROR "zwq_add_kernel_plugin(${name}): give its SOURCES")
  endif()
  if(ZWQ_PLUGIN_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR
      "zwq_add_kernel_plugin(${name}): unknown arguments ${ZWQ_PLUGIN_UNPARSED_ARGUMENTS}")
  endif()
  add_library(${name} MODULE ${ZWQ_PLUGIN_SOURCES})
  target_link_libraries(${name} PRIVATE zwq::common ${ZWQ_PLUGIN_LIBRARIES})
  target_compile_features(${name} PRIVATE cxx_std_20)
  set_target_properties(${name} PROPERTIES
    PREFIX "lib"
    POSITION_INDEPENDENT_CODE ON
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  # --exclude-libs: the copy of zwq::common stays private to the plugin as well.
  target_link_options(${name} PRIVATE "LINKER:--no-undefined" "LINKER:--exclude-libs,ALL")
  if(ZWQ_PLUGIN_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${ZWQ_PLUGIN_OUTPUT_DIRECTORY}")
  endif()
endfunction()
