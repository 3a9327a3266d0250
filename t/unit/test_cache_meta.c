/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * test_cache_meta.c -- unit tests of cache_meta.c, the metadata blob:
 * exact round trips (fields, order, name case, status lines, freshness
 * values) over fixed and generated header sets, canonical re-encoding,
 * IMF dates stored as seconds only when they come back byte for byte,
 * Vary records and hit-for-miss markers, the size of the benchmark's
 * nginx response, and strict refusal of
 * truncated, extended and corrupted blobs.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_tables.h>
#include <apr_time.h>

#include "cache_meta.h"
#include "rc_unit.h"

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static rc_fresh_t fresh_of(apr_int64_t rt, apr_int64_t date, apr_int64_t age,
                           apr_int64_t life, apr_int64_t swr, apr_int64_t sie,
                           unsigned int flags)
{
    rc_fresh_t f;

    memset(&f, 0, sizeof(f));
    f.response_time = rt;
    f.date = date;
    f.corrected_initial_age = age;
    f.lifetime = life;
    f.swr = swr;
    f.sie = sie;
    f.flags = flags;
    return f;
}

/* What the benchmark stores for nginx's 1 KiB file. */
static rc_fresh_t nginx_fresh(void)
{
    return fresh_of(APR_INT64_C(1795566560123456),
                    apr_time_from_sec(APR_INT64_C(1795566560)), 0,
                    apr_time_from_sec(3600), 0, -1,
                    0x0100 | 0x0010 | 0x0200 | 0x0400);
}

static apr_table_t *nginx_headers(void)
{
    return tbl("Server", "nginx/1.22.1",
               "Date", "Thu, 26 Nov 2026 00:29:20 GMT",
               "Content-Type", "application/octet-stream",
               "Last-Modified", "Thu, 26 Nov 2026 00:29:09 GMT",
               "ETag", "\"6b077d55-400\"",
               "Cache-Control", "public, max-age=3600",
               "Accept-Ranges", "bytes", NULL);
}

static void assert_fresh_equal(const rc_fresh_t *a, const rc_fresh_t *b)
{
    assert_true(a->response_time == b->response_time);
    assert_true(a->date == b->date);
    assert_true(a->corrected_initial_age == b->corrected_initial_age);
    assert_true(a->lifetime == b->lifetime);
    assert_true(a->swr == b->swr);
    assert_true(a->sie == b->sie);
    assert_int_equal(a->flags, b->flags);
}

/* Same fields, same order, byte-identical names and values. */
static void assert_tables_equal(const apr_table_t *a, const apr_table_t *b)
{
    const apr_array_header_t *x = apr_table_elts(a), *y = apr_table_elts(b);
    const apr_table_entry_t *ex = (const apr_table_entry_t *)x->elts;
    const apr_table_entry_t *ey = (const apr_table_entry_t *)y->elts;
    int i;

    assert_int_equal(x->nelts, y->nelts);
    for (i = 0; i < x->nelts; i++) {
        assert_string_equal(ex[i].key, ey[i].key);
        assert_string_equal(ex[i].val, ey[i].val);
    }
}

