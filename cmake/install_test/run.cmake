# CTest driver: install the build tree to a temporary prefix, then build and run
# a consumer through find_package(ft_weave), and C and C++ consumers through
# pkg-config (clean paths, run paths).
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

# 2. pkg-config. The install prefix is given with ".." and a trailing slash:
# the .pc file must still print clean absolute paths (no "lib/pkgconfig/../..",
# no "..", no "//"), those of the prefix the files are in.
set(prefix2_given "${WORK_DIR}/elsewhere/../prefix2/")
set(prefix2 "${WORK_DIR}/prefix2")
run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix2_given}")
find_program(PKG_CONFIG pkg-config REQUIRED)
set(ENV{PKG_CONFIG_PATH} "${prefix2}/lib/pkgconfig")
function(pkg_config out)
  execute_process(COMMAND ${PKG_CONFIG} ${ARGN} ft_weave
                  OUTPUT_VARIABLE text RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pkg-config ${ARGN} ft_weave failed (${rc})")
  endif()
  set(${out} "${text}" PARENT_SCOPE)
endfunction()
pkg_config(flags --cflags --libs)
message(STATUS "pkg-config --cflags --libs ft_weave: ${flags}")
if(NOT flags STREQUAL "-I${prefix2}/include -L${prefix2}/lib -lft_weave")
  message(FATAL_ERROR "pkg-config printed '${flags}', expected '-I${prefix2}/include -L${prefix2}/lib -lft_weave'")
endif()
pkg_config(libdir --variable=libdir)
if(NOT libdir STREQUAL "${prefix2}/lib")
  message(FATAL_ERROR "pkg-config --variable=libdir printed '${libdir}', expected '${prefix2}/lib'")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
find_program(CC NAMES cc gcc clang REQUIRED)
find_program(CXX NAMES c++ g++ clang++ REQUIRED)
# The run path the README documents: -Wl,-rpath,$(pkg-config --variable=libdir ft_weave).
run(${CC} -std=c11 -Wall -Wextra -pedantic -Werror "${SOURCE_DIR}/consumer.c" -o "${WORK_DIR}/consumer-pc"
    ${flags} -pthread "-Wl,-rpath,${libdir}")
run("${WORK_DIR}/consumer-pc")
# C++: ft_weave.hpp is installed beside ft_weave.h.
run(${CXX} -std=c++17 -Wall -Wextra -pedantic -Werror "${SOURCE_DIR}/consumer_cpp.cpp" -o "${WORK_DIR}/consumer-cpp"
    ${flags} -pthread "-Wl,-rpath,${libdir}")
run("${WORK_DIR}/consumer-cpp")
# Without a run path the loader does not find the library (the test fails if
# it were found through some other path: then the README would be wrong);
# LD_LIBRARY_PATH is the other documented way.
run(${CC} -std=c11 "${SOURCE_DIR}/consumer.c" -o "${WORK_DIR}/consumer-norpath" ${flags} -pthread)
execute_process(COMMAND "${WORK_DIR}/consumer-norpath" RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_QUIET)
if(rc EQUAL 0 OR NOT err MATCHES "libft_weave\\.so\\.1")
  message(FATAL_ERROR "a program without a run path started (${rc}): ${err}")
endif()
run(${CMAKE_COMMAND} -E env "LD_LIBRARY_PATH=${libdir}" "${WORK_DIR}/consumer-norpath")

# A moved tree: --define-prefix derives the prefix from the .pc file's place.
file(RENAME "${prefix2}" "${WORK_DIR}/moved")
set(ENV{PKG_CONFIG_PATH} "${WORK_DIR}/moved/lib/pkgconfig")
pkg_config(flags --define-prefix --cflags --libs)
if(NOT flags STREQUAL "-I${WORK_DIR}/moved/include -L${WORK_DIR}/moved/lib -lft_weave")
  message(FATAL_ERROR "pkg-config --define-prefix printed '${flags}' for the moved tree")
endif()
