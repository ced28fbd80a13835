// FUZZ_CHECK: the invariant checks of the fuzz targets. A failed check prints
// what failed and where, then aborts, which libFuzzer reports as a crash
// (saving the input) and the corpus replayer reports as a failed test.
// Unlike assert(), it is never compiled out.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)