/* Encode, decode, compare everything, re-encode to the same bytes. */
static apr_size_t round_trip(int status, const char *sl, const rc_fresh_t *f,
                             const apr_table_t *h, const void **blob)
{
    const void *b, *b2;
    apr_size_t len, len2;
    rc_meta_t m;

    b = rc_meta_encode_response(pool, status, sl, f, h, &len);
    assert_int_equal(rc_meta_decode(pool, b, len, &m), RC_META_RESPONSE);
    assert_int_equal(m.kind, RC_META_RESPONSE);
    assert_int_equal(m.status, status);
    if (!sl || !*sl) {
        assert_null(m.status_line);
    }
    else {
        assert_string_equal(m.status_line, sl);
    }
    assert_fresh_equal(&m.fresh, f);
    assert_tables_equal(m.headers, h);
    b2 = rc_meta_encode_response(pool, m.status, m.status_line, &m.fresh,
                                 m.headers, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(b2, b, len);
    if (blob) {
        *blob = b;
    }
    return len;
}

static int blob_has(const void *blob, apr_size_t len, const char *s)
{
    apr_size_t n = strlen(s), i;

    for (i = 0; i + n <= len; i++) {
        if (memcmp((const char *)blob + i, s, n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* xorshift64*: reproducible pseudo-random numbers */
static apr_uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

static apr_uint64_t rnd(void)
{
    rnd_state ^= rnd_state >> 12;
    rnd_state ^= rnd_state << 25;
    rnd_state ^= rnd_state >> 27;
    return rnd_state * 0x2545f4914f6cdd1dULL;
}

/* A blob under construction (for hand-made corrupt ones). */
typedef struct {
    unsigned char b[512];
    apr_size_t    n;
} bb_t;

static void bb_byte(bb_t *b, unsigned int v)
{
    b->b[b->n++] = (unsigned char)v;
}

static void bb_uv(bb_t *b, apr_uint64_t v)
{
    while (v >= 0x80) {
        bb_byte(b, (unsigned int)(v & 0x7f) | 0x80);
        v >>= 7;
    }
    bb_byte(b, (unsigned int)v);
}

static void bb_str(bb_t *b, const char *s)
{
    memcpy(b->b + b->n, s, strlen(s));
    b->n += strlen(s);
}

/* A valid RESPONSE blob up to its field count: status 200, "200 OK",
 * every fresh value in whole seconds (0). */
static void bb_head(bb_t *b, apr_uint64_t nfields)
{
    int i;

    b->n = 0;
    bb_byte(b, 0xA1);
    bb_uv(b, 200);
    bb_uv(b, (2 << 1) | 1);
    bb_str(b, "OK");
    bb_byte(b, 0x3f);
    bb_uv(b, 0);
    for (i = 0; i < 6; i++) {
        bb_uv(b, 0);
    }
    bb_uv(b, nfields);
}

static int decode(const bb_t *b)
{
    rc_meta_t m;

    return rc_meta_decode(pool, b->b, b->n, &m);
}

/* ------------------------------------------------------------------ */
/* tests                                                               */

/* The benchmark's response: exact size (the worked example at the top
 * of cache_meta.c), dates stored as seconds, values served unchanged. */
static void test_nginx_size(void **state)
{
    rc_fresh_t f = nginx_fresh();
    const void *blob;
    apr_size_t len;

    (void)state;
    len = round_trip(200, "200 OK", &f, nginx_headers(), &blob);
    assert_int_equal(len, 127);
    assert_false(blob_has(blob, len, "GMT"));
    assert_true(blob_has(blob, len, "nginx/1.22.1"));
    assert_false(blob_has(blob, len, "200 OK"));
    /* key ~54 bytes + this + a 1 KiB body: five 256-byte blocks */
    assert_true(54 + len + 1024 <= 5 * 256);
}

static void test_fixed_sets(void **state)
{
    rc_fresh_t f0 = fresh_of(0, 0, 0, 0, 0, 0, 0);
    rc_fresh_t f1 = fresh_of(1, -1, 999999, APR_INT64_C(2147483648000000),
                             1000001, -1000000, UINT_MAX);
    rc_fresh_t f2 = fresh_of(APR_INT64_MAX, APR_INT64_MIN, APR_INT64_MAX - 1,
                             APR_INT64_MIN + 1, -7, 123456789012345LL, 1);
    char *big = apr_palloc(pool, 70001);

    (void)state;
    memset(big, 'x', 70000);
    big[70000] = '\0';
    round_trip(200, NULL, &f0, tbl(NULL), NULL);
    round_trip(200, "", &f1, tbl(NULL), NULL);
    round_trip(999, "999 ", &f2, tbl("X-A", "", NULL), NULL);
    round_trip(203, "203 Non-Authoritative Information", &f1,
               nginx_headers(), NULL);
    /* status lines that do not start with "<status> ": kept literally */
    round_trip(200, "200OK", &f0, tbl(NULL), NULL);
    round_trip(200, "404 Not Found", &f0, tbl(NULL), NULL);
    round_trip(301, "HTTP/1.1 301", &f0, tbl(NULL), NULL);
    /* names: table codes only for the exact spelling; repeats in order */
    round_trip(200, NULL, &f1,
               tbl("etag", "\"a\"", "ETAG", "\"b\"", "Etag", "\"c\"",
                   "ETag", "\"d\"", "content-type", "text/html",
                   "Link", "</a>; rel=preload", "X-Custom", "1",
                   "Link", "</b>; rel=preload", "Vary", "Accept-Encoding",
                   "", "empty name", "X-Big", big, NULL), NULL);
    /* values of every length class (1, 2 and 3-byte varints) */
    round_trip(200, NULL, &f0,
               tbl("A", apr_pstrndup(pool, big, 126),
                   "B", apr_pstrndup(pool, big, 127),
                   "C", apr_pstrndup(pool, big, 16382),
                   "D", apr_pstrndup(pool, big, 16383), NULL), NULL);
}

/* Generated sets: random names (table or not), values (text, dates that
 * round-trip, dates that do not), statuses, freshness values. */
static void test_generated_sets(void **state)
{
    static const char *const vals[] = {
        "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994", "Mon, 06 Nov 1994 08:49:37 GMT",
        "Thu, 01 Jan 1970 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT",
        "0", "-1", "bytes", "public, max-age=60", "", " ", "\"etag\"",
        "W/\"weak\"", "text/html; charset=utf-8", "\x01\x7f\x80\xff",
    };
    static const char *const nms[] = {
        "Date", "Expires", "Last-Modified", "X-Date", "date", "Server",
        "Retry-After", "X-Ünïcode", "A", "Set-Cookie-ish",
        "Content-Security-Policy-Report-Only", "X-Generator",
    };
    int iter;

    (void)state;
    for (iter = 0; iter < 3000; iter++) {
        apr_pool_t *sub;
        apr_table_t *h;
        apr_pool_t *saved = pool;
        rc_fresh_t f;
        int i, n, status;
        const char *sl;

        apr_pool_create(&sub, saved);
        pool = sub;
        h = apr_table_make(pool, 8);
        n = (int)(rnd() % 24);
        for (i = 0; i < n; i++) {
            const char *k = nms[rnd() % (sizeof(nms) / sizeof(nms[0]))];
            const char *v;

            switch (rnd() % 4) {
            case 0:
                v = vals[rnd() % (sizeof(vals) / sizeof(vals[0]))];
                break;
            case 1: {
                /* any second of 1970..9999, formatted by APR */
                char *d = apr_palloc(pool, APR_RFC822_DATE_LEN);
                apr_int64_t s = (apr_int64_t)(rnd()
                                % APR_UINT64_C(253402300800));

                apr_rfc822_date(d, apr_time_from_sec(s));
                v = d;
                break;
            }
            case 2: {
                char *d = apr_psprintf(pool, "%" APR_UINT64_T_FMT, rnd());

                v = d;
                break;
            }
            default: {
                apr_size_t len = (apr_size_t)(rnd() % 300), j;
                char *d = apr_palloc(pool, len + 1);

                for (j = 0; j < len; j++) {
                    d[j] = (char)(1 + rnd() % 255);
                }
                d[len] = '\0';
                v = d;
            }
            }
            apr_table_add(h, k, v);
        }
        status = 200 + (int)(rnd() % 800);
        switch (rnd() % 4) {
        case 0:
            sl = NULL;
            break;
        case 1:
            sl = apr_psprintf(pool, "%d Reason %u", status,
                              (unsigned)(rnd() % 1000));
            break;
        case 2:
            sl = apr_psprintf(pool, "%d", status);
            break;
        default:
            sl = "x";
        }
        f = fresh_of((apr_int64_t)rnd(), (apr_int64_t)(rnd() % 3)
                     * APR_USEC_PER_SEC, (apr_int64_t)(rnd() >> 40),
                     -(apr_int64_t)(rnd() >> 30), (apr_int64_t)(rnd() % 2),
                     (rnd() & 1) ? -1 : 86400 * APR_USEC_PER_SEC,
                     (unsigned int)rnd());
        round_trip(status, sl, &f, h, NULL);
        pool = saved;
        apr_pool_destroy(sub);
    }
}

/* A date is stored as seconds only when it formats back to the same
 * bytes; anything else stays text and is served unchanged. */
static void test_dates(void **state)
{
    static const char *const text[] = {
        "Mon, 06 Nov 1994 08:49:37 GMT",   /* wrong weekday */
        "Sunday, 06-Nov-94 08:49:37 GMT",  /* RFC 850 */
        "Sun Nov  6 08:49:37 1994",        /* asctime */
        "Sun, 6 Nov 1994 08:49:37 GMT",    /* one-digit day */
        "Sun, 06 nov 1994 08:49:37 GMT",   /* month case */
        "sun, 06 Nov 1994 08:49:37 GMT",   /* weekday case */
        "Sun, 06 Nov 1994 08:49:37 gmt",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 GMT ",  /* trailing space */
        " Sun, 06 Nov 1994 08:49:37 GMT",
        "Sat, 29 Feb 2025 00:00:00 GMT",   /* no such day */
        "Thu, 31 Apr 2025 00:00:00 GMT",
        "Wed, 31 Dec 2025 23:59:60 GMT",   /* leap second */
        "Tue, 24 Dec 2025 24:00:00 GMT",
        "Wed, 31 Dec 1969 23:59:59 GMT",   /* before 1970 */
        "Sun, 06 Nov 1994 08:49:3x GMT",
        "Sun, 06 Nov 1994 08-49-37 GMT",
        "Sun, 06 Nov +994 08:49:37 GMT",
        "Sun; 06 Nov 1994 08:49:37 GMT",
    };
    static const char *const bin[] = {
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "Thu, 29 Feb 2024 12:00:00 GMT",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Thu, 26 Nov 2026 00:29:20 GMT",
    };
    rc_fresh_t f = fresh_of(0, 0, 0, 0, 0, 0, 0);
    apr_int64_t s;
    apr_size_t i, len;
    const void *blob;

    (void)state;
    for (i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
        assert_false(rc_meta_date_parse(text[i], strlen(text[i]), &s));
        len = round_trip(200, NULL, &f, tbl("Date", text[i], NULL), &blob);
        assert_true(blob_has(blob, len, text[i]));
    }
    for (i = 0; i < sizeof(bin) / sizeof(bin[0]); i++) {
        assert_true(rc_meta_date_parse(bin[i], strlen(bin[i]), &s));
        len = round_trip(200, NULL, &f, tbl("Expires", bin[i], "X-When",
                                             bin[i], NULL), &blob);
        assert_false(blob_has(blob, len, "GMT"));
    }
    assert_true(rc_meta_date_parse(bin[0], 29, &s));
    assert_true(s == APR_INT64_C(784111777));
    assert_true(rc_meta_date_parse(bin[1], 29, &s));
    assert_true(s == 0);
    assert_true(rc_meta_date_parse(bin[3], 29, &s));
    assert_true(s == APR_INT64_C(253402300799));
}

/* The codec's own date formatter writes what apr_rfc822_date writes:
 * every date APR formats is recognised and gives back its second. */
static void test_dates_like_apr(void **state)
{
    static const apr_int64_t edges[] = {
        0, 59, 86399, 86400, 951782400 /* 2000-02-29 */,
        4107456000LL /* 2100-02-28 */, 4107542400LL /* 2100-03-01 */,
        13574563200LL /* 2400-02-29 */, 253402300799LL, 1795566560,
    };
    char buf[APR_RFC822_DATE_LEN];
    apr_int64_t s, t;
    apr_size_t i;
    int n;

    (void)state;
    for (n = 0; n < 200000; n++) {
        t = n < (int)(sizeof(edges) / sizeof(edges[0]))
            ? edges[n] : (apr_int64_t)(rnd() % APR_UINT64_C(253402300800));
        assert_int_equal(apr_rfc822_date(buf, apr_time_from_sec(t)),
                         APR_SUCCESS);
        if (!rc_meta_date_parse(buf, strlen(buf), &s) || s != t) {
            fail_msg("%" APR_INT64_T_FMT ": \"%s\" not recognised", t, buf);
        }
    }
    /* one day each, every day of 2023-2025 around midnight */
    for (i = 0; i < 3 * 366; i++) {
        t = APR_INT64_C(1672531200) + (apr_int64_t)i * 86400 - 1;
        apr_rfc822_date(buf, apr_time_from_sec(t));
        assert_true(rc_meta_date_parse(buf, strlen(buf), &s) && s == t);
    }
}

static void test_vary(void **state)
{
    static const char *const specs[] = {
        "", "accept-encoding", "accept-encoding,accept-language,x-a,x-b",
    };
    const void *b;
    apr_size_t len, i;
    rc_meta_t m;

    (void)state;
    for (i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        b = rc_meta_encode_vary(pool, specs[i], &len);
        assert_int_equal(len, 2 + strlen(specs[i]));
        assert_int_equal(rc_meta_decode(pool, b, len, &m), RC_META_VARY);
        assert_string_equal(m.vary_spec, specs[i]);
        assert_int_equal(rc_meta_decode(pool, b, len - 1, &m), 0);
    }
}

/* The hit-for-miss marker: one byte, nothing more. */
static void test_pass(void **state)
{
    const void *b;
    apr_size_t len;
    rc_meta_t m;
    char two[2];

    (void)state;
    b = rc_meta_encode_pass(pool, &len);
    assert_int_equal(len, 1);
    assert_int_equal(rc_meta_decode(pool, b, len, &m), RC_META_PASS);
    assert_int_equal(m.kind, RC_META_PASS);
    memcpy(two, b, 1);
    two[1] = 0;
    assert_int_equal(rc_meta_decode(pool, two, 2, &m), 0);
    assert_int_equal(rc_meta_decode(pool, b, 0, &m), 0);
}

/* Every proper prefix and every extension of valid blobs is refused. */
static void test_truncated_and_trailing(void **state)
{
    rc_fresh_t f = nginx_fresh();
    const void *blobs[3];
    apr_size_t lens[3], i, n;
    rc_meta_t m;
    int k;

    (void)state;
    blobs[0] = rc_meta_encode_response(pool, 200, "200 OK", &f,
                                       nginx_headers(), &lens[0]);
    blobs[1] = rc_meta_encode_response(pool, 404, "Gone away", &f,
                                       tbl("X-Long", "abc", "", "",
                                           "Date", "bad date", NULL),
                                       &lens[1]);
    blobs[2] = rc_meta_encode_vary(pool, "accept-encoding", &lens[2]);
    for (k = 0; k < 3; k++) {
        char *ext = apr_palloc(pool, lens[k] + 1);

        for (n = 0; n < lens[k]; n++) {
            assert_int_equal(rc_meta_decode(pool, blobs[k], n, &m), 0);
        }
        for (i = 0; i < 256; i++) {
            memcpy(ext, blobs[k], lens[k]);
            ext[lens[k]] = (char)i;
            assert_int_equal(rc_meta_decode(pool, ext, lens[k] + 1, &m), 0);
        }
    }
    assert_int_equal(rc_meta_decode(pool, NULL, 10, &m), 0);
}

/* Hand-made blobs, each wrong in one way. */
static void test_corrupt(void **state)
{
    bb_t b;
    int i;

    (void)state;
    /* the reference: valid */
    bb_head(&b, 1);
    bb_byte(&b, 1);
    bb_uv(&b, 3);
    bb_str(&b, "ab");
    assert_int_equal(decode(&b), RC_META_RESPONSE);

    /* format byte */
    b.b[0] = 0xA3;
    assert_int_equal(decode(&b), 0);
    b.b[0] = 0x45;  /* the old format's first byte ("RCME") */
    assert_int_equal(decode(&b), 0);

    /* status out of range */
    for (i = 0; i < 3; i++) {
        static const apr_uint64_t bad[] = { 199, 1000, 0 };

        b.n = 0;
        bb_byte(&b, 0xA1);
        bb_uv(&b, bad[i]);
        bb_uv(&b, 0);
        bb_byte(&b, 0x3f);
        bb_uv(&b, 0);
        for (int j = 0; j < 6; j++) {
            bb_uv(&b, 0);
        }
        bb_uv(&b, 0);
        assert_int_equal(decode(&b), 0);
        b.b[1] = 200 | 0x80;  /* the same blob with status 200: valid */
        b.b[2] = 1;
        assert_int_equal(decode(&b), i == 2 ? 0 : RC_META_RESPONSE);
    }

    /* unknown name code */
    bb_head(&b, 1);
    bb_byte(&b, 255);
    bb_uv(&b, 1);
    assert_int_equal(decode(&b), 0);

    /* a literal name running past the end */
    bb_head(&b, 1);
    bb_byte(&b, 0);
    bb_uv(&b, 50);
    bb_str(&b, "X-A");
    bb_uv(&b, 1);
    assert_int_equal(decode(&b), 0);

    /* a NUL inside a name / a value */
    bb_head(&b, 1);
    bb_byte(&b, 0);
    bb_uv(&b, 3);
    bb_str(&b, "X");
    bb_byte(&b, 0);
    bb_str(&b, "A");
    bb_uv(&b, 1);
    assert_int_equal(decode(&b), 0);
    bb_head(&b, 1);
    bb_byte(&b, 1);
    bb_uv(&b, 4);
    bb_str(&b, "a");
    bb_byte(&b, 0);
    bb_str(&b, "b");
    assert_int_equal(decode(&b), 0);

    /* a date beyond 9999 */
    bb_head(&b, 1);
    bb_byte(&b, 2);
    bb_uv(&b, 0);
    bb_uv(&b, APR_INT64_C(253402300800));
    assert_int_equal(decode(&b), 0);
    bb_head(&b, 1);
    bb_byte(&b, 2);
    bb_uv(&b, 0);
    bb_uv(&b, APR_INT64_C(253402300799));
    assert_int_equal(decode(&b), RC_META_RESPONSE);

    /* non-canonical varints: a redundant zero byte, 11 bytes, > 64 bits */
    bb_head(&b, 1);
    bb_byte(&b, 1);
    bb_byte(&b, 0x83);
    bb_byte(&b, 0x00);
    bb_str(&b, "ab");
    assert_int_equal(decode(&b), 0);
    bb_head(&b, 0);
    b.n--;
    for (i = 0; i < 10; i++) {
        bb_byte(&b, 0x80);
    }
    bb_byte(&b, 0);
    assert_int_equal(decode(&b), 0);
    bb_head(&b, 0);
    b.n--;
    for (i = 0; i < 9; i++) {
        bb_byte(&b, 0x80);
    }
    bb_byte(&b, 2);
    assert_int_equal(decode(&b), 0);

    /* field count: above the maximum, above what the bytes can hold */
    bb_head(&b, RC_META_MAX_FIELDS + 1);
    for (i = 0; i < RC_META_MAX_FIELDS + 1; i++) {
        bb_byte(&b, 1);
        bb_uv(&b, 1);
        if (b.n > sizeof(b.b) - 4) {
            break;
        }
    }
    assert_int_equal(decode(&b), 0);
    bb_head(&b, 3);
    bb_byte(&b, 1);
    bb_uv(&b, 1);
    bb_byte(&b, 1);
    bb_uv(&b, 1);
    assert_int_equal(decode(&b), 0);

    /* the seconds byte: an unknown bit; a whole second sent as
     * microseconds (not what the encoder writes) */
    bb_head(&b, 0);
    assert_int_equal(decode(&b), RC_META_RESPONSE);
    b.b[6] = 0x7f;
    assert_int_equal(decode(&b), 0);
    bb_head(&b, 0);
    b.b[6] = 0x3e;
    assert_int_equal(decode(&b), 0);
    /* seconds that overflow microseconds */
    b.n = 0;
    bb_byte(&b, 0xA1);
    bb_uv(&b, 200);
    bb_uv(&b, 0);
    bb_byte(&b, 0x01);
    bb_uv(&b, 0);
    bb_uv(&b, APR_UINT64_C(1) << 60);
    for (i = 0; i < 5; i++) {
        bb_uv(&b, 1);
    }
    bb_uv(&b, 0);
    assert_int_equal(decode(&b), 0);
    /* flags beyond 32 bits */
    b.n = 0;
    bb_byte(&b, 0xA1);
    bb_uv(&b, 200);
    bb_uv(&b, 0);
    bb_byte(&b, 0x3f);
    bb_uv(&b, APR_UINT64_C(1) << 32);
    for (i = 0; i < 6; i++) {
        bb_uv(&b, 0);
    }
    bb_uv(&b, 0);
    assert_int_equal(decode(&b), 0);

    /* what the encoder writes otherwise: a literal name of the table, a
     * text date that round-trips, a literal "<status> " status line */
    bb_head(&b, 1);
    bb_byte(&b, 0);
    bb_uv(&b, 6);
    bb_str(&b, "Server");
    bb_uv(&b, 2);
    bb_str(&b, "x");
    assert_int_equal(decode(&b), 0);
    b.b[b.n - 4] = 's';    /* "server": not in the table, valid */
    assert_int_equal(decode(&b), RC_META_RESPONSE);
    bb_head(&b, 1);
    bb_byte(&b, 8);
    bb_uv(&b, 30);
    bb_str(&b, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(decode(&b), 0);
    b.b[b.n - 29] = 'M';   /* "Mun, ...": text, valid */
    assert_int_equal(decode(&b), RC_META_RESPONSE);
    b.n = 0;
    bb_byte(&b, 0xA1);
    bb_uv(&b, 200);
    bb_uv(&b, 6 << 1);
    bb_str(&b, "200 OK");
    bb_byte(&b, 0x3f);
    for (i = 0; i < 8; i++) {
        bb_uv(&b, 0);
    }
    assert_int_equal(decode(&b), 0);
    b.b[7] = '!';          /* "200!OK": a literal line, valid */
    assert_int_equal(decode(&b), RC_META_RESPONSE);

    /* a status line longer than the blob */
    b.n = 0;
    bb_byte(&b, 0xA1);
    bb_uv(&b, 200);
    bb_uv(&b, 200 << 1);
    bb_str(&b, "OK");
    assert_int_equal(decode(&b), 0);

    /* Vary: trailing byte, NUL in the spec, length past the end */
    b.n = 0;
    bb_byte(&b, 0xA2);
    bb_uv(&b, 1);
    bb_str(&b, "ab");
    assert_int_equal(decode(&b), 0);
    b.n = 0;
    bb_byte(&b, 0xA2);
    bb_uv(&b, 2);
    bb_str(&b, "a");
    bb_byte(&b, 0);
    assert_int_equal(decode(&b), 0);
    b.n = 0;
    bb_byte(&b, 0xA2);
    bb_uv(&b, 9);
    bb_str(&b, "a");
    assert_int_equal(decode(&b), 0);
}

/* Random damage to valid blobs never crashes (run it under SAN=1); what
 * still decodes re-encodes to the damaged bytes (the decoder accepts
 * canonical blobs only). */
static void test_damage(void **state)
{
    rc_fresh_t f = nginx_fresh();
    const void *blob;
    apr_size_t len;
    char *copy;
    int iter, refused = 0;

    (void)state;
    blob = rc_meta_encode_response(pool, 200, "200 OK", &f, nginx_headers(),
                                   &len);
    copy = apr_palloc(pool, len);
    for (iter = 0; iter < 20000; iter++) {
        apr_pool_t *sub;
        rc_meta_t m;
        int flips = 1 + (int)(rnd() % 3), i;

        memcpy(copy, blob, len);
        for (i = 0; i < flips; i++) {
            copy[rnd() % len] ^= (char)(1u << (rnd() % 8));
        }
        apr_pool_create(&sub, pool);
        if (rc_meta_decode(sub, copy, len, &m) == RC_META_RESPONSE) {
            const void *again;
            apr_size_t alen;

            again = rc_meta_encode_response(sub, m.status, m.status_line,
                                            &m.fresh, m.headers, &alen);
            assert_int_equal(alen, len);
            assert_memory_equal(again, copy, len);
        }
        else {
            refused++;
        }
        apr_pool_destroy(sub);
    }
    /* most damage lands in text and cannot be seen; the rest is */
    assert_true(refused > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nginx_size),
        cmocka_unit_test(test_fixed_sets),
        cmocka_unit_test(test_generated_sets),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_dates_like_apr),
        cmocka_unit_test(test_vary),
        cmocka_unit_test(test_pass),
        cmocka_unit_test(test_truncated_and_trailing),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_damage),
    };

    RC_UNIT_RUN(tests);
}
