# MqlitePython.cmake - the Python package in build/python/mqlite/ and its tests.
#
#  * the interpreter is chosen on purpose: MQLITE_PYTHON_EXECUTABLE (default
#    /usr/bin/python3, Debian's, which has python3-pytest & co.); the first
#    python3 on PATH may be another interpreter without those modules;
#  * bindings/python/mqlite.i (when present) -> SWIG module in the package,
#    linked to the static library; the target is named after the .i's
#    `%module`, giving SWIG's standard proxy/extension pair: `%module mqlite_c`
#    -> mqlite_c.py + _mqlite_c.cpython-311-x86_64-linux-gnu.so;
#  * python/mqlite/**.py and py.typed are copied into the package at build time;
#  * tests/python/test_*.py -> one ctest entry each (py_test_<name>), running
#    pytest with PYTHONPATH=build/python and MQLITE_BUILD_DIR=build.

# --- the interpreter -------------------------------------------------------
if(EXISTS /usr/bin/python3)
    set(_mq_python_default /usr/bin/python3)
else()
    set(_mq_python_default "")
endif()
set(MQLITE_PYTHON_EXECUTABLE "${_mq_python_default}" CACHE FILEPATH
    "Python interpreter for the bindings and pytest (needs pytest and hypothesis)")
if(DEFINED _MQLITE_PYTHON_USED AND NOT _MQLITE_PYTHON_USED STREQUAL MQLITE_PYTHON_EXECUTABLE)
    # Another interpreter than last time: forget what FindPython3 cached for
    # the old one (it would keep the old one's include directory).
    get_cmake_property(_mq_cache CACHE_VARIABLES)
    foreach(v IN LISTS _mq_cache)
        if(v MATCHES "^_?Python3_")
            unset(${v} CACHE)
        endif()
    endforeach()
endif()
if(MQLITE_PYTHON_EXECUTABLE)
    set(Python3_EXECUTABLE "${MQLITE_PYTHON_EXECUTABLE}")
endif()
find_package(Python3 COMPONENTS Interpreter Development.Module REQUIRED)
if(NOT MQLITE_PYTHON_EXECUTABLE)
    set(MQLITE_PYTHON_EXECUTABLE "${Python3_EXECUTABLE}" CACHE FILEPATH
        "Python interpreter for the bindings and pytest (needs pytest and hypothesis)" FORCE)
endif()
set(_MQLITE_PYTHON_USED "${MQLITE_PYTHON_EXECUTABLE}" CACHE INTERNAL "")
if(NOT Python3_EXECUTABLE STREQUAL MQLITE_PYTHON_EXECUTABLE)
    message(FATAL_ERROR "FindPython3 chose ${Python3_EXECUTABLE}, not "
        "MQLITE_PYTHON_EXECUTABLE=${MQLITE_PYTHON_EXECUTABLE}: remove CMakeCache.txt and retry")
endif()

# Loudly refuse an interpreter that could not run the test suites.
set(_mq_py_modules pytest hypothesis pytest_timeout)
execute_process(
    COMMAND "${MQLITE_PYTHON_EXECUTABLE}" -c
        "import sys, importlib.util as u; m = [n for n in sys.argv[1:] if u.find_spec(n) is None]; print(' '.join(m)); sys.exit(1 if m else 0)"
        ${_mq_py_modules}
    RESULT_VARIABLE _mq_rc
    OUTPUT_VARIABLE _mq_missing
    ERROR_VARIABLE _mq_err
    OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _mq_rc EQUAL 0)
    message(FATAL_ERROR
        "${MQLITE_PYTHON_EXECUTABLE} cannot import: ${_mq_missing} ${_mq_err}\n"
        "The pytest suites need pytest, hypothesis and pytest-timeout. Either run "
        "scripts/deps.sh (installs python3-pytest, python3-hypothesis, ... for "
        "/usr/bin/python3), or pass -DMQLITE_PYTHON_EXECUTABLE=/path/to/python3 "
        "of an interpreter that has them, or -DMQLITE_PYTHON=OFF to build without Python.")
endif()
message(STATUS "mqlite: Python ${Python3_VERSION} at ${MQLITE_PYTHON_EXECUTABLE} "
    "(SOABI ${Python3_SOABI})")

set(MQLITE_PYTHON_PACKAGE_DIR "${MQLITE_PYTHON_DIR}/mqlite")
set(_mq_soabi_suffix ".so")
if(Python3_SOABI)
    set(_mq_soabi_suffix ".${Python3_SOABI}.so")
