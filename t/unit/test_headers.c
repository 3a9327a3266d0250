/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * test_headers.c -- unit tests of headers.c: hop-by-hop stripping (the
 * fixed names in any case, fields named by Connection, end-to-end fields
 * kept), RevProxyPassReverse rewriting (prefix, query, case rules, path
 * boundaries, every trailing-slash combination, first match wins,
 * unchanged values returned as is), and list appending.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <apr_general.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "headers.h"

#include "rc_unit.h"

#define FRONT "https://www.example.com"

static const char *const fixed[] = {
    "Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding",
    "Upgrade", "Proxy-Connection", "Proxy-Authorization",
    "Proxy-Authenticate", NULL
};

/* Counts the fields called name (any case). */
static int count_cb(void *baton, const char *key, const char *value)
{
    (void)key;
    (void)value;
    ++*(int *)baton;
    return 1;
}

static int count(apr_table_t *t, const char *name)
{
    int n = 0;

    apr_table_do(count_cb, &n, t, name, NULL);
    return n;
}

/* ------------------------------------------------------------------ */
/* Hop-by-hop                                                            */

static void test_is_hop_by_hop(void **state)
{
    int i;

    (void)state;
    for (i = 0; fixed[i]; i++) {
        char *lower = apr_pstrdup(pool, fixed[i]);
        char *upper = apr_pstrdup(pool, fixed[i]);
        char *p;

        for (p = lower; *p; p++) {
            *p = (char)apr_tolower(*p);
        }
        for (p = upper; *p; p++) {
            *p = (char)apr_toupper(*p);
        }
        assert_true(rc_hdr_is_hop_by_hop(fixed[i]));
        assert_true(rc_hdr_is_hop_by_hop(lower));
        assert_true(rc_hdr_is_hop_by_hop(upper));
    }
    assert_false(rc_hdr_is_hop_by_hop("Host"));
    assert_false(rc_hdr_is_hop_by_hop("Content-Length"));
    assert_false(rc_hdr_is_hop_by_hop("Connections"));
    assert_false(rc_hdr_is_hop_by_hop("Keep"));
    assert_false(rc_hdr_is_hop_by_hop("TEx"));
    assert_false(rc_hdr_is_hop_by_hop(""));
    assert_false(rc_hdr_is_hop_by_hop("Trailers"));
}

static void test_strip_fixed(void **state)
{
    int i;

    (void)state;
    /* Each fixed name alone, in three spellings, with end-to-end fields
     * around it that must survive. */
    for (i = 0; fixed[i]; i++) {
        int v;

        for (v = 0; v < 3; v++) {
            apr_table_t *t = apr_table_make(pool, 8);
            char *name = apr_pstrdup(pool, fixed[i]);
            char *p;

            for (p = name; *p && v; p++) {
                *p = (char)(v == 1 ? apr_tolower(*p) : apr_toupper(*p));
            }
            apr_table_add(t, "Content-Type", "text/plain");
            apr_table_add(t, name, "x");
            apr_table_add(t, "Cache-Control", "max-age=5");
            apr_table_add(t, name, "y");
            rc_hdr_strip_hop_by_hop(t);
            assert_int_equal(count(t, fixed[i]), 0);
            assert_int_equal(apr_table_elts(t)->nelts, 2);
            assert_string_equal(apr_table_get(t, "Content-Type"),
                                "text/plain");
            assert_string_equal(apr_table_get(t, "Cache-Control"),
                                "max-age=5");
        }
    }
}

