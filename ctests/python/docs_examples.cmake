# The Python examples of the documentation, run as tests per interpreter:
# every ```python block of README.md, docs/*.md and python/README.md
# (run_doc_examples.py; a block marked "# docs-example: skip (reason)" is
# listed as skipped). The examples load libmyhelper.so (docs_helper.c) from
# their working directory. Included from ctests/python/CMakeLists.txt.
add_library(ftw_docs_myhelper MODULE "${CMAKE_CURRENT_LIST_DIR}/docs_helper.c")
target_compile_options(ftw_docs_myhelper PRIVATE ${FTW_WARNINGS})
set(_ftw_docs_dir "${CMAKE_CURRENT_BINARY_DIR}/docs_examples")
set_target_properties(ftw_docs_myhelper PROPERTIES
  OUTPUT_NAME myhelper PREFIX lib LIBRARY_OUTPUT_DIRECTORY "${_ftw_docs_dir}")
if(FT_WEAVE_SANITIZE)
  # Loaded by ctypes into an uninstrumented python (see ft_weave_test_helper).
  target_compile_options(ftw_docs_myhelper PRIVATE -fno-sanitize=all)
  target_link_options(ftw_docs_myhelper PRIVATE -fno-sanitize=all)
endif()

# The files are globbed at configure time; CONFIGURE_DEPENDS re-globs them
# when a build runs.
file(GLOB _ftw_doc_files CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/docs/*.md")
list(SORT _ftw_doc_files)
list(PREPEND _ftw_doc_files "${PROJECT_SOURCE_DIR}/README.md")
list(APPEND _ftw_doc_files "${PROJECT_SOURCE_DIR}/python/README.md")

foreach(_id IN LISTS FTW_PYTHON_IDS)
  add_test(NAME python_doc_examples:${FTW_PY_${_id}_TAG}
           COMMAND "${FTW_PY_${_id}_EXE}" "${CMAKE_CURRENT_LIST_DIR}/run_doc_examples.py"
                   --cwd "${_ftw_docs_dir}" ${_ftw_doc_files})
  set_tests_properties(python_doc_examples:${FTW_PY_${_id}_TAG} PROPERTIES
    TIMEOUT 300
    ENVIRONMENT "FT_WEAVE_LIBRARY=${FT_WEAVE_LIBRARY};PYTHONPATH=${_ftw_python_dir};PYTHONDONTWRITEBYTECODE=1")
endforeach()
