/*
 * test_cache_rules.c -- unit tests of cache_rules.c / cache_keys.c.
 *
 * Exact arithmetic throughout: every time is a whole number of seconds
 * after BASE, so ages, lifetimes and windows are compared exactly.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "apr_general.h"
#include "apr_pools.h"
#include "apr_strings.h"
#include "apr_tables.h"
#include "apr_time.h"

#include "cache_rules.h"
#include "rc_unit.h"

#define SEC(n)  apr_time_from_sec(n)
#define BASE    SEC(1700000000)
#define AT(n)   (BASE + SEC(n))


static const char *date(apr_time_t t)
{
    return rc_rules_format_date(pool, t);
}

static rc_cc_t cc_of(const char *v)
{
    rc_cc_t cc;

    rc_rules_cc_parse(&cc, pool, v);
    return cc;
}

/* freshness of a response received at AT(resp) for a request sent at
 * AT(req), with default options unless o is given */
static rc_fresh_t fresh_of(int status, apr_table_t *h, int req, int resp,
                           const rc_rules_opts_t *o)
{
    rc_rules_opts_t def;
    rc_fresh_t f;
    rc_cc_t cc;

    rc_rules_opts_init(&def);
    rc_rules_cc_response(&cc, pool, h);
    rc_rules_fresh_init(&f, o ? o : &def, status, h, &cc, AT(req), AT(resp));
    return f;
}

/* A stored entry: received at AT(0), initial age 0, lifetime life s. */
static rc_fresh_t entry(int life, int swr, int sie, unsigned int flags)
{
    rc_fresh_t f;

    memset(&f, 0, sizeof(f));
    f.response_time = AT(0);
    f.date = AT(0);
    f.lifetime = SEC(life);
    f.swr = SEC(swr);
    f.sie = sie < 0 ? -1 : SEC(sie);
    f.flags = flags;
    return f;
}

/* ================================================================== */
/* Cache-Control parsing                                               */
/* ================================================================== */

static void test_cc_basic(void **state)
{
    rc_cc_t cc = cc_of("max-age=60, public");

    (void)state;
    assert_int_equal(cc.max_age, 60);
    assert_true(cc.flags & RC_CC_PUBLIC);
    assert_true(cc.flags & RC_CC_PRESENT);
    assert_int_equal(cc.s_maxage, RC_DELTA_ABSENT);
    assert_int_equal(cc.max_stale, RC_DELTA_ABSENT);
    assert_null(cc.no_cache_fields);
    assert_false(cc.flags & RC_CC_NO_CACHE);
}

static void test_cc_tricky(void **state)
{
    rc_cc_t cc = cc_of("max-age=\"60\", no-cache=\"Set-Cookie, X-A\" ,private");

    (void)state;
    assert_int_equal(cc.max_age, 60);
    assert_string_equal(cc.no_cache_fields, "Set-Cookie, X-A");
    assert_false(cc.flags & RC_CC_NO_CACHE);
    assert_true(cc.flags & RC_CC_PRIVATE);
    assert_null(cc.private_fields);
    assert_true(rc_rules_field_listed(cc.no_cache_fields, "x-a"));
    assert_true(rc_rules_field_listed(cc.no_cache_fields, "set-cookie"));
}

static void test_cc_case_insensitive(void **state)
{
    rc_cc_t cc = cc_of("MAX-AGE=5, No-Store, PUBLIC, Must-Revalidate,"
                       "PROXY-revalidate, S-MaxAge=7, No-Transform,"
                       "Only-If-Cached, Immutable, must-UNDERSTAND");

    (void)state;
    assert_int_equal(cc.max_age, 5);
    assert_int_equal(cc.s_maxage, 7);
    assert_int_equal(cc.flags & ~RC_CC_PRESENT,
                     RC_CC_NO_STORE | RC_CC_PUBLIC | RC_CC_MUST_REVALIDATE
                     | RC_CC_PROXY_REVALIDATE | RC_CC_NO_TRANSFORM
                     | RC_CC_ONLY_IF_CACHED | RC_CC_IMMUTABLE
                     | RC_CC_MUST_UNDERSTAND);
}

static void test_cc_bad_values(void **state)
{
    (void)state;
    assert_int_equal(cc_of("max-age=abc").max_age, RC_DELTA_BAD);
    assert_int_equal(cc_of("max-age=").max_age, RC_DELTA_BAD);
    assert_int_equal(cc_of("max-age").max_age, RC_DELTA_BAD);
    assert_int_equal(cc_of("max-age=-1").max_age, RC_DELTA_BAD);
    assert_int_equal(cc_of("max-age=60 x").max_age, RC_DELTA_BAD);
    assert_int_equal(cc_of("max-age=1.5").max_age, RC_DELTA_BAD);
    assert_int_equal(cc_of("max-age=\"6 0\"").max_age, RC_DELTA_BAD);
    assert_int_equal(cc_of("max-age=\"60").max_age, RC_DELTA_BAD);
    assert_int_equal(cc_of("s-maxage=x").s_maxage, RC_DELTA_BAD);
    assert_int_equal(cc_of("min-fresh=").min_fresh, RC_DELTA_BAD);
    /* value with spaces around '=' is accepted */
    assert_int_equal(cc_of("max-age = 60").max_age, 60);
}

static void test_cc_overflow(void **state)
{
    (void)state;
    assert_int_equal(cc_of("max-age=99999999999999999999").max_age,
                     RC_DELTA_MAX);
    assert_int_equal(cc_of("max-age=2147483649").max_age, RC_DELTA_MAX);
    assert_int_equal(cc_of("max-age=2147483648").max_age, RC_DELTA_MAX);
    assert_int_equal(cc_of("max-age=2147483647").max_age, 2147483647);
    assert_int_equal(cc_of("max-age=0000000000000000000000000000000000000007")
                     .max_age, 7);
}

static void test_cc_duplicates_first_wins(void **state)
{
    rc_cc_t cc = cc_of("max-age=10, max-age=20, s-maxage=3, s-maxage=4");

    (void)state;
    assert_int_equal(cc.max_age, 10);
    assert_int_equal(cc.s_maxage, 3);
    /* a bad first occurrence stays bad */
    assert_int_equal(cc_of("max-age=x, max-age=20").max_age, RC_DELTA_BAD);
}

static void test_cc_multiple_header_lines(void **state)
{
    apr_table_t *h = tbl("Cache-Control", "public",
                         "Content-Type", "text/plain",
                         "Cache-Control", "max-age=30, stale-if-error=5",
                         NULL);
    rc_cc_t cc;

    (void)state;
    rc_rules_cc_response(&cc, pool, h);
    assert_true(cc.flags & RC_CC_PUBLIC);
    assert_int_equal(cc.max_age, 30);
    assert_int_equal(cc.stale_if_error, 5);
    assert_string_equal(rc_rules_header_join(pool, h, "cache-control"),
                        "public, max-age=30, stale-if-error=5");
    assert_null(rc_rules_header_join(pool, h, "Expires"));
}

static void test_cc_max_stale_forms(void **state)
{
    (void)state;
    assert_int_equal(cc_of("max-stale").max_stale, RC_DELTA_MAX);
    assert_int_equal(cc_of("max-stale=30").max_stale, 30);
    assert_int_equal(cc_of("max-stale=\"30\"").max_stale, 30);
    assert_int_equal(cc_of("max-stale=x").max_stale, RC_DELTA_BAD);
    assert_int_equal(cc_of("min-fresh=12").min_fresh, 12);
}

static void test_cc_empty_and_garbage(void **state)
{
    rc_cc_t cc = cc_of(",, ,=foo, public,;;, \"q,r\" , max-age=9,");

    (void)state;
    assert_true(cc.flags & RC_CC_PUBLIC);
    assert_int_equal(cc.max_age, 9);
    cc = cc_of("");
    assert_int_equal(cc.flags, RC_CC_PRESENT);
    cc = cc_of("   ");
    assert_int_equal(cc.flags, RC_CC_PRESENT);
    /* unknown directives with values, including quoted commas */
    cc = cc_of("foo=\"a, max-age=1\", bar, max-age=2");
    assert_int_equal(cc.max_age, 2);
}

static void test_cc_quoted_escapes(void **state)
{
    rc_cc_t cc = cc_of("private=\"a\\\"b, c\", no-cache");

    (void)state;
    assert_string_equal(cc.private_fields, "a\"b, c");
    assert_true(cc.flags & RC_CC_NO_CACHE);
    assert_false(cc.flags & RC_CC_PRIVATE);
    /* unterminated quote: the list is dropped, conservative flag set */
    cc = cc_of("private=\"X-A");
    assert_true(cc.flags & RC_CC_PRIVATE);
    assert_null(cc.private_fields);
}

static void test_cc_unqualified_dominates(void **state)
{
    rc_cc_t cc = cc_of("no-cache=\"X\", no-cache, private=A, private=\"B\"");

    (void)state;
    assert_true(cc.flags & RC_CC_NO_CACHE);
    assert_string_equal(cc.no_cache_fields, "X");
    assert_false(cc.flags & RC_CC_PRIVATE);
    assert_string_equal(cc.private_fields, "A, B");
}

static void test_cc_rfc5861(void **state)
{
    rc_cc_t cc = cc_of("max-age=1, stale-while-revalidate=30, "
                       "stale-if-error=600");

    (void)state;
    assert_int_equal(cc.stale_while_revalidate, 30);
    assert_int_equal(cc.stale_if_error, 600);
}

static void test_cc_null(void **state)
{
    rc_cc_t cc = cc_of(NULL);

    (void)state;
    assert_int_equal(cc.flags, 0);
    assert_int_equal(cc.max_age, RC_DELTA_ABSENT);
    assert_int_equal(cc.stale_if_error, RC_DELTA_ABSENT);
}

