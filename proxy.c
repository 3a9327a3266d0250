/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * proxy.c - forwarding one request to a backend over HTTP/1.1 and
 * streaming the response back through httpd's output filters.
 *
 * Owns: building the backend request (method, raw path, end-to-end
 * headers, X-Forwarded-* / Forwarded / Via), streaming the request body
 * (Content-Length or chunked, never held whole), interim responses, the
 * response head as httpd sees it (status, headers, RevProxyPassReverse),
 * streaming the body with flushes when the backend pauses, and the
 * retry of an idempotent request whose pooled connection turned out
 * dead. Does not own: route matching or the choice of backend
 * (mod_revcache.c), connection pooling and wire parsing (backend.c,
 * http_parse.c).
 *
 * Pools: everything per request goes to r->pool; the backend connection
 * carries its own pool. A body piece handed out by backend.c points into
 * the connection's buffer, so it is passed down before the connection
 * is released.
 */

#include <apr_strings.h>
#include <apr_lib.h>
#include <httpd.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>

#include "mod_revcache.h"

APLOG_USE_MODULE(revcache);

#define RC_REQ_BODY_READ   (64 * 1024)

static const rc_http_limits_t response_limits = {
    RC_DEF_MAX_HEAD_BYTES, RC_DEF_MAX_FIELDS
};

typedef struct {
    apr_array_header_t *vec;     /* struct iovec pieces of the head */
} head_builder_t;

static void put(head_builder_t *hb, const char *s)
{
    struct iovec *v = apr_array_push(hb->vec);

    v->iov_base = (void *)s;
    v->iov_len = strlen(s);
}

static int put_field(void *baton, const char *key, const char *value)
{
    head_builder_t *hb = baton;

    put(hb, key);
    put(hb, ": ");
    put(hb, value);
    put(hb, "\r\n");
    return 1;
}

/* Is it safe to send this request twice? (RFC 9110 section 9.2.2) */
static int idempotent(const request_rec *r)
{
    switch (r->method_number) {
    case M_GET: case M_PUT: case M_DELETE: case M_OPTIONS:
        return 1;
    }
    return r->header_only || !strcmp(r->method, "TRACE");
}

/* "for=" / "host=" values of RFC 7239 need quotes for IPv6 and ports. */
static const char *fwd_node(apr_pool_t *p, const char *ip)
{
    return strchr(ip, ':') ? apr_psprintf(p, "\"[%s]\"", ip) : ip;
}

/* Is key (of length klen) the field name "name"? Length first. */
#define NAME_IS(key, klen, name) \
    ((klen) == sizeof(name) - 1 && !strcasecmp((key), (name)))

/* The client's request fields on their way to the backend. */
typedef struct {
    head_builder_t             *hb;
    apr_pool_t                 *p;
    const apr_array_header_t   *tokens;  /* named by client's Connection */
    const apr_table_t          *set;     /* fields the caller replaces */
    int                         mode;    /* RC_FWD_* */
    const char                 *xff, *xfh, *xfp, *fwd, *via; /* earlier */
} req_fields_t;

static const char *join(apr_pool_t *p, const char *old, const char *v)
{
    return old ? apr_pstrcat(p, old, ", ", v, NULL) : v;
}

/* Puts one client field, unless it is hop-by-hop, framing (ours to set),
 * Host, Expect (answered by httpd, which sends "100 Continue" when we
 * first read the body), replaced by the caller, or a forwarding field we
 * extend below. One pass, no copy of the table. */
static int put_request_field(void *baton, const char *key, const char *value)
{
    req_fields_t *rf = baton;
    apr_size_t klen = strlen(key);

    if (!rc_hdr_forwardable(key, rf->tokens) || NAME_IS(key, klen, "Host")
        || NAME_IS(key, klen, "Content-Length")
        || NAME_IS(key, klen, "Expect")
        || (rf->set && apr_table_get(rf->set, key))) {
        return 1;
    }
    if (rf->mode & RC_FWD_X) {
        if (NAME_IS(key, klen, "X-Forwarded-For")) {
            rf->xff = join(rf->p, rf->xff, value);
            return 1;
        }
        if (NAME_IS(key, klen, "X-Forwarded-Host")) {
            rf->xfh = join(rf->p, rf->xfh, value);
            return 1;
        }
        if (NAME_IS(key, klen, "X-Forwarded-Proto")) {
            rf->xfp = join(rf->p, rf->xfp, value);
            return 1;
        }
    }
    if ((rf->mode & RC_FWD_RFC7239) && NAME_IS(key, klen, "Forwarded")) {
        rf->fwd = join(rf->p, rf->fwd, value);
        return 1;
    }
    if (rf->mode != RC_FWD_OFF && NAME_IS(key, klen, "Via")) {
        rf->via = join(rf->p, rf->via, value);
        return 1;
    }
    return put_field(rf->hb, key, value);
}

