/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * fuzz_check.h - what the libFuzzer targets share: CHECK(cond) aborts
 * with the failed invariant, so libFuzzer keeps the input as a crash.
 */
#ifndef RC_FUZZ_CHECK_H
#define RC_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond) do {                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond,    \
                    __FILE__, __LINE__);                                \
            abort();                                                    \
        }                                                               \
    } while (0)

#endif /* RC_FUZZ_CHECK_H */
