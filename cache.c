/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * cache.c - the httpd glue of the shared-memory HTTP cache: the segment's
 * life cycle, the hooks, and the request side of a lookup: key, entry
 * (primary record -> Vary -> variant), the hit decision, serving a hit,
 * PURGE, Cache-Status, and the counters the status page shows.
 * cache_fetch.c does everything that talks to a backend (misses, stores,
 * revalidation, stale-if-error, the background refresh, invalidation);
 * cache_conf.c the directives.
 *
 * SEGMENT: one anonymous apr_shm segment, created in post_config in the
 * process pool (s->process->pool, found again through its userdata), so
 * it outlives configuration cycles: a graceful restart with the same
 * RevCacheSize re-attaches it and keeps every entry (rc_cache_attach
 * checks magic, layout and size); a changed size or layout (e.g. a new
 * build whose RC_SEG_VERSION differs: rc_cache_reusable) destroys it and
 * makes a new one (children of the old generation keep their own mapping
 * until they exit). Children inherit the mapping by fork: child_init has
 * nothing to do. The parent reaps the pins and writes of dead children
 * and expired entries from the monitor hook every RC_REAP_INTERVAL.
 *
 * ENTRIES: the store is keyed by the URL key (rc_rules_url_key) so that
 * a purge or an invalidation of a URL drops every variant in one call.
 * The store's variant string carries the rest of the identity:
 *     (url key, bv)                     the primary record of the URL
 *     (url key, bv "\001" vary-values)  a variant of a Vary'd response
 * where bv ("base variant") holds the RevCacheKeyHeaders values. The
 * primary record is either the response itself (no Vary) or a Vary
 * record naming the request headers it varies on. Metadata blobs
 * (cache_meta.c) carry status, rc_fresh_t and the stored header fields;
 * they are validated when read, and a bad one is logged, purged and
 * treated as a miss.
 *
 * HITS are served straight from shared memory: each piece of the pinned
 * body becomes a transient bucket (no copy unless a filter sets it
 * aside, which copies once); the pin is released by the cleanup of
 * r->pool that rc_cache_lookup registered, after the EOR bucket has
 * passed, i.e. after everything before it was written or set aside.
 * The whole body goes down in one brigade with its EOS, so httpd's
 * byterange filter answers Range requests from the cached copy.
 *
 * QUICK HANDLER (RevCacheQuickHandler On): rc_cache_quick() does the
 * first lookup of a GET/HEAD in httpd's quick_handler hook (the caller,
 * mod_revcache.c, has rebuilt the path and per-directory config the
 * handler would see) and serves the entry there when it can go out as
 * is (fresh, max-stale, 304 to a client conditional), after running the
 * insert_filter hook the handler phase would have run. Otherwise it
 * declines, and the lookup's result (entry pinned, or the miss) waits in
 * its rc_cache_req_t until rc_cache_handle() takes it over
 * (take_early()): one lookup per request, so the counters read the same
 * with the quick handler on or off.
 *
 * STREAMED COLLAPSED FORWARDING: a plain GET that finds another request
 * fetching its key (fill marker BUSY) follows that fetch instead of
 * waiting for its end: as soon as the owner has the response head and
 * opened its writer (cache_fetch.c attaches it to the marker), the
 * follower pins the entry being written, answers with the stored head
 * (Content-Length only if the backend gave one) and streams the body as
 * it is stored: the pieces it finds go down as transient buckets with a
 * FLUSH, then it sleeps (futex) until the writer appends more, at most
 * the route's I/O timeout. Until the head is there it waits as before
 * (RevCacheLockTimeout), woken when the writer is attached. If the write
 * is aborted mid-body the follower's response is ended as broken
 * (rc_proxy_abort_client), never passed off as complete. Range,
 * conditional and HEAD requests wait for the end and are served from the
 * stored entry, as before.
 *
 * PURGE (RevCachePurge On, after httpd's access control so Require
 * applies): "PURGE /path" drops every variant of that URL; with a
 * request header "X-Purge-Tag: t1 t2" (or "Surrogate-Key: ...") it drops
 * every entry the backend labelled with one of the tags (Surrogate-Key
 * response header, kept with the entry and not sent to clients). The
 * answer is 200 {"purged": N}, or 404 when nothing was dropped.
 *
 * Pools: per request everything goes to r->pool (hit handles, writers,
 * metadata copies); the segment handle lives in pconf (one cycle), the
 * segment itself in the process pool. No per-request global state.
 */

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_shm.h>
#include <httpd.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <ap_mpm.h>
#include <mpm_common.h>
#include <util_filter.h>

