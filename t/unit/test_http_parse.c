/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * test_http_parse.c -- unit tests of http_parse.c: where a response head
 * ends, the status line, header fields and their limits, body framing
 * (RFC 9112 section 6.3), Content-Length lists, and the incremental
 * chunked decoder fed whole, in two pieces at every split point, in
 * three pieces at every pair of split points, and byte by byte.
 * No I/O, no clock.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "http_parse.h"

#include "rc_unit.h"

static const rc_http_limits_t limits = { 8192, 100 };

/* ------------------------------------------------------------------ */
/* Helpers.                                                             */

/* Parses head bytes s[0..len) with the given limits. */
static apr_status_t parse_n(const char *s, apr_size_t len,
                            const rc_http_limits_t *lim, rc_resp_head_t *h,
                            const char **err)
{
    memset(h, 0, sizeof(*h));
    *err = NULL;
    return rc_http_parse_head(pool, s, len, lim, h, err);
}

static apr_status_t parse(const char *s, rc_resp_head_t *h)
{
    const char *err;
    apr_status_t rv = parse_n(s, strlen(s), &limits, h, &err);

    if (rv != APR_SUCCESS) {
        assert_non_null(err);
        assert_true(strlen(err) > 0);
    }
    return rv;
}

/* Asserts s is refused as a response head. */
#define assert_refused(s) do {                          \
        rc_resp_head_t h_;                              \
        assert_int_equal(parse((s), &h_), APR_EGENERAL); \
    } while (0)

/* Parses s (which must succeed) and decides its framing. */
static apr_status_t framing(const char *s, int head_req, rc_body_kind_e *k,
                            apr_off_t *len)
{
    rc_resp_head_t h;
    const char *err = NULL;
    apr_status_t rv;

    assert_int_equal(parse(s, &h), APR_SUCCESS);
    *k = (rc_body_kind_e)-1;
    rv = rc_http_body_framing(&h, head_req, k, len, &err);
    if (rv != APR_SUCCESS) {
        assert_non_null(err);
    }
    return rv;
}

#define assert_framing(s, head_req, kind, len) do {                     \
        rc_body_kind_e k_;                                              \
        apr_off_t l_;                                                   \
        assert_int_equal(framing((s), (head_req), &k_, &l_), APR_SUCCESS); \
        assert_int_equal(k_, (kind));                                   \
        if ((kind) == RC_BODY_LENGTH) {                                 \
            assert_int_equal(l_, (len));                                \
        }                                                               \
    } while (0)

#define assert_framing_refused(s) do {                                  \
        rc_body_kind_e k_;                                              \
        apr_off_t l_;                                                   \
        assert_int_equal(framing((s), 0, &k_, &l_), APR_EGENERAL);      \
    } while (0)

/* Output of the chunked decoder. */
typedef struct {
    char       *out;
    apr_size_t  outlen;
    apr_size_t  cap;
} sink_t;

/* Feeds in[0..len) to the decoder the way backend.c does: call, advance
 * by consumed, append data, until the piece is used up or the body is
 * done. Checks the decoder's invariants on every call. Returns the
 * decoder's status; *used is how much of the piece was consumed. */
static apr_status_t feed(rc_chunk_t *ch, const char *in, apr_size_t len,
                         sink_t *sk, apr_size_t *used, const char **err)
{
    apr_size_t off = 0;

    while (off < len && !rc_chunk_done(ch)) {
        apr_size_t c = (apr_size_t)-1, dl = (apr_size_t)-1;
        const char *d = (const char *)1;
        apr_status_t rv;

        rv = rc_chunk_decode(ch, in + off, len - off, &c, &d, &dl, err);
        if (rv != APR_SUCCESS) {
            *used = off;
            return rv;
        }
        assert_true(c <= len - off);
        if (dl) {
            assert_true(d >= in + off);
            assert_true(d + dl <= in + off + c);
            assert_true(sk->outlen + dl <= sk->cap);
            memcpy(sk->out + sk->outlen, d, dl);
            sk->outlen += dl;
        }
        else {
            /* No data: no progress only if there was nothing to do. */
            assert_true(c > 0 || rc_chunk_done(ch));
        }
        off += c;
    }
    *used = off;
    return APR_SUCCESS;
}

static void sink_init(sink_t *sk, apr_size_t cap)
{
    sk->out = apr_palloc(pool, cap ? cap : 1);
    sk->outlen = 0;
    sk->cap = cap;
}

/* Decodes in one piece; returns status, sets done/consumed/output. */
static apr_status_t decode_once(const char *in, apr_size_t len, sink_t *sk,
                                int *done, apr_size_t *used,
                                const char **err)
{
    rc_chunk_t ch;
    apr_status_t rv;

    rc_chunk_init(&ch);
    sink_init(sk, len);
    *err = NULL;
    rv = feed(&ch, in, len, sk, used, err);
    *done = rc_chunk_done(&ch);
    if (rv != APR_SUCCESS) {
        assert_non_null(*err);
    }
    return rv;
}

