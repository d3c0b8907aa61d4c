# ft_utils-ported registrations that must raise (ISSUE 12 section 3) and
# ft_weave critical sections around calls into Python (section 4), for every
# test interpreter. Included from ctests/python/CMakeLists.txt.
#
#   python_ported_register:<tag>  extension module: a failing
#       `if (_py_register_wvls_destructor(...)) return NULL;` raises ValueError
#       carrying weave_last_error(); success sets nothing; native threads.
#   python_ported_embed:<tag>     the same in a program that embeds CPython
#       (library loaded before the interpreter is initialized).
#   python_ported_dlopen:<tag>    a program linked with the library only that
#       loads libpython later with dlopen(RTLD_LOCAL): exceptions once the
#       error functions are handed over (weave_set_python_errors).
#   python_section_suspend:<tag>  a section calling back into Python that
#       waits on a threading.Lock held by a thread entering the same section:
#       deadlocks without the helpers (timed control), completes with them.
foreach(_id IN LISTS FTW_PYTHON_IDS)
  set(_tag ${FTW_PY_${_id}_TAG})
  ftw_add_python_module(ftw_sections_ext_${_id} ${_id} sections_ext.c)
  # The module's file name must match its PyInit_ function.
  set_target_properties(ftw_sections_ext_${_id} PROPERTIES OUTPUT_NAME ftw_sections_ext)
  target_link_libraries(ftw_sections_ext_${_id} PRIVATE Threads::Threads)
  target_compile_options(ftw_sections_ext_${_id} PRIVATE ${FTW_WARNINGS})
  set(_env "PYTHONPATH=${CMAKE_BINARY_DIR}/python_modules/${_id}"
           "PYTHONDONTWRITEBYTECODE=1")
  foreach(_test ported_register section_suspend)
    add_test(NAME python_${_test}:${_tag}
             COMMAND "${FTW_PY_${_id}_EXE}" -m unittest -v test_${_test}
             WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}")
    set_tests_properties(python_${_test}:${_tag} PROPERTIES TIMEOUT 120 ENVIRONMENT "${_env}")
  endforeach()

  if(FTW_PY_${_id}_LIBPYTHON)
    add_executable(python_ported_embed_${_id} ported_embed.c)
    target_link_libraries(python_ported_embed_${_id} PRIVATE ft_weave::ft_weave ftw_python_embed_${_id} Threads::Threads)
    target_compile_options(python_ported_embed_${_id} PRIVATE ${FTW_WARNINGS})
    add_test(NAME python_ported_embed:${_tag} COMMAND python_ported_embed_${_id})
    # Linked with libft_weave only; libpython comes later, by dlopen(RTLD_LOCAL).
    add_executable(python_ported_dlopen_${_id} ported_dlopen.c)
    target_link_libraries(python_ported_dlopen_${_id} PRIVATE ft_weave::ft_weave ${CMAKE_DL_LIBS} Threads::Threads)
    target_compile_options(python_ported_dlopen_${_id} PRIVATE ${FTW_WARNINGS})
    add_test(NAME python_ported_dlopen:${_tag} COMMAND python_ported_dlopen_${_id} "${FTW_PY_${_id}_LIBPYTHON}")
    set_tests_properties(python_ported_embed:${_tag} python_ported_dlopen:${_tag} PROPERTIES
      TIMEOUT 120 ENVIRONMENT "PYTHONHOME=${FTW_PY_${_id}_HOME}")
  endif()
endforeach()