endif()
file(MAKE_DIRECTORY "${MQLITE_PYTHON_PACKAGE_DIR}")

# --- the SWIG module ---------------------------------------------------------
set(MQLITE_SWIG_INTERFACE "${PROJECT_SOURCE_DIR}/bindings/python/mqlite.i")
# Re-configure when the interface appears, and when its %module line changes.
file(GLOB _mq_swig_i CONFIGURE_DEPENDS "${MQLITE_SWIG_INTERFACE}")
set(MQLITE_SWIG_MODULE "")
if(EXISTS "${MQLITE_SWIG_INTERFACE}")
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${MQLITE_SWIG_INTERFACE}")
    file(STRINGS "${MQLITE_SWIG_INTERFACE}" _mq_module_line
        REGEX "^[ \t]*%module" LIMIT_COUNT 1)
    # %module name   or   %module(package="mqlite", threads="1") name
    if(_mq_module_line MATCHES "^[ \t]*%module[ \t]*(\\([^)]*\\))?[ \t]*([A-Za-z_][A-Za-z0-9_]*)")
        set(MQLITE_SWIG_MODULE "${CMAKE_MATCH_2}")
    else()
        message(FATAL_ERROR "${MQLITE_SWIG_INTERFACE}: no `%module <name>` line found "
            "(the %module declaration must fit on one line)")
    endif()
    if(TARGET ${MQLITE_SWIG_MODULE})
        message(FATAL_ERROR "${MQLITE_SWIG_INTERFACE}: `%module ${MQLITE_SWIG_MODULE}` "
            "collides with the build target of that name; choose another module name")
    endif()
    if(MQLITE_SWIG_MODULE MATCHES "^_")
        # Seen with SWIG 4.1 + Python 3.11: `%module _mqlite_c` makes the proxy
        # _mqlite_c.py refer to its extension as __mqlite_c inside class bodies,
        # which Python mangles (NameError: name '_thing__mqlite_c' is not defined).
        message(WARNING "${MQLITE_SWIG_INTERFACE}: `%module ${MQLITE_SWIG_MODULE}` starts "
            "with '_': SWIG's proxy classes then name their extension "
            "_${MQLITE_SWIG_MODULE}, which Python's private-name mangling breaks inside "
            "class bodies (NameError at import). Prefer e.g. `%module mqlite_c`: proxy "
            "mqlite_c.py + extension _mqlite_c.<SOABI>.so.")
    endif()

    find_package(SWIG 4 REQUIRED COMPONENTS python)
    include(UseSWIG)
    set(SWIG_USE_SWIG_DEPENDENCIES ON)   # header edits regenerate the wrapper

    set_property(SOURCE "${MQLITE_SWIG_INTERFACE}" PROPERTY USE_TARGET_INCLUDE_DIRECTORIES ON)
    swig_add_library(${MQLITE_SWIG_MODULE}
        TYPE MODULE
        LANGUAGE python
        OUTPUT_DIR "${MQLITE_PYTHON_PACKAGE_DIR}"
        OUTFILE_DIR "${PROJECT_BINARY_DIR}/swig"
        SOURCES "${MQLITE_SWIG_INTERFACE}")
    set_target_properties(${MQLITE_SWIG_MODULE} PROPERTIES
        SUFFIX "${_mq_soabi_suffix}"
        LIBRARY_OUTPUT_DIRECTORY "$<1:${MQLITE_PYTHON_PACKAGE_DIR}>"
        C_VISIBILITY_PRESET hidden)
    target_include_directories(${MQLITE_SWIG_MODULE} PRIVATE
        "${MQLITE_PUBLIC_INCLUDE_DIR}" "${MQLITE_INTERNAL_INCLUDE_DIR}")
    target_link_libraries(${MQLITE_SWIG_MODULE} PRIVATE mqlite_static Python3::Module)
    # Generated code: keep -Wall -Wextra -Werror for hand-written typemaps,
    # silence what SWIG's boilerplate triggers (which of these depends on the
    # SWIG features used, -builtin or not, and the Python version's deprecations).
    target_compile_options(${MQLITE_SWIG_MODULE} PRIVATE ${MQLITE_WARNING_FLAGS}
        -Wno-unused-parameter
        -Wno-missing-field-initializers
        -Wno-cast-function-type
        -Wno-unused-function
        -Wno-unused-variable
        -Wno-unused-but-set-variable
        -Wno-deprecated-declarations)
    if(CMAKE_C_COMPILER_ID STREQUAL "Clang")
        target_compile_options(${MQLITE_SWIG_MODULE} PRIVATE -Wno-unknown-warning-option)
    endif()
