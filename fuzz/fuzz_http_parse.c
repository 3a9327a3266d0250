/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * fuzz_http_parse.c -- libFuzzer target for http_parse.c, the code that
 * reads whatever a backend chooses to send.
 *
 * One input drives everything:
 *   - rc_http_head_end() on the whole input, then rc_http_parse_head()
 *     on the head it found (or on the whole input when none), then
 *     rc_http_body_framing() for a GET and a HEAD request, and
 *     rc_http_parse_length() on each Content-Length value;
 *   - rc_chunk_decode() on the bytes after the head when the input is
 *     a response ("HTTP/" and a head end), else on the input minus its
 *     first byte, three ways: in one piece, in
 *     two pieces split at a point derived from the first input byte, and
 *     (for inputs up to 4 KiB) byte by byte.
 *
 * Invariants checked (a violation aborts, which libFuzzer reports):
 * consumed <= input, returned data inside the consumed input, progress
 * on every call that is not done, the same status / output / consumed
 * count / done state whichever way the input was cut, and a parsed head
 * that respects what the parser promises (version, status range, field
 * names of tchar, values trimmed and free of control characters).
 *
 * Build and run: make -C fuzz run SECONDS=30
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "http_parse.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static apr_pool_t *root;

/* ------------------------------------------------------------------ */
/* Head                                                                  */

