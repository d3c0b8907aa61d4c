# The contention profile (ft_weave.h, "Diagnostics: contention profile").
#
# test_profile: the API and what it records, through the C ABI (Catch2).
# profile_demo + read_pprof.py: the file itself, decoded by a small reader of
# gzipped profile.proto on every machine, and read by `go tool pprof` where Go
# is installed (Debian's golang-go; installed under FT_WEAVE_INSTALL_TEST_DEPS
# like the other test dependencies, otherwise the test reports SKIPPED).

ftw_catch_test(test_profile)
target_link_libraries(test_profile PRIVATE ${CMAKE_DL_LIBS})
set_target_properties(test_profile PROPERTIES ENABLE_EXPORTS ON)  # dladdr names its functions
# The sections end in a call to the unlock slow path; as a tail call it would
# leave no frame of the section on the stack (docs/diagnostics.md).
target_compile_options(test_profile PRIVATE -fno-optimize-sibling-calls)

add_executable(profile_demo "${CMAKE_CURRENT_LIST_DIR}/profile_demo.c")
target_link_libraries(profile_demo PRIVATE ft_weave::ft_weave Threads::Threads)
target_compile_options(profile_demo PRIVATE ${FTW_WARNINGS})
set_target_properties(profile_demo PROPERTIES ENABLE_EXPORTS ON)
target_compile_options(profile_demo PRIVATE -fno-optimize-sibling-calls)

find_program(FTW_GO_EXECUTABLE go)
if(NOT FTW_GO_EXECUTABLE AND FT_WEAVE_INSTALL_TEST_DEPS)
  ftw_install_debian_packages("go tool pprof reads the contention profile back" golang-go)
  unset(FTW_GO_EXECUTABLE CACHE)
  find_program(FTW_GO_EXECUTABLE go)
endif()

set(_ftw_profile_script "${CMAKE_CURRENT_LIST_DIR}/read_pprof.py")
set(_ftw_profile_dir "${CMAKE_CURRENT_BINARY_DIR}/profile")
foreach(_mode format env badenv go)
  add_test(NAME profile_pprof_${_mode}
           COMMAND "${Python3_EXECUTABLE}" "${_ftw_profile_script}" ${_mode} $<TARGET_FILE:profile_demo> "${_ftw_profile_dir}")
  set_tests_properties(profile_pprof_${_mode} PROPERTIES TIMEOUT 180
    ENVIRONMENT "FTW_GO=${FTW_GO_EXECUTABLE}")
endforeach()
if(NOT FTW_GO_EXECUTABLE)
  set_tests_properties(profile_pprof_go PROPERTIES ENVIRONMENT "FTW_GO=")
endif()
set_tests_properties(profile_pprof_go PROPERTIES SKIP_REGULAR_EXPRESSION "SKIPPED:")