#include "cache.h"

APLOG_USE_MODULE(revcache);

#define RC_SEG_USERDATA    "mod_revcache:cache-segment"
#define RC_REAP_INTERVAL   apr_time_from_sec(5)
#define RC_VARIANT_SEP     "\001"
#define RC_FOLLOW_BATCH    (256 * 1024)  /* bytes sent per FLUSH at most */

/* The segment kept in the process pool across configuration cycles. */
typedef struct {
    apr_shm_t   *shm;
    apr_size_t   size;
} rc_seg_t;

/* This configuration cycle's handle on the segment (NULL: no cache).
 * Set in post_config, inherited by the children. */
static rc_cache_t *segment;
/* Parent only: when the monitor hook last reaped. */
static apr_time_t last_reap;

rc_cache_t *rc_cache_segment(void)
{
    return segment;
}

/* ------------------------------------------------------------------ */
/* Metadata blobs (the codec is cache_meta.c)                          */

/* Reads the blob of a pinned entry. Returns the kind (RC_META_*), or 0
 * when it fails validation. */
static int meta_read(apr_pool_t *p, rc_cache_hit_t *h, rc_cache_entry_t *e,
                     const char **spec)
{
    const void *raw;
    apr_size_t len;
    rc_meta_t m;

    if (rc_cache_hit_meta(h, p, &raw, &len) != APR_SUCCESS) {
        return 0;
    }
    switch (rc_meta_decode(p, raw, len, &m)) {
    case RC_META_VARY:
        *spec = m.vary_spec;
        return RC_META_VARY;
    case RC_META_PASS:
        return RC_META_PASS;
    case RC_META_RESPONSE:
        e->hit = h;
        e->status = m.status;
        e->status_line = m.status_line;
        e->fresh = m.fresh;
        e->body_len = rc_cache_hit_body_len(h);
        e->headers = m.headers;
        return RC_META_RESPONSE;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------ */
/* Lookups                                                             */

/* One store lookup; NULL on a miss. A broken entry is purged. */
static rc_cache_hit_t *lookup(rc_cache_req_t *q, const char *variant,
                              apr_time_t now)
{
    request_rec *r = q->r;
    rc_cache_hit_t *h;
    apr_status_t rv;

    rv = rc_cache_lookup(q->c, q->key, strlen(q->key), variant,
                         strlen(variant), now, r->pool, &h);
    if (rv == APR_SUCCESS) {
        return h;
    }
    if (rv == RC_CACHE_CORRUPT) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, RCLOGNO(00302)
                      "cache index failed validation looking up %s; "
                      "answering as a miss", q->key);
    }
    else if (rv == RC_CACHE_BUSY) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, RCLOGNO(00303)
                      "cache pin slots exhausted: %s served as a miss",
                      q->key);
    }
    return NULL;
}

static void entry_broken(rc_cache_req_t *q, rc_cache_hit_t *h)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, RCLOGNO(00304)
                  "cache entry of %s has corrupt metadata; purged",
                  q->key);
    rc_cache_hit_release(h);
    rc_cache_purge_key(q->c, q->key, strlen(q->key));
}

rc_cache_entry_t *rc_cache_find(rc_cache_req_t *q, apr_time_t now,
                                const char **why)
{
    request_rec *r = q->r;
    rc_cache_entry_t *e = apr_pcalloc(r->pool, sizeof(*e));
    rc_cache_hit_t *h;
    const char *spec = NULL;
    int kind;

    *why = "uri-miss";
    q->vary_spec = NULL;
    q->variant = q->bv;
    q->mkey = apr_pstrcat(r->pool, q->key, "\n", q->bv, NULL);
    if (!(h = lookup(q, q->bv, now))) {
        return NULL;
    }
    kind = meta_read(r->pool, h, e, &spec);
    if (kind == RC_META_PASS) {
        /* a recent answer was uncacheable: a miss, but no collapsing */
        rc_cache_hit_release(h);
        q->hfm = 1;
        return NULL;
    }
    if (kind == RC_META_VARY) {
        q->vary_spec = spec;
        q->variant = apr_pstrcat(r->pool, q->bv, RC_VARIANT_SEP,
                                 rc_rules_vary_variant(r->pool, spec,
                                                       r->headers_in),
                                 NULL);
        q->mkey = apr_pstrcat(r->pool, q->key, "\n", q->variant, NULL);
        rc_cache_hit_release(h);
        *why = "vary-miss";
        if (!(h = lookup(q, q->variant, now))) {
            return NULL;
        }
        kind = meta_read(r->pool, h, e, &spec);
        if (kind == RC_META_VARY) {
            kind = 0;
        }
    }
    if (kind != RC_META_RESPONSE) {
        entry_broken(q, h);
        *why = "uri-miss";
        return NULL;
    }
    return e;
}