static void test_strip_connection_named(void **state)
{
    apr_table_t *t = apr_table_make(pool, 16);
    const apr_array_header_t *arr;
    const apr_table_entry_t *e;

    (void)state;
    apr_table_add(t, "Date", "Mon, 01 Jan 2024 00:00:00 GMT");
    apr_table_add(t, "Connection", "close, X-Foo");
    apr_table_add(t, "X-Foo", "1");
    apr_table_add(t, "x-bar", "2");
    apr_table_add(t, "X-Baz", "3");
    apr_table_add(t, "X-Qux", "4");
    apr_table_add(t, "X-Keep", "5");
    apr_table_add(t, "connection", " X-BAR ,,\tx-baz ");
    apr_table_add(t, "CONNECTION", "X-Qux");
    apr_table_add(t, "Keep-Alive", "timeout=5");
    apr_table_add(t, "ETag", "\"abc\"");
    apr_table_add(t, "Set-Cookie", "a=1");
    apr_table_add(t, "Set-Cookie", "b=2");
    rc_hdr_strip_hop_by_hop(t);

    assert_null(apr_table_get(t, "Connection"));
    assert_null(apr_table_get(t, "Keep-Alive"));
    assert_null(apr_table_get(t, "X-Foo"));
    assert_null(apr_table_get(t, "X-Bar"));
    assert_null(apr_table_get(t, "X-Baz"));
    assert_null(apr_table_get(t, "X-Qux"));
    /* End-to-end fields kept, in order, duplicates too. */
    arr = apr_table_elts(t);
    e = (const apr_table_entry_t *)arr->elts;
    assert_int_equal(arr->nelts, 5);
    assert_string_equal(e[0].key, "Date");
    assert_string_equal(e[1].key, "X-Keep");
    assert_string_equal(e[1].val, "5");
    assert_string_equal(e[2].key, "ETag");
    assert_string_equal(e[3].val, "a=1");
    assert_string_equal(e[4].val, "b=2");

    /* Connection may name an end-to-end field: it goes too. */
    t = apr_table_make(pool, 4);
    apr_table_add(t, "Connection", "Cache-Control");
    apr_table_add(t, "Cache-Control", "no-cache");
    apr_table_add(t, "Vary", "Accept");
    rc_hdr_strip_hop_by_hop(t);
    assert_null(apr_table_get(t, "Cache-Control"));
    assert_string_equal(apr_table_get(t, "Vary"), "Accept");
    assert_int_equal(apr_table_elts(t)->nelts, 1);

    /* Nothing to strip: untouched. */
    t = apr_table_make(pool, 4);
    apr_table_add(t, "A", "1");
    apr_table_add(t, "B", "2");
    rc_hdr_strip_hop_by_hop(t);
    assert_int_equal(apr_table_elts(t)->nelts, 2);

    /* Empty table, empty Connection. */
    t = apr_table_make(pool, 4);
    rc_hdr_strip_hop_by_hop(t);
    assert_int_equal(apr_table_elts(t)->nelts, 0);
    apr_table_add(t, "Connection", "");
    apr_table_add(t, "Connection", " , ");
    apr_table_add(t, "X", "1");
    rc_hdr_strip_hop_by_hop(t);
    assert_int_equal(apr_table_elts(t)->nelts, 1);
    assert_string_equal(apr_table_get(t, "X"), "1");
}

/* ------------------------------------------------------------------ */
/* Reverse mapping                                                       */

static const char *rmap1(const char *value, const char *be,
                         const char *front)
{
    rc_reverse_map_t m;

    m.backend = be;
    m.front = front;
    return rc_hdr_reverse_map(pool, value, &m, 1, FRONT);
}