static void put_line(head_builder_t *hb, const char *name, const char *v)
{
    put(hb, name);
    put(hb, ": ");
    put(hb, v);
    put(hb, "\r\n");
}

/* X-Forwarded-*, Forwarded and Via, each extending what came in. */
static void put_forwarded(request_rec *r, req_fields_t *rf)
{
    const char *host = apr_table_get(r->headers_in, "Host");
    const char *proto = ap_http_scheme(r);
    /* Via names the client's protocol version: "1.1", "1.0", "2". */
    const char *via_proto = r->proto_num >= HTTP_VERSION(2, 0)
        ? apr_itoa(r->pool, HTTP_VERSION_MAJOR(r->proto_num))
        : r->proto_num == HTTP_VERSION(1, 0) ? "1.0" : "1.1";

    if (rf->mode & RC_FWD_X) {
        put_line(rf->hb, "X-Forwarded-For",
                 join(r->pool, rf->xff, r->useragent_ip));
        if (host) {
            put_line(rf->hb, "X-Forwarded-Host", join(r->pool, rf->xfh,
                                                      host));
        }
        put_line(rf->hb, "X-Forwarded-Proto", join(r->pool, rf->xfp,
                                                   proto));
    }
    if (rf->mode & RC_FWD_RFC7239) {
        const char *v = apr_psprintf(r->pool, "for=%s;proto=%s",
                                     fwd_node(r->pool, r->useragent_ip),
                                     proto);
        if (host) {
            v = apr_psprintf(r->pool, "%s;host=\"%s\"", v, host);
        }
        put_line(rf->hb, "Forwarded", join(r->pool, rf->fwd, v));
    }
    if (rf->mode != RC_FWD_OFF) {
        put_line(rf->hb, "Via", join(r->pool, rf->via,
                                     apr_pstrcat(r->pool, via_proto, " ",
                                                 ap_get_server_name(r),
                                                 NULL)));
    }
}

typedef enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED } req_body_e;

/* The request head for the backend, as one string. */
static const char *build_head(request_rec *r, const rc_worker_t *w,
                              const char *path, req_body_e body,
                              apr_table_t *set_headers, apr_size_t *len)
{
    rc_server_conf_t *sc = ap_get_module_config(r->server->module_config,
                                                &revcache_module);
    const char *host = NULL;
    head_builder_t hb;
    req_fields_t rf;

    hb.vec = apr_array_make(r->pool, 64, sizeof(struct iovec));
    memset(&rf, 0, sizeof(rf));
    rf.hb = &hb;
    rf.p = r->pool;
    rf.tokens = rc_hdr_connection_tokens(r->pool, r->headers_in);
    rf.set = set_headers;
    rf.mode = rc_conf_forwarded(sc);
    if (rc_conf_preserve_host(sc)) {
        host = apr_table_get(r->headers_in, "Host");
    }

    put(&hb, r->method);
    put(&hb, " ");
    put(&hb, path);
    put(&hb, " HTTP/1.1\r\nHost: ");
    put(&hb, host ? host : w->authority);
    put(&hb, "\r\n");
    if (body == BODY_LENGTH) {
        put_line(&hb, "Content-Length",
                 apr_table_get(r->headers_in, "Content-Length"));
    }
    else if (body == BODY_CHUNKED) {
        put(&hb, "Transfer-Encoding: chunked\r\n");
    }
    else if (apr_table_get(r->headers_in, "Content-Length")) {
        /* An empty POST still says so: some backends insist (411). */
        put(&hb, "Content-Length: 0\r\n");
    }
    if (!w->keepalive) {
        put(&hb, "Connection: close\r\n");
    }
    apr_table_do(put_request_field, &rf, r->headers_in, NULL);
    if (set_headers) {
        apr_table_do(put_field, &hb, set_headers, NULL);
    }
    put_forwarded(r, &rf);
    put(&hb, "\r\n");
    return apr_pstrcatv(r->pool, (struct iovec *)hb.vec->elts,
                        hb.vec->nelts, len);
}