/* ------------------------------------------------------------------ */
/* Responses from the cache                                            */

/* Formats nothing unless the header is sent (RevCacheStatusHeader). */
static void status_v(rc_cache_req_t *q, const char *fmt, va_list ap)
{
    if (q->dc->status_header != 1) {
        return;
    }
    apr_table_setn(q->r->err_headers_out, "Cache-Status",
                   apr_pstrcat(q->r->pool, "revcache; ",
                               apr_pvsprintf(q->r->pool, fmt, ap),
                               q->collapsed ? "; collapsed" : "", NULL));
}

void rc_cache_status(rc_cache_req_t *q, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    status_v(q, fmt, ap);
    va_end(ap);
}

/* The response fields of a stored entry, and its Age. */
static void stored_head(request_rec *r, const rc_cache_entry_t *e,
                        apr_time_t now)
{
    const apr_array_header_t *arr = apr_table_elts(e->headers);
    const apr_table_entry_t *he = (const apr_table_entry_t *)arr->elts;
    int i;

    apr_table_clear(r->headers_out);
    r->content_type = NULL;
    for (i = 0; i < arr->nelts; i++) {
        if (!strcasecmp(he[i].key, "Content-Type")) {
            ap_set_content_type(r, apr_pstrdup(r->pool, he[i].val));
        }
        else {
            apr_table_addn(r->headers_out, he[i].key, he[i].val);
        }
    }
    apr_table_setn(r->headers_out, "Age",
                   apr_off_t_toa(r->pool, (apr_off_t)
                                 rc_rules_age_seconds(&e->fresh, now)));
}

static int filters_init(ap_filter_t *f)
{
    for (; f; f = f->next) {
        if (f->frec->filter_init_func) {
            int rv = f->frec->filter_init_func(f);

            if (rv != OK) {
                return rv;
            }
        }
    }
    return OK;
}

/* The quick handler runs before what ap_invoke_handler() does for the
 * handler phase: the insert_filter hook, then the filters' init
 * functions. Run them, so that SetOutputFilter, mod_filter
 * (AddOutputFilterByType DEFLATE ...), mod_headers and mod_expires
 * apply to its hits as they do to the handler's. */
static int quick_filters(request_rec *r)
{
    int rv;

    ap_run_insert_filter(r);
    if ((rv = filters_init(r->input_filters)) != OK) {
        return rv;
    }
    return filters_init(r->output_filters);
}

