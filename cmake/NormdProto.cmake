# Code generation for proto/: C++ messages and gRPC stubs, and Python stubs.

set(NORMD_PROTO_DIR ${PROJECT_SOURCE_DIR}/proto)

# normd_proto_library(<target> PROTOS <files...> GRPC <files with services...>)
function(normd_proto_library target)
  cmake_parse_arguments(ARG "" "" "PROTOS;GRPC" ${ARGN})
  set(out ${PROJECT_BINARY_DIR}/gen)
  set(srcs)
  foreach(proto ${ARG_PROTOS})
    string(REGEX REPLACE "\\.proto$" "" stem ${proto})
    set(outputs ${out}/${stem}.pb.cc ${out}/${stem}.pb.h)
    set(plugin_args)
    if(proto IN_LIST ARG_GRPC)
      list(APPEND outputs ${out}/${stem}.grpc.pb.cc ${out}/${stem}.grpc.pb.h)
      set(plugin_args --grpc_out=${out} --plugin=protoc-gen-grpc=${GRPC_CPP_PLUGIN})
    endif()
    add_custom_command(
      OUTPUT ${outputs}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${out}
      COMMAND protobuf::protoc -I ${NORMD_PROTO_DIR} --cpp_out=${out} ${plugin_args}
              ${NORMD_PROTO_DIR}/${proto}
      DEPENDS ${NORMD_PROTO_DIR}/${proto}
      COMMENT "protoc ${proto}")
    list(APPEND srcs ${outputs})
  endforeach()
  add_library(${target} ${srcs})
  # Generated files define the same file-level helpers: never one unity source.
  set_target_properties(${target} PROPERTIES UNITY_BUILD OFF)
  target_include_directories(${target} PUBLIC ${out})
  target_link_libraries(${target} PUBLIC protobuf::libprotobuf gRPC::grpc++)
endfunction()

# normd_python_stubs(<target> OUT_DIR <dir> PROTOS <files...>)
function(normd_python_stubs target)
  cmake_parse_arguments(ARG "" "OUT_DIR" "PROTOS" ${ARGN})
  set(outputs)
  set(inputs)
  foreach(proto ${ARG_PROTOS})
    string(REGEX REPLACE "\\.proto$" "" stem ${proto})
    list(APPEND outputs ${ARG_OUT_DIR}/${stem}_pb2.py ${ARG_OUT_DIR}/${stem}_pb2_grpc.py)
    list(APPEND inputs ${NORMD_PROTO_DIR}/${proto})
  endforeach()
  add_custom_command(
    OUTPUT ${outputs}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${ARG_OUT_DIR}
    COMMAND protobuf::protoc -I ${NORMD_PROTO_DIR} --python_out=${ARG_OUT_DIR}
            --grpc_out=${ARG_OUT_DIR} --plugin=protoc-gen-grpc=${GRPC_PYTHON_PLUGIN} ${inputs}
    DEPENDS ${inputs}
    COMMENT "Python stubs for ${ARG_PROTOS}")
  add_custom_target(${target} ALL DEPENDS ${outputs})
endfunction()