#define assert_chunk_refused(s) do {                                    \
        sink_t sk_; int d_; apr_size_t u_; const char *e_;              \
        assert_int_equal(decode_once((s), strlen(s), &sk_, &d_, &u_, &e_), \
                         APR_EGENERAL);                                 \
    } while (0)

/* Decodes s fully and compares with want (done, nothing left over). */
#define assert_chunk_decodes(s, want) do {                              \
        sink_t sk_; int d_; apr_size_t u_; const char *e_;              \
        assert_int_equal(decode_once((s), strlen(s), &sk_, &d_, &u_, &e_), \
                         APR_SUCCESS);                                  \
        assert_true(d_);                                                \
        assert_int_equal(u_, strlen(s));                                \
        assert_int_equal(sk_.outlen, strlen(want));                     \
        assert_memory_equal(sk_.out, (want), strlen(want));             \
    } while (0)

/* ------------------------------------------------------------------ */
/* rc_http_head_end                                                      */

static void test_head_end(void **state)
{
    const char *crlf = "HTTP/1.1 200 OK\r\nA: b\r\n\r\nBODY";
    const char *lf = "HTTP/1.1 200 OK\nA: b\n\nBODY";
    const char *mixed1 = "HTTP/1.1 200 OK\r\nA: b\r\n\nBODY";
    const char *mixed2 = "HTTP/1.1 200 OK\nA: b\n\r\nBODY";
    const char *nohdr = "HTTP/1.1 204 No Content\r\n\r\n";
    apr_size_t i, n;

    (void)state;
    assert_int_equal(rc_http_head_end(crlf, strlen(crlf)),
                     strlen(crlf) - 4);
    assert_int_equal(rc_http_head_end(lf, strlen(lf)), strlen(lf) - 4);
    assert_int_equal(rc_http_head_end(mixed1, strlen(mixed1)),
                     strlen(mixed1) - 4);
    assert_int_equal(rc_http_head_end(mixed2, strlen(mixed2)),
                     strlen(mixed2) - 4);
    assert_int_equal(rc_http_head_end(nohdr, strlen(nohdr)), strlen(nohdr));

    /* Every proper prefix of a head is incomplete. */
    n = strlen(crlf) - 4;
    for (i = 0; i < n; i++) {
        assert_int_equal(rc_http_head_end(crlf, i), 0);
    }
    n = strlen(lf) - 4;
    for (i = 0; i < n; i++) {
        assert_int_equal(rc_http_head_end(lf, i), 0);
    }
    assert_int_equal(rc_http_head_end("", 0), 0);
    assert_int_equal(rc_http_head_end("HTTP/1.1 200 OK\r\n\r", 18), 0);
    /* A lone CR between two LFs is not an empty line. */
    assert_int_equal(rc_http_head_end("HTTP/1.1 200 OK\n\rX\n", 19), 0);
    /* The first empty line wins, whatever follows. */
    assert_int_equal(rc_http_head_end("H\n\n\n\n", 5), 3);
}

/* ------------------------------------------------------------------ */
/* Status line                                                           */