int rc_cache_serve(rc_cache_req_t *q, rc_cache_entry_t *e,
                   const char *status_fmt, ...)
{
    request_rec *r = q->r;
    conn_rec *c = r->connection;
    apr_time_t now = apr_time_now();
    const char *how = q->quick ? ", quick handler" : "";
    apr_bucket_brigade *bb;
    rc_cache_iter_t it;
    rc_cond_t cond;
    apr_status_t rv;
    va_list ap;

    cond = rc_rules_client_conditional(r->method, r->headers_in,
                                       e->headers, &e->fresh);
    if (cond == RC_COND_PASS) {
        /* If-Match / If-Unmodified-Since: the origin decides. */
        if (q->quick) {
            return DECLINED;
        }
        rc_cache_status(q, "fwd=request; detail=conditional");
        return rc_route_forward(r, q->m);
    }
    /* The body first: a broken one is found before r is touched. */
    bb = apr_brigade_create(r->pool, c->bucket_alloc);
    if (cond != RC_COND_NOT_MODIFIED && !r->header_only
        && e->status != HTTP_NO_CONTENT) {
        const char *ptr;
        apr_size_t len;

        rc_cache_hit_body_first(e->hit, &it);
        while ((rv = rc_cache_hit_body_next(e->hit, &it, &ptr, &len))
               == APR_SUCCESS) {
            APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(
                                            ptr, len, c->bucket_alloc));
        }
        if (rv != APR_EOF) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, RCLOGNO(00307)
                          "cache: body of %s failed validation; "
                          "purged, forwarding instead", q->key);
            apr_brigade_cleanup(bb);
            rc_cache_purge_key(q->c, q->key, strlen(q->key));
            if (q->quick) {
                /* the handler looks up again (and misses) */
                rc_cache_hit_release(e->hit);
                q->looked_up = 0;
                return DECLINED;
            }
            rc_cache_status(q, "fwd=uri-miss; detail=corrupt");
            return rc_route_forward(r, q->m);
        }
    }
    if (q->quick) {
        int st = quick_filters(r);

        if (st != OK) {
            return st;
        }
    }
    va_start(ap, status_fmt);
    status_v(q, status_fmt, ap);
    va_end(ap);

    stored_head(r, e, now);
    if (cond == RC_COND_NOT_MODIFIED) {
        r->status = HTTP_NOT_MODIFIED;
        r->status_line = NULL;
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, RCLOGNO(00305)
                      "cache: 304 from the stored %s%s", q->key, how);
    }
    else {
        r->status = e->status;
        r->status_line = e->status_line;
        if (e->status != HTTP_NO_CONTENT) {
            ap_set_content_length(r, (apr_off_t)e->body_len);
        }
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, RCLOGNO(00306)
                      "cache: hit %s (%" APR_UINT64_T_FMT " bytes%s)",
                      q->key, e->body_len, how);
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(c->bucket_alloc));
    ap_pass_brigade(r->output_filters, bb);
    return OK;
}

/* Serves a usable entry (RC_HIT_FRESH, or RC_HIT_STALE within the
 * client's max-stale), counting the stale ones. */
static int serve_hit(rc_cache_req_t *q, rc_cache_entry_t *e, rc_hit_t hk,
                     apr_time_t now)
{
    int rv = rc_cache_serve(q, e, "hit; ttl=%" APR_INT64_T_FMT "%s",
                            rc_rules_ttl_seconds(&e->fresh, now),
                            hk == RC_HIT_STALE ? "; detail=max-stale" : "");

    if (hk == RC_HIT_STALE && rv != DECLINED) {
        rc_cache_count_stale(q->c);
    }
    return rv;
}

/* ------------------------------------------------------------------ */
/* PURGE                                                               */

static int purge(rc_cache_req_t *q)
{
    request_rec *r = q->r;
    const char *tags = apr_table_get(r->headers_in, "X-Purge-Tag");
    apr_size_t n = 0;
    int i;

    if (!tags) {
        tags = apr_table_get(r->headers_in, "Surrogate-Key");
    }
    if (tags) {
        apr_array_header_t *t = rc_rules_surrogate_keys(r->pool, tags);

        for (i = 0; i < t->nelts; i++) {
            const char *tag = APR_ARRAY_IDX(t, i, const char *);
            n += rc_cache_purge_tag(q->c, tag, strlen(tag));
        }
    }
    else {
        n = rc_cache_purge_key(q->c, q->key, strlen(q->key));
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, RCLOGNO(00308)
                  "cache: PURGE %s%s: %" APR_SIZE_T_FMT " entries dropped",
                  tags ? "tags " : "", tags ? tags : q->key, n);
    r->status = n ? HTTP_OK : HTTP_NOT_FOUND;
    ap_set_content_type(r, "application/json");
    ap_rprintf(r, "{\"purged\": %" APR_SIZE_T_FMT "}\n", n);
    return OK;
}

/* ------------------------------------------------------------------ */
/* The request flow                                                    */

const char *rc_cache_key_path(request_rec *r)
{
    return ap_os_escape_path(r->pool, r->uri, 1);
}

int rc_cache_enabled(request_rec *r)
{
    rc_dir_conf_t *d = ap_get_module_config(r->per_dir_config,
                                            &revcache_module);

    return segment && d->cache->enable == 1;
}

static rc_cache_req_t *req_new(request_rec *r, rc_match_t *m)
{
    rc_dir_conf_t *d = ap_get_module_config(r->per_dir_config,
                                            &revcache_module);
    rc_cache_req_t *q = apr_pcalloc(r->pool, sizeof(*q));

    q->r = r;
    q->m = m;
    q->dc = d->cache;
    q->c = segment;
    rc_cache_opts(q->dc, &q->opts);
    rc_rules_cc_request(&q->req_cc, r->pool, r->headers_in);
    q->key = rc_rules_url_key(r->pool, &q->opts, ap_http_scheme(r),
                              ap_get_server_name(r), ap_get_server_port(r),
                              rc_cache_key_path(r), r->args);
    q->bv = rc_rules_key(r->pool, &q->opts, "", r->headers_in);
    q->variant = q->bv;
    m->cache = q;
    return q;
}

