# Detach while blocked, with every test interpreter (free-threaded ones
# included): the detach_probe extension module blocks in weave_mutex_lock
# with its thread state attached; ctypes' Mutex.acquire blocks detached.
# Included from ctests/python/CMakeLists.txt. See detach_blocked.py.
foreach(_id IN LISTS FTW_PYTHON_IDS)
  set(_tag "${FTW_PY_${_id}_TAG}")
  ftw_add_python_module(detach_probe_${_id} ${_id} "${CMAKE_CURRENT_SOURCE_DIR}/detach_probe.c")
  set_target_properties(detach_probe_${_id} PROPERTIES OUTPUT_NAME detach_probe)
  target_compile_options(detach_probe_${_id} PRIVATE ${FTW_WARNINGS})
  set(_env
      "FT_WEAVE_LIBRARY=${FT_WEAVE_LIBRARY}"
      "PYTHONPATH=${CMAKE_BINARY_DIR}/python_modules/${_id}:${_ftw_python_dir}"
      "PYTHONDONTWRITEBYTECODE=1")
  set(_script "${CMAKE_CURRENT_SOURCE_DIR}/detach_blocked.py")
  # The finalization cases run in 20 fresh interpreters each: a crash or
  # hang at thread exit need not show every time.
  foreach(_mode gc gc-control)
    add_test(NAME python_detach_${_mode}:${_tag} COMMAND "${FTW_PY_${_id}_EXE}" "${_script}" ${_mode})
    set_tests_properties(python_detach_${_mode}:${_tag} PROPERTIES TIMEOUT 60 ENVIRONMENT "${_env}")
  endforeach()
  foreach(_mode finalize finalize-release)
    add_test(NAME python_detach_${_mode}_x20:${_tag}
             COMMAND "${FTW_PY_${_id}_EXE}" "${_script}" repeat 20 ${_mode})
    set_tests_properties(python_detach_${_mode}_x20:${_tag} PROPERTIES TIMEOUT 300 ENVIRONMENT "${_env}")
  endforeach()
endforeach()

# An embedding program: a thread woken after Py_FinalizeEx is parked for
# good, and main's pthread_exit still ends the process (detach_pthread_exit.c).
foreach(_id IN LISTS FTW_PYTHON_IDS)
  if(NOT FTW_PY_${_id}_LIBPYTHON)
    continue()
  endif()
  add_executable(python_detach_pthread_exit_${_id} detach_pthread_exit.c)
  target_link_libraries(python_detach_pthread_exit_${_id} PRIVATE ft_weave::ft_weave ftw_python_embed_${_id} Threads::Threads)
  target_compile_options(python_detach_pthread_exit_${_id} PRIVATE ${FTW_WARNINGS})
  add_test(NAME python_detach_pthread_exit:${FTW_PY_${_id}_TAG} COMMAND python_detach_pthread_exit_${_id})
  set_tests_properties(python_detach_pthread_exit:${FTW_PY_${_id}_TAG} PROPERTIES
    TIMEOUT 60 ENVIRONMENT "PYTHONHOME=${FTW_PY_${_id}_HOME}")
endforeach()