static void test_status_line(void **state)
{
    rc_resp_head_t h;

    (void)state;
    assert_int_equal(parse("HTTP/1.1 200 OK\r\n\r\n", &h), APR_SUCCESS);
    assert_int_equal(h.version, 11);
    assert_int_equal(h.status, 200);
    assert_string_equal(h.reason, "OK");
    assert_non_null(h.headers);
    assert_int_equal(apr_table_elts(h.headers)->nelts, 0);

    assert_int_equal(parse("HTTP/1.0 404 Not Found Here\r\n\r\n", &h),
                     APR_SUCCESS);
    assert_int_equal(h.version, 10);
    assert_int_equal(h.status, 404);
    assert_string_equal(h.reason, "Not Found Here");

    /* Empty reason, with and without the space. */
    assert_int_equal(parse("HTTP/1.1 200\r\n\r\n", &h), APR_SUCCESS);
    assert_int_equal(h.status, 200);
    assert_string_equal(h.reason, "");
    assert_int_equal(parse("HTTP/1.1 200 \r\n\r\n", &h), APR_SUCCESS);
    assert_string_equal(h.reason, "");

    /* Bare LF line endings. */
    assert_int_equal(parse("HTTP/1.1 302 Found\nLocation: /x\n\n", &h),
                     APR_SUCCESS);
    assert_int_equal(h.status, 302);
    assert_string_equal(h.reason, "Found");
    assert_string_equal(apr_table_get(h.headers, "Location"), "/x");

    /* Range limits. */
    assert_int_equal(parse("HTTP/1.1 100 Continue\r\n\r\n", &h),
                     APR_SUCCESS);
    assert_int_equal(h.status, 100);
    assert_int_equal(parse("HTTP/1.1 599 Odd\r\n\r\n", &h), APR_SUCCESS);
    assert_int_equal(h.status, 599);
    assert_refused("HTTP/1.1 099 Low\r\n\r\n");
    assert_refused("HTTP/1.1 000 Zero\r\n\r\n");
    assert_refused("HTTP/1.1 600 High\r\n\r\n");
    assert_refused("HTTP/1.1 999 High\r\n\r\n");

    /* HTAB is allowed in a reason phrase. */
    assert_int_equal(parse("HTTP/1.1 200 O\tK\r\n\r\n", &h), APR_SUCCESS);
    assert_string_equal(h.reason, "O\tK");
    /* obs-text too. */
    assert_int_equal(parse("HTTP/1.1 200 \xc3\xa9t\xc3\xa9\r\n\r\n", &h),
                     APR_SUCCESS);

    /* Bad versions and codes. */
    assert_refused("HTTP/2.0 200 OK\r\n\r\n");
    assert_refused("HTTP/1.2 200 OK\r\n\r\n");
    assert_refused("HTTP/1.10 200 OK\r\n\r\n");
    assert_refused("HTTP/0.9 200 OK\r\n\r\n");
    assert_refused("http/1.1 200 OK\r\n\r\n");
    assert_refused("HTTP/1 200 OK\r\n\r\n");
    assert_refused("ICY 200 OK\r\n\r\n");
    assert_refused("HTTP/1.1 2000\r\n\r\n");
    assert_refused("HTTP/1.1 2000 OK\r\n\r\n");
    assert_refused("HTTP/1.1 20x OK\r\n\r\n");
    assert_refused("HTTP/1.1 20\r\n\r\n");
    assert_refused("HTTP/1.1 -20 OK\r\n\r\n");
    assert_refused("HTTP/1.1  200 OK\r\n\r\n");
    assert_refused("HTTP/1.1\t200 OK\r\n\r\n");
    assert_refused("HTTP/1.1 200OK\r\n\r\n");
    assert_refused(" HTTP/1.1 200 OK\r\n\r\n");
    assert_refused("\r\nHTTP/1.1 200 OK\r\n\r\n");
    assert_refused("");

    /* Control characters in the reason phrase. */
    assert_refused("HTTP/1.1 200 O\x01K\r\n\r\n");
    assert_refused("HTTP/1.1 200 O\x7fK\r\n\r\n");
    assert_refused("HTTP/1.1 200 O\rK\r\n\r\n");
    assert_refused("HTTP/1.1 200 OK\r\r\n\r\n");
    assert_refused("HTTP/1.1 200 O\x1bK\r\n\r\n");
    {
        static const char nul[] = "HTTP/1.1 200 O\0K\r\n\r\n";
        const char *err;

        assert_int_equal(parse_n(nul, sizeof(nul) - 1, &limits, &h, &err),
                         APR_EGENERAL);
    }
}

/* ------------------------------------------------------------------ */
/* Header fields                                                         */

static void test_fields(void **state)
{
    rc_resp_head_t h;
    const apr_array_header_t *arr;
    const apr_table_entry_t *e;

    (void)state;
    /* OWS trimmed both sides, inner spaces kept, name case kept. */
    assert_int_equal(parse("HTTP/1.1 200 OK\r\n"
                           "X-Thing:   b  c \t\r\n"
                           "x-lower:\tv\r\n"
                           "Empty:\r\n"
                           "Blank:   \t \r\n"
                           "Tab: a\tb\r\n"
                           "Colon: a:b: c\r\n"
                           "Odd!#$%&'*+-.^_`|~9: t\r\n"
                           "\r\n", &h), APR_SUCCESS);
    arr = apr_table_elts(h.headers);
    e = (const apr_table_entry_t *)arr->elts;
    assert_int_equal(arr->nelts, 7);
    assert_string_equal(e[0].key, "X-Thing");
    assert_string_equal(e[0].val, "b  c");
    assert_string_equal(e[1].key, "x-lower");
    assert_string_equal(e[1].val, "v");
    assert_string_equal(e[2].key, "Empty");
    assert_string_equal(e[2].val, "");
    assert_string_equal(e[3].val, "");
    assert_string_equal(e[4].val, "a\tb");
    assert_string_equal(e[5].val, "a:b: c");
    assert_string_equal(e[6].key, "Odd!#$%&'*+-.^_`|~9");
    assert_string_equal(apr_table_get(h.headers, "X-LOWER"), "v");

    /* Duplicates are kept, in order. */
    assert_int_equal(parse("HTTP/1.1 200 OK\r\n"
                           "Set-Cookie: a=1\r\n"
                           "X: 1\r\n"
                           "set-cookie: b=2\r\n"
                           "Set-Cookie: c=3\r\n"
                           "\r\n", &h), APR_SUCCESS);
    arr = apr_table_elts(h.headers);
    e = (const apr_table_entry_t *)arr->elts;
    assert_int_equal(arr->nelts, 4);
    assert_string_equal(e[0].val, "a=1");
    assert_string_equal(e[1].val, "1");
    assert_string_equal(e[2].key, "set-cookie");
    assert_string_equal(e[2].val, "b=2");
    assert_string_equal(e[3].val, "c=3");

    /* obs-fold. */
    assert_refused("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n");
    assert_refused("HTTP/1.1 200 OK\r\nA: b\r\n\tc\r\n\r\n");
    assert_refused("HTTP/1.1 200 OK\r\n c: d\r\n\r\n");
    /* No colon, empty name, space before colon. */
    assert_refused("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n");
    assert_refused("HTTP/1.1 200 OK\r\n: value\r\n\r\n");
    assert_refused("HTTP/1.1 200 OK\r\nName : value\r\n\r\n");
    assert_refused("HTTP/1.1 200 OK\r\nName\t: value\r\n\r\n");
    /* Bad characters in the name. */
    assert_refused("HTTP/1.1 200 OK\r\nFo(o: x\r\n\r\n");
    assert_refused("HTTP/1.1 200 OK\r\nFo\"o: x\r\n\r\n");
    assert_refused("HTTP/1.1 200 OK\r\nF@o: x\r\n\r\n");
    assert_refused("HTTP/1.1 200 OK\r\nF/o: x\r\n\r\n");
    assert_refused("HTTP/1.1 200 OK\r\nF\x01o: x\r\n\r\n");
    assert_refused("HTTP/1.1 200 OK\r\nF\xc3\xa9: x\r\n\r\n");
    assert_refused("HTTP/1.1 200 OK\r\nA b: x\r\n\r\n");
    /* Control characters in the value. */
    assert_refused("HTTP/1.1 200 OK\r\nA: b\x01" "c\r\n\r\n");
    assert_refused("HTTP/1.1 200 OK\r\nA: b\x7f\r\n\r\n");
    assert_refused("HTTP/1.1 200 OK\r\nA: \x1b[31m\r\n\r\n");
    assert_refused("HTTP/1.1 200 OK\r\nA: b\x0b\r\n\r\n");
    {
        static const char nul[] = "HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n";
        const char *err;

        assert_int_equal(parse_n(nul, sizeof(nul) - 1, &limits, &h, &err),
                         APR_EGENERAL);
    }
    /* Bare CR anywhere in a field line. */
    assert_refused("HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n");
    assert_refused("HTTP/1.1 200 OK\r\nA: b\r\r\n\r\n");
    assert_refused("HTTP/1.1 200 OK\r\nA\r: b\r\n\r\n");
    assert_refused("HTTP/1.1 200 OK\r\n\rA: b\r\n\r\n");
    assert_refused("HTTP/1.1 200 OK\r\nA: b\r\n\r\r\n\r\n");
    /* obs-text in a value is fine. */
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nA: \xe2\x82\xac\r\n\r\n",
                           &h), APR_SUCCESS);
    /* A head must end with an empty line. */
    assert_refused("HTTP/1.1 200 OK\r\nA: b\r\n");
    assert_refused("HTTP/1.1 200 OK\r\nA: b");
    assert_refused("HTTP/1.1 200 OK");
}