static void test_cc_request_pragma(void **state)
{
    rc_cc_t cc;

    (void)state;
    rc_rules_cc_request(&cc, pool, tbl("Pragma", "no-cache", NULL));
    assert_int_equal(cc.flags, RC_CC_NO_CACHE | RC_CC_PRAGMA);
    rc_rules_cc_request(&cc, pool, tbl("Pragma", "foo, No-Cache", NULL));
    assert_true(cc.flags & RC_CC_NO_CACHE);
    /* Cache-Control present: Pragma ignored */
    rc_rules_cc_request(&cc, pool, tbl("Pragma", "no-cache",
                                       "Cache-Control", "max-stale", NULL));
    assert_false(cc.flags & RC_CC_NO_CACHE);
    assert_int_equal(cc.max_stale, RC_DELTA_MAX);
    rc_rules_cc_request(&cc, pool, tbl("Pragma", "x", NULL));
    assert_int_equal(cc.flags, 0);
    /* response Pragma is ignored */
    rc_rules_cc_response(&cc, pool, tbl("Pragma", "no-cache", NULL));
    assert_int_equal(cc.flags, 0);
}

static void test_field_listed(void **state)
{
    (void)state;
    assert_true(rc_rules_field_listed(" a , Set-Cookie,b", "set-cookie"));
    assert_false(rc_rules_field_listed("Set-Cookie2", "set-cookie"));
    assert_false(rc_rules_field_listed(NULL, "x"));
    assert_false(rc_rules_field_listed("", "x"));
    assert_true(rc_rules_field_listed("x", "X"));
}

/* ================================================================== */
/* Dates, methods, statuses                                            */
/* ================================================================== */

