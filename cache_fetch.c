/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * cache_fetch.c - the cache's side of talking to a backend: a miss
 * fetched and stored while it streams to the client, the revalidation
 * of a stale entry (304 merged into the stored metadata, 200 replacing
 * it), stale-if-error, the background refresh of stale-while-revalidate
 * hits, and the invalidations that follow unsafe methods.
 *
 * The request to the backend is the client's with its conditionals and
 * Range removed (a miss wants the full response to store) or replaced by
 * the stored validators (a revalidation): r->headers_in is swapped for
 * that copy only for the duration of rc_route_exchange().
 *
 * STORING: after rc_proxy_set_response() the response is what the client
 * gets (hop-by-hop removed, RevProxyPassReverse applied). If
 * rc_rules_storable() allows it and a Content-Length does not exceed the
 * maximum object size, a writer is opened with the stored fields
 * (rc_rules_store_headers(): no Set-Cookie, no Age; Content-Length is
 * recomputed from the body on hits; Surrogate-Key becomes the entry's
 * tags and is not sent to clients) and an rc_body_tee_t appends every
 * relayed piece. The entry is committed only when the body ended
 * complete: a truncated backend response aborts the write, and so does a
 * client that left unless followers stream the entry (below): then the
 * body is read on into the store alone. RC_CACHE_TOOBIG midway aborts
 * the write and the response keeps streaming uncached. A Vary'd response
 * is stored under its variant and the key's primary record becomes a
 * Vary record.
 *
 * COLLAPSED FORWARDING: cache.c takes the key's fill marker before it
 * calls rc_cache_fetch(); it is released (waking the waiters) as soon as
 * the outcome is known: at once for an uncacheable response or a
 * backend failure, after the commit (or abort) otherwise. A pool cleanup
 * of r->pool releases it on any other path. Once the writer is open it
 * is attached to the marker (with the Content-Length, if any): waiters
 * then follow the entry, streaming the body as it is stored (cache.c);
 * the tee wakes them every 16 KiB and whenever the backend pauses. An
 * abort mid-body (truncated backend response, object too big, cache
 * full) ends their responses as broken too.
 *
 * BACKGROUND REFRESH (stale-while-revalidate): the request that served
 * the stale copy and won the fill marker runs the revalidation from the
 * log_transaction hook, i.e. on the same worker thread once its response
 * has been sent and logged; the marker keeps the refresh to one at a
 * time per key. No extra thread, no extra process; the cost is that this
 * connection's next request waits for the refresh. The backend's body
 * is read here (not relayed); interim responses are not relayed (the
 * request is marked HTTP/1.0 for the exchange, which also makes its Via
 * say 1.0).
 */

#include <apr_strings.h>
#include <httpd.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>

#include "cache.h"

APLOG_USE_MODULE(revcache);

#define RC_VARIANT_SEP "\001"

/* One store in progress: the tee's context. */
typedef struct {
    rc_cache_req_t     *q;
    rc_cache_writer_t  *w;
    const char         *spec;      /* Vary spec, "" for none */
    apr_time_t          expires;
    apr_time_t          now;
} store_t;

/* One exchange with the backend with the given request fields. */
static int exchange(rc_cache_req_t *q, apr_table_t *hdrs, rc_exchange_t *x,
                    const rc_worker_t **w)
{
    request_rec *r = q->r;
    apr_table_t *saved = r->headers_in;
    int rv;

    r->headers_in = hdrs;
    rv = rc_route_exchange(r, q->m, NULL, x, w);
    r->headers_in = saved;
    return rv;
}

/* Until when the store keeps an entry: as long as it may be served
 * (fresh, stale-while-revalidate, stale-if-error), then a day longer
 * when a validator makes it worth revalidating, or a few minutes for
 * clients that accept stale copies (max-stale, their stale-if-error).
 * Memory permitting: the LRU evicts before that. */
static apr_time_t entry_expires(rc_cache_req_t *q, const rc_fresh_t *f)
{
    apr_time_t t = rc_rules_serve_until(f, &q->opts);

    if (f->flags & (RC_FRESH_ETAG | RC_FRESH_LAST_MODIFIED)) {
        return t + RC_CACHE_KEEP_VALIDATABLE;
    }
    if (f->flags & (RC_FRESH_NO_CACHE | RC_FRESH_NO_STALE)) {
        return t;   /* never served stale: useless once stale */
    }
    return t + RC_CACHE_KEEP_STALE;
}