else()
    message(STATUS "mqlite: ${MQLITE_SWIG_INTERFACE} not found: no SWIG module")
endif()

# --- the pure-Python files -----------------------------------------------------
file(GLOB_RECURSE MQLITE_PYTHON_SOURCES CONFIGURE_DEPENDS
    RELATIVE "${PROJECT_SOURCE_DIR}/python/mqlite"
    "${PROJECT_SOURCE_DIR}/python/mqlite/*.py"
    "${PROJECT_SOURCE_DIR}/python/mqlite/*.pyi"
    "${PROJECT_SOURCE_DIR}/python/mqlite/py.typed")
list(FILTER MQLITE_PYTHON_SOURCES EXCLUDE REGEX "(^|/)__pycache__/")
set(_mq_python_outputs)
foreach(rel IN LISTS MQLITE_PYTHON_SOURCES)
    set(in "${PROJECT_SOURCE_DIR}/python/mqlite/${rel}")
    set(out "${MQLITE_PYTHON_PACKAGE_DIR}/${rel}")
    add_custom_command(OUTPUT "${out}"
        COMMAND "${CMAKE_COMMAND}" -E copy "${in}" "${out}"
        DEPENDS "${in}"
        COMMENT "python/mqlite/${rel}"
        VERBATIM)
    list(APPEND _mq_python_outputs "${out}")
endforeach()
add_custom_target(mqlite_python_files ALL DEPENDS ${_mq_python_outputs})
if(MQLITE_SWIG_MODULE)
    # Building only the extension (scripts/demo.sh does) must still give an
    # importable package: the Pythonic layer comes with it.
    add_dependencies(${MQLITE_SWIG_MODULE} mqlite_python_files)
endif()

# A file deleted from python/mqlite/, or a SWIG module renamed in the .i,
# must not linger in the build's package: a stale extension would shadow the
# new proxy of the same name (the globs above re-run this step on changes).
set(_mq_keep ${MQLITE_PYTHON_SOURCES})
if(MQLITE_SWIG_MODULE)
    list(APPEND _mq_keep "${MQLITE_SWIG_MODULE}.py" "_${MQLITE_SWIG_MODULE}${_mq_soabi_suffix}")
endif()
file(GLOB_RECURSE _mq_present RELATIVE "${MQLITE_PYTHON_PACKAGE_DIR}"
    "${MQLITE_PYTHON_PACKAGE_DIR}/*.py" "${MQLITE_PYTHON_PACKAGE_DIR}/*.pyi"
    "${MQLITE_PYTHON_PACKAGE_DIR}/*.so" "${MQLITE_PYTHON_PACKAGE_DIR}/py.typed")
foreach(rel IN LISTS _mq_present)
    if(NOT rel IN_LIST _mq_keep)
        file(REMOVE "${MQLITE_PYTHON_PACKAGE_DIR}/${rel}")
    endif()
endforeach()

# --- pytest --------------------------------------------------------------------
set(MQLITE_PYTEST_ARGS -q -p no:cacheprovider)
if(MQLITE_SANITIZE)
    # With pytest's default fd-level capture, an ASan/UBSan report written to
    # fd 2 by the aborting process vanishes with the capture file; capture
    # only sys.stdout/sys.stderr so reports reach ctest's output.
    list(APPEND MQLITE_PYTEST_ARGS --capture=sys)
endif()
file(GLOB MQLITE_PYTHON_TESTS CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/tests/python/test_*.py")
foreach(src IN LISTS MQLITE_PYTHON_TESTS)
    get_filename_component(stem "${src}" NAME_WE)
    # pytest exits 5 when it collects nothing: a failure here, like any non-zero.
    mqlite_add_test(NAME py_${stem}
        COMMAND "${MQLITE_PYTHON_EXECUTABLE}" -m pytest ${MQLITE_PYTEST_ARGS} "${src}"
        LABELS python
        ENV "PYTHONPATH=${MQLITE_PYTHON_DIR}"
            "PYTHONPYCACHEPREFIX=${PROJECT_BINARY_DIR}/pycache"
            ${MQLITE_SANITIZE_PYTHON_ENV})
endforeach()