typedef enum {
    SEND_OK = 0,
    SEND_BACKEND_ERR,    /* writing to the backend failed */
    SEND_CLIENT_ERR      /* reading the client's body failed */
} send_result_e;

/* Streams the client's request body to the backend. */
static send_result_e send_body(request_rec *r, rc_conn_t *conn,
                               req_body_e body, apr_status_t *status)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool,
                                                r->connection->bucket_alloc);
    int seen_eos = 0;

    while (!seen_eos) {
        apr_bucket *e;

        *status = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                                 APR_BLOCK_READ, RC_REQ_BODY_READ);
        if (*status != APR_SUCCESS) {
            return SEND_CLIENT_ERR;
        }
        for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb);
             e = APR_BUCKET_NEXT(e)) {
            const char *data;
            apr_size_t n;
            char size[32];
            struct iovec v[3];
            int nv = 0;

            if (APR_BUCKET_IS_EOS(e)) {
                seen_eos = 1;
                break;
            }
            if (APR_BUCKET_IS_METADATA(e)) {
                continue;
            }
            *status = apr_bucket_read(e, &data, &n, APR_BLOCK_READ);
            if (*status != APR_SUCCESS) {
                return SEND_CLIENT_ERR;
            }
            if (!n) {
                continue;
            }
            if (body == BODY_CHUNKED) {
                v[nv].iov_base = size;
                v[nv++].iov_len = apr_snprintf(size, sizeof(size),
                                               "%" APR_UINT64_T_HEX_FMT "\r\n",
                                               (apr_uint64_t)n);
            }
            v[nv].iov_base = (void *)data;
            v[nv++].iov_len = n;
            if (body == BODY_CHUNKED) {
                v[nv].iov_base = "\r\n";
                v[nv++].iov_len = 2;
            }
            if ((*status = rc_conn_writev(conn, v, nv)) != APR_SUCCESS) {
                return SEND_BACKEND_ERR;
            }
        }
        apr_brigade_cleanup(bb);
    }
    if (body == BODY_CHUNKED) {
        struct iovec v = { "0\r\n\r\n", 5 };
        if ((*status = rc_conn_writev(conn, &v, 1)) != APR_SUCCESS) {
            return SEND_BACKEND_ERR;
        }
    }
    return SEND_OK;
}

/* Does the backend keep this connection open after the response? */
static int backend_keeps_alive(const rc_resp_head_t *head)
{
    const char *conn = apr_table_get(head->headers, "Connection");
    int close = conn && ap_find_token(NULL, conn, "close");

    if (head->version < 11) {
        return conn && ap_find_token(NULL, conn, "keep-alive") && !close;
    }
    return !close;
}

/* Copies the backend's header fields to r, rewriting URLs that point at
 * the backend (RevProxyPassReverse). */
static void set_response_headers(request_rec *r, rc_resp_head_t *head,
                                 rc_body_kind_e kind)
{
    rc_server_conf_t *sc = ap_get_module_config(r->server->module_config,
                                                &revcache_module);
    rc_dir_conf_t *dc = ap_get_module_config(r->per_dir_config,
                                             &revcache_module);
    const apr_array_header_t *arr;
    const apr_table_entry_t *e;
    apr_array_header_t *maps = dc->reverse->nelts
        ? apr_array_append(r->pool, dc->reverse, sc->reverse) : sc->reverse;
    const char *front = NULL;
    const apr_array_header_t *tokens = rc_hdr_connection_tokens(r->pool,
                                                                head->headers);
    /* Content-Length stays only where it frames what the client gets. */
    int drop_length = kind == RC_BODY_CHUNKED || kind == RC_BODY_CLOSE;
    int i;

    arr = apr_table_elts(head->headers);
    e = (const apr_table_entry_t *)arr->elts;
    for (i = 0; i < arr->nelts; i++) {
        const char *v = e[i].val;

        if (!rc_hdr_forwardable(e[i].key, tokens)
            || (drop_length && !strcasecmp(e[i].key, "Content-Length"))) {
            continue;
        }

        if (!strcasecmp(e[i].key, "Content-Type")) {
            ap_set_content_type(r, v);
            continue;
        }
        if (maps->nelts && (!strcasecmp(e[i].key, "Location")
                            || !strcasecmp(e[i].key, "Content-Location")
                            || !strcasecmp(e[i].key, "URI"))) {
            if (!front) {
                front = ap_construct_url(r->pool, "", r);
                /* ap_construct_url gives "scheme://host[:port]" + "". */
            }
            v = rc_hdr_reverse_map(r->pool, v,
                                   (const rc_reverse_map_t *)maps->elts,
                                   maps->nelts, front);
        }
        apr_table_addn(r->headers_out, e[i].key, v);
    }
    r->status = head->status;
    r->status_line = *head->reason
        ? apr_psprintf(r->pool, "%d %s", head->status, head->reason) : NULL;
}