static void test_reverse_basic(void **state)
{
    const char *be = "http://127.0.0.1:8081/b/";
    const char *v;

    (void)state;
    assert_string_equal(rmap1("http://127.0.0.1:8081/b/x", be, "/app/"),
                        FRONT "/app/x");
    assert_string_equal(rmap1("http://127.0.0.1:8081/b/x?y=1&z", be,
                              "/app/"), FRONT "/app/x?y=1&z");
    assert_string_equal(rmap1("http://127.0.0.1:8081/b/x/y/z#f", be,
                              "/app/"), FRONT "/app/x/y/z#f");
    assert_string_equal(rmap1("http://127.0.0.1:8081/b/", be, "/app/"),
                        FRONT "/app/");
    /* Scheme and host compare case-insensitively. */
    assert_string_equal(rmap1("HTTP://127.0.0.1:8081/b/x", be, "/app/"),
                        FRONT "/app/x");
    assert_string_equal(rmap1("http://Backend.Example:8081/b/x",
                              "http://backend.example:8081/b/", "/app/"),
                        FRONT "/app/x");
    /* Path compares case-sensitively. */
    v = "http://127.0.0.1:8081/B/x";
    assert_ptr_equal(rmap1(v, be, "/app/"), v);
    /* Other host, port, scheme, or path: unchanged, same pointer. */
    v = "http://127.0.0.1:8082/b/x";
    assert_ptr_equal(rmap1(v, be, "/app/"), v);
    v = "http://127.0.0.1:808/b/x";
    assert_ptr_equal(rmap1(v, be, "/app/"), v);
    v = "https://127.0.0.1:8081/b/x";
    assert_ptr_equal(rmap1(v, be, "/app/"), v);
    v = "http://127.0.0.1:8081/c/x";
    assert_ptr_equal(rmap1(v, be, "/app/"), v);
    v = "/b/x";
    assert_ptr_equal(rmap1(v, be, "/app/"), v);
    v = "";
    assert_ptr_equal(rmap1(v, be, "/app/"), v);
    v = "http://127.0.0.1:8081";
    assert_ptr_equal(rmap1(v, be, "/app/"), v);
    /* Backend without "://": never matches. */
    v = "127.0.0.1:8081/b/x";
    assert_ptr_equal(rmap1(v, "127.0.0.1:8081/b/", "/app/"), v);
    /* No maps at all. */
    assert_ptr_equal(rc_hdr_reverse_map(pool, v, NULL, 0, FRONT), v);
}

/* "/b" must not match "/bc", nor a host "h" match "hx". */
static void test_reverse_boundaries(void **state)
{
    const char *v;

    (void)state;
    v = "http://h/bc";
    assert_ptr_equal(rmap1(v, "http://h/b", "/app"), v);
    v = "http://h/bc/x";
    assert_ptr_equal(rmap1(v, "http://h/b", "/app"), v);
    v = "http://h/b.x";
    assert_ptr_equal(rmap1(v, "http://h/b", "/app"), v);
    assert_string_equal(rmap1("http://h/b", "http://h/b", "/app"),
                        FRONT "/app");
    assert_string_equal(rmap1("http://h/b/c", "http://h/b", "/app"),
                        FRONT "/app/c");
    assert_string_equal(rmap1("http://h/b?q", "http://h/b", "/app"),
                        FRONT "/app?q");
    assert_string_equal(rmap1("http://h/b#f", "http://h/b", "/app"),
                        FRONT "/app#f");
    /* Backend with no path at all. */
    v = "http://hx/y";
    assert_ptr_equal(rmap1(v, "http://h", "/app/"), v);
    v = "http://h:8080/y";
    assert_ptr_equal(rmap1(v, "http://h", "/app/"), v);
    v = "http://h.evil.example/y";
    assert_ptr_equal(rmap1(v, "http://h", "/app/"), v);
    v = "http://h@evil.example/y";
    assert_ptr_equal(rmap1(v, "http://h", "/app/"), v);
    assert_string_equal(rmap1("http://h/y", "http://h", "/app/"),
                        FRONT "/app/y");
    assert_string_equal(rmap1("http://h", "http://h", "/app/"),
                        FRONT "/app/");
    assert_string_equal(rmap1("http://h?q", "http://h", "/app"),
                        FRONT "/app?q");
    /* Host prefix of a longer host, with a port. */
    v = "http://127.0.0.1:80810/b/x";
    assert_ptr_equal(rmap1(v, "http://127.0.0.1:8081/b/", "/app/"), v);
}