static void test_dates(void **state)
{
    (void)state;
    assert_int_equal(rc_rules_parse_date("Sun, 06 Nov 1994 08:49:37 GMT"),
                     SEC(784111777));
    assert_int_equal(rc_rules_parse_date("Sunday, 06-Nov-94 08:49:37 GMT"),
                     SEC(784111777));
    assert_int_equal(rc_rules_parse_date("Sun Nov  6 08:49:37 1994"),
                     SEC(784111777));
    assert_int_equal(rc_rules_parse_date("0"), 0);
    assert_int_equal(rc_rules_parse_date("yesterday"), 0);
    assert_int_equal(rc_rules_parse_date(NULL), 0);
    assert_string_equal(date(SEC(784111777)),
                        "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(rc_rules_parse_date(date(AT(5))), AT(5));
}

static void test_lookup_and_methods(void **state)
{
    rc_cc_t cc = cc_of("no-store, no-cache");

    (void)state;
    assert_null(rc_rules_lookup_allowed("GET", NULL));
    assert_null(rc_rules_lookup_allowed("HEAD", &cc));
    assert_string_equal(rc_rules_lookup_allowed("POST", NULL), "method");
    assert_string_equal(rc_rules_lookup_allowed("get", NULL), "method");
    assert_string_equal(rc_rules_lookup_allowed(NULL, NULL), "method");

    assert_true(rc_rules_method_safe("GET"));
    assert_true(rc_rules_method_safe("HEAD"));
    assert_true(rc_rules_method_safe("OPTIONS"));
    assert_true(rc_rules_method_safe("TRACE"));
    assert_true(rc_rules_method_safe("PROPFIND"));
    assert_false(rc_rules_method_safe("POST"));
    assert_false(rc_rules_method_safe("PUT"));
    assert_false(rc_rules_method_safe("DELETE"));
    assert_false(rc_rules_method_safe("PATCH"));
    assert_false(rc_rules_method_safe("FROB"));
    assert_false(rc_rules_method_safe(NULL));
}

static void test_status_classes(void **state)
{
    static const int heur[] = {
        200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501
    };
    int i, n = 0;

    (void)state;
    for (i = 0; i < (int)(sizeof(heur) / sizeof(heur[0])); i++) {
        assert_true(rc_rules_status_heuristic(heur[i]));
    }
    for (i = 100; i < 600; i++) {
        n += rc_rules_status_heuristic(i);
    }
    assert_int_equal(n, 12);
    assert_false(rc_rules_status_heuristic(302));
    assert_true(rc_rules_is_error_status(500));
    assert_true(rc_rules_is_error_status(502));
    assert_true(rc_rules_is_error_status(503));
    assert_true(rc_rules_is_error_status(504));
    assert_false(rc_rules_is_error_status(501));
    assert_false(rc_rules_is_error_status(404));
}

static void test_opts_defaults(void **state)
{
    rc_rules_opts_t o;

    (void)state;
    rc_rules_opts_init(&o);
    assert_int_equal(o.heuristic_percent, 10);
    assert_int_equal(o.heuristic_max, SEC(86400));
    assert_int_equal(o.default_ttl, 0);
    assert_int_equal(o.default_sie, 0);
    assert_int_equal(o.set_cookie, RC_SETCOOKIE_NO_STORE);
    assert_int_equal(o.ignore_query, 0);
    assert_null(o.key_headers);
}

/* ================================================================== */
/* Age (RFC 9111 4.2.3)                                                */
/* ================================================================== */

static void test_age_worked_example(void **state)
{
    (void)state;
    /* request 100, response 103, Date 99, Age 10 -> 13 */
    assert_int_equal(rc_rules_initial_age(AT(99), 10, AT(100), AT(103)),
                     SEC(13));
}

static void test_age_apparent_dominates(void **state)
{
    (void)state;
    /* Date 50 s before receipt, Age 5, delay 2 -> max(50, 7) = 50 */
    assert_int_equal(rc_rules_initial_age(AT(50), 5, AT(98), AT(100)),
                     SEC(50));
}

static void test_age_clock_skew_and_missing(void **state)
{
    (void)state;
    /* Date in the future: apparent 0; delay 1 + Age 0 */
    assert_int_equal(rc_rules_initial_age(AT(500), 0, AT(99), AT(100)),
                     SEC(1));
    /* no Date: apparent 0 */
    assert_int_equal(rc_rules_initial_age(0, 3, AT(100), AT(100)), SEC(3));
    /* response before request (clock jump): delay clamped to 0 */
    assert_int_equal(rc_rules_initial_age(0, 0, AT(100), AT(90)), 0);
    /* sub-second delay kept exactly */
    assert_int_equal(rc_rules_initial_age(0, 1, AT(100),
                                          AT(100) + 250000),
                     SEC(1) + 250000);
}

static void test_age_current(void **state)
{
    apr_table_t *h = tbl("Date", date(AT(99)), "Age", "10",
                         "Cache-Control", "max-age=60", NULL);
    rc_fresh_t f = fresh_of(200, h, 100, 103, NULL);

    (void)state;
    assert_int_equal(f.corrected_initial_age, SEC(13));
    assert_int_equal(f.response_time, AT(103));
    assert_int_equal(f.date, AT(99));
    /* resident 7 s -> age 20 */
    assert_int_equal(rc_rules_current_age(&f, AT(110)), SEC(20));
    assert_int_equal(rc_rules_age_seconds(&f, AT(110)), 20);
    assert_int_equal(rc_rules_age_seconds(&f, AT(110) + 999999), 20);
    /* now before response_time: resident 0 */
    assert_int_equal(rc_rules_current_age(&f, AT(50)), SEC(13));
    /* ttl: 60 - 20 = 40; stale_at = 103 + 60 - 13 = 150 */
    assert_int_equal(rc_rules_ttl_seconds(&f, AT(110)), 40);
    assert_int_equal(rc_rules_stale_at(&f), AT(150));
    assert_int_equal(rc_rules_ttl_seconds(&f, AT(150)), 0);
    assert_int_equal(rc_rules_ttl_seconds(&f, AT(151)), -1);
    /* floor, not truncation toward zero */
    assert_int_equal(rc_rules_ttl_seconds(&f, AT(150) + 1), -1);
    assert_int_equal(rc_rules_ttl_seconds(&f, AT(150) - 1), 0);
}

static void test_age_header_parsing(void **state)
{
    rc_fresh_t f;

    (void)state;
    f = fresh_of(200, tbl("Age", "10, 20", NULL), 0, 0, NULL);
    assert_int_equal(f.corrected_initial_age, SEC(10));
    f = fresh_of(200, tbl("Age", "abc", NULL), 0, 0, NULL);
    assert_int_equal(f.corrected_initial_age, 0);
    f = fresh_of(200, tbl("Age", "-5", NULL), 0, 0, NULL);
    assert_int_equal(f.corrected_initial_age, 0);
    f = fresh_of(200, tbl("Age", "99999999999999", NULL), 0, 0, NULL);
    assert_int_equal(f.corrected_initial_age, SEC(RC_DELTA_MAX));
    assert_int_equal(rc_rules_age_seconds(&f, AT(100)), RC_DELTA_MAX);
    /* bad Date: apparent age 0, date = response_time */
    f = fresh_of(200, tbl("Date", "garbage", NULL), 0, 4, NULL);
    assert_int_equal(f.date, AT(4));
    assert_int_equal(f.corrected_initial_age, SEC(4));
}

/* ================================================================== */
/* Freshness lifetime                                                  */
/* ================================================================== */

static void test_life_s_maxage_precedence(void **state)
{
    rc_fresh_t f = fresh_of(200, tbl("Date", date(AT(0)),
                                     "Expires", date(AT(1000)),
                                     "Cache-Control",
                                     "max-age=60, s-maxage=5", NULL),
                            0, 0, NULL);

    (void)state;
    assert_int_equal(f.lifetime, SEC(5));
    assert_true(f.flags & RC_FRESH_S_MAXAGE);
    assert_true(f.flags & RC_FRESH_EXPLICIT);
    /* s-maxage=0 beats max-age=60 too */
    f = fresh_of(200, tbl("Cache-Control", "max-age=60, s-maxage=0", NULL),
                 0, 0, NULL);
    assert_int_equal(f.lifetime, 0);
}

static void test_life_max_age_over_expires(void **state)
{
    rc_fresh_t f = fresh_of(200, tbl("Date", date(AT(0)),
                                     "Expires", date(AT(1000)),
                                     "Cache-Control", "max-age=60", NULL),
                            0, 0, NULL);

    (void)state;
    assert_int_equal(f.lifetime, SEC(60));
    assert_false(f.flags & RC_FRESH_S_MAXAGE);
}

static void test_life_expires(void **state)
{
    rc_fresh_t f;

    (void)state;
    /* Expires - Date, independent of when it was received */
    f = fresh_of(200, tbl("Date", date(AT(10)), "Expires", date(AT(310)),
                          NULL), 20, 25, NULL);
    assert_int_equal(f.lifetime, SEC(300));
    assert_true(f.flags & RC_FRESH_EXPLICIT);
    assert_false(f.flags & RC_FRESH_INVALID);
    /* Expires before Date */
    f = fresh_of(200, tbl("Date", date(AT(10)), "Expires", date(AT(5)),
                          NULL), 0, 0, NULL);
    assert_int_equal(f.lifetime, 0);
    /* no Date: response_time stands in */
    f = fresh_of(200, tbl("Expires", date(AT(100)), NULL), 0, 40, NULL);
    assert_int_equal(f.lifetime, SEC(60));
}

static void test_life_expires_invalid(void **state)
{
    rc_fresh_t f;

    (void)state;
    f = fresh_of(200, tbl("Date", date(AT(0)), "Expires", "0",
                          "Last-Modified", date(AT(-5000)), NULL),
                 0, 0, NULL);
    assert_int_equal(f.lifetime, 0);
    assert_true(f.flags & RC_FRESH_INVALID);
    assert_false(f.flags & RC_FRESH_HEURISTIC);   /* no heuristic then */
    f = fresh_of(200, tbl("Expires", "soon", NULL), 0, 0, NULL);
    assert_int_equal(f.lifetime, 0);
    assert_true(f.flags & RC_FRESH_INVALID);
}

static void test_life_bad_max_age(void **state)
{
    rc_fresh_t f;

    (void)state;
    f = fresh_of(200, tbl("Cache-Control", "max-age=abc",
                          "Expires", date(AT(1000)), NULL), 0, 0, NULL);
    assert_int_equal(f.lifetime, 0);
    assert_true(f.flags & RC_FRESH_INVALID);
    f = fresh_of(200, tbl("Cache-Control", "max-age=60, s-maxage=?",
                          NULL), 0, 0, NULL);
    assert_int_equal(f.lifetime, 0);
    assert_true(f.flags & RC_FRESH_INVALID);
    assert_true(f.flags & RC_FRESH_S_MAXAGE);
    /* overflow is not invalid: 2^31 s */
    f = fresh_of(200, tbl("Cache-Control", "max-age=99999999999", NULL),
                 0, 0, NULL);
    assert_int_equal(f.lifetime, SEC(RC_DELTA_MAX));
    assert_false(f.flags & RC_FRESH_INVALID);
}

static void test_life_heuristic_10pct(void **state)
{
    rc_fresh_t f = fresh_of(200, tbl("Date", date(AT(0)),
                                     "Last-Modified", date(AT(-5000)), NULL),
                            0, 0, NULL);

    (void)state;
    assert_int_equal(f.lifetime, SEC(500));
    assert_true(f.flags & RC_FRESH_HEURISTIC);
    assert_false(f.flags & RC_FRESH_EXPLICIT);
    assert_true(f.flags & RC_FRESH_LAST_MODIFIED);
    /* 7 s -> 0.7 s exactly */
    f = fresh_of(404, tbl("Date", date(AT(0)),
                          "Last-Modified", date(AT(-7)), NULL), 0, 0, NULL);
    assert_int_equal(f.lifetime, 700000);
}

static void test_life_heuristic_cap(void **state)
{
    rc_fresh_t f = fresh_of(200, tbl("Date", date(AT(0)),
                                     "Last-Modified",
                                     date(AT(-20 * 86400)), NULL),
                            0, 0, NULL);

    (void)state;
    assert_int_equal(f.lifetime, SEC(86400));
}

static void test_life_heuristic_options(void **state)
{
    rc_rules_opts_t o;
    rc_fresh_t f;
    apr_table_t *h = tbl("Date", date(AT(0)),
                         "Last-Modified", date(AT(-1000)), NULL);

    (void)state;
    rc_rules_opts_init(&o);
    o.heuristic_percent = 25;
    f = fresh_of(200, h, 0, 0, &o);
    assert_int_equal(f.lifetime, SEC(250));
    o.heuristic_max = SEC(100);
    f = fresh_of(200, h, 0, 0, &o);
    assert_int_equal(f.lifetime, SEC(100));
    o.heuristic_percent = 0;
    f = fresh_of(200, h, 0, 0, &o);
    assert_int_equal(f.lifetime, 0);
    assert_false(f.flags & RC_FRESH_HEURISTIC);
}

static void test_life_heuristic_allowed(void **state)
{
    rc_fresh_t f;

    (void)state;
    /* 302 is not heuristically cacheable */
    f = fresh_of(302, tbl("Date", date(AT(0)),
                          "Last-Modified", date(AT(-1000)), NULL),
                 0, 0, NULL);
    assert_int_equal(f.lifetime, 0);
    assert_false(f.flags & RC_FRESH_HEURISTIC);
    /* ... unless public */
    f = fresh_of(302, tbl("Date", date(AT(0)), "Cache-Control", "public",
                          "Last-Modified", date(AT(-1000)), NULL),
                 0, 0, NULL);
    assert_int_equal(f.lifetime, SEC(100));
    assert_true(f.flags & RC_FRESH_PUBLIC);
    /* Last-Modified after Date: no heuristic */
    f = fresh_of(200, tbl("Date", date(AT(0)),
                          "Last-Modified", date(AT(10)), NULL), 0, 0, NULL);
    assert_int_equal(f.lifetime, 0);
    assert_false(f.flags & RC_FRESH_HEURISTIC);
    /* Last-Modified vs the receipt time when Date is missing */
    f = fresh_of(200, tbl("Last-Modified", date(AT(-100)), NULL), 0, 0,
                 NULL);
    assert_int_equal(f.lifetime, SEC(10));
}

static void test_life_default_ttl(void **state)
{
    rc_rules_opts_t o;
    rc_fresh_t f;

    (void)state;
    rc_rules_opts_init(&o);
    f = fresh_of(200, tbl("Date", date(AT(0)), NULL), 0, 0, &o);
    assert_int_equal(f.lifetime, 0);            /* off by default */
    o.default_ttl = SEC(120);
    f = fresh_of(200, tbl("Date", date(AT(0)), NULL), 0, 0, &o);
    assert_int_equal(f.lifetime, SEC(120));
    assert_true(f.flags & RC_FRESH_DEFAULT_TTL);
    /* not when Last-Modified allows a heuristic */
    f = fresh_of(200, tbl("Date", date(AT(0)),
                          "Last-Modified", date(AT(-50)), NULL), 0, 0, &o);
    assert_int_equal(f.lifetime, SEC(5));
    /* not for explicit freshness */
    f = fresh_of(200, tbl("Cache-Control", "max-age=0", NULL), 0, 0, &o);
    assert_int_equal(f.lifetime, 0);
    /* not for a status that needs explicit freshness */
    f = fresh_of(302, tbl("Date", date(AT(0)), NULL), 0, 0, &o);
    assert_int_equal(f.lifetime, 0);
}

static void test_life_flags(void **state)
{
    rc_fresh_t f = fresh_of(200, tbl("Cache-Control",
                                     "max-age=10, must-revalidate, "
                                     "proxy-revalidate, no-cache, immutable,"
                                     " stale-while-revalidate=30, "
                                     "stale-if-error=600",
                                     "ETag", "\"x\"", NULL),
                            0, 0, NULL);

    (void)state;
    assert_int_equal(f.flags & ~RC_FRESH_EXPLICIT,
                     RC_FRESH_MUST_REVALIDATE | RC_FRESH_PROXY_REVALIDATE
                     | RC_FRESH_NO_CACHE | RC_FRESH_IMMUTABLE
                     | RC_FRESH_ETAG);
    assert_int_equal(f.swr, SEC(30));
    assert_int_equal(f.sie, SEC(600));
    f = fresh_of(200, tbl("Cache-Control", "max-age=10", NULL), 0, 0, NULL);
    assert_int_equal(f.swr, 0);
    assert_int_equal(f.sie, -1);
    /* bad SWR / SIE values are ignored */
    f = fresh_of(200, tbl("Cache-Control", "max-age=10, "
                          "stale-while-revalidate=x, stale-if-error", NULL),
                 0, 0, NULL);
    assert_int_equal(f.swr, 0);
    assert_int_equal(f.sie, -1);
}

static void test_serve_until(void **state)
{
    rc_rules_opts_t o;
    rc_fresh_t f = entry(60, 30, 600, 0);

    (void)state;
    rc_rules_opts_init(&o);
    assert_int_equal(rc_rules_stale_at(&f), AT(60));
    assert_int_equal(rc_rules_serve_until(&f, &o), AT(660));
    f = entry(60, 30, -1, 0);
    assert_int_equal(rc_rules_serve_until(&f, &o), AT(90));
    o.default_sie = SEC(3600);
    assert_int_equal(rc_rules_serve_until(&f, &o), AT(3660));
    f = entry(60, 30, 600, RC_FRESH_MUST_REVALIDATE);
    assert_int_equal(rc_rules_serve_until(&f, &o), AT(60));
    f = entry(60, 30, 600, RC_FRESH_NO_CACHE);
    assert_int_equal(rc_rules_serve_until(&f, &o), AT(0));
}

/* ================================================================== */
/* Storability                                                         */
/* ================================================================== */

/* storable() with default options unless o given */
static const char *store(const rc_rules_opts_t *o, const char *method,
                         int status, apr_table_t *req, apr_table_t *resp)
{
    rc_rules_opts_t def;
    rc_cc_t rq, rs;
    rc_fresh_t f;

    rc_rules_opts_init(&def);
    if (!o) {
        o = &def;
    }
    rc_rules_cc_request(&rq, pool, req);
    rc_rules_cc_response(&rs, pool, resp);
    rc_rules_fresh_init(&f, o, status, resp, &rs, AT(0), AT(0));
    return rc_rules_storable(o, method, status, req, &rq, resp, &rs, &f);
}

#define MAXAGE tbl("Cache-Control", "max-age=60", NULL)
#define NOREQ  tbl(NULL)

static void test_store_ok(void **state)
{
    (void)state;
    assert_null(store(NULL, "GET", 200, NOREQ, MAXAGE));
    assert_null(store(NULL, "GET", 404, NOREQ,
                      tbl("Date", date(AT(0)),
                          "Last-Modified", date(AT(-100)), NULL)));
    assert_null(store(NULL, "GET", 500, NOREQ, MAXAGE));
    assert_null(store(NULL, "GET", 302, NOREQ, MAXAGE));
    assert_null(store(NULL, "GET", 307, NOREQ,
                      tbl("Expires", date(AT(10)), NULL)));
}

static void test_store_method(void **state)
{
    (void)state;
    assert_string_equal(store(NULL, "HEAD", 200, NOREQ, MAXAGE), "method");
    assert_string_equal(store(NULL, "POST", 200, NOREQ, MAXAGE), "method");
}

static void test_store_status(void **state)
{
    (void)state;
    assert_string_equal(store(NULL, "GET", 206, NOREQ, MAXAGE), "status");
    assert_string_equal(store(NULL, "GET", 304, NOREQ, MAXAGE), "status");
    assert_string_equal(store(NULL, "GET", 100, NOREQ, MAXAGE), "status");
    assert_string_equal(store(NULL, "GET", 600, NOREQ, MAXAGE), "status");
    /* 302 without explicit freshness */
    assert_string_equal(store(NULL, "GET", 302, NOREQ,
                              tbl("Last-Modified", date(AT(-100)), NULL)),
                        "no-freshness");
    /* 302 public is allowed (heuristic) */
    assert_null(store(NULL, "GET", 302, NOREQ,
                      tbl("Cache-Control", "public",
                          "Last-Modified", date(AT(-100)), NULL)));
}

static void test_store_no_store(void **state)
{
    (void)state;
    assert_string_equal(store(NULL, "GET", 200,
                              tbl("Cache-Control", "no-store", NULL),
                              MAXAGE), "no-store");
    assert_string_equal(store(NULL, "GET", 200, NOREQ,
                              tbl("Cache-Control", "max-age=60, no-store",
                                  NULL)), "no-store");
}

static void test_store_must_understand(void **state)
{
    (void)state;
    assert_null(store(NULL, "GET", 200, NOREQ,
                      tbl("Cache-Control",
                          "max-age=60, no-store, must-understand", NULL)));
    assert_string_equal(store(NULL, "GET", 299, NOREQ,
                              tbl("Cache-Control", "max-age=60, no-store, "
                                  "must-understand", NULL)), "status");
    /* request no-store still wins */
    assert_string_equal(store(NULL, "GET", 200,
                              tbl("Cache-Control", "no-store", NULL),
                              tbl("Cache-Control", "max-age=60, no-store, "
                                  "must-understand", NULL)), "no-store");
}

static void test_store_private(void **state)
{
    (void)state;
    assert_string_equal(store(NULL, "GET", 200, NOREQ,
                              tbl("Cache-Control", "private, max-age=60",
                                  NULL)), "private");
    assert_null(store(NULL, "GET", 200, NOREQ,
                      tbl("Cache-Control",
                          "private=\"X-User\", max-age=60", NULL)));
}

static void test_store_auth(void **state)
{
    apr_table_t *req = tbl("Authorization", "Basic eDp5", NULL);

    (void)state;
    assert_string_equal(store(NULL, "GET", 200, req, MAXAGE), "auth");
    assert_null(store(NULL, "GET", 200, req,
                      tbl("Cache-Control", "max-age=60, public", NULL)));
    assert_null(store(NULL, "GET", 200, req,
                      tbl("Cache-Control", "s-maxage=60", NULL)));
    assert_null(store(NULL, "GET", 200, req,
                      tbl("Cache-Control", "max-age=60, must-revalidate",
                          NULL)));
}

static void test_store_vary_star(void **state)
{
    (void)state;
    assert_string_equal(store(NULL, "GET", 200, NOREQ,
                              tbl("Cache-Control", "max-age=60",
                                  "Vary", "Accept, *", NULL)), "vary-star");
    assert_string_equal(store(NULL, "GET", 200, NOREQ,
                              tbl("Cache-Control", "max-age=60",
                                  "Vary", "Accept", "Vary", " * ", NULL)),
                        "vary-star");
    assert_null(store(NULL, "GET", 200, NOREQ,
                      tbl("Cache-Control", "max-age=60",
                          "Vary", "Accept-Encoding", NULL)));
}

static void test_store_set_cookie(void **state)
{
    rc_rules_opts_t o;
    apr_table_t *plain = tbl("Cache-Control", "max-age=60",
                             "Set-Cookie", "a=b", NULL);
    apr_table_t *pub = tbl("Cache-Control", "max-age=60, public",
                           "Set-Cookie", "a=b", NULL);
    apr_table_t *smax = tbl("Cache-Control", "s-maxage=60",
                            "Set-Cookie2", "a=b", NULL);

    (void)state;
    rc_rules_opts_init(&o);
    assert_string_equal(store(&o, "GET", 200, NOREQ, plain), "set-cookie");
    assert_string_equal(store(&o, "GET", 200, NOREQ, pub), "set-cookie");
    assert_string_equal(store(&o, "GET", 200, NOREQ, smax), "set-cookie");
    o.set_cookie = RC_SETCOOKIE_EXPLICIT;
    assert_string_equal(store(&o, "GET", 200, NOREQ, plain), "set-cookie");
    assert_null(store(&o, "GET", 200, NOREQ, pub));
    assert_null(store(&o, "GET", 200, NOREQ, smax));
    o.set_cookie = RC_SETCOOKIE_STORE;
    assert_null(store(&o, "GET", 200, NOREQ, plain));
}

static void test_store_useless(void **state)
{
    rc_rules_opts_t o;

    (void)state;
    assert_string_equal(store(NULL, "GET", 200, NOREQ,
                              tbl("Cache-Control", "max-age=0", NULL)),
                        "no-freshness");
    assert_null(store(NULL, "GET", 200, NOREQ,
                      tbl("Cache-Control", "max-age=0",
                          "ETag", "\"v1\"", NULL)));
    assert_null(store(NULL, "GET", 200, NOREQ,
                      tbl("Cache-Control", "max-age=0, stale-if-error=60",
                          NULL)));
    assert_string_equal(store(NULL, "GET", 200, NOREQ,
                              tbl("Cache-Control", "no-cache, max-age=60",
                                  NULL)), "no-freshness");
    assert_null(store(NULL, "GET", 200, NOREQ,
                      tbl("Cache-Control", "no-cache",
                          "Last-Modified", date(AT(-10)), NULL)));
    /* 200 with nothing at all: lifetime 0 */
    assert_string_equal(store(NULL, "GET", 200, NOREQ, NOREQ),
                        "no-freshness");
    rc_rules_opts_init(&o);
    o.default_ttl = SEC(30);
    assert_null(store(&o, "GET", 200, NOREQ, NOREQ));
    assert_string_equal(store(&o, "GET", 303, NOREQ, NOREQ),
                        "no-freshness");
}

static void test_store_headers(void **state)
{
    apr_table_t *h = tbl("Connection", "close, X-Hop",
                         "X-Hop", "1",
                         "Keep-Alive", "timeout=5",
                         "Transfer-Encoding", "chunked",
                         "Set-Cookie", "a=b",
                         "Age", "5",
                         "X-User", "alice",
                         "X-Secret", "s",
                         "Cache-Control", "max-age=60, private=\"X-User\", "
                                          "no-cache=\"x-secret\"",
                         "Content-Type", "text/html",
                         "Content-Length", "5",
                         "X-Multi", "1", "X-Multi", "2",
                         NULL);
    rc_cc_t cc;
    apr_table_t *s;

    (void)state;
    rc_rules_cc_response(&cc, pool, h);
    s = rc_rules_store_headers(pool, h, &cc, AT(7));
    assert_null(apr_table_get(s, "Connection"));
    assert_null(apr_table_get(s, "X-Hop"));
    assert_null(apr_table_get(s, "Keep-Alive"));
    assert_null(apr_table_get(s, "Transfer-Encoding"));
    assert_null(apr_table_get(s, "Set-Cookie"));
    assert_null(apr_table_get(s, "Age"));
    assert_null(apr_table_get(s, "X-User"));
    assert_null(apr_table_get(s, "X-Secret"));
    assert_string_equal(apr_table_get(s, "Content-Type"), "text/html");
    assert_string_equal(apr_table_get(s, "Content-Length"), "5");
    assert_string_equal(rc_rules_header_join(pool, s, "X-Multi"), "1, 2");
    assert_string_equal(apr_table_get(s, "Date"), date(AT(7)));
    /* the original is untouched; an existing Date is kept */
    assert_string_equal(apr_table_get(h, "X-User"), "alice");
    s = rc_rules_store_headers(pool, tbl("Date", date(AT(1)), NULL), NULL,
                               AT(7));
    assert_string_equal(apr_table_get(s, "Date"), date(AT(1)));
}

/* ================================================================== */
/* Hit decision                                                        */
/* ================================================================== */

static rc_hit_t hit(const rc_fresh_t *f, const char *reqcc, int now,
                    const char **detail)
{
    rc_cc_t cc;

    rc_rules_cc_parse(&cc, pool, reqcc);
    return rc_rules_hit(f, reqcc ? &cc : NULL, AT(now), detail);
}

static void test_hit_worked_example(void **state)
{
    rc_fresh_t f = entry(60, 30, -1, 0);
    const char *d;

    (void)state;
    f.corrected_initial_age = SEC(10);
    /* stored at 0 with age 10: fresh until now = 50 */
    assert_int_equal(hit(&f, NULL, 49, &d), RC_HIT_FRESH);
    assert_string_equal(d, "fresh");
    assert_int_equal(hit(&f, NULL, 50, &d), RC_HIT_SWR);
    assert_string_equal(d, "stale-while-revalidate");
    assert_int_equal(hit(&f, NULL, 80, &d), RC_HIT_SWR);
    assert_int_equal(hit(&f, NULL, 81, &d), RC_HIT_VALIDATE);
    assert_string_equal(d, "stale");
    /* the exact microsecond boundaries */
    assert_int_equal(rc_rules_hit(&f, NULL, AT(50) - 1, NULL), RC_HIT_FRESH);
    assert_int_equal(rc_rules_hit(&f, NULL, AT(80) + 1, NULL),
                     RC_HIT_VALIDATE);
}

static void test_hit_no_swr(void **state)
{
    rc_fresh_t f = entry(60, 0, -1, 0);

    (void)state;
    assert_int_equal(hit(&f, NULL, 59, NULL), RC_HIT_FRESH);
    assert_int_equal(hit(&f, NULL, 60, NULL), RC_HIT_VALIDATE);
}

static void test_hit_response_no_cache(void **state)
{
    rc_fresh_t f = entry(600, 30, -1, RC_FRESH_NO_CACHE);
    const char *d;

    (void)state;
    assert_int_equal(hit(&f, NULL, 0, &d), RC_HIT_VALIDATE);
    assert_string_equal(d, "no-cache");
    assert_int_equal(hit(&f, "only-if-cached", 0, &d), RC_HIT_504);
    assert_string_equal(d, "only-if-cached");
    assert_int_equal(hit(&f, "max-stale", 700, &d), RC_HIT_VALIDATE);
}

static void test_hit_request_no_cache(void **state)
{
    rc_fresh_t f = entry(600, 0, -1, 0);
    rc_cc_t cc;
    const char *d;

    (void)state;
    assert_int_equal(hit(&f, "no-cache", 1, &d), RC_HIT_VALIDATE);
    assert_string_equal(d, "req-no-cache");
    rc_rules_cc_request(&cc, pool, tbl("Pragma", "no-cache", NULL));
    assert_int_equal(rc_rules_hit(&f, &cc, AT(1), &d), RC_HIT_VALIDATE);
    assert_string_equal(d, "req-no-cache");
}

static void test_hit_request_max_age(void **state)
{
    rc_fresh_t f = entry(600, 0, -1, 0);
    const char *d;

    (void)state;
    assert_int_equal(hit(&f, "max-age=30", 30, &d), RC_HIT_FRESH);
    assert_int_equal(hit(&f, "max-age=29", 30, &d), RC_HIT_VALIDATE);
    assert_string_equal(d, "req-max-age");
    assert_int_equal(hit(&f, "max-age=0", 0, &d), RC_HIT_FRESH);
    assert_int_equal(rc_rules_hit(&f, NULL, AT(0) + 1, NULL), RC_HIT_FRESH);
    assert_int_equal(hit(&f, "max-age=0", 1, &d), RC_HIT_VALIDATE);
    /* bad value counts as 0 */
    assert_int_equal(hit(&f, "max-age=x", 1, &d), RC_HIT_VALIDATE);
    /* max-age caps a max-stale too */
    assert_int_equal(hit(&f, "max-age=700, max-stale", 650, &d),
                     RC_HIT_STALE);
    assert_int_equal(hit(&f, "max-age=640, max-stale", 650, &d),
                     RC_HIT_VALIDATE);
}

static void test_hit_min_fresh(void **state)
{
    rc_fresh_t f = entry(100, 50, -1, 0);
    const char *d;

    (void)state;
    /* remaining at 60 = 40 */
    assert_int_equal(hit(&f, "min-fresh=40", 60, &d), RC_HIT_FRESH);
    assert_int_equal(hit(&f, "min-fresh=41", 60, &d), RC_HIT_VALIDATE);
    assert_string_equal(d, "req-min-fresh");
    /* stale: min-fresh cannot be met, SWR and max-stale do not apply */
    assert_int_equal(hit(&f, "min-fresh=0, max-stale", 110, &d),
                     RC_HIT_VALIDATE);
    assert_string_equal(d, "req-min-fresh");
    /* bad min-fresh ignored */
    assert_int_equal(hit(&f, "min-fresh=x", 99, &d), RC_HIT_FRESH);
}

static void test_hit_max_stale(void **state)
{
    rc_fresh_t f = entry(60, 0, -1, 0);
    const char *d;

    (void)state;
    assert_int_equal(hit(&f, "max-stale=10", 70, &d), RC_HIT_STALE);
    assert_string_equal(d, "max-stale");
    assert_int_equal(hit(&f, "max-stale=10", 71, &d), RC_HIT_VALIDATE);
    assert_int_equal(hit(&f, "max-stale", 1000000, &d), RC_HIT_STALE);
    assert_int_equal(hit(&f, "max-stale=x", 61, &d), RC_HIT_VALIDATE);
    /* fresh stays fresh */
    assert_int_equal(hit(&f, "max-stale=10", 10, &d), RC_HIT_FRESH);
}

static void test_hit_max_stale_forbidden(void **state)
{
    static const unsigned int forbid[] = {
        RC_FRESH_MUST_REVALIDATE, RC_FRESH_PROXY_REVALIDATE,
        RC_FRESH_S_MAXAGE
    };
    const char *d;
    int i;

    (void)state;
    for (i = 0; i < 3; i++) {
        rc_fresh_t f = entry(60, 30, 600, forbid[i]);

        assert_int_equal(hit(&f, "max-stale", 61, &d), RC_HIT_VALIDATE);
        assert_string_equal(d, "must-revalidate");
        assert_int_equal(hit(&f, NULL, 61, &d), RC_HIT_VALIDATE); /* SWR */
        assert_int_equal(hit(&f, NULL, 59, &d), RC_HIT_FRESH);
    }
}

static void test_hit_only_if_cached(void **state)
{
    rc_fresh_t f = entry(60, 10, -1, 0);
    rc_cc_t cc = cc_of("only-if-cached");
    const char *d;

    (void)state;
    assert_int_equal(hit(&f, "only-if-cached", 10, &d), RC_HIT_FRESH);
    assert_int_equal(hit(&f, "only-if-cached", 65, &d), RC_HIT_SWR);
    assert_int_equal(hit(&f, "only-if-cached", 75, &d), RC_HIT_504);
    assert_int_equal(hit(&f, "only-if-cached, max-stale=100", 75, &d),
                     RC_HIT_STALE);
    assert_true(rc_rules_only_if_cached(&cc));
    assert_false(rc_rules_only_if_cached(NULL));
    cc = cc_of("no-cache");
    assert_false(rc_rules_only_if_cached(&cc));
}

static void test_hit_from_real_response(void **state)
{
    /* Date 0, received at 2 (request sent 1), s-maxage=100 */
    rc_fresh_t f = fresh_of(200, tbl("Date", date(AT(0)),
                                     "Cache-Control",
                                     "max-age=1000, s-maxage=100, "
                                     "stale-while-revalidate=50", NULL),
                            1, 2, NULL);
    const char *d;

    (void)state;
    assert_int_equal(f.corrected_initial_age, SEC(2));
    assert_int_equal(hit(&f, NULL, 99, &d), RC_HIT_FRESH);
    assert_int_equal(rc_rules_age_seconds(&f, AT(99)), 99);
    /* s-maxage implies proxy-revalidate: no SWR */
    assert_int_equal(hit(&f, NULL, 100, &d), RC_HIT_VALIDATE);
    assert_string_equal(d, "must-revalidate");
}

/* ================================================================== */
/* stale-if-error                                                      */
/* ================================================================== */

static int sie(const rc_fresh_t *f, const char *reqcc,
               const rc_rules_opts_t *o, int now)
{
    rc_cc_t cc;

    rc_rules_cc_parse(&cc, pool, reqcc);
    return rc_rules_stale_if_error(f, reqcc ? &cc : NULL, o, AT(now));
}

static void test_sie_response_window(void **state)
{
    rc_fresh_t f = entry(60, 0, 30, 0);

    (void)state;
    assert_true(sie(&f, NULL, NULL, 50));           /* fresh */
    assert_true(sie(&f, NULL, NULL, 90));           /* staleness 30 */
    assert_false(sie(&f, NULL, NULL, 91));
    f = entry(60, 0, 0, 0);
    assert_false(sie(&f, NULL, NULL, 61));          /* explicit 0 */
    f = entry(60, 0, -1, 0);
    assert_false(sie(&f, NULL, NULL, 61));          /* none, no default */
}

static void test_sie_request_overrides(void **state)
{
    rc_fresh_t f = entry(60, 0, 30, 0);

    (void)state;
    /* staleness 40: response allows 30, request asks 60 */
    assert_true(sie(&f, "stale-if-error=60", NULL, 100));
    assert_false(sie(&f, "stale-if-error=10", NULL, 75));
    assert_true(sie(&f, "max-stale=50", NULL, 100));
    assert_false(sie(&f, "max-stale=5", NULL, 100));
}

static void test_sie_admin_default(void **state)
{
    rc_rules_opts_t o;
    rc_fresh_t f = entry(60, 0, -1, 0);

    (void)state;
    rc_rules_opts_init(&o);
    o.default_sie = SEC(300);
    assert_true(sie(&f, NULL, &o, 360));
    assert_false(sie(&f, NULL, &o, 361));
    /* the response's own value wins over the default */
    f = entry(60, 0, 10, 0);
    assert_false(sie(&f, NULL, &o, 100));
}

static void test_sie_forbidden(void **state)
{
    rc_rules_opts_t o;
    rc_fresh_t f;

    (void)state;
    rc_rules_opts_init(&o);
    o.default_sie = SEC(300);
    f = entry(60, 0, 600, RC_FRESH_MUST_REVALIDATE);
    assert_false(sie(&f, "stale-if-error=600", &o, 70));
    f = entry(60, 0, 600, RC_FRESH_PROXY_REVALIDATE);
    assert_false(sie(&f, NULL, &o, 70));
    f = entry(60, 0, 600, RC_FRESH_S_MAXAGE);
    assert_false(sie(&f, NULL, &o, 70));
    f = entry(60, 0, 600, RC_FRESH_NO_CACHE);
    assert_false(sie(&f, NULL, &o, 10));
    f = entry(60, 0, 600, 0);
    assert_false(sie(&f, "no-cache", &o, 70));
    assert_true(sie(&f, "no-cache, stale-if-error=20", &o, 70));
}

/* ================================================================== */
/* Validation                                                          */
/* ================================================================== */

static void test_etag_match(void **state)
{
    (void)state;
    assert_true(rc_rules_etag_match("\"a\"", "\"a\"", 0));
    assert_true(rc_rules_etag_match("W/\"a\"", "\"a\"", 1));
    assert_false(rc_rules_etag_match("W/\"a\"", "\"a\"", 0));
    assert_false(rc_rules_etag_match("\"a\"", "W/\"a\"", 0));
    assert_true(rc_rules_etag_match("W/\"a\"", "W/\"a\"", 1));
    assert_false(rc_rules_etag_match("\"a\"", "\"b\"", 1));
    assert_true(rc_rules_etag_match("\"x\", W/\"y\" ,\"a\"", "\"a\"", 0));
    assert_true(rc_rules_etag_match("\"x\",W/\"a\"", "\"a\"", 1));
    assert_true(rc_rules_etag_match("*", "\"a\"", 0));
    assert_true(rc_rules_etag_match(" * ", NULL, 1));
    assert_false(rc_rules_etag_match("\"a\"", NULL, 1));
    assert_false(rc_rules_etag_match(NULL, "\"a\"", 1));
    /* commas belong to the tag inside quotes */
    assert_true(rc_rules_etag_match("\"a,b\"", "\"a,b\"", 0));
    assert_false(rc_rules_etag_match("\"a,b\"", "\"a\"", 1));
    assert_false(rc_rules_etag_match("\"a\", \"b\"", "\"a,b\"", 1));
    /* a sloppy unquoted ETag still compares */
    assert_true(rc_rules_etag_match("abc", "abc", 1));
    assert_false(rc_rules_etag_match("\"abc\"", "abc", 1));
}

static void test_revalidate_headers(void **state)
{
    apr_table_t *out = tbl("If-None-Match", "\"client\"",
                           "If-Match", "\"m\"",
                           "If-Modified-Since", date(AT(-1)),
                           "If-Unmodified-Since", date(AT(-1)),
                           "If-Range", "\"r\"", "Range", "bytes=0-1",
                           "Accept", "*/*", NULL);
    apr_table_t *stored = tbl("ETag", "W/\"v1\"",
                              "Last-Modified", date(AT(-100)), NULL);

    (void)state;
    assert_int_equal(rc_rules_revalidate_headers(out, stored), 2);
    assert_string_equal(apr_table_get(out, "If-None-Match"), "W/\"v1\"");
    assert_string_equal(apr_table_get(out, "If-Modified-Since"),
                        date(AT(-100)));
    assert_null(apr_table_get(out, "If-Match"));
    assert_null(apr_table_get(out, "If-Unmodified-Since"));
    assert_null(apr_table_get(out, "If-Range"));
    assert_null(apr_table_get(out, "Range"));
    assert_string_equal(apr_table_get(out, "Accept"), "*/*");
    assert_int_equal(apr_table_elts(out)->nelts, 3);

    out = tbl("If-None-Match", "\"client\"", NULL);
    assert_int_equal(rc_rules_revalidate_headers(out, tbl(NULL)), 0);
    assert_null(apr_table_get(out, "If-None-Match"));
    /* an invalid Last-Modified is not sent */
    assert_int_equal(rc_rules_revalidate_headers(
                         out, tbl("Last-Modified", "junk", NULL)), 0);
}

static void test_strip_conditionals(void **state)
{
    apr_table_t *out = tbl("If-None-Match", "*", "Range", "bytes=1-",
                           "Host", "h", NULL);

    (void)state;
    rc_rules_strip_conditionals(out);
    assert_int_equal(apr_table_elts(out)->nelts, 1);
    assert_string_equal(apr_table_get(out, "Host"), "h");
}

static void test_304_applies(void **state)
{
    apr_table_t *st = tbl("ETag", "\"v1\"",
                          "Last-Modified", date(AT(-100)), NULL);
    apr_table_t *weak = tbl("ETag", "W/\"v1\"", NULL);

    (void)state;
    assert_true(rc_rules_304_applies(st, tbl("ETag", "\"v1\"", NULL)));
    assert_false(rc_rules_304_applies(st, tbl("ETag", "\"v2\"", NULL)));
    assert_true(rc_rules_304_applies(st, tbl("ETag", "W/\"v1\"", NULL)));
    assert_false(rc_rules_304_applies(weak, tbl("ETag", "\"v1\"", NULL)));
    assert_true(rc_rules_304_applies(weak, tbl("ETag", "W/\"v1\"", NULL)));
    assert_false(rc_rules_304_applies(tbl(NULL),
                                      tbl("ETag", "\"v1\"", NULL)));
    assert_true(rc_rules_304_applies(st, tbl("Last-Modified",
                                             date(AT(-100)), NULL)));
    assert_false(rc_rules_304_applies(st, tbl("Last-Modified",
                                              date(AT(-50)), NULL)));
    assert_true(rc_rules_304_applies(st, tbl("Date", date(AT(0)), NULL)));
}

static void test_merge_304(void **state)
{
    apr_table_t *stored = tbl("ETag", "\"a\"",
                              "Cache-Control", "max-age=10",
                              "Content-Length", "5",
                              "Content-Encoding", "gzip",
                              "Content-Type", "text/plain",
                              "X-Multi", "1", "X-Multi", "2",
                              "Date", date(AT(0)), NULL);
    apr_table_t *r304 = tbl("Cache-Control", "max-age=60",
                            "Content-Length", "0",
                            "Content-Encoding", "identity",
                            "X-New", "1",
                            "X-Multi", "3", "x-multi", "4",
                            "Connection", "X-Hop",
                            "X-Hop", "h", "Set-Cookie", "s=1",
                            "Age", "3", "Transfer-Encoding", "chunked",
                            "Date", date(AT(100)), NULL);
    apr_table_t *m;
    rc_rules_opts_t o;
    rc_cc_t cc;
    rc_fresh_t f;

    (void)state;
    rc_rules_opts_init(&o);
    m = rc_rules_merge_304(pool, stored, r304);
    assert_string_equal(apr_table_get(m, "ETag"), "\"a\"");
    assert_string_equal(apr_table_get(m, "Cache-Control"), "max-age=60");
    assert_string_equal(apr_table_get(m, "Content-Length"), "5");
    assert_string_equal(apr_table_get(m, "Content-Encoding"), "gzip");
    assert_string_equal(apr_table_get(m, "Content-Type"), "text/plain");
    assert_string_equal(apr_table_get(m, "X-New"), "1");
    assert_string_equal(rc_rules_header_join(pool, m, "X-Multi"), "3, 4");
    assert_string_equal(apr_table_get(m, "Date"), date(AT(100)));
    assert_null(apr_table_get(m, "X-Hop"));
    assert_null(apr_table_get(m, "Connection"));
    assert_null(apr_table_get(m, "Set-Cookie"));
    assert_null(apr_table_get(m, "Age"));
    assert_null(apr_table_get(m, "Transfer-Encoding"));
    assert_int_equal(apr_table_elts(m)->nelts, 9);
    /* the stored table is untouched */
    assert_string_equal(apr_table_get(stored, "Cache-Control"),
                        "max-age=10");
    /* freshness recomputed from the merged headers: 60 s from now */
    rc_rules_cc_response(&cc, pool, m);
    rc_rules_fresh_init(&f, &o, 200, m, &cc, AT(99), AT(100));
    assert_int_equal(f.lifetime, SEC(60));
    assert_int_equal(f.corrected_initial_age, SEC(1));
    assert_int_equal(rc_rules_hit(&f, NULL, AT(158), NULL), RC_HIT_FRESH);
    assert_int_equal(rc_rules_hit(&f, NULL, AT(159), NULL),
                     RC_HIT_VALIDATE);
}

static rc_cond_t cond(const char *method, apr_table_t *req,
                      apr_table_t *stored)
{
    rc_fresh_t f = entry(60, 0, -1, 0);

    f.response_time = AT(-30);
    return rc_rules_client_conditional(method, req, stored, &f);
}

static void test_client_inm(void **state)
{
    apr_table_t *st = tbl("ETag", "\"v1\"",
                          "Last-Modified", date(AT(-100)), NULL);

    (void)state;
    assert_int_equal(cond("GET", tbl("If-None-Match", "\"v1\"", NULL), st),
                     RC_COND_NOT_MODIFIED);
    assert_int_equal(cond("HEAD", tbl("If-None-Match", "W/\"v1\"", NULL),
                          st), RC_COND_NOT_MODIFIED);
    assert_int_equal(cond("GET", tbl("If-None-Match", "\"x\", \"v1\"",
                                     NULL), st), RC_COND_NOT_MODIFIED);
    assert_int_equal(cond("GET", tbl("If-None-Match", "\"x\"",
                                     "If-None-Match", "\"v1\"", NULL), st),
                     RC_COND_NOT_MODIFIED);
    assert_int_equal(cond("GET", tbl("If-None-Match", "*", NULL), st),
                     RC_COND_NOT_MODIFIED);
    assert_int_equal(cond("GET", tbl("If-None-Match", "\"v2\"", NULL), st),
                     RC_COND_NONE);
    /* If-None-Match decides alone: a matching IMS does not count */
    assert_int_equal(cond("GET", tbl("If-None-Match", "\"v2\"",
                                     "If-Modified-Since", date(AT(0)),
                                     NULL), st), RC_COND_NONE);
    /* stored without ETag */
    assert_int_equal(cond("GET", tbl("If-None-Match", "\"v1\"", NULL),
                          tbl(NULL)), RC_COND_NONE);
    assert_int_equal(cond("POST", tbl("If-None-Match", "\"v1\"", NULL), st),
                     RC_COND_NONE);
}

static void test_client_ims(void **state)
{
    apr_table_t *st = tbl("Last-Modified", date(AT(-100)),
                          "Date", date(AT(-40)), NULL);

    (void)state;
    assert_int_equal(cond("GET", tbl("If-Modified-Since", date(AT(-100)),
                                     NULL), st), RC_COND_NOT_MODIFIED);
    assert_int_equal(cond("GET", tbl("If-Modified-Since", date(AT(-101)),
                                     NULL), st), RC_COND_NONE);
    assert_int_equal(cond("GET", tbl("If-Modified-Since", "garbage", NULL),
                          st), RC_COND_NONE);
    assert_int_equal(cond("GET", tbl(NULL), st), RC_COND_NONE);
    /* no Last-Modified: the stored Date */
    st = tbl("Date", date(AT(-40)), NULL);
    assert_int_equal(cond("GET", tbl("If-Modified-Since", date(AT(-40)),
                                     NULL), st), RC_COND_NOT_MODIFIED);
    assert_int_equal(cond("GET", tbl("If-Modified-Since", date(AT(-41)),
                                     NULL), st), RC_COND_NONE);
    /* no Date either: the time it was received (AT(-30)) */
    assert_int_equal(cond("GET", tbl("If-Modified-Since", date(AT(-30)),
                                     NULL), tbl(NULL)),
                     RC_COND_NOT_MODIFIED);
    assert_int_equal(cond("GET", tbl("If-Modified-Since", date(AT(-31)),
                                     NULL), tbl(NULL)), RC_COND_NONE);
}

static void test_client_pass(void **state)
{
    apr_table_t *st = tbl("ETag", "\"v1\"", NULL);

    (void)state;
    assert_int_equal(cond("GET", tbl("If-Match", "\"v1\"", NULL), st),
                     RC_COND_PASS);
    assert_int_equal(cond("GET", tbl("If-Unmodified-Since", date(AT(0)),
                                     "If-None-Match", "\"v1\"", NULL), st),
                     RC_COND_PASS);
    /* If-Range alone is the byterange filter's business */
    assert_int_equal(cond("GET", tbl("If-Range", "\"v1\"", NULL), st),
                     RC_COND_NONE);
}

/* ================================================================== */
/* Vary                                                                */
/* ================================================================== */

static void test_vary_spec(void **state)
{
    (void)state;
    assert_string_equal(rc_rules_vary_spec(pool, tbl(NULL)), "");
    assert_string_equal(rc_rules_vary_spec(pool,
                            tbl("Vary", "Accept-Encoding, cookie",
                                "Vary", "ACCEPT-encoding", NULL)),
                        "accept-encoding,cookie");
    assert_string_equal(rc_rules_vary_spec(pool,
                            tbl("Vary", " X-B ,x-a,, ", NULL)), "x-a,x-b");
    assert_null(rc_rules_vary_spec(pool, tbl("Vary", "Accept, *", NULL)));
    assert_string_equal(rc_rules_vary_spec(pool,
                            tbl("Vary", "Accept, bad\"name", NULL)),
                        "accept");
    assert_string_equal(rc_rules_vary_spec(pool, tbl("Vary", "", NULL)),
                        "");
}

static void test_vary_variant(void **state)
{
    apr_table_t *req = tbl("Accept-Language", "  en-US ,  fr;  q=0.5 ",
                           "Cookie", "a=1;   b=2",
                           "Cookie", "c=3", NULL);

    (void)state;
    assert_string_equal(rc_rules_vary_variant(pool,
                            "accept-language,cookie,x-absent", req),
                        "accept-language=en-US,fr;q=0.5\n"
                        "cookie=a=1;b=2,c=3\n"
                        "x-absent");
    assert_string_equal(rc_rules_vary_variant(pool, "", req), "");
    assert_null(rc_rules_vary_variant(pool, NULL, req));
    /* present but empty differs from absent */
    assert_string_equal(rc_rules_vary_variant(pool, "x-e",
                            tbl("X-E", "", NULL)), "x-e=");
}

static void test_vary_value_normalisation(void **state)
{
    (void)state;
    assert_string_equal(rc_rules_vary_variant(pool, "x",
                            tbl("X", " a ,  b;  q=1 ,, \"x  , y\"  c ",
                                NULL)),
                        "x=a,b;q=1,\"x  , y\" c");
    assert_string_equal(rc_rules_vary_variant(pool, "x",
                            tbl("X", "one\t \ttwo", NULL)), "x=one two");
    /* case is kept for generic fields */
    assert_string_equal(rc_rules_vary_variant(pool, "x",
                            tbl("X", "ABC", NULL)), "x=ABC");
}

static void test_vary_accept_encoding(void **state)
{
    (void)state;
    assert_string_equal(rc_rules_vary_variant(pool, "accept-encoding,x-a",
                            tbl("Accept-Encoding",
                                "br;q=0.5, GZIP , deflate;q=0", NULL)),
                        "accept-encoding=br,gzip\nx-a");
    assert_string_equal(rc_rules_vary_variant(pool, "accept-encoding",
                            tbl("Accept-Encoding", "x-gzip, gzip;q=1.0,"
                                "identity; q=0.000, x-compress", NULL)),
                        "accept-encoding=compress,gzip");
    assert_string_equal(rc_rules_vary_variant(pool, "accept-encoding",
                            tbl("Accept-Encoding", "gzip;q=0.01", NULL)),
                        "accept-encoding=gzip");
    assert_string_equal(rc_rules_vary_variant(pool, "accept-encoding",
                            tbl("Accept-Encoding", "", NULL)),
                        "accept-encoding=");
    assert_string_equal(rc_rules_vary_variant(pool, "accept-encoding",
                            tbl("Accept-Encoding", "gzip",
                                "Accept-Encoding", "br", NULL)),
                        "accept-encoding=br,gzip");
}

static void test_vary_match(void **state)
{
    const char *spec = rc_rules_vary_spec(pool,
                           tbl("Vary", "Accept-Encoding, Accept-Language",
                               NULL));
    const char *v = rc_rules_vary_variant(pool, spec,
                        tbl("Accept-Encoding", "gzip, br",
                            "Accept-Language", "de", NULL));

    (void)state;
    assert_true(rc_rules_vary_match(pool, spec, v,
                    tbl("accept-language", "de",
                        "Accept-Encoding", "br,gzip", "X", "y", NULL)));
    assert_false(rc_rules_vary_match(pool, spec, v,
                     tbl("Accept-Encoding", "gzip", "Accept-Language", "de",
                         NULL)));
    assert_false(rc_rules_vary_match(pool, spec, v,
                     tbl("Accept-Encoding", "gzip, br", NULL)));
    assert_false(rc_rules_vary_match(pool, NULL, v, tbl(NULL)));
    assert_false(rc_rules_vary_match(pool, NULL, NULL, tbl(NULL)));
    assert_true(rc_rules_vary_match(pool, "", "", tbl("A", "b", NULL)));
}

/* ================================================================== */
/* Keys                                                                */
/* ================================================================== */

static void test_url_key_normalise(void **state)
{
    (void)state;
    assert_string_equal(rc_rules_url_key(pool, NULL, "HTTP", "Example.COM:80",
                                         0, "/a%7eb", "x=1"),
                        "http://example.com/a~b?x=1");
    assert_string_equal(rc_rules_url_key(pool, NULL, "http", "h", 0,
                                         "/%2f%zz%41%e2%82%ac", NULL),
                        "http://h/%2F%zzA%E2%82%AC");
    assert_string_equal(rc_rules_url_key(pool, NULL, "http", "h", 0, "",
                                         ""), "http://h/");
    assert_string_equal(rc_rules_url_key(pool, NULL, "http", "h", 0, NULL,
                                         "q"), "http://h/?q");
}

static void test_url_key_ports(void **state)
{
    (void)state;
    assert_string_equal(rc_rules_url_key(pool, NULL, "http", "h:8080", 0,
                                         "/", NULL), "http://h:8080/");
    assert_string_equal(rc_rules_url_key(pool, NULL, "http", "h:8080", 81,
                                         "/", NULL), "http://h:81/");
    assert_string_equal(rc_rules_url_key(pool, NULL, "https", "h:443", 0,
                                         "/", NULL), "https://h/");
    assert_string_equal(rc_rules_url_key(pool, NULL, "https", "h", 80,
                                         "/", NULL), "https://h:80/");
    assert_string_equal(rc_rules_url_key(pool, NULL, "http", "h:", 0,
                                         "/", NULL), "http://h/");
    assert_string_equal(rc_rules_url_key(pool, NULL, "http", "[::1]:8080",
                                         0, "/", NULL), "http://[::1]:8080/");
    assert_string_equal(rc_rules_url_key(pool, NULL, "http", "[FE80::1]",
                                         0, "/", NULL), "http://[fe80::1]/");
    assert_null(rc_rules_url_key(pool, NULL, "http", "h:99999", 0, "/",
                                 NULL));
    assert_null(rc_rules_url_key(pool, NULL, "http", "h:0", 0, "/", NULL));
    assert_null(rc_rules_url_key(pool, NULL, "http", "h:x", 0, "/", NULL));
    assert_null(rc_rules_url_key(pool, NULL, "http", "", 0, "/", NULL));
    assert_null(rc_rules_url_key(pool, NULL, "http", NULL, 0, "/", NULL));
    assert_null(rc_rules_url_key(pool, NULL, NULL, "h", 0, "/", NULL));
    assert_null(rc_rules_url_key(pool, NULL, "http", "a b", 0, "/", NULL));
    assert_null(rc_rules_url_key(pool, NULL, "http", "[::1", 0, "/", NULL));
}

static void test_url_key_ignore_query(void **state)
{
    rc_rules_opts_t o;

    (void)state;
    rc_rules_opts_init(&o);
    o.ignore_query = 1;
    assert_string_equal(rc_rules_url_key(pool, &o, "http", "h", 0, "/p",
                                         "a=1&b=2"), "http://h/p");
}

static void test_key_extra_headers(void **state)
{
    rc_rules_opts_t o;
    apr_array_header_t *names = apr_array_make(pool, 2, sizeof(char *));

    (void)state;
    rc_rules_opts_init(&o);
    assert_string_equal(rc_rules_key(pool, &o, "http://h/",
                                     tbl("X-Dev", "m", NULL)), "http://h/");
    APR_ARRAY_PUSH(names, const char *) = "X-Device";
    APR_ARRAY_PUSH(names, const char *) = "X-Tenant";
    o.key_headers = names;
    assert_string_equal(rc_rules_key(pool, &o, "http://h/",
                                     tbl("x-device", " mobile ,  tablet ",
                                         NULL)),
                        "http://h/\nx-device=mobile,tablet\nx-tenant");
    assert_string_equal(rc_rules_key(pool, &o, "http://h/",
                                     tbl("X-Tenant", "t1",
                                         "X-Device", "mobile,tablet",
                                         NULL)),
                        "http://h/\nx-device=mobile,tablet\nx-tenant=t1");
}

/* ================================================================== */
/* Invalidation                                                        */
/* ================================================================== */

static apr_array_header_t *inval(const char *method, int status,
                                 const char *host, apr_port_t port,
                                 const char *path, const char *query,
                                 apr_table_t *resp)
{
    return rc_rules_invalidations(pool, NULL, method, status, "http", host,
                                  port, path, query, resp);
}

#define URI(a, i) APR_ARRAY_IDX(a, i, const char *)

static void test_inval_basic(void **state)
{
    apr_array_header_t *a = inval("POST", 201, "a.example", 0, "/x/y", NULL,
                                  tbl("Location", "../z",
                                      "Content-Location",
                                      "http://b.example/q", NULL));

    (void)state;
    assert_int_equal(a->nelts, 2);
    assert_string_equal(URI(a, 0), "http://a.example/x/y");
    assert_string_equal(URI(a, 1), "http://a.example/z");
}

static void test_inval_methods_status(void **state)
{
    (void)state;
    assert_int_equal(inval("GET", 200, "h", 0, "/", NULL, NULL)->nelts, 0);
    assert_int_equal(inval("HEAD", 200, "h", 0, "/", NULL, NULL)->nelts, 0);
    assert_int_equal(inval("POST", 500, "h", 0, "/", NULL, NULL)->nelts, 0);
    assert_int_equal(inval("POST", 404, "h", 0, "/", NULL, NULL)->nelts, 0);
    assert_int_equal(inval("POST", 100, "h", 0, "/", NULL, NULL)->nelts, 0);
    assert_int_equal(inval("PUT", 204, "h", 0, "/", NULL, NULL)->nelts, 1);
    assert_int_equal(inval("DELETE", 200, "h", 0, "/", NULL, NULL)->nelts,
                     1);
    assert_int_equal(inval("PATCH", 303, "h", 0, "/", NULL, NULL)->nelts, 1);
    assert_int_equal(inval("FROB", 200, "h", 0, "/", NULL, NULL)->nelts, 1);
    assert_int_equal(inval("POST", 200, NULL, 0, "/", NULL, NULL)->nelts, 0);
}

static void test_inval_same_origin(void **state)
{
    apr_array_header_t *a;

    (void)state;
    a = inval("POST", 200, "H.example:80", 0, "/p", "q=1",
              tbl("Location", "http://h.EXAMPLE:80/a",
                  "Content-Location", "http://h.example:8080/b", NULL));
    assert_int_equal(a->nelts, 2);
    assert_string_equal(URI(a, 0), "http://h.example/p?q=1");
    assert_string_equal(URI(a, 1), "http://h.example/a");

    a = inval("POST", 200, "h", 8080, "/p", NULL,
              tbl("Location", "http://h:8080/a?b#frag",
                  "Content-Location", "https://h:8080/b", NULL));
    assert_int_equal(a->nelts, 2);
    assert_string_equal(URI(a, 1), "http://h:8080/a?b");

    a = inval("POST", 200, "h", 0, "/p", NULL,
              tbl("Location", "//other/a", "Content-Location", "mailto:x@h",
                  NULL));
    assert_int_equal(a->nelts, 1);

    a = inval("POST", 200, "h", 0, "/p", NULL,
              tbl("Location", "//H/a/./b/../c", NULL));
    assert_int_equal(a->nelts, 2);
    assert_string_equal(URI(a, 1), "http://h/a/c");

    a = inval("POST", 200, "h", 0, "/p", NULL,
              tbl("Location", "http://user@h/u", NULL));
    assert_string_equal(URI(a, 1), "http://h/u");
}

static void test_inval_relative_forms(void **state)
{
    apr_array_header_t *a;

    (void)state;
    a = inval("POST", 201, "h", 0, "/a/b/c", "x=1",
              tbl("Location", "?y=2", "Content-Location", "d/./e", NULL));
    assert_int_equal(a->nelts, 3);
    assert_string_equal(URI(a, 1), "http://h/a/b/c?y=2");
    assert_string_equal(URI(a, 2), "http://h/a/b/d/e");

    a = inval("POST", 201, "h", 0, "/a/b/c", NULL,
              tbl("Location", "../../../../g", "Content-Location", "/x/..",
                  NULL));
    assert_int_equal(a->nelts, 3);
    assert_string_equal(URI(a, 1), "http://h/g");
    assert_string_equal(URI(a, 2), "http://h/");

    a = inval("POST", 201, "h", 0, "/a/b/c", "x=1",
              tbl("Location", "#top", NULL));
    assert_int_equal(a->nelts, 1);       /* same as the target */
}

static void test_inval_dedupe(void **state)
{
    apr_array_header_t *a = inval("DELETE", 200, "h", 0, "/r", NULL,
                                  tbl("Location", "/r",
                                      "Content-Location", "/s", NULL));

    (void)state;
    assert_int_equal(a->nelts, 2);
    a = inval("DELETE", 200, "h", 0, "/r", NULL,
              tbl("Location", "/s", "Content-Location", "http://h/s",
                  NULL));
    assert_int_equal(a->nelts, 2);
    assert_string_equal(URI(a, 1), "http://h/s");
}

static void test_inval_ignore_query(void **state)
{
    rc_rules_opts_t o;
    apr_array_header_t *a;

    (void)state;
    rc_rules_opts_init(&o);
    o.ignore_query = 1;
    a = rc_rules_invalidations(pool, &o, "POST", 200, "http", "h", 0, "/r",
                               "a=1", tbl("Location", "/r?b=2", NULL));
    assert_int_equal(a->nelts, 1);
    assert_string_equal(URI(a, 0), "http://h/r");
}

/* ================================================================== */
/* Surrogate-Key                                                       */
/* ================================================================== */

static void test_surrogate_keys(void **state)
{
    apr_array_header_t *a = rc_rules_surrogate_keys(pool, " a  b,a\tc ");

    (void)state;
    assert_int_equal(a->nelts, 3);
    assert_string_equal(URI(a, 0), "a");
    assert_string_equal(URI(a, 1), "b");
    assert_string_equal(URI(a, 2), "c");
    assert_int_equal(rc_rules_surrogate_keys(pool, NULL)->nelts, 0);
    assert_int_equal(rc_rules_surrogate_keys(pool, "  ")->nelts, 0);
    a = rc_rules_surrogate_keys(pool, "Tag tag");
    assert_int_equal(a->nelts, 2);               /* case-sensitive */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cc_basic),
        cmocka_unit_test(test_cc_tricky),
        cmocka_unit_test(test_cc_case_insensitive),
        cmocka_unit_test(test_cc_bad_values),
        cmocka_unit_test(test_cc_overflow),
        cmocka_unit_test(test_cc_duplicates_first_wins),
        cmocka_unit_test(test_cc_multiple_header_lines),
        cmocka_unit_test(test_cc_max_stale_forms),
        cmocka_unit_test(test_cc_empty_and_garbage),
        cmocka_unit_test(test_cc_quoted_escapes),
        cmocka_unit_test(test_cc_unqualified_dominates),
        cmocka_unit_test(test_cc_rfc5861),
        cmocka_unit_test(test_cc_null),
        cmocka_unit_test(test_cc_request_pragma),
        cmocka_unit_test(test_field_listed),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_lookup_and_methods),
        cmocka_unit_test(test_status_classes),
        cmocka_unit_test(test_opts_defaults),
        cmocka_unit_test(test_age_worked_example),
        cmocka_unit_test(test_age_apparent_dominates),
        cmocka_unit_test(test_age_clock_skew_and_missing),
        cmocka_unit_test(test_age_current),
        cmocka_unit_test(test_age_header_parsing),
        cmocka_unit_test(test_life_s_maxage_precedence),
        cmocka_unit_test(test_life_max_age_over_expires),
        cmocka_unit_test(test_life_expires),
        cmocka_unit_test(test_life_expires_invalid),
        cmocka_unit_test(test_life_bad_max_age),
        cmocka_unit_test(test_life_heuristic_10pct),
        cmocka_unit_test(test_life_heuristic_cap),
        cmocka_unit_test(test_life_heuristic_options),
        cmocka_unit_test(test_life_heuristic_allowed),
        cmocka_unit_test(test_life_default_ttl),
        cmocka_unit_test(test_life_flags),
        cmocka_unit_test(test_serve_until),
        cmocka_unit_test(test_store_ok),
        cmocka_unit_test(test_store_method),
        cmocka_unit_test(test_store_status),
        cmocka_unit_test(test_store_no_store),
        cmocka_unit_test(test_store_must_understand),
        cmocka_unit_test(test_store_private),
        cmocka_unit_test(test_store_auth),
        cmocka_unit_test(test_store_vary_star),
        cmocka_unit_test(test_store_set_cookie),
        cmocka_unit_test(test_store_useless),
        cmocka_unit_test(test_store_headers),
        cmocka_unit_test(test_hit_worked_example),
        cmocka_unit_test(test_hit_no_swr),
        cmocka_unit_test(test_hit_response_no_cache),
        cmocka_unit_test(test_hit_request_no_cache),
        cmocka_unit_test(test_hit_request_max_age),
        cmocka_unit_test(test_hit_min_fresh),
        cmocka_unit_test(test_hit_max_stale),
        cmocka_unit_test(test_hit_max_stale_forbidden),
        cmocka_unit_test(test_hit_only_if_cached),
        cmocka_unit_test(test_hit_from_real_response),
        cmocka_unit_test(test_sie_response_window),
        cmocka_unit_test(test_sie_request_overrides),
        cmocka_unit_test(test_sie_admin_default),
        cmocka_unit_test(test_sie_forbidden),
        cmocka_unit_test(test_etag_match),
        cmocka_unit_test(test_revalidate_headers),
        cmocka_unit_test(test_strip_conditionals),
        cmocka_unit_test(test_304_applies),
        cmocka_unit_test(test_merge_304),
        cmocka_unit_test(test_client_inm),
        cmocka_unit_test(test_client_ims),
        cmocka_unit_test(test_client_pass),
        cmocka_unit_test(test_vary_spec),
        cmocka_unit_test(test_vary_variant),
        cmocka_unit_test(test_vary_value_normalisation),
        cmocka_unit_test(test_vary_accept_encoding),
        cmocka_unit_test(test_vary_match),
        cmocka_unit_test(test_url_key_normalise),
        cmocka_unit_test(test_url_key_ports),
        cmocka_unit_test(test_url_key_ignore_query),
        cmocka_unit_test(test_key_extra_headers),
        cmocka_unit_test(test_inval_basic),
        cmocka_unit_test(test_inval_methods_status),
        cmocka_unit_test(test_inval_same_origin),
        cmocka_unit_test(test_inval_relative_forms),
        cmocka_unit_test(test_inval_dedupe),
        cmocka_unit_test(test_inval_ignore_query),
        cmocka_unit_test(test_surrogate_keys),
    };

    RC_UNIT_RUN(tests);
}