/* Relays a 1xx (other than 100) to a client that can take it. */
static void relay_interim(request_rec *r, rc_resp_head_t *head)
{
    if (r->proto_num < HTTP_VERSION(1, 1)) {
        return;
    }
    rc_hdr_strip_hop_by_hop(head->headers);
    r->status = head->status;
    r->status_line = apr_psprintf(r->pool, "%d %s", head->status,
                                  *head->reason ? head->reason : "Interim");
    apr_table_clear(r->headers_out);
    apr_table_overlap(r->headers_out, head->headers, APR_OVERLAP_TABLES_SET);
    ap_send_interim_response(r, 1);
    apr_table_clear(r->headers_out);
    r->status = HTTP_OK;
    r->status_line = NULL;
}

/* Tells the client the body it is getting is broken: no final chunk, no
 * keep-alive (HTTP/1.1), stream reset (HTTP/2). */
void rc_proxy_abort_client(request_rec *r, apr_bucket_brigade *bb)
{
    conn_rec *c = r->connection;

    c->keepalive = AP_CONN_CLOSE;
    apr_brigade_cleanup(bb);
    APR_BRIGADE_INSERT_TAIL(bb, ap_bucket_error_create(HTTP_BAD_GATEWAY,
                                                       NULL, r->pool,
                                                       c->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(c->bucket_alloc));
    ap_pass_brigade(r->output_filters, bb);
}

/* The client left but the tee wants the rest of the body (others are
 * served from what it stores): read on, for the tee only. */
static void orphan_body(request_rec *r, const rc_worker_t *w,
                        rc_conn_t *conn, int keepalive,
                        const rc_body_tee_t *tee)
{
    const char *data, *err = NULL;
    apr_size_t len;
    apr_status_t rv;

    for (;;) {
        rv = rc_conn_read_body(conn, 0, &data, &len, &err);
        if (rv == APR_EAGAIN) {
            if (tee->flush) {
                tee->flush(tee->ctx);
            }
            rv = rc_conn_read_body(conn, 1, &data, &len, &err);
        }
        if (rv != APR_SUCCESS) {
            break;
        }
        tee->piece(tee->ctx, data, len);
    }
    if (rv != APR_EOF) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv == APR_EGENERAL ? 0 : rv, r,
                      RCLOGNO(00208) "backend %s broke off the response "
                      "body for %s (read on after the client left): %s",
                      w->url, r->unparsed_uri,
                      rv == APR_TIMEUP ? "timed out"
                      : rv == APR_INCOMPLETE ? "closed before the end"
                      : err ? err : "read error");
    }
    rc_backend_release(conn, rv == APR_EOF && keepalive);
    tee->end(tee->ctx, rv == APR_EOF);
}