int rc_cache_head_as_get(const rc_cache_req_t *q)
{
    return q->r->header_only && q->dc->convert_head != 0 && !q->hfm;
}

static apr_interval_time_t lock_timeout(const rc_cache_req_t *q)
{
    return q->dc->lock_timeout != RC_UNSET ? q->dc->lock_timeout
                                           : RC_CACHE_DEF_LOCK_TIMEOUT;
}

/* Waits for the fetch another request runs for our key: until its end,
 * or (head) until its writer is attached; at most t. */
static apr_status_t wait_fill(rc_cache_req_t *q, apr_interval_time_t t,
                              int head)
{
    apr_status_t rv;

    rv = head ? rc_cache_fill_wait_head(q->c, q->mkey, strlen(q->mkey), t)
              : rc_cache_fill_wait(q->c, q->mkey, strlen(q->mkey), t);
    q->collapsed = 1;
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, q->r, RCLOGNO(00309)
                  "cache: waited for the %s of %s%s",
                  head ? "response head" : "fetch", q->key,
                  rv == APR_TIMEUP ? ": lock timeout" : "");
    return rv;
}

/* May this request stream a fetch in progress? A plain GET: the owner
 * fetches the whole response, without the client's conditionals. */
static int can_follow(const rc_cache_req_t *q)
{
    const apr_table_t *h = q->r->headers_in;

    return q->r->method_number == M_GET && !q->r->header_only
           && !apr_table_get(h, "Range")
           && !apr_table_get(h, "If-None-Match")
           && !apr_table_get(h, "If-Modified-Since")
           && !apr_table_get(h, "If-Match")
           && !apr_table_get(h, "If-Unmodified-Since")
           && !apr_table_get(h, "If-Range")
           && !rc_rules_only_if_cached(&q->req_cc);
}

/* Send what bb holds now. Returns 0 when the client is gone. */
static int follow_flush(request_rec *r, apr_bucket_brigade *bb)
{
    conn_rec *c = r->connection;

    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(c->bucket_alloc));
    if (ap_pass_brigade(r->output_filters, bb) != APR_SUCCESS
        || c->aborted) {
        apr_brigade_cleanup(bb);
        return 0;
    }
    apr_brigade_cleanup(bb);
    return 1;
}

/*
 * Serves the entry another request is writing, from the pinned handle
 * h: its stored head at once, then its body as it is written.
 */
static int serve_followed(rc_cache_req_t *q, rc_cache_hit_t *h,
                          const char *why)
{
    request_rec *r = q->r;
    conn_rec *c = r->connection;
    rc_cache_entry_t *e = apr_pcalloc(r->pool, sizeof(*e));
    apr_interval_time_t io = q->m->route->worker->timeout;
    apr_int64_t length = rc_cache_follow_length(h);
    apr_time_t now = apr_time_now();
    apr_bucket_brigade *bb;
    const char *spec = NULL, *ptr;
    rc_cache_iter_t it;
    apr_size_t len, held = 0;
    apr_status_t rv;

    if (meta_read(r->pool, h, e, &spec) != RC_META_RESPONSE) {
        rc_cache_hit_release(h);
        return DECLINED;
    }
    rc_cache_status(q, "fwd=%s; fwd-status=%d; ttl=%" APR_INT64_T_FMT
                    "; detail=streamed", why, e->status,
                    rc_rules_ttl_seconds(&e->fresh, now));
    stored_head(r, e, now);
    r->status = e->status;
    r->status_line = e->status_line;
    if (length >= 0 && e->status != HTTP_NO_CONTENT) {
        ap_set_content_length(r, (apr_off_t)length);
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, RCLOGNO(00337)
                  "cache: streaming %s as another request fetches it "
                  "(%" APR_INT64_T_FMT " bytes)", q->key, length);
    bb = apr_brigade_create(r->pool, c->bucket_alloc);
    memset(&it, 0, sizeof(it));
    for (;;) {
        rv = rc_cache_follow_next(h, &it, 0, &ptr, &len);
        if (rv == APR_EAGAIN) {
            /* all that is stored so far: send it, then wait for more */
            if (held > 0 && !follow_flush(r, bb)) {
                break;
            }
            held = 0;
            rv = rc_cache_follow_next(h, &it, io, &ptr, &len);
        }
        if (rv != APR_SUCCESS) {
            break;
        }
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(
                                        ptr, len, c->bucket_alloc));
        held += len;
        if (held >= RC_FOLLOW_BATCH) {
            if (!follow_flush(r, bb)) {
                break;
            }
            held = 0;
        }
    }
    if (rv == APR_EOF) {
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(c->bucket_alloc));
        ap_pass_brigade(r->output_filters, bb);
        return OK;
    }
    if (rv == APR_SUCCESS || rv == APR_EAGAIN) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, RCLOGNO(00338)
                      "cache: client went away while streaming %s",
                      q->key);
        return OK;
    }
    /* never pass a short body off as complete */
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, RCLOGNO(00339)
                  "cache: the fetch of %s this response streamed %s after "
                  "%" APR_UINT64_T_FMT " bytes", q->key,
                  rv == APR_TIMEUP ? "stalled" : "broke off", it.done);
    rc_proxy_abort_client(r, bb);
    return OK;
}