static void fill_done(rc_cache_req_t *q, int committed)
{
    rc_cache_fill_end(q->c, &q->fill, committed);
}

static void store_failed(store_t *st, apr_status_t rv, const char *when)
{
    request_rec *r = st->q->r;

    rc_cache_write_abort(st->w);
    st->w = NULL;
    if (rv == RC_CACHE_NOSPACE) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, RCLOGNO(00320)
                      "cache full (everything pinned or being written): "
                      "%s not stored", st->q->key);
    }
    else if (rv == RC_CACHE_CORRUPT) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, RCLOGNO(00321)
                      "cache failed validation while storing %s",
                      st->q->key);
    }
    else {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r, RCLOGNO(00322)
                      "cache: %s not stored (%s): %s", st->q->key, when,
                      rv == RC_CACHE_TOOBIG ? "larger than the maximum "
                      "object size" : "store refused");
    }
    fill_done(st->q, 0);
}

/*
 * The fill owner of a plain miss got an answer it may not store: a
 * hit-for-miss marker (no body) in the key's primary record tells the
 * next requests for RevCacheHitForMiss not to wait for each other's
 * fetch. Only collapsing is affected: a cacheable answer later is stored
 * over it as usual.
 */
static void store_pass_marker(rc_cache_req_t *q, apr_time_t now)
{
    apr_interval_time_t ttl = q->dc->hit_for_miss != RC_UNSET
                              ? q->dc->hit_for_miss
                              : RC_CACHE_DEF_HIT_FOR_MISS;
    rc_cache_writer_t *pw;
    const void *meta;
    apr_size_t mlen;
    apr_status_t rv;

    if (ttl <= 0 || q->hfm || q->vary_spec || !q->fill.slot) {
        return;
    }
    meta = rc_meta_encode_pass(q->r->pool, &mlen);
    rv = rc_cache_write_begin(q->c, q->key, strlen(q->key), q->bv,
                              strlen(q->bv), meta, mlen, NULL, 0, now + ttl,
                              0, now, q->r->pool, &pw);
    if (rv == APR_SUCCESS) {
        rv = rc_cache_write_commit(pw);
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, q->r, RCLOGNO(00334)
                  "cache: hit-for-miss marker for %s %s", q->key,
                  rv == APR_SUCCESS ? "stored" : "not stored");
}

/* A Vary'd response: the key's primary record names the headers. */
static void store_vary_record(store_t *st)
{
    rc_cache_req_t *q = st->q;
    rc_cache_writer_t *vw;
    const void *meta;
    apr_size_t mlen;
    apr_status_t rv;

    /* It outlives this variant: a record whose variants are gone only
     * costs a vary-miss, a record gone before them hides them. */
    meta = rc_meta_encode_vary(q->r->pool, st->spec, &mlen);
    rv = rc_cache_write_begin(q->c, q->key, strlen(q->key), q->bv,
                              strlen(q->bv), meta, mlen, NULL, 0,
                              st->expires + RC_CACHE_KEEP_VALIDATABLE, 0,
                              st->now, q->r->pool, &vw);
    if (rv == APR_SUCCESS) {
        rv = rc_cache_write_commit(vw);
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, q->r, RCLOGNO(00323)
                      "cache: Vary record of %s not stored", q->key);
    }
}

static void tee_piece(void *ctx, const char *data, apr_size_t len)
{
    store_t *st = ctx;
    apr_status_t rv;

    if (st->w && (rv = rc_cache_write_append(st->w, data, len))
                   != APR_SUCCESS) {
        store_failed(st, rv, "body");
    }
}

/* The backend paused: followers get what was stored so far. */
static void tee_flush(void *ctx)
{
    store_t *st = ctx;

    if (st->w) {
        rc_cache_write_flush(st->w);
    }
}