static int is_tchar(unsigned char c)
{
    return apr_isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int check_field(void *baton, const char *key, const char *value)
{
    size_t i, n = strlen(value);

    (void)baton;
    CHECK(key[0] != '\0');
    for (i = 0; key[i]; i++) {
        CHECK(is_tchar((unsigned char)key[i]));
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
    }
    if (n) {
        CHECK(value[0] != ' ' && value[0] != '\t');
        CHECK(value[n - 1] != ' ' && value[n - 1] != '\t');
    }
    if (!strcasecmp(key, "Content-Length")) {
        apr_off_t len = -1;

        if (rc_http_parse_length(value, &len) == 0) {
            CHECK(len >= 0);
        }
    }
    return 1;
}

static void fuzz_head(apr_pool_t *p, const char *buf, size_t size,
                      size_t hend)
{
    static const rc_http_limits_t lims[2] = { { 8192, 100 }, { 64, 2 } };
    int l;

    for (l = 0; l < 2; l++) {
        rc_resp_head_t head;
        const char *err = NULL;
        apr_status_t rv;
        int head_req;

        memset(&head, 0, sizeof(head));
        rv = rc_http_parse_head(p, buf, hend ? hend : size, &lims[l], &head,
                                &err);
        if (rv != APR_SUCCESS) {
            CHECK(rv == APR_EGENERAL);
            CHECK(err != NULL && err[0] != '\0');
            continue;
        }
        /* Without a head end the parser must not find one either. */
        CHECK(hend != 0);
        CHECK(hend <= lims[l].max_head_bytes);
        CHECK(head.version == 10 || head.version == 11);
        CHECK(head.status >= 100 && head.status <= 599);
        CHECK(head.reason != NULL);
        CHECK(head.headers != NULL);
        CHECK(apr_table_elts(head.headers)->nelts <= lims[l].max_fields);
        apr_table_do(check_field, NULL, head.headers, NULL);

        for (head_req = 0; head_req < 2; head_req++) {
            rc_body_kind_e kind = (rc_body_kind_e)-1;
            apr_off_t length = -2;

            err = NULL;
            rv = rc_http_body_framing(&head, head_req, &kind, &length,
                                      &err);
            if (rv != APR_SUCCESS) {
                CHECK(rv == APR_EGENERAL);
                CHECK(err != NULL && err[0] != '\0');
                continue;
            }
            CHECK(kind == RC_BODY_NONE || kind == RC_BODY_LENGTH
                  || kind == RC_BODY_CHUNKED || kind == RC_BODY_CLOSE);
            if (kind == RC_BODY_LENGTH) {
                CHECK(length > 0);
            }
            if (head_req || head.status < 200 || head.status == 204
                || head.status == 304) {
                CHECK(kind == RC_BODY_NONE);
            }
            if (kind == RC_BODY_CHUNKED) {
                CHECK(head.version == 11);
                CHECK(apr_table_get(head.headers, "Content-Length") == NULL);
            }
        }
    }
}

/* ------------------------------------------------------------------ */
/* Chunked                                                               */

typedef struct {
    apr_status_t rv;
    int          done;
    size_t       consumed;
    char        *out;
    size_t       outlen;
} run_t;

/* Feeds in[0..len) the way backend.c does; stops at an error or the end
 * of the body. Returns non-zero when decoding must stop. */
static int feed(rc_chunk_t *ch, const char *in, size_t len, run_t *r)
{
    size_t off = 0;

    while (off < len && !rc_chunk_done(ch)) {
        size_t used = (size_t)-1, dl = (size_t)-1;
        const char *d = NULL, *err = NULL;
        apr_status_t rv;

        rv = rc_chunk_decode(ch, in + off, len - off, &used, &d, &dl, &err);
        if (rv != APR_SUCCESS) {
            CHECK(rv == APR_EGENERAL);
            CHECK(err != NULL && err[0] != '\0');
            r->rv = rv;
            r->consumed += off;
            return 1;
        }
        CHECK(used <= len - off);
        if (dl) {
            CHECK(d >= in + off && d + dl <= in + off + used);
            memcpy(r->out + r->outlen, d, dl);
            r->outlen += dl;
        }
        else {
            CHECK(used > 0 || rc_chunk_done(ch));
        }
        off += used;
    }
    r->consumed += off;
    return rc_chunk_done(ch);
}

static void decode(const char *in, size_t len, const size_t *cuts,
                   int ncuts, run_t *r)
{
    rc_chunk_t ch;
    size_t at = 0;
    int i;

    rc_chunk_init(&ch);
    r->rv = APR_SUCCESS;
    r->consumed = 0;
    r->outlen = 0;
    for (i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;

        if (feed(&ch, in + at, end - at, r)) {
            break;
        }
        at = end;
    }
    r->done = rc_chunk_done(&ch);
    CHECK(r->consumed <= len);
    CHECK(r->outlen <= r->consumed);
    if (r->done) {
        CHECK(r->rv == APR_SUCCESS);
    }
}

static void same(const run_t *a, const run_t *b)
{
    CHECK(a->rv == b->rv);
    CHECK(a->done == b->done);
    CHECK(a->outlen == b->outlen);
    CHECK(memcmp(a->out, b->out, a->outlen) == 0);
    if (a->rv == APR_SUCCESS) {
        CHECK(a->consumed == b->consumed);
    }
}

static void fuzz_chunked(const char *in, size_t len, unsigned char sel)
{
    run_t whole, split;
    size_t cut = (size_t)sel * (len + 1) / 256;

    whole.out = malloc(len + 1);
    split.out = malloc(len + 1);
    decode(in, len, NULL, 0, &whole);
    decode(in, len, &cut, 1, &split);
    same(&whole, &split);
    if (len <= 4096) {
        size_t *cuts = malloc((len + 1) * sizeof(*cuts));
        size_t i;

        for (i = 0; i < len; i++) {
            cuts[i] = i + 1;
        }
        decode(in, len, cuts, (int)len, &split);
        same(&whole, &split);
        free(cuts);
    }
    free(whole.out);
    free(split.out);
}

/* ------------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    apr_pool_t *p;
    size_t hend;

    if (!root) {
        apr_initialize();
        apr_pool_create(&root, NULL);
    }
    apr_pool_create(&p, root);

    hend = rc_http_head_end(buf, size);
    CHECK(hend <= size);
    if (hend) {
        CHECK(hend >= 2 && buf[hend - 1] == '\n');
        /* The head end is a property of the head alone. */
        CHECK(rc_http_head_end(buf, hend) == hend);
        CHECK(rc_http_head_end(buf, hend - 1) == 0);
    }
    fuzz_head(p, buf, size, hend);

    /* A NUL-terminated copy for the list parser. */
    {
        char *s = apr_pstrmemdup(p, buf, size > 256 ? 256 : size);
        apr_off_t len = -1;

        if (rc_http_parse_length(s, &len) == 0) {
            CHECK(len >= 0);
        }
    }

    /* A response: decode its body. Anything else is a selector byte and
     * a chunked body (which ends in an empty line, so it always looks
     * like it has a "head"). */
    if (hend && size >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        fuzz_chunked(buf + hend, size - hend, data[0]);
    }
    else if (size > 0) {
        fuzz_chunked(buf + 1, size - 1, data[0]);
    }
    apr_pool_destroy(p);
    return 0;
}