static void test_field_limits(void **state)
{
    rc_resp_head_t h;
    rc_http_limits_t lim = { 8192, 3 };
    const char *three = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    const char *four = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n"
                       "D: 4\r\n\r\n";
    const char *err;
    char *big;
    apr_size_t n;

    (void)state;
    assert_int_equal(parse_n(three, strlen(three), &lim, &h, &err),
                     APR_SUCCESS);
    assert_int_equal(parse_n(four, strlen(four), &lim, &h, &err),
                     APR_EGENERAL);
    assert_non_null(err);
    lim.max_fields = 0;
    assert_int_equal(parse_n("HTTP/1.1 200 OK\r\n\r\n", 19, &lim, &h, &err),
                     APR_SUCCESS);
    assert_int_equal(parse_n(three, strlen(three), &lim, &h, &err),
                     APR_EGENERAL);

    /* Head size: exactly the limit passes, one byte more is refused. */
    lim.max_fields = 100;
    lim.max_head_bytes = strlen(four);
    assert_int_equal(parse_n(four, strlen(four), &lim, &h, &err),
                     APR_SUCCESS);
    lim.max_head_bytes = strlen(four) - 1;
    assert_int_equal(parse_n(four, strlen(four), &lim, &h, &err),
                     APR_EGENERAL);
    assert_non_null(err);

    /* A 20 KB field against the default limit. */
    n = 20000;
    big = apr_palloc(pool, n + 64);
    strcpy(big, "HTTP/1.1 200 OK\r\nBig: ");
    memset(big + strlen(big), 'x', n);
    strcpy(big + strlen("HTTP/1.1 200 OK\r\nBig: ") + n, "\r\n\r\n");
    assert_int_equal(parse_n(big, strlen(big), &limits, &h, &err),
                     APR_EGENERAL);
    lim.max_head_bytes = 65536;
    assert_int_equal(parse_n(big, strlen(big), &lim, &h, &err),
                     APR_SUCCESS);
    assert_int_equal(strlen(apr_table_get(h.headers, "Big")), n);
}

/* Parsing stops at the empty line: body bytes after it are not read. */
static void test_head_then_body(void **state)
{
    const char *s = "HTTP/1.1 200 OK\r\nA: b\r\n\r\nC: d\r\n\x01\x02";
    rc_resp_head_t h;
    const char *err;

    (void)state;
    assert_int_equal(parse_n(s, strlen(s), &limits, &h, &err), APR_SUCCESS);
    assert_int_equal(apr_table_elts(h.headers)->nelts, 1);
    assert_null(apr_table_get(h.headers, "C"));
}