/* Our client left: read on into the store if others follow it. */
static int tee_orphan(void *ctx)
{
    store_t *st = ctx;
    apr_uint32_t n;

    if (!st->w) {
        return 0;
    }
    n = rc_cache_write_abandon(st->w);
    if (n == 0) {
        st->w = NULL;
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, st->q->r, RCLOGNO(00335)
                      "cache: %s not stored: the client left", st->q->key);
        fill_done(st->q, 0);
        return 0;
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, st->q->r, RCLOGNO(00336)
                  "cache: the client left; storing %s on for %u "
                  "streaming waiters", st->q->key, n);
    return 1;
}

static void tee_end(void *ctx, int complete)
{
    store_t *st = ctx;
    apr_status_t rv;

    if (!st->w) {
        return;
    }
    if (!complete) {
        rc_cache_write_abort(st->w);
        st->w = NULL;
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, st->q->r, RCLOGNO(00324)
                      "cache: %s not stored: the body did not arrive "
                      "complete", st->q->key);
        fill_done(st->q, 0);
        return;
    }
    rv = rc_cache_write_commit(st->w);
    st->w = NULL;
    if (rv != APR_SUCCESS) {
        store_failed(st, rv, "commit");
        return;
    }
    if (*st->spec) {
        store_vary_record(st);
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, st->q->r, RCLOGNO(00325)
                  "cache: stored %s%s%s", st->q->key,
                  *st->spec ? " varying on " : "", st->spec);
    fill_done(st->q, 1);
}

/*
 * Decides whether the response now in r (after rc_proxy_set_response)
 * is stored, and if so opens the writer. Removes Surrogate-Key from
 * what the client gets. Returns NULL with st->w open, or why not.
 */
static const char *store_begin(rc_cache_req_t *q, const rc_exchange_t *x,
                               apr_time_t req_time, apr_time_t resp_time,
                               store_t *st, rc_fresh_t *f)
{
    request_rec *r = q->r;
    apr_table_t *resp = apr_table_copy(r->pool, r->headers_out);
    apr_table_t *stored;
    const char *no, *tags, *variant;
    const void *meta;
    apr_size_t mlen;
    apr_status_t rv;
    rc_cc_t rcc;

    memset(st, 0, sizeof(*st));
    st->q = q;
    st->now = resp_time;
    if (r->content_type) {
        apr_table_setn(resp, "Content-Type", r->content_type);
    }
    tags = apr_table_get(resp, "Surrogate-Key");
    apr_table_unset(r->headers_out, "Surrogate-Key");
    rc_rules_cc_response(&rcc, r->pool, resp);
    rc_rules_fresh_init(f, &q->opts, r->status, resp, &rcc, req_time,
                        resp_time);
    no = rc_rules_storable(&q->opts, r->header_only ? "HEAD" : "GET",
                           r->status, r->headers_in, &q->req_cc, resp,
                           &rcc, f);
    if (no) {
        return no;
    }
    if (x->kind == RC_BODY_LENGTH
        && (apr_uint64_t)x->length > rc_cache_max_object_size(q->c)) {
        return "too-big";
    }
    st->spec = rc_rules_vary_spec(r->pool, resp);
    if (!st->spec) {
        return "vary-star";
    }
    variant = *st->spec
        ? apr_pstrcat(r->pool, q->bv, RC_VARIANT_SEP,
                      rc_rules_vary_variant(r->pool, st->spec,
                                            r->headers_in), NULL)
        : q->bv;
    stored = rc_rules_store_headers(r->pool, resp, &rcc, resp_time);
    apr_table_unset(stored, "Content-Length");
    apr_table_unset(stored, "Surrogate-Key");
    meta = rc_meta_encode_response(r->pool, r->status, r->status_line, f,
                                   stored, &mlen);
    st->expires = entry_expires(q, f);
    if (tags) {
        apr_array_header_t *t = rc_rules_surrogate_keys(r->pool, tags);
        tags = apr_array_pstrcat(r->pool, t, ' ');
    }
    rv = rc_cache_write_begin(q->c, q->key, strlen(q->key), variant,
                              strlen(variant), meta, mlen, tags,
                              tags ? strlen(tags) : 0, st->expires, 0,
                              resp_time, r->pool, &st->w);
    if (rv != APR_SUCCESS) {
        st->w = NULL;
        store_failed(st, rv, "head");
        return rv == RC_CACHE_TOOBIG ? "too-big" : "store-failed";
    }
    /* waiters may stream the body from here on */
    rc_cache_fill_attach(q->c, &q->fill, st->w,
                         x->kind == RC_BODY_LENGTH ? (apr_int64_t)x->length
                         : x->kind == RC_BODY_NONE ? 0 : -1);
    return NULL;
}