/* Streams the response body. Releases the connection. Returns OK. */
static int stream_body(request_rec *r, const rc_worker_t *w,
                       rc_conn_t *conn, int keepalive,
                       const rc_body_tee_t *tee)
{
    conn_rec *c = r->connection;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, c->bucket_alloc);
    apr_status_t rv;

    for (;;) {
        const char *data, *err = NULL;
        apr_size_t len;

        rv = rc_conn_read_body(conn, 0, &data, &len, &err);
        if (rv == APR_EAGAIN) {
            /* The backend paused: let the client have what we hold. */
            if (tee && tee->flush) {
                tee->flush(tee->ctx);
            }
            APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(
                                            c->bucket_alloc));
            if (ap_pass_brigade(r->output_filters, bb) != APR_SUCCESS
                || c->aborted) {
                break;
            }
            apr_brigade_cleanup(bb);
            rv = rc_conn_read_body(conn, 1, &data, &len, &err);
        }
        if (rv == APR_SUCCESS) {
            if (tee) {
                tee->piece(tee->ctx, data, len);
            }
            APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(
                                            data, len, c->bucket_alloc));
            if (ap_pass_brigade(r->output_filters, bb) != APR_SUCCESS
                || c->aborted) {
                break;
            }
            apr_brigade_cleanup(bb);
            continue;
        }
        if (rv == APR_EOF) {
            rc_backend_release(conn, keepalive);
            if (tee) {
                tee->end(tee->ctx, 1);
            }
            APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(
                                            c->bucket_alloc));
            ap_pass_brigade(r->output_filters, bb);
            return OK;
        }
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv == APR_EGENERAL ? 0 : rv, r,
                      RCLOGNO(00201) "backend %s broke off the response "
                      "body for %s: %s", w->url, r->unparsed_uri,
                      rv == APR_TIMEUP ? "timed out"
                      : rv == APR_INCOMPLETE ? "closed before the end"
                      : err ? err : "read error");
        rc_backend_release(conn, 0);
        if (tee) {
            tee->end(tee->ctx, 0);
        }
        rc_proxy_abort_client(r, bb);
        return OK;
    }
    /* The client went away: the response was not read to its end, so
     * the backend connection cannot be reused. */
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, RCLOGNO(00202)
                  "client went away while receiving %s from %s",
                  r->unparsed_uri, w->url);
    apr_brigade_cleanup(bb);
    if (tee && tee->orphan && tee->orphan(tee->ctx)) {
        orphan_body(r, w, conn, keepalive, tee);
        return OK;
    }
    rc_backend_release(conn, 0);
    if (tee) {
        tee->end(tee->ctx, 0);
    }
    return OK;
}

static req_body_e request_body_kind(request_rec *r)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");

    /* httpd already refused ambiguous framing (both fields, a
     * Transfer-Encoding other than chunked, a bad length): what is left
     * is one clear choice. */
    if (apr_table_get(r->headers_in, "Transfer-Encoding")) {
        return BODY_CHUNKED;
    }
    if (cl && strcmp(cl, "0") != 0) {
        return BODY_LENGTH;
    }
    return BODY_NONE;
}

