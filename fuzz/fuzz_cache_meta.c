/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * fuzz_cache_meta.c -- libFuzzer target for cache_meta.c, the decoder of
 * the metadata blobs read back from shared memory (a bug elsewhere, or a
 * process killed mid-write, can leave anything there).
 *
 * One input is decoded as a blob.  Invariants checked (a violation
 * aborts, which libFuzzer reports):
 *   - a blob that decodes re-encodes to exactly the same bytes (the
 *     decoder accepts canonical blobs only);
 *   - a response has a status in 200..999, at most RC_META_MAX_FIELDS
 *     fields, and no NUL inside the bytes it used.
 * Inputs whose first byte is 0xFF are turned around: the rest is read as
 * NUL-separated "name", "value" pairs, encoded, and must decode to the
 * same fields (so the fuzzer also drives the encoder, the date
 * recognition included).
 *
 * Build and run: make -C fuzz run-meta SECONDS=30
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "cache_meta.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static apr_pool_t *root;

static void decode_reencode(apr_pool_t *p, const uint8_t *data, size_t size)
{
    const void *again;
    apr_size_t len;
    rc_meta_t m;

    switch (rc_meta_decode(p, data, size, &m)) {
    case RC_META_RESPONSE:
        CHECK(m.status >= 200 && m.status <= 999);
        CHECK(apr_table_elts(m.headers)->nelts <= RC_META_MAX_FIELDS);
        again = rc_meta_encode_response(p, m.status, m.status_line,
                                        &m.fresh, m.headers, &len);
        break;
    case RC_META_VARY:
        again = rc_meta_encode_vary(p, m.vary_spec, &len);
        break;
    case RC_META_PASS:
        again = rc_meta_encode_pass(p, &len);
        break;
    default:
        return;
    }
    CHECK(len == size && memcmp(again, data, size) == 0);
}

static void encode_decode(apr_pool_t *p, const uint8_t *data, size_t size)
{
    char *s = apr_pstrmemdup(p, (const char *)data, size), *end = s + size;
    apr_table_t *h = apr_table_make(p, 8);
    const apr_array_header_t *a, *b;
    const apr_table_entry_t *ea, *eb;
    rc_fresh_t f;
    const void *blob;
    apr_size_t len;
    rc_meta_t m;
    int i;

    while (s < end && apr_table_elts(h)->nelts < RC_META_MAX_FIELDS) {
        const char *k = s, *v;

        s += strlen(s) + 1;
        v = s < end ? s : "";
        s += s < end ? strlen(s) + 1 : 0;
        apr_table_addn(h, k, v);
    }
    memset(&f, 0, sizeof(f));
    f.response_time = (apr_int64_t)size * 999983;
    f.sie = -1;
    blob = rc_meta_encode_response(p, 200, "200 OK", &f, h, &len);
    CHECK(rc_meta_decode(p, blob, len, &m) == RC_META_RESPONSE);
    a = apr_table_elts(h);
    b = apr_table_elts(m.headers);
    CHECK(a->nelts == b->nelts);
    ea = (const apr_table_entry_t *)a->elts;
    eb = (const apr_table_entry_t *)b->elts;
    for (i = 0; i < a->nelts; i++) {
        CHECK(strcmp(ea[i].key, eb[i].key) == 0);
        CHECK(strcmp(ea[i].val, eb[i].val) == 0);
    }
    CHECK(m.fresh.response_time == f.response_time && m.fresh.sie == -1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;

    if (!root) {
        apr_initialize();
        apr_pool_create(&root, NULL);
    }
    apr_pool_create(&p, root);
    if (size > 0 && data[0] == 0xFF) {
        encode_decode(p, data + 1, size - 1);
    }
    else {
        decode_reencode(p, data, size);
    }
    apr_pool_destroy(p);
    return 0;
}
