# CTest driver: install the build tree to a temporary prefix, then build and run
# a consumer twice: through find_package(ft_weave) and through pkg-config.
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -DGENERATOR=... -P run.cmake
include("${CMAKE_CURRENT_LIST_DIR}/../FtWeaveRun.cmake")

set(prefix "${WORK_DIR}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}")
run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")

# The soname link must be installed as a link, and only the stripped library.
file(GLOB libs RELATIVE "${prefix}/lib" "${prefix}/lib/libft_weave*")
list(SORT libs)
if(NOT libs STREQUAL "libft_weave.so;libft_weave.so.1")
  message(FATAL_ERROR "unexpected installed libraries: ${libs}")
endif()
if(NOT IS_SYMLINK "${prefix}/lib/libft_weave.so")
  message(FATAL_ERROR "lib/libft_weave.so is not a symlink")
endif()

# 1. CMake: find_package(ft_weave CONFIG)
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/cmake-build" -G "${GENERATOR}"
    "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build "${WORK_DIR}/cmake-build")
run("${WORK_DIR}/cmake-build/consumer")

# 2. pkg-config (the .pc file is relocatable: it finds its prefix from its own path)
find_program(PKG_CONFIG pkg-config REQUIRED)
set(ENV{PKG_CONFIG_PATH} "${prefix}/lib/pkgconfig")
execute_process(COMMAND ${PKG_CONFIG} --cflags --libs ft_weave
                OUTPUT_VARIABLE flags RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config does not know ft_weave")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
find_program(CC NAMES cc gcc clang REQUIRED)
run(${CC} -std=c11 -Wall -Wextra -pedantic -Werror "${SOURCE_DIR}/consumer.c" -o "${WORK_DIR}/consumer-pc"
    ${flags} -pthread "-Wl,-rpath,${prefix}/lib")
run("${WORK_DIR}/consumer-pc")