/*
 * A 304 answered our validators: merge its fields into the stored ones,
 * recompute freshness, update the entry in place. Returns 0 when the 304
 * does not apply to the stored response (refetch), 1 otherwise with e
 * updated for serving.
 */
static int merge_304(rc_cache_req_t *q, rc_cache_entry_t *e,
                     apr_table_t *h304, apr_time_t req_time,
                     apr_time_t resp_time)
{
    request_rec *r = q->r;
    apr_table_t *merged, *stored;
    const void *meta;
    apr_size_t mlen;
    apr_status_t rv;
    rc_fresh_t f;
    rc_cc_t rcc;

    if (!rc_rules_304_applies(e->headers, h304)) {
        return 0;
    }
    merged = rc_rules_merge_304(r->pool, e->headers, h304);
    rc_rules_cc_response(&rcc, r->pool, merged);
    rc_rules_fresh_init(&f, &q->opts, e->status, merged, &rcc, req_time,
                        resp_time);
    stored = rc_rules_store_headers(r->pool, merged, &rcc, resp_time);
    apr_table_unset(stored, "Content-Length");
    apr_table_unset(stored, "Surrogate-Key");
    if (rc_rules_storable(&q->opts, "GET", e->status, r->headers_in,
                          &q->req_cc, merged, &rcc, &f) == NULL) {
        meta = rc_meta_encode_response(r->pool, e->status, e->status_line,
                                       &f, stored, &mlen);
        rv = rc_cache_hit_update_meta(e->hit, meta, mlen,
                                      entry_expires(q, &f), resp_time);
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r, RCLOGNO(00326)
                      "cache: 304 for %s, stored headers %s", q->key,
                      rv == APR_SUCCESS ? "updated" : "not updated");
    }
    e->headers = stored;
    e->fresh = f;
    return 1;
}

/* The 304's fields as the client would see them. */
static apr_table_t *fields_304(request_rec *r, rc_exchange_t *x)
{
    apr_table_t *h;

    rc_proxy_set_response(r, x);
    h = apr_table_copy(r->pool, r->headers_out);
    if (r->content_type) {
        apr_table_setn(h, "Content-Type", r->content_type);
    }
    apr_table_clear(r->headers_out);
    r->content_type = NULL;
    r->status = HTTP_OK;
    r->status_line = NULL;
    return h;
}

static int drain_body(rc_exchange_t *x, store_t *st);

/*
 * The GET fetched for a HEAD miss has its head: the client gets the
 * head at once (httpd keeps the backend's Content-Length of a HEAD), then
 * the body goes into the store, or the connection is dropped when the
 * response is not stored.
 */
static int head_as_get_done(rc_cache_req_t *q, const rc_worker_t *w,
                            rc_exchange_t *x, store_t *st, const char *no,
                            const char *why, apr_time_t resp_time,
                            const rc_fresh_t *f)
{
    request_rec *r = q->r;
    apr_bucket_brigade *bb;
    apr_status_t rv;

    r->method = "HEAD";
    r->header_only = 1;
    if (no) {
        store_pass_marker(q, resp_time);
        fill_done(q, 0);
        rc_cache_status(q, "fwd=%s; fwd-status=%d; detail=%s", why,
                        r->status, no);
        rc_proxy_abandon(x);
    }
    else {
        rc_cache_status(q, "fwd=%s; fwd-status=%d; stored; ttl=%"
                        APR_INT64_T_FMT "; detail=head-as-get", why,
                        r->status, rc_rules_ttl_seconds(f, resp_time));
    }
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(
                                    r->connection->bucket_alloc));
    rv = ap_pass_brigade(r->output_filters, bb);
    if (!no) {
        tee_end(st, drain_body(x, st));
    }
    rc_route_done(r, q->m, w, x);
    return rv == APR_SUCCESS ? OK : AP_FILTER_ERROR;
}