/* ------------------------------------------------------------------ */
/* Body framing                                                          */

static void test_framing(void **state)
{
    (void)state;
    /* No body: HEAD, 1xx, 204, 304, whatever the fields say. */
    assert_framing("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", 1,
                   RC_BODY_NONE, 0);
    assert_framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                   1, RC_BODY_NONE, 0);
    assert_framing("HTTP/1.1 200 OK\r\n\r\n", 1, RC_BODY_NONE, 0);
    assert_framing("HTTP/1.1 100 Continue\r\n\r\n", 0, RC_BODY_NONE, 0);
    assert_framing("HTTP/1.1 101 Switching\r\n\r\n", 0, RC_BODY_NONE, 0);
    assert_framing("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", 0,
                   RC_BODY_NONE, 0);
    assert_framing("HTTP/1.1 204 No Content\r\n\r\n", 0, RC_BODY_NONE, 0);
    assert_framing("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
                   0, RC_BODY_NONE, 0);
    assert_framing("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
                   0, RC_BODY_NONE, 0);
    assert_framing("HTTP/1.1 304 Not Modified\r\n\r\n", 0, RC_BODY_NONE, 0);

    /* Content-Length. */
    assert_framing("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", 0,
                   RC_BODY_LENGTH, 42);
    assert_framing("HTTP/1.0 200 OK\r\ncontent-length: 7\r\n\r\n", 0,
                   RC_BODY_LENGTH, 7);
    assert_framing("HTTP/1.1 404 Nope\r\nContent-Length:  1 \r\n\r\n", 0,
                   RC_BODY_LENGTH, 1);
    assert_framing("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0,
                   RC_BODY_NONE, 0);
    assert_framing("HTTP/1.1 200 OK\r\nContent-Length: 000\r\n\r\n", 0,
                   RC_BODY_NONE, 0);
    assert_framing("HTTP/1.1 200 OK\r\nContent-Length: 42, 42\r\n\r\n", 0,
                   RC_BODY_LENGTH, 42);
    assert_framing("HTTP/1.1 200 OK\r\nContent-Length: 42,42,\t42\r\n\r\n",
                   0, RC_BODY_LENGTH, 42);
    assert_framing("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n"
                   "Content-Length: 42\r\n\r\n", 0, RC_BODY_LENGTH, 42);
    assert_framing("HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775000"
                   "\r\n\r\n", 0, RC_BODY_LENGTH,
                   (apr_off_t)APR_INT64_C(9223372036854775000));
    assert_framing_refused("HTTP/1.1 200 OK\r\nContent-Length: 42, 43"
                           "\r\n\r\n");
    assert_framing_refused("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n"
                           "Content-Length: 43\r\n\r\n");
    assert_framing_refused("HTTP/1.1 200 OK\r\nContent-Length: 12abc"
                           "\r\n\r\n");
    assert_framing_refused("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n");
    assert_framing_refused("HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n");
    assert_framing_refused("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n");
    assert_framing_refused("HTTP/1.1 200 OK\r\nContent-Length: 0x10"
                           "\r\n\r\n");
    assert_framing_refused("HTTP/1.1 200 OK\r\nContent-Length: 4 2"
                           "\r\n\r\n");
    assert_framing_refused("HTTP/1.1 200 OK\r\nContent-Length: 42,"
                           "\r\n\r\n");
    assert_framing_refused("HTTP/1.1 200 OK\r\nContent-Length: ,42"
                           "\r\n\r\n");
    assert_framing_refused("HTTP/1.1 200 OK\r\nContent-Length: "
                           "99999999999999999999\r\n\r\n");
    assert_framing_refused("HTTP/1.1 200 OK\r\nContent-Length: "
                           "9223372036854775808\r\n\r\n");

    /* Transfer-Encoding. */
    assert_framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                   0, RC_BODY_CHUNKED, 0);
    assert_framing("HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n",
                   0, RC_BODY_CHUNKED, 0);
    assert_framing_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                           "Content-Length: 42\r\n\r\n");
    assert_framing_refused("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n");
    assert_framing_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip"
                           "\r\n\r\n");
    assert_framing_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, "
                           "chunked\r\n\r\n");
    assert_framing_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, "
                           "chunked\r\n\r\n");
    assert_framing_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n");
    assert_framing_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n");
    assert_framing_refused("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked"
                           "\r\n\r\n");

    /* Nothing: read until close. */
    assert_framing("HTTP/1.1 200 OK\r\n\r\n", 0, RC_BODY_CLOSE, 0);
    assert_framing("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n", 0,
                   RC_BODY_CLOSE, 0);
    assert_framing("HTTP/1.1 500 Oops\r\n\r\n", 0, RC_BODY_CLOSE, 0);
}

