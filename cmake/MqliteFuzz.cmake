# MqliteFuzz.cmake - tests/fuzz/fuzz_<name>.c, each defining
# LLVMFuzzerTestOneInput().
#
# Always (any compiler): fuzz_replay_<name> = fuzz_<name>.c + tests/fuzz/driver.c
#   linked to the static library, registered in ctest as fuzz_replay_<name>
#   with the corpus directory as its argument, so every build replays the
#   corpus (under ASan/UBSan in a sanitizer build). The corpus directory is
#   tests/fuzz/corpus/<name>/ or, if only that exists, tests/fuzz/corpus/fuzz_<name>/
#   (scripts/test.sh resolves it the same way). Skipped while driver.c does
#   not exist.
# MQLITE_FUZZ=ON with clang: fuzz_<name>, a libFuzzer executable
#   (-fsanitize=fuzzer,address,undefined) over all library sources, built
#   once more as mqlite_fuzzlib with -fsanitize=fuzzer-no-link,address,undefined.
#   scripts/test.sh runs these for a bounded time.
file(GLOB MQLITE_FUZZ_TARGETS CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_*.c")
set(MQLITE_FUZZ_DRIVER "${PROJECT_SOURCE_DIR}/tests/fuzz/driver.c")
# Re-run the configure step when driver.c or a corpus directory appears or goes.
file(GLOB _mq_fuzz_driver CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/tests/fuzz/driver.c")
file(GLOB _mq_fuzz_corpora LIST_DIRECTORIES true CONFIGURE_DEPENDS
    "${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/*")

set(_mq_libfuzzer OFF)
if(MQLITE_FUZZ AND MQLITE_SANITIZE)
    # The sanitizer build links clang's *shared* ASan runtime (for Python);
    # libFuzzer executables need the static one. Fuzz targets carry ASan+UBSan
    # anyway: use a separate build tree (scripts/test.sh: build-fuzz/).
    message(FATAL_ERROR "MQLITE_FUZZ and MQLITE_SANITIZE cannot share a build tree; "
        "the fuzz targets are built with ASan+UBSan already")
endif()
if(MQLITE_FUZZ)
    if(CMAKE_C_COMPILER_ID STREQUAL "Clang")
        set(_mq_libfuzzer ON)
        set(_mq_fuzz_flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
            -fno-omit-frame-pointer)
        add_library(mqlite_fuzzlib STATIC ${MQLITE_SOURCES})
        target_compile_options(mqlite_fuzzlib PRIVATE
            -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
            -fno-omit-frame-pointer)
        target_include_directories(mqlite_fuzzlib
            PUBLIC "${MQLITE_PUBLIC_INCLUDE_DIR}" "${MQLITE_INTERNAL_INCLUDE_DIR}")
        target_link_libraries(mqlite_fuzzlib PRIVATE mqlite_flags PUBLIC ${MQLITE_LINK_DEPS})
    else()
        message(WARNING "MQLITE_FUZZ needs clang (libFuzzer); ${CMAKE_C_COMPILER_ID} "
            "builds only the corpus replay tests")
    endif()
endif()

if(MQLITE_FUZZ_TARGETS AND NOT EXISTS "${MQLITE_FUZZ_DRIVER}")
    message(STATUS "mqlite: tests/fuzz/driver.c missing: no fuzz_replay_* tests")
endif()

foreach(src IN LISTS MQLITE_FUZZ_TARGETS)
    get_filename_component(stem "${src}" NAME_WE)      # fuzz_<name>
    string(REGEX REPLACE "^fuzz_" "" name "${stem}")    # <name>
    set(corpus "${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${name}")
    if(NOT IS_DIRECTORY "${corpus}" AND IS_DIRECTORY "${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${stem}")
        set(corpus "${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${stem}")
    endif()
    if(EXISTS "${MQLITE_FUZZ_DRIVER}")
        mqlite_add_program(fuzz_replay_${name} INTERNAL SOURCES "${src}" "${MQLITE_FUZZ_DRIVER}")
        # A missing corpus directory fails the test: every target needs seeds.
        mqlite_add_test(NAME fuzz_replay_${name}
            COMMAND fuzz_replay_${name} "${corpus}"
            LABELS fuzz
            ENV ${MQLITE_SANITIZE_NATIVE_ENV})
    endif()
    if(_mq_libfuzzer)
        add_executable(${stem} "${src}")
        target_compile_options(${stem} PRIVATE ${_mq_fuzz_flags})
        target_link_options(${stem} PRIVATE ${_mq_fuzz_flags})
        target_link_libraries(${stem} PRIVATE mqlite_fuzzlib mqlite_flags)
    endif()
endforeach()