/*
 * Another request fetches our key: follow its write (streaming) once its
 * head is stored, waiting for that at most RevCacheLockTimeout. Returns
 * DECLINED when not followed: then look up again (the fetch ended, or
 * the wait timed out, or it stores another variant and we waited for
 * its end).
 */
static int follow(rc_cache_req_t *q, const char *why)
{
    apr_time_t end = apr_time_now() + lock_timeout(q), now;
    rc_cache_hit_t *h;
    apr_status_t rv;
    int st;

    for (;;) {
        rv = rc_cache_follow(q->c, q->mkey, strlen(q->mkey), q->key,
                             strlen(q->key), q->variant, strlen(q->variant),
                             q->r->pool, &h);
        now = apr_time_now();
        if (rv == APR_SUCCESS) {
            q->collapsed = 1;
            st = serve_followed(q, h, why);
            if (st != DECLINED) {
                return st;
            }
        }
        else if (rv == APR_NOTFOUND) {
            return DECLINED;
        }
        if (now >= end) {
            return DECLINED;
        }
        if (rv != APR_EAGAIN) {
            /* another variant, a writer gone, no pin slot: the end */
            wait_fill(q, end - now, 0);
            return DECLINED;
        }
        if (wait_fill(q, end - now, 1) != APR_SUCCESS) {
            return DECLINED;
        }
    }
}

/* How long a fill marker may stand before others take it over. */
static apr_interval_time_t fill_max_age(rc_cache_req_t *q)
{
    return lock_timeout(q) + q->m->route->worker->timeout;
}

static apr_status_t fill_cleanup(void *data)
{
    rc_cache_req_t *q = data;

    rc_cache_fill_end(q->c, &q->fill, 0);
    return APR_SUCCESS;
}

/*
 * The quick handler's lookup, when it was of the same key: taken over
 * (entry, variant, fill marker key, hit-for-miss marker) so that the handler does not look
 * it up a second time, and every request counts one lookup whether the
 * quick handler ran or not. Returns 0 when there is none to take.
 */
static int take_early(rc_cache_req_t *q, rc_cache_req_t *early,
                      rc_cache_entry_t **e, const char **why)
{
    if (!early || !early->looked_up) {
        return 0;
    }
    early->looked_up = 0;
    if (strcmp(early->key, q->key) || strcmp(early->bv, q->bv)) {
        if (early->found) {
            rc_cache_hit_release(early->found->hit);
        }
        return 0;
    }
    q->variant = early->variant;
    q->mkey = early->mkey;
    q->vary_spec = early->vary_spec;
    q->hfm = early->hfm;
    *e = early->found;
    *why = early->found_why;
    return 1;
}

int rc_cache_quick(request_rec *r, rc_match_t *m)
{
    rc_cache_req_t *q = req_new(r, m);
    rc_cache_entry_t *e;
    const char *detail = NULL;
    apr_time_t now = apr_time_now();
    rc_hit_t hk;

    if (!q->key || rc_rules_lookup_allowed(r->method, &q->req_cc)) {
        return DECLINED;
    }
    q->found = e = rc_cache_find(q, now, &q->found_why);
    q->looked_up = 1;
    if (!e) {
        return DECLINED;
    }
    hk = rc_rules_hit(&e->fresh, &q->req_cc, now, &detail);
    if (hk != RC_HIT_FRESH && hk != RC_HIT_STALE) {
        /* revalidation, stale-while-revalidate, only-if-cached 504:
         * the handler's, after access control */
        return DECLINED;
    }
    q->quick = 1;
    return serve_hit(q, e, hk, now);
}