static void test_parse_length(void **state)
{
    apr_off_t n = -7;

    (void)state;
    assert_int_equal(rc_http_parse_length("0", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(rc_http_parse_length("1234567890", &n), 0);
    assert_int_equal(n, 1234567890);
    assert_int_equal(rc_http_parse_length("5 , 5", &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(rc_http_parse_length("9223372036854775799", &n), 0);
    assert_int_equal(n, (apr_off_t)APR_INT64_C(9223372036854775799));
    n = -7;
    assert_int_equal(rc_http_parse_length("", &n), -1);
    assert_int_equal(rc_http_parse_length(" ", &n), -1);
    assert_int_equal(rc_http_parse_length("-1", &n), -1);
    assert_int_equal(rc_http_parse_length("12abc", &n), -1);
    assert_int_equal(rc_http_parse_length("1.0", &n), -1);
    assert_int_equal(rc_http_parse_length("5,6", &n), -1);
    assert_int_equal(rc_http_parse_length("5,,5", &n), -1);
    assert_int_equal(rc_http_parse_length("99999999999999999999", &n), -1);
    assert_int_equal(rc_http_parse_length("18446744073709551616", &n), -1);
    assert_int_equal(n, -7);   /* untouched on failure */
}

/* ------------------------------------------------------------------ */
/* Chunked decoder                                                       */

static void test_chunk_simple(void **state)
{
    rc_chunk_t ch;
    const char *in = "5\r\nhello\r\n0\r\n\r\n";
    const char *d, *err = NULL;
    apr_size_t c, dl;

    (void)state;
    /* The example from the header, call by call. */
    rc_chunk_init(&ch);
    assert_false(rc_chunk_done(&ch));
    assert_int_equal(rc_chunk_decode(&ch, in, strlen(in), &c, &d, &dl, &err),
                     APR_SUCCESS);
    assert_int_equal(c, 8);
    assert_int_equal(dl, 5);
    assert_ptr_equal(d, in + 3);
    assert_false(rc_chunk_done(&ch));
    assert_int_equal(rc_chunk_decode(&ch, in + 8, strlen(in) - 8, &c, &d,
                                     &dl, &err), APR_SUCCESS);
    assert_int_equal(c, 7);     /* "\r\n0\r\n\r\n" */
    assert_int_equal(dl, 0);
    assert_true(rc_chunk_done(&ch));
    /* Done: further calls consume nothing. */
    assert_int_equal(rc_chunk_decode(&ch, "1\r\nx", 4, &c, &d, &dl, &err),
                     APR_SUCCESS);
    assert_int_equal(c, 0);
    assert_int_equal(dl, 0);

    /* Empty input: nothing happens. */
    rc_chunk_init(&ch);
    assert_int_equal(rc_chunk_decode(&ch, "", 0, &c, &d, &dl, &err),
                     APR_SUCCESS);
    assert_int_equal(c, 0);
    assert_int_equal(dl, 0);

    /* A zeroed struct is a valid start state too. */
    memset(&ch, 0, sizeof(ch));
    assert_int_equal(rc_chunk_decode(&ch, in, strlen(in), &c, &d, &dl, &err),
                     APR_SUCCESS);
    assert_int_equal(dl, 5);

    assert_chunk_decodes("0\r\n\r\n", "");
    assert_chunk_decodes("5\r\nhello\r\n0\r\n\r\n", "hello");
    assert_chunk_decodes("3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n", "abcdefg");
    /* Uppercase and lowercase hex, leading zeros. */
    assert_chunk_decodes("A\r\n0123456789\r\n0\r\n\r\n", "0123456789");
    assert_chunk_decodes("a\r\n0123456789\r\n0\r\n\r\n", "0123456789");
    assert_chunk_decodes("0000a\r\n0123456789\r\n000\r\n\r\n",
                         "0123456789");
    assert_chunk_decodes("1F\r\nabcdefghijklmnopqrstuvwxyz01234\r\n"
                         "0\r\n\r\n", "abcdefghijklmnopqrstuvwxyz01234");
    /* Extensions, BWS, quoted strings holding ';' and spaces. */
    assert_chunk_decodes("5;foo=bar\r\nhello\r\n0;x\r\n\r\n", "hello");
    assert_chunk_decodes("5 ;foo\r\nhello\r\n0\t;y=z\r\n\r\n", "hello");
    assert_chunk_decodes("5;a=\"q;u o\\\"ted\";b\r\nhello\r\n0\r\n\r\n",
                         "hello");
    /* Trailers are discarded. */
    assert_chunk_decodes("5\r\nhello\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\n",
                         "hello");
    /* Bare-LF line endings, everywhere or mixed. */
    assert_chunk_decodes("5\nhello\n0\n\n", "hello");
    assert_chunk_decodes("5\nhello\r\n0\r\nT: 1\n\n", "hello");
    assert_chunk_decodes("5\r\nhello\n0\nT: 1\r\n\r\n", "hello");
    /* Data containing CR, LF and NUL-free binary. */
    assert_chunk_decodes("4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n");
}

static void test_chunk_refused(void **state)
{
    (void)state;
    /* After whitespace, only ';' or the end of the line: "5 6" and
     * "5 junk" are not sizes. */
    assert_chunk_refused("5 6\r\nhello\r\n0\r\n\r\n");
    assert_chunk_refused("5 junk\r\nhello\r\n0\r\n\r\n");
    assert_chunk_decodes("5 \r\nhello\r\n0\t\r\n\r\n", "hello");
    /* Missing CRLF after data. */
    assert_chunk_refused("5\r\nhelloX\r\n0\r\n\r\n");
    assert_chunk_refused("5\r\nhello\rX\n0\r\n\r\n");
    assert_chunk_refused("5\r\nhello0\r\n\r\n");
    assert_chunk_refused("5\r\nhello world\r\n0\r\n\r\n");
    /* Bad hex, signs, prefixes. */
    assert_chunk_refused("g\r\n");
    assert_chunk_refused("5g\r\nhello\r\n");
    assert_chunk_refused("-5\r\nhello\r\n");
    assert_chunk_refused("+5\r\nhello\r\n");
    assert_chunk_refused("0x5\r\nhello\r\n");
    {
        sink_t sk;
        int d;
        apr_size_t u;
        const char *e;

        assert_int_equal(decode_once("5\0\r\n", 4, &sk, &d, &u, &e),
                         APR_EGENERAL);
    }
    /* Empty size. */
    assert_chunk_refused("\r\nhello\r\n");
    assert_chunk_refused("\nhello\r\n");
    assert_chunk_refused(";ext\r\nhello\r\n");
    assert_chunk_refused(" 5\r\nhello\r\n");
    /* Bare CR in the size line. */
    assert_chunk_refused("5\rhello\r\n");
    assert_chunk_refused("5;x\rhello\r\n");
    /* Control characters in an extension. */
    assert_chunk_refused("5;a\x01\r\nhello\r\n0\r\n\r\n");
    assert_chunk_refused("5;a\x7f\r\nhello\r\n0\r\n\r\n");
    /* Size overflow (over 2^62). */
    assert_chunk_refused("FFFFFFFFFFFFFFFF\r\n");
    assert_chunk_refused("10000000000000000\r\n");
    assert_chunk_refused("4000000000000000\r\n");
    assert_chunk_refused("ffffffffffffffffffffffffffffffff\r\n");
    /* Bad end of the body: CR then something else. */
    assert_chunk_refused("0\r\n\rX");
}

/* The largest size the decoder accepts, 2^62 - 1, is taken as is. */
static void test_chunk_big_size(void **state)
{
    rc_chunk_t ch;
    const char *in = "3FFFFFFFFFFFFFFF\r\nab";
    const char *d, *err = NULL;
    apr_size_t c, dl;

    (void)state;
    rc_chunk_init(&ch);
    assert_int_equal(rc_chunk_decode(&ch, in, strlen(in), &c, &d, &dl, &err),
                     APR_SUCCESS);
    assert_int_equal(c, strlen(in));
    assert_int_equal(dl, 2);
    assert_memory_equal(d, "ab", 2);
    assert_true(ch.remaining == (apr_off_t)APR_INT64_C(0x3FFFFFFFFFFFFFFF)
                - 2);
    assert_false(rc_chunk_done(&ch));
}

static void test_chunk_line_limits(void **state)
{
    apr_size_t n = 9000, i;
    char *s = apr_palloc(pool, 3 * n);
    sink_t sk;
    int done;
    apr_size_t used;
    const char *err;

    (void)state;
    /* Size line of 9000 leading zeros: refused. */
    memset(s, '0', n);
    strcpy(s + n, "5\r\nhello\r\n0\r\n\r\n");
    assert_int_equal(decode_once(s, strlen(s), &sk, &done, &used, &err),
                     APR_EGENERAL);
    /* 8000 leading zeros: fine. */
    memset(s, '0', 8000);
    strcpy(s + 8000, "5\r\nhello\r\n0\r\n\r\n");
    assert_int_equal(decode_once(s, strlen(s), &sk, &done, &used, &err),
                     APR_SUCCESS);
    assert_true(done);
    assert_int_equal(sk.outlen, 5);

    /* Extension of 9000 bytes: refused. */
    strcpy(s, "5;");
    memset(s + 2, 'e', n);
    strcpy(s + 2 + n, "\r\nhello\r\n0\r\n\r\n");
    assert_int_equal(decode_once(s, strlen(s), &sk, &done, &used, &err),
                     APR_EGENERAL);
    /* Extension of 8000 bytes: fine. */
    strcpy(s, "5;");
    memset(s + 2, 'e', 8000);
    strcpy(s + 8002, "\r\nhello\r\n0\r\n\r\n");
    assert_int_equal(decode_once(s, strlen(s), &sk, &done, &used, &err),
                     APR_SUCCESS);
    assert_true(done);

    /* Trailer section over 8 KiB, as one field or many lines. */
    strcpy(s, "0\r\nT: ");
    memset(s + 6, 't', n);
    strcpy(s + 6 + n, "\r\n\r\n");
    assert_int_equal(decode_once(s, strlen(s), &sk, &done, &used, &err),
                     APR_EGENERAL);
    strcpy(s, "0\r\n");
    for (i = 0; i < 1000; i++) {
        strcat(s, "T: 12345\r\n");    /* 10 bytes a line */
    }
    strcat(s, "\r\n");
    assert_int_equal(decode_once(s, strlen(s), &sk, &done, &used, &err),
                     APR_EGENERAL);
    /* Under the limit: fine. */
    strcpy(s, "0\r\n");
    for (i = 0; i < 700; i++) {
        strcat(s, "T: 12345\r\n");
    }
    strcat(s, "\r\n");
    assert_int_equal(decode_once(s, strlen(s), &sk, &done, &used, &err),
                     APR_SUCCESS);
    assert_true(done);
    assert_int_equal(used, strlen(s));
}

/* A body with extensions, a quoted string, trailers, then the start of
 * whatever follows on the connection. */
static const char split_body[] =
    "5;name=\"a;b c\"\r\nhello\r\n"
    "1A;x\r\nabcdefghijklmnopqrstuvwxyz\r\n"
    "01\n!\n"
    "0;last=1\r\nX-Trailer: v\r\nY: w\r\n\r\n"
    "NEXT";
static const char split_want[] = "helloabcdefghijklmnopqrstuvwxyz!";

/* Feeds split_body in pieces cut at the given offsets. */
static void decode_pieces(const apr_size_t *cuts, int ncuts)
{
    apr_size_t len = sizeof(split_body) - 1, at = 0, total = 0;
    rc_chunk_t ch;
    sink_t sk;
    int i;

    rc_chunk_init(&ch);
    sink_init(&sk, len);
    for (i = 0; i <= ncuts; i++) {
        apr_size_t end = i < ncuts ? cuts[i] : len, used;
        const char *err = NULL;

        assert_int_equal(feed(&ch, split_body + at, end - at, &sk, &used,
                              &err), APR_SUCCESS);
        total += used;
        if (!rc_chunk_done(&ch)) {
            assert_int_equal(used, end - at);
        }
        at = end;
    }
    assert_true(rc_chunk_done(&ch));
    assert_int_equal(total, len - 4);       /* "NEXT" left alone */
    assert_int_equal(sk.outlen, sizeof(split_want) - 1);
    assert_memory_equal(sk.out, split_want, sizeof(split_want) - 1);
}

static void test_chunk_splits(void **state)
{
    apr_size_t len = sizeof(split_body) - 1, a, b;
    apr_size_t cuts[2];

    (void)state;
    decode_pieces(NULL, 0);
    /* Two pieces, every split point. */
    for (a = 0; a <= len; a++) {
        cuts[0] = a;
        decode_pieces(cuts, 1);
    }
    /* Three pieces, every pair of split points. */
    for (a = 0; a <= len; a++) {
        for (b = a; b <= len; b++) {
            cuts[0] = a;
            cuts[1] = b;
            decode_pieces(cuts, 2);
        }
    }
}

static void test_chunk_byte_by_byte(void **state)
{
    apr_size_t len = sizeof(split_body) - 1, i, total = 0;
    rc_chunk_t ch;
    sink_t sk;

    (void)state;
    rc_chunk_init(&ch);
    sink_init(&sk, len);
    for (i = 0; i < len; i++) {
        apr_size_t used;
        const char *err = NULL;
        int was_done = rc_chunk_done(&ch);

        assert_int_equal(feed(&ch, split_body + i, 1, &sk, &used, &err),
                         APR_SUCCESS);
        assert_int_equal(used, was_done ? 0 : 1);
        total += used;
    }
    assert_true(rc_chunk_done(&ch));
    assert_int_equal(total, len - 4);
    assert_int_equal(sk.outlen, sizeof(split_want) - 1);
    assert_memory_equal(sk.out, split_want, sizeof(split_want) - 1);
}

/* Errors are the same whichever way the bad input is cut. */
static void test_chunk_refused_split(void **state)
{
    static const char *const bad[] = {
        "5\r\nhelloX\r\n0\r\n\r\n",
        "5\r\nhello\rX",
        "5g\r\n",
        "\r\n",
        "5;a\x01\r\n",
        "FFFFFFFFFFFFFFFF\r\n",
        "0\r\n\rX",
        NULL
    };
    int k;

    (void)state;
    for (k = 0; bad[k]; k++) {
        apr_size_t len = strlen(bad[k]), a;

        for (a = 0; a <= len; a++) {
            rc_chunk_t ch;
            sink_t sk;
            apr_size_t used;
            const char *err = NULL;
            apr_status_t rv;

            rc_chunk_init(&ch);
            sink_init(&sk, len);
            rv = feed(&ch, bad[k], a, &sk, &used, &err);
            if (rv == APR_SUCCESS) {
                rv = feed(&ch, bad[k] + a, len - a, &sk, &used, &err);
            }
            assert_int_equal(rv, APR_EGENERAL);
            assert_non_null(err);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_end),
        cmocka_unit_test(test_status_line),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_field_limits),
        cmocka_unit_test(test_head_then_body),
        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_parse_length),
        cmocka_unit_test(test_chunk_simple),
        cmocka_unit_test(test_chunk_refused),
        cmocka_unit_test(test_chunk_big_size),
        cmocka_unit_test(test_chunk_line_limits),
        cmocka_unit_test(test_chunk_splits),
        cmocka_unit_test(test_chunk_byte_by_byte),
        cmocka_unit_test(test_chunk_refused_split),
    };
    RC_UNIT_RUN(tests);
}
