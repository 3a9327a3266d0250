/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * rc_unit.h - what every cmocka unit test of the cores shares: one APR
 * pool per test group (`pool`), and a main() body that runs the group
 * between apr_initialize() and apr_terminate(). Include after cmocka.h.
 */
#ifndef RC_UNIT_H
#define RC_UNIT_H

#include <apr_general.h>
#include <apr_pools.h>

static apr_pool_t *pool;

static int rc_unit_setup(void **state)
{
    (void)state;
    return apr_pool_create(&pool, NULL);
}

static int rc_unit_teardown(void **state)
{
    (void)state;
    apr_pool_destroy(pool);
    return 0;
}

/* Runs a `const struct CMUnitTest tests[]` group; use as main's body. */
#define RC_UNIT_RUN(tests) do {                                         \
        int rc_;                                                        \
        apr_initialize();                                               \
        rc_ = cmocka_run_group_tests((tests), rc_unit_setup,            \
                                     rc_unit_teardown);                 \
        apr_terminate();                                                \
        return rc_;                                                     \
    } while (0)

#endif /* RC_UNIT_H */