int rc_cache_handle(request_rec *r, rc_match_t *m)
{
    rc_cache_req_t *early = m->cache;
    rc_cache_req_t *q = req_new(r, m);
    rc_cache_entry_t *e;
    const char *why, *detail = NULL;
    apr_time_t now;
    rc_hit_t hk;
    int attempt, rv;

    if (!q->key) {
        return rc_route_forward(r, m);
    }
    if (!strcmp(r->method, "PURGE") && q->dc->purge == 1) {
        return purge(q);
    }
    if (rc_rules_lookup_allowed(r->method, &q->req_cc) != NULL) {
        rv = rc_route_forward(r, m);
        if (rv == OK) {
            rc_cache_invalidate(q);
        }
        return rv;
    }
    apr_pool_cleanup_register(r->pool, q, fill_cleanup,
                              apr_pool_cleanup_null);
    for (attempt = 0;; attempt++) {
        now = apr_time_now();
        if (attempt > 0 || !take_early(q, early, &e, &why)) {
            e = rc_cache_find(q, now, &why);
        }
        if (e) {
            hk = rc_rules_hit(&e->fresh, &q->req_cc, now, &detail);
            switch (hk) {
            case RC_HIT_FRESH:
            case RC_HIT_STALE:
                return serve_hit(q, e, hk, now);
            case RC_HIT_SWR:
                if (!r->header_only && rc_cache_fill_begin(q->c, q->mkey, strlen(q->mkey),
                                        fill_max_age(q), &q->fill)
                    == RC_CACHE_FILL_OWNER) {
                    /* refreshed by rc_cache_refresh() after logging */
                    q->refresh = 1;
                    q->stale = e;
                }
                rc_cache_count_stale(q->c);
                return rc_cache_serve(q, e, "hit; ttl=%" APR_INT64_T_FMT
                                      "; detail=stale-while-revalidate",
                                      rc_rules_ttl_seconds(&e->fresh, now));
            case RC_HIT_504:
                rc_cache_status(q, "fwd=miss; detail=only-if-cached");
                return HTTP_GATEWAY_TIME_OUT;
            case RC_HIT_VALIDATE:
                break;
            }
            why = !strncmp(detail, "req-", 4) ? "request" : "stale";
        }
        else if (rc_rules_only_if_cached(&q->req_cc)) {
            rc_cache_status(q, "fwd=%s; detail=only-if-cached", why);
            return HTTP_GATEWAY_TIME_OUT;
        }
        /* A fetch: collapse with a concurrent one for the same key (once:
         * after a wait, a miss goes to the backend itself). A HEAD that
         * does not fill the cache does not hold others up; nor does a key
         * with a hit-for-miss marker (its last answer was uncacheable:
         * waiting for the next one would queue every request). */
        if (attempt == 0 && (!r->header_only || rc_cache_head_as_get(q))
            && !q->hfm) {
            if (rc_cache_fill_begin(q->c, q->mkey, strlen(q->mkey),
                                    fill_max_age(q), &q->fill)
                == RC_CACHE_FILL_BUSY) {
                if (e) {
                    rc_cache_hit_release(e->hit);
                }
                if (!can_follow(q)) {
                    wait_fill(q, lock_timeout(q), 0);
                }
                else if ((rv = follow(q, why)) != DECLINED) {
                    return rv;
                }
                continue;
            }
        }
        return rc_cache_fetch(q, e, why, detail);
    }
}

/* ------------------------------------------------------------------ */
/* The counters, for the status page (status.c)                        */

int rc_cache_status_stats(rc_cache_stats_t *st)
{
    if (!segment) {
        return 0;
    }
    rc_cache_stats(segment, st);
    return 1;
}

/* ------------------------------------------------------------------ */
/* Hooks                                                               */

static int cache_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    rc_cache_global_reset(pconf);
    segment = NULL;
    return OK;
}

/* Where the cache starts in the segment: its first 64-byte boundary (the
 * segment has 64 bytes more than RevCacheSize for that). */