int rc_cache_fetch(rc_cache_req_t *q, rc_cache_entry_t *e,
                   const char *why, const char *detail)
{
    request_rec *r = q->r;
    apr_table_t *hdrs;
    apr_time_t req_time, resp_time;
    const rc_worker_t *w;
    const char *no;
    rc_exchange_t x;
    rc_body_tee_t tee;
    rc_fresh_t f;
    store_t st;
    int validating = 0, head_get = 0, rv;

    if (!e && r->header_only) {
        if (!rc_cache_head_as_get(q)) {
            /* RevCacheConvertHead Off, or a hit-for-miss marker stands:
             * forward the HEAD as it is */
            fill_done(q, 0);
            rc_cache_status(q, "fwd=%s; detail=method", why);
            return rc_route_forward(r, q->m);
        }
        /* fetched as a GET (the body goes to the store, not the client) */
        head_get = 1;
        r->method = "GET";
        r->header_only = 0;
    }
    hdrs = apr_table_copy(r->pool, r->headers_in);
    if (e) {
        validating = rc_rules_revalidate_headers(hdrs, e->headers) > 0;
    }
    else {
        rc_rules_strip_conditionals(hdrs);
    }
    req_time = apr_time_now();
    rv = exchange(q, hdrs, &x, &w);
    resp_time = apr_time_now();
    if (rv != OK) {
        if (head_get) {
            r->method = "HEAD";
            r->header_only = 1;
        }
        rc_route_done(r, q->m, w, &x);
        fill_done(q, 0);
        if (e && x.outcome != RC_OUT_CLIENT
            && rc_rules_stale_if_error(&e->fresh, &q->req_cc, &q->opts,
                                       resp_time)) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, RCLOGNO(00327)
                          "cache: backend failed, serving stale %s",
                          q->key);
            rc_cache_count_stale(q->c);
            return rc_cache_serve(q, e, "fwd=%s; fwd-status=%d; "
                                  "detail=stale-if-error", why, rv);
        }
        rc_cache_status(q, "fwd=%s; fwd-status=%d", why, rv);
        return rv;
    }
    if (e && rc_rules_is_error_status(x.head.status)
        && rc_rules_stale_if_error(&e->fresh, &q->req_cc, &q->opts,
                                   resp_time)) {
        int st5 = x.head.status;

        rc_proxy_abandon(&x);
        rc_route_done(r, q->m, w, &x);
        fill_done(q, 0);
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, RCLOGNO(00328)
                      "cache: backend answered %d, serving stale %s", st5,
                      q->key);
        rc_cache_count_stale(q->c);
        return rc_cache_serve(q, e, "fwd=%s; fwd-status=%d; "
                              "detail=stale-if-error", why, st5);
    }
    if (e && validating && x.head.status == HTTP_NOT_MODIFIED) {
        apr_table_t *h304 = fields_304(r, &x);

        rc_proxy_abandon(&x);
        rc_route_done(r, q->m, w, &x);
        if (merge_304(q, e, h304, req_time, resp_time)) {
            fill_done(q, 1);
            return rc_cache_serve(q, e, "fwd=%s; fwd-status=304; ttl=%"
                                  APR_INT64_T_FMT, why,
                                  rc_rules_ttl_seconds(&e->fresh,
                                                       apr_time_now()));
        }
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, RCLOGNO(00329)
                      "cache: 304 for %s does not match the stored "
                      "response; fetching it whole", q->key);
        return rc_cache_fetch(q, NULL, why, "304-mismatch");
    }

    rc_proxy_set_response(r, &x);
    no = store_begin(q, &x, req_time, resp_time, &st, &f);
    if (head_get) {
        return head_as_get_done(q, w, &x, &st, no, why, resp_time, &f);
    }
    if (no) {
        if (!e) {
            store_pass_marker(q, resp_time);
        }
        fill_done(q, 0);
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, RCLOGNO(00330)
                      "cache: %s (%d) not stored: %s", q->key, r->status,
                      no);
        rc_cache_status(q, "fwd=%s; fwd-status=%d; detail=%s", why,
                        r->status, no);
        rv = rc_proxy_relay_body(r, w, &x, NULL);
    }
    else {
        rc_cache_status(q, "fwd=%s; fwd-status=%d; stored; ttl=%"
                        APR_INT64_T_FMT "%s%s", why, r->status,
                        rc_rules_ttl_seconds(&f, resp_time),
                        detail ? "; detail=" : "", detail ? detail : "");
        tee.piece = tee_piece;
        tee.end = tee_end;
        tee.ctx = &st;
        tee.flush = tee_flush;
        tee.orphan = tee_orphan;
        rv = rc_proxy_relay_body(r, w, &x, &tee);
        if (st.w) {
            /* the relay ended without telling the tee */
            rc_cache_write_abort(st.w);
            st.w = NULL;
            fill_done(q, 0);
        }
    }
    rc_route_done(r, q->m, w, &x);
    return rv;
}

