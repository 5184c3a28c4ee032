# MqliteSanitize.cmake - MQLITE_SANITIZE: ASan + UBSan over everything we build.
#
# Sets, for the top-level CMakeLists:
#   MQLITE_SANITIZE_TEST_ENV    environment of every ctest entry
#   MQLITE_SANITIZE_NATIVE_ENV  extra environment of C programs run as tests
#   MQLITE_SANITIZE_PYTHON_ENV  extra environment of pytest entries
#   MQLITE_ASAN_RUNTIME         the shared ASan runtime of the compiler in use
#
# The compile flags are global (add_compile_options) so that the library, the
# tests and the SWIG wrapper are all instrumented.
#
# Python is not instrumented, so the ASan runtime must be the first library
# in its process: pytest entries run with LD_PRELOAD=<runtime>. With clang,
# executables would carry a *static* runtime by default, and a program that
# a pytest starts (build/bin/mqlite) inherits LD_PRELOAD -- two runtimes in
# one process abort. So with clang everything links the shared runtime
# (-shared-libsan, found through an rpath); gcc does that by default.
set(MQLITE_SANITIZE_TEST_ENV)
set(MQLITE_SANITIZE_NATIVE_ENV)
set(MQLITE_SANITIZE_PYTHON_ENV)
set(MQLITE_ASAN_RUNTIME)

if(NOT MQLITE_SANITIZE)
    return()
endif()

if(NOT CMAKE_C_COMPILER_ID MATCHES "^(GNU|Clang)$")
    message(FATAL_ERROR "MQLITE_SANITIZE needs gcc or clang, not ${CMAKE_C_COMPILER_ID}")
endif()

add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
    -fno-sanitize-recover=all)
add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)

if(CMAKE_C_COMPILER_ID STREQUAL "Clang")
    set(_mq_asan_name "libclang_rt.asan-${CMAKE_SYSTEM_PROCESSOR}.so")
else()
    set(_mq_asan_name "libasan.so")
endif()
execute_process(
    COMMAND "${CMAKE_C_COMPILER}" "-print-file-name=${_mq_asan_name}"
    OUTPUT_VARIABLE _mq_asan
    OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _mq_rc)
if(NOT _mq_rc EQUAL 0 OR NOT IS_ABSOLUTE "${_mq_asan}" OR NOT EXISTS "${_mq_asan}")
    message(FATAL_ERROR
        "MQLITE_SANITIZE: ${CMAKE_C_COMPILER} has no shared ASan runtime "
        "(${_mq_asan_name}); run scripts/deps.sh (clang needs libclang-rt-14-dev)")
endif()
get_filename_component(MQLITE_ASAN_RUNTIME "${_mq_asan}" REALPATH)

if(CMAKE_C_COMPILER_ID STREQUAL "Clang")
    get_filename_component(_mq_asan_dir "${MQLITE_ASAN_RUNTIME}" DIRECTORY)
    add_link_options(-shared-libsan "LINKER:-rpath,${_mq_asan_dir}")
endif()
message(STATUS "mqlite: sanitizers on; ASan runtime ${MQLITE_ASAN_RUNTIME}")

set(MQLITE_SANITIZE_TEST_ENV
    "MQLITE_SANITIZE=1"
    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
# C programs keep leak detection on.
set(MQLITE_SANITIZE_NATIVE_ENV
    "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1")
# CPython leaks by design at exit: no leak checks there. PYTHONMALLOC=malloc
# lets ASan see Python-side buffers the C code reads and writes.
set(MQLITE_SANITIZE_PYTHON_ENV
    "LD_PRELOAD=${MQLITE_ASAN_RUNTIME}"
    "ASAN_OPTIONS=detect_leaks=0"
    "PYTHONMALLOC=malloc")