/* Exactly one "/" between front prefix and rest, whichever side has it. */
static void test_reverse_slashes(void **state)
{
    static const char *const bes[] = { "http://h/b/", "http://h/b" };
    static const char *const fronts[] = { "/app/", "/app" };
    int i, j;

    (void)state;
    for (i = 0; i < 2; i++) {
        for (j = 0; j < 2; j++) {
            assert_string_equal(rmap1("http://h/b/x", bes[i], fronts[j]),
                                FRONT "/app/x");
            assert_string_equal(rmap1("http://h/b/x/y?z=/", bes[i],
                                      fronts[j]), FRONT "/app/x/y?z=/");
            assert_string_equal(rmap1("http://h/b/", bes[i], fronts[j]),
                                FRONT "/app/");
        }
    }
    /* Root on either side. */
    assert_string_equal(rmap1("http://h/x", "http://h/", "/"), FRONT "/x");
    assert_string_equal(rmap1("http://h/", "http://h/", "/"), FRONT "/");
    assert_string_equal(rmap1("http://h/b/x", "http://h/b/", "/"),
                        FRONT "/x");
    assert_string_equal(rmap1("http://h/b/x", "http://h/b", "/"),
                        FRONT "/x");
    assert_string_equal(rmap1("http://h/x", "http://h/", "/app/"),
                        FRONT "/app/x");
    assert_string_equal(rmap1("http://h/x", "http://h/", "/app"),
                        FRONT "/app/x");
    /* A front base that is empty (relative rewriting). */
    {
        rc_reverse_map_t m = { "http://h/b/", "/app/" };

        assert_string_equal(rc_hdr_reverse_map(pool, "http://h/b/x", &m, 1,
                                               ""), "/app/x");
    }
}

static void test_reverse_first_match(void **state)
{
    rc_reverse_map_t maps[] = {
        { "http://h/b/c/", "/deep/" },
        { "http://h/b/", "/shallow/" },
        { "http://h/b/", "/never/" },
        { "http://other:81/", "/o/" },
    };
    const char *v;

    (void)state;
    assert_string_equal(rc_hdr_reverse_map(pool, "http://h/b/c/x", maps, 4,
                                           FRONT), FRONT "/deep/x");
    assert_string_equal(rc_hdr_reverse_map(pool, "http://h/b/d", maps, 4,
                                           FRONT), FRONT "/shallow/d");
    assert_string_equal(rc_hdr_reverse_map(pool, "http://OTHER:81/z", maps,
                                           4, FRONT), FRONT "/o/z");
    /* Order matters: a broader map first shadows the deeper one. */
    assert_string_equal(rc_hdr_reverse_map(pool, "http://h/b/c/x", maps + 1,
                                           3, FRONT), FRONT "/shallow/c/x");
    v = "http://nowhere/b/c/x";
    assert_ptr_equal(rc_hdr_reverse_map(pool, v, maps, 4, FRONT), v);
    /* nmaps limits the search. */
    v = "http://other:81/z";
    assert_ptr_equal(rc_hdr_reverse_map(pool, v, maps, 3, FRONT), v);
}


/* ------------------------------------------------------------------ */
/* One-pass filtering: Connection tokens and rc_hdr_forwardable          */

static void test_forwardable(void **state)
{
    apr_table_t *t = apr_table_make(pool, 8);
    apr_array_header_t *tok;

    (void)state;
    apr_table_add(t, "Accept", "*/*");
    assert_null(rc_hdr_connection_tokens(pool, t));
    assert_true(rc_hdr_forwardable("Accept", NULL));
    assert_false(rc_hdr_forwardable("keep-alive", NULL));
    assert_false(rc_hdr_forwardable("PROXY-AUTHORIZATION", NULL));
    assert_false(rc_hdr_forwardable("te", NULL));
    assert_true(rc_hdr_forwardable("Tee", NULL));

    apr_table_add(t, "Connection", "close, X-A");
    apr_table_add(t, "connection", " x-b ,\tX-C");
    tok = rc_hdr_connection_tokens(pool, t);
    assert_non_null(tok);
    assert_int_equal(tok->nelts, 4);
    assert_false(rc_hdr_forwardable("x-a", tok));
    assert_false(rc_hdr_forwardable("X-B", tok));
    assert_false(rc_hdr_forwardable("X-c", tok));
    assert_true(rc_hdr_forwardable("X-D", tok));
    assert_true(rc_hdr_forwardable("Accept", tok));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_hop_by_hop),
        cmocka_unit_test(test_strip_fixed),
        cmocka_unit_test(test_strip_connection_named),
        cmocka_unit_test(test_reverse_basic),
        cmocka_unit_test(test_reverse_boundaries),
        cmocka_unit_test(test_reverse_slashes),
        cmocka_unit_test(test_reverse_first_match),
        cmocka_unit_test(test_forwardable),
    };
    RC_UNIT_RUN(tests);
}