/* Reads a response body into a writer (or just to its end). Returns
 * non-zero when the body was complete. Releases the connection. */
static int drain_body(rc_exchange_t *x, store_t *st)
{
    const char *data, *err = NULL;
    apr_size_t len;
    apr_status_t rv;

    for (;;) {
        rv = rc_conn_read_body(x->conn, 0, &data, &len, &err);
        if (rv == APR_EAGAIN) {
            tee_flush(st);      /* followers get what was stored */
            rv = rc_conn_read_body(x->conn, 1, &data, &len, &err);
        }
        if (rv == APR_SUCCESS) {
            tee_piece(st, data, len);
            continue;
        }
        rc_backend_release(x->conn, rv == APR_EOF && x->keepalive);
        x->conn = NULL;
        return rv == APR_EOF;
    }
}

void rc_cache_refresh(rc_cache_req_t *q)
{
    request_rec *r = q->r;
    rc_cache_entry_t *e = q->stale;
    apr_table_t *hdrs = apr_table_copy(r->pool, r->headers_in);
    apr_time_t req_time, resp_time;
    const rc_worker_t *w;
    const char *no;
    rc_exchange_t x;
    rc_fresh_t f;
    store_t st;
    int validating, proto = r->proto_num, rv;

    validating = rc_rules_revalidate_headers(hdrs, e->headers) > 0;
    /* The client's response is gone: start from an empty one (its
     * header filter merged err_headers_out into headers_out). */
    apr_table_clear(r->headers_out);
    apr_table_clear(r->err_headers_out);
    r->content_type = NULL;
    req_time = apr_time_now();
    r->proto_num = HTTP_VERSION(1, 0);     /* relay no interim response */
    rv = exchange(q, hdrs, &x, &w);
    r->proto_num = proto;
    resp_time = apr_time_now();
    if (rv != OK) {
        rc_route_done(r, q->m, w, &x);
        fill_done(q, 0);
        return;
    }
    if (validating && x.head.status == HTTP_NOT_MODIFIED) {
        apr_table_t *h304 = fields_304(r, &x);

        rc_proxy_abandon(&x);
        rc_route_done(r, q->m, w, &x);
        merge_304(q, e, h304, req_time, resp_time);
        fill_done(q, 1);
        return;
    }
    rc_proxy_set_response(r, &x);
    no = store_begin(q, &x, req_time, resp_time, &st, &f);
    if (no) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, RCLOGNO(00331)
                      "cache: refresh of %s (%d) not stored: %s", q->key,
                      r->status, no);
        rc_proxy_abandon(&x);
        fill_done(q, 0);
    }
    else {
        tee_end(&st, drain_body(&x, &st));
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, RCLOGNO(00332)
                      "cache: background refresh of %s done", q->key);
    }
    rc_route_done(r, q->m, w, &x);
}

void rc_cache_invalidate(rc_cache_req_t *q)
{
    request_rec *r = q->r;
    apr_array_header_t *keys;
    apr_size_t n;
    int i;

    keys = rc_rules_invalidations(r->pool, &q->opts, r->method, r->status,
                                  ap_http_scheme(r), ap_get_server_name(r),
                                  ap_get_server_port(r),
                                  rc_cache_key_path(r), r->args,
                                  r->headers_out);
    for (i = 0; i < keys->nelts; i++) {
        const char *k = APR_ARRAY_IDX(keys, i, const char *);

        n = rc_cache_purge_key(q->c, k, strlen(k));
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, RCLOGNO(00333)
                      "cache: %s %s invalidates %s (%" APR_SIZE_T_FMT
                      " entries)", r->method, r->uri, k, n);
    }
}