static char *seg_base(apr_shm_t *shm)
{
    char *base = apr_shm_baseaddr_get(shm);

    return base + ((64 - ((apr_uintptr_t)base & 63)) & 63);
}

static int cache_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s)
{
    rc_cache_global_t *g = rc_cache_global();
    apr_pool_t *pproc = s->process->pool;
    rc_cache_params_t prm;
    rc_seg_t *seg = NULL;
    apr_size_t size;
    apr_status_t rv;
    char *base;
    int reused = 0;

    (void)plog;
    (void)ptemp;
    ap_method_register(pconf, "PURGE");
    segment = NULL;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG
        || !g->enabled) {
        return OK;
    }
    size = (apr_size_t)(g->size != RC_UNSET ? g->size : RC_CACHE_DEF_SIZE);
    rc_cache_params_default(&prm);
    if (g->max_object != RC_UNSET) {
        prm.max_object_size = (apr_uint64_t)g->max_object;
    }
    apr_pool_userdata_get((void **)&seg, RC_SEG_USERDATA, pproc);
    if (!seg) {
        seg = apr_pcalloc(pproc, sizeof(*seg));
        apr_pool_userdata_set(seg, RC_SEG_USERDATA, apr_pool_cleanup_null,
                              pproc);
    }
    /* A segment that cannot be kept as it is (another size, or another
     * layout: e.g. a new build of the module) is replaced, never
     * initialised in place: children of the previous generation may
     * still be using it. They keep their own mapping until they exit. */
    if (seg->shm && (seg->size != size
                     || !rc_cache_reusable(seg_base(seg->shm), size, &prm))) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, RCLOGNO(00310)
                     "RevCacheSize or the cache's layout changed: the "
                     "cache starts empty");
        apr_shm_destroy(seg->shm);
        seg->shm = NULL;
    }
    if (!seg->shm) {
        /* 64 more bytes so the cache can start on a 64-byte boundary */
        rv = apr_shm_create(&seg->shm, size + 64, NULL, pproc);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, RCLOGNO(00311)
                         "cannot create the %" APR_SIZE_T_FMT " bytes "
                         "shared cache segment (RevCacheSize)", size);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        seg->size = size;
    }
    base = seg_base(seg->shm);
    rv = rc_cache_attach(base, size, &prm, pconf, &segment, &reused);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, RCLOGNO(00312)
                     "cannot set up the shared cache segment of %"
                     APR_SIZE_T_FMT " bytes", size);
        segment = NULL;
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (g->max_object != RC_UNSET
        && rc_cache_max_object_size(segment) < (apr_uint64_t)g->max_object) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, RCLOGNO(00313)
                     "RevCacheMaxObjectSize capped to %" APR_UINT64_T_FMT
                     " bytes (1/8 of the cache)",
                     rc_cache_max_object_size(segment));
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, RCLOGNO(00314)
                 "cache segment of %" APR_SIZE_T_FMT " bytes %s "
                 "(generation %" APR_UINT64_T_FMT ", max object %"
                 APR_UINT64_T_FMT " bytes)", size,
                 reused ? "kept" : "created", rc_cache_generation(segment),
                 rc_cache_max_object_size(segment));
    return OK;
}

/* Parent process: release what dead children left pinned or half
 * written, reclaim expired entries. */
static int cache_monitor(apr_pool_t *p, server_rec *s)
{
    apr_time_t now = apr_time_now();
    apr_size_t n;

    (void)p;
    if (!segment || now - last_reap < RC_REAP_INTERVAL) {
        return DECLINED;
    }
    last_reap = now;
    if ((n = rc_cache_reap(segment, now)) > 0) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, RCLOGNO(00315)
                     "cache: reaped %" APR_SIZE_T_FMT " expired entries, "
                     "dead pins or dead writes", n);
    }
    return DECLINED;
}

/* After the response went out and was logged: the background refresh
 * of a stale-while-revalidate hit, on this worker thread. */
static int cache_log_transaction(request_rec *r)
{
    rc_match_t *m = ap_get_module_config(r->request_config,
                                         &revcache_module);

    if (m && m->cache && m->cache->refresh) {
        m->cache->refresh = 0;
        rc_cache_refresh(m->cache);
    }
    return DECLINED;
}

void rc_cache_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_config(cache_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(cache_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_monitor(cache_monitor, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_log_transaction(cache_log_transaction, NULL, NULL,
                            APR_HOOK_REALLY_LAST);
}