int rc_proxy_exchange(request_rec *r, const rc_worker_t *w,
                      rc_backend_t *be, const char *backend_path,
                      apr_table_t *set_headers, int flags,
                      rc_exchange_t *x)
{
    int fail_level = (flags & RC_EXCH_RETRYING) ? APLOG_INFO : APLOG_ERR;
    req_body_e body = request_body_kind(r);
    apr_size_t head_len;
    const char *head_str = build_head(r, w, backend_path, body, set_headers,
                                      &head_len);
    int attempt;

    memset(x, 0, sizeof(*x));
    for (attempt = 0;; attempt++) {
        int reused, got_bytes = 0;
        const char *err = NULL;
        apr_status_t rv;
        struct iovec v;

        /* A bodyless idempotent request is retried if its pooled
         * connection turns out dead: it may skip the liveness check. */
        rv = rc_backend_acquire(be, attempt > 0 ? RC_ACQ_FRESH
                                : (body == BODY_NONE && idempotent(r)
                                   ? RC_ACQ_TRUST_IDLE : 0),
                                &x->conn, &reused);
        if (rv != APR_SUCCESS) {
            x->failure = apr_psprintf(r->pool, "cannot connect to backend "
                                      "%s%s", w->url, rv == APR_TIMEUP
                                      ? " (connect timeout)" : "");
            ap_log_rerror(APLOG_MARK, fail_level, rv, r, RCLOGNO(00203)
                          "%s", x->failure);
            x->failure = apr_psprintf(r->pool, "%s: %pm", x->failure, &rv);
            x->conn = NULL;
            x->outcome = RC_OUT_CONNECT;
            x->http_status = HTTP_BAD_GATEWAY;
            return x->http_status;
        }
        v.iov_base = (void *)head_str;
        v.iov_len = head_len;
        rv = rc_conn_writev(x->conn, &v, 1);
        if (rv == APR_SUCCESS && body != BODY_NONE) {
            apr_status_t st;
            send_result_e res = send_body(r, x->conn, body, &st);

            x->body_sent = 1;
            if (res == SEND_CLIENT_ERR) {
                rc_backend_release(x->conn, 0);
                x->conn = NULL;
                ap_log_rerror(APLOG_MARK, APLOG_INFO, st, r, RCLOGNO(00204)
                              "reading the request body for %s failed",
                              w->url);
                x->outcome = RC_OUT_CLIENT;
                x->http_status = ap_map_http_request_error(st,
                                                           HTTP_BAD_REQUEST);
                return x->http_status;
            }
            rv = st;
        }
        /* Read the final head, relaying or skipping interim ones. */
        while (rv == APR_SUCCESS) {
            rv = rc_conn_read_head(x->conn, r->pool, &response_limits,
                                   &x->head, &got_bytes, &err);
            if (rv != APR_SUCCESS || x->head.status >= 200) {
                break;
            }
            if (x->head.status == 101) {
                err = "101 Switching Protocols that nobody asked for";
                rv = APR_EGENERAL;
                break;
            }
            if (x->head.status != 100) {
                relay_interim(r, &x->head);
            }
        }
        if (rv == APR_SUCCESS) {
            rv = rc_http_body_framing(&x->head, r->header_only
                                      || !strcmp(r->method, "HEAD"),
                                      &x->kind, &x->length, &err);
            if (rv == APR_SUCCESS) {
                break;
            }
        }
        rc_backend_release(x->conn, 0);
        x->conn = NULL;
        /* A pooled connection the backend had closed: nothing reached
         * it, so an idempotent request without a body goes again. */
        if (reused && !got_bytes && attempt == 0 && body == BODY_NONE
            && idempotent(r) && rv != APR_TIMEUP && rv != APR_EGENERAL) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r, RCLOGNO(00205)
                          "pooled connection to %s was dead, retrying on "
                          "a new one", w->url);
            continue;
        }
        if (rv == APR_TIMEUP) {
            x->failure = apr_psprintf(r->pool, "backend %s did not answer "
                                      "within the timeout", w->url);
            ap_log_rerror(APLOG_MARK, fail_level, 0, r, RCLOGNO(00206)
                          "%s", x->failure);
            x->outcome = RC_OUT_TIMEOUT;
            x->http_status = HTTP_GATEWAY_TIME_OUT;
            return x->http_status;
        }
        x->failure = apr_psprintf(r->pool, "bad response from backend "
                                  "%s: %s", w->url, err ? err
                                  : rv == APR_EOF ? "connection closed "
                                  "without a response" : "I/O error");
        ap_log_rerror(APLOG_MARK, fail_level, rv == APR_EGENERAL ? 0 : rv, r,
                      RCLOGNO(00207) "%s", x->failure);
        if (rv != APR_EGENERAL && rv != APR_EOF) {
            x->failure = apr_psprintf(r->pool, "%s (%pm)", x->failure, &rv);
        }
        x->outcome = RC_OUT_BAD_RESPONSE;
        x->http_status = HTTP_BAD_GATEWAY;
        return x->http_status;
    }
    x->keepalive = backend_keeps_alive(&x->head);
    rc_conn_body_start(x->conn, x->kind, x->length);
    x->outcome = RC_OUT_OK;
    x->http_status = OK;
    return OK;
}

void rc_proxy_set_response(request_rec *r, rc_exchange_t *x)
{
    set_response_headers(r, &x->head, x->kind);
}

int rc_proxy_relay_body(request_rec *r, const rc_worker_t *w,
                        rc_exchange_t *x, const rc_body_tee_t *tee)
{
    rc_conn_t *conn = x->conn;

    x->conn = NULL;
    return stream_body(r, w, conn, x->keepalive, tee);
}

void rc_proxy_abandon(rc_exchange_t *x)
{
    if (x->conn) {
        /* A response without a body was read to its end already. */
        rc_backend_release(x->conn, x->kind == RC_BODY_NONE && x->keepalive);
        x->conn = NULL;
    }
}

int rc_proxy_forward(request_rec *r, const rc_worker_t *w,
                     rc_backend_t *be, const char *backend_path)
{
    rc_exchange_t x;

    if (rc_proxy_exchange(r, w, be, backend_path, NULL, 0, &x) != OK) {
        return x.http_status;
    }
    rc_proxy_set_response(r, &x);
    return rc_proxy_relay_body(r, w, &x, NULL);
}
