/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * rc_unit.h - what every cmocka unit test of the cores shares: one APR
 * pool per test group (`pool`), a table builder (tbl), and a main() body that runs the group
 * between apr_initialize() and apr_terminate(). Include after cmocka.h.
 */
#ifndef RC_UNIT_H
#define RC_UNIT_H

#include <stdarg.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_tables.h>

static apr_pool_t *pool;

/* tbl("K", "v", "K2", "v2", NULL): a table of those pairs (apr_table_add,
 * in order), from `pool`. */
static APR_INLINE apr_table_t *tbl(const char *k, ...)
{
    apr_table_t *t = apr_table_make(pool, 8);
    va_list ap;

    va_start(ap, k);
    while (k) {
        const char *v = va_arg(ap, const char *);
        apr_table_add(t, k, v);
        k = va_arg(ap, const char *);
    }
    va_end(ap);
    return t;
}

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
