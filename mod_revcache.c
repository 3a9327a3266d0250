/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * mod_revcache.c - the module record, its hooks, and the flow of a
 * proxied request:
 *
 *   quick_handler   RevCacheQuickHandler On only: the same routing on
 *                   the path the core would make, and a cache hit is
 *                   served at once (rc_cache_quick); otherwise on:
 *   translate_name  match the URI against RevProxyPass routes (a route in
 *                   the request's <Location> first, then the server's,
 *                   longest prefix first); claim it for our handler
 *   map_to_storage  claimed requests skip the file-system walk
 *   (httpd's access control, authentication and authorisation run as
 *    usual between these and the handler)
 *   handler         "revcache": forward to the route's backend
 *
 * Owns: hooks, per-process backend pools (created in child_init, one per
 * worker, living in the child's pool), the mapping from a decoded route
 * prefix back to the raw request path. Does not own: directives
 * (config.c), forwarding (proxy.c).
 */

#include <apr_strings.h>
#include <apr_lib.h>
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <ap_mpm.h>

#include "mod_revcache.h"

/* This process's connection pools, indexed by rc_worker_t.index. */
static rc_backend_t **backends;
static int nbackends;

static int rc_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                         apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    rc_config_workers_reset(pconf);
    return OK;
}

static int rc_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                          apr_pool_t *ptemp, server_rec *s)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    rc_config_resolve_workers();
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, RCLOGNO(00101)
                 "%d backend worker(s) configured",
                 rc_config_workers()->nelts);
    return OK;
}

static void rc_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_array_header_t *ws = rc_config_workers();
    int i;

    nbackends = ws->nelts;
    backends = apr_pcalloc(pchild, sizeof(rc_backend_t *)
                                   * (nbackends ? nbackends : 1));
    for (i = 0; i < nbackends; i++) {
        const rc_worker_t *w = APR_ARRAY_IDX(ws, i, rc_worker_t *);
        rc_backend_opts_t o;
        apr_status_t rv;

        o.host = w->host;
        o.port = w->port;
        o.connect_timeout = w->connect_timeout;
        o.io_timeout = w->timeout;
        o.keepalive = w->keepalive;
        o.max_idle = w->max_idle;
        o.idle_ttl = w->idle_ttl;
        o.buffer_size = RC_DEF_BUFFER_SIZE;
        /* Always threaded: even under prefork, mod_http2 runs requests
         * on its own worker threads. */
        rv = rc_backend_create(&backends[i], &o, 1, pchild);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, RCLOGNO(00102)
                         "cannot set up backend %s (host lookup failed?); "
                         "requests for it will get 502", w->url);
            backends[i] = NULL;
        }
    }
}

/* Does the decoded, normalised path match a route prefix? A prefix
 * without a trailing '/' matches whole segments only: "/app" matches
 * "/app" and "/app/x", not "/apple". */
static int prefix_matches(const rc_route_t *rt, const char *uri)
{
    if (strncmp(uri, rt->prefix, rt->prefix_len) != 0) {
        return 0;
    }
    return rt->prefix[rt->prefix_len - 1] == '/'
           || uri[rt->prefix_len] == '\0' || uri[rt->prefix_len] == '/';
}

static const rc_route_t *find_route(request_rec *r)
{
    rc_dir_conf_t *dc = ap_get_module_config(r->per_dir_config,
                                             &revcache_module);
    rc_server_conf_t *sc = ap_get_module_config(r->server->module_config,
                                                &revcache_module);
    int i;

    if (dc->route && prefix_matches(dc->route, r->uri)) {
        return dc->route;
    }
    for (i = 0; i < sc->routes->nelts; i++) {
        const rc_route_t *rt = &APR_ARRAY_IDX(sc->routes, i, rc_route_t);
        if (prefix_matches(rt, r->uri)) {
            return rt;
        }
    }
    return NULL;
}

/* The request target as the client sent it, path only: origin-form
 * "/p?q" or absolute-form "http://h/p?q". httpd decodes and normalises
 * r->parsed_uri.path in place, so r->unparsed_uri is the only raw copy. */
static const char *raw_path(request_rec *r)
{
    const char *s = r->unparsed_uri ? r->unparsed_uri : "";
    const char *e;

    if (*s != '/' && (e = strstr(s, "://")) != NULL) {
        s = e + 3;
        while (*s && *s != '/' && *s != '?') {
            s++;
        }
    }
    e = s + strcspn(s, "?#");
    return apr_pstrmemdup(r->pool, s, e - s);
}

/* Would a backend normalise this path to something else ("//", "./",
 * "../")? Looks through percent-encoding, since a backend that decodes
 * "%2e%2e" before resolving dot-segments would climb out of the route's
 * base path. */
static int needs_normalising(apr_pool_t *p, const char *raw)
{
    char *d = apr_pstrdup(p, raw), *o = d;
    const char *s;

    for (s = raw; *s; s++) {
        if (*s == '%' && apr_isxdigit(s[1]) && apr_isxdigit(s[2])) {
            char hex[3] = { s[1], s[2], 0 };
            *o++ = (char)strtol(hex, NULL, 16);
            s += 2;
        }
        else {
            *o++ = *s;
        }
    }
    *o = '\0';
    for (s = d; *s; s++) {
        if (*s == '/' && (s[1] == '/' || (s[1] == '.' && (!s[2]
            || s[2] == '/' || (s[2] == '.' && (!s[3] || s[3] == '/')))))) {
            return 1;
        }
    }
    return d[0] == '.' && (!d[1] || d[1] == '/'
                           || (d[1] == '.' && (!d[2] || d[2] == '/')));
}

/*
 * The raw (still-encoded) remainder of the request path after the route
 * prefix. The prefix was matched against the decoded r->uri; we walk the
 * raw path decoding %XX as we go until we have consumed the prefix.
 * Example: prefix "/app/", raw "/ap%70/a%20b" gives "a%20b".
 * When the raw path does not walk to the prefix or still holds what
 * normalisation removes ("//", "./", "../"), the normalised remainder,
 * escaped again, is forwarded instead.
 */
static const char *raw_remainder(request_rec *r, const rc_route_t *rt)
{
    const char *raw = raw_path(r);
    apr_size_t i = 0, j = 0;

    while (j < rt->prefix_len && raw[i]) {
        int ch = (unsigned char)raw[i];

        if (ch == '%' && apr_isxdigit(raw[i + 1])
            && apr_isxdigit(raw[i + 2])) {
            char hex[3] = { raw[i + 1], raw[i + 2], 0 };
            ch = (int)strtol(hex, NULL, 16);
            i += 3;
        }
        else {
            i++;
        }
        if (ch != (unsigned char)rt->prefix[j++]) {
            break;
        }
        if (j == rt->prefix_len) {
            if (needs_normalising(r->pool, raw + i)) {
                break;
            }
            return raw + i;
        }
    }
    /* r->uri holds dot-segments only when httpd decoded encoded slashes
     * after normalising (AllowEncodedSlashes On): refuse, never guess. */
    if (needs_normalising(r->pool, r->uri + rt->prefix_len)) {
        return NULL;
    }
    return ap_os_escape_path(r->pool, r->uri + rt->prefix_len, 0);
}

/* Joins the backend's base path and the remainder with one '/' where a
 * directory boundary is meant. */
static const char *join_path(apr_pool_t *p, const char *base,
                             const char *rest, const rc_route_t *rt)
{
    apr_size_t blen = strlen(base);
    int base_slash = blen && base[blen - 1] == '/';

    if (base_slash && *rest == '/') {
        rest++;
    }
    else if (!base_slash && *rest && *rest != '/'
             && rt->prefix[rt->prefix_len - 1] == '/') {
        return apr_pstrcat(p, base, "/", rest, NULL);
    }
    return apr_pstrcat(p, base, rest, NULL);
}

/* The route that takes r->uri and the request's backend path, or NULL:
 * no route, an exclusion ("!"), or (*status HTTP_BAD_REQUEST) a path
 * that would leave the route's base path. Shared by translate_name and
 * the quick handler, so both route a URI the same way. */
static rc_match_t *match_route(request_rec *r, int *status)
{
    const rc_route_t *rt = find_route(r);
    const char *rest;
    rc_match_t *m;

    *status = DECLINED;
    if (!rt || rt->exclude) {
        return NULL;
    }
    if (!(rest = raw_remainder(r, rt))) {
        *status = HTTP_BAD_REQUEST;
        return NULL;
    }
    m = apr_pcalloc(r->pool, sizeof(*m));
    m->route = rt;
    m->backend_path = join_path(r->pool, rt->worker->base_path, rest, rt);
    if (r->args) {
        m->backend_path = apr_pstrcat(r->pool, m->backend_path, "?",
                                      r->args, NULL);
    }
    return m;
}

/* Makes r ours: map_to_storage and the handler find m. */
static void claim(request_rec *r, rc_match_t *m)
{
    m->claimed = 1;
    ap_set_module_config(r->request_config, &revcache_module, m);
    r->handler = RC_HANDLER;
    r->filename = apr_pstrcat(r->pool, "revcache:", m->route->worker->url,
                              NULL);
    /* Reverse proxy: httpd keeps the backend's Date and Server. */
    r->proxyreq = PROXYREQ_REVERSE;
}

static int rc_translate_name(request_rec *r)
{
    /* a quick handler that declined may have left its match */
    rc_match_t *early = ap_get_module_config(r->request_config,
                                             &revcache_module);
    rc_match_t *m;
    int status;

    ap_set_module_config(r->request_config, &revcache_module, NULL);
    if (r->proxyreq != PROXYREQ_NONE || !r->uri || r->uri[0] != '/') {
        return DECLINED;
    }
    if (!(m = match_route(r, &status))) {
        if (status == HTTP_BAD_REQUEST) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, RCLOGNO(00105)
                          "refusing %s: its path would leave the route's "
                          "base path after decoding", r->uri);
        }
        return status;
    }
    if (early && early->route == m->route) {
        m->cache = early->cache;    /* its lookup, for rc_cache_handle() */
    }
    claim(r, m);
    return OK;
}

/*
 * The path the core will make of r->uri before translate_name, on a
 * copy: dot-segments removed, unreserved characters decoded, slashes
 * merged (MergeSlashes), then %XX decoded as AllowEncodedSlashes of the
 * server says (the core reads it before any <Location> applies). NULL
 * where the core answers an error itself (400, 404 for %2F): the
 * quick handler then declines and lets it.
 * Example: "/q/a/../%63tr/x%20y" gives "/q/ctr/x y".
 */
static char *quick_path(request_rec *r)
{
    core_server_config *cs = ap_get_core_module_config(
                                 r->server->module_config);
    core_dir_config *cd = ap_get_core_module_config(r->per_dir_config);
    unsigned int nflags = AP_NORMALIZE_NOT_ABOVE_ROOT;
    unsigned int uflags = AP_UNESCAPE_URL_KEEP_UNRESERVED;
    char *path;

    if (!r->parsed_uri.path || r->uri != r->parsed_uri.path
        || r->uri[0] != '/') {
        return NULL;
    }
    if (cs->merge_slashes != AP_CORE_CONFIG_OFF) {
        nflags |= AP_NORMALIZE_MERGE_SLASHES;
    }
    path = apr_pstrdup(r->pool, r->uri);
    if (!ap_normalize_path(path, nflags | AP_NORMALIZE_DECODE_UNRESERVED)) {
        return NULL;
    }
    if (!cd->allow_encoded_slashes) {
        uflags |= AP_UNESCAPE_URL_FORBID_SLASHES;
    }
    else if (!cd->decode_encoded_slashes) {
        uflags |= AP_UNESCAPE_URL_KEEP_SLASHES;
    }
    if (ap_unescape_url_ex(path, uflags) != OK) {
        return NULL;
    }
    if (cd->allow_encoded_slashes && cd->decode_encoded_slashes
        && !ap_normalize_path(path, nflags)) {
        return NULL;
    }
    return path;
}

/*
 * RevCacheQuickHandler On: a request the cache can answer as is is
 * served here, before translate_name, map_to_storage, access control,
 * authentication and fixups, as mod_cache's CacheQuickHandler does:
 * Require and auth of a <Location> do NOT apply to such hits.
 *
 * What the handler would have seen is rebuilt first: the normalised
 * path (quick_path), the <Location>/<If> sections merged by httpd's own
 * walks (so the route of a <Location> and its RevCache* settings are
 * found as translate_name and the handler find them), then the route
 * (match_route). Only main requests (no subrequests, internal
 * redirects or lookups), GET and HEAD, on a route with the cache on.
 * When the cache declines, everything is put back as it was, except
 * the match left in r->request_config with the lookup's result, which
 * translate_name hands on to the handler.
 */
static int rc_quick_handler(request_rec *r, int lookup)
{
    rc_server_conf_t *sc = ap_get_module_config(r->server->module_config,
                                                &revcache_module);
    char *uri = r->uri;
    ap_conf_vector_t *dir = r->per_dir_config;
    const char *handler = r->handler;
    char *filename = r->filename;
    rc_match_t *m;
    int status;

    if (lookup || sc->cache_quick != 1 || r->main || r->prev
        || r->proxyreq != PROXYREQ_NONE || r->method_number != M_GET) {
        return DECLINED;
    }
    if ((r->uri = quick_path(r)) != NULL
        && ap_location_walk(r) == OK && ap_if_walk(r) == OK
        && (m = match_route(r, &status)) != NULL && rc_cache_enabled(r)) {
        claim(r, m);
        if ((status = rc_cache_quick(r, m)) != DECLINED) {
            return status;
        }
    }
    /* Not ours yet: if another module translates r, map_to_storage must
     * not mistake the leftover match for a claim. */
    if ((m = ap_get_module_config(r->request_config, &revcache_module))) {
        m->claimed = 0;
    }
    r->uri = uri;
    r->per_dir_config = dir;
    r->handler = handler;
    r->filename = filename;
    r->proxyreq = PROXYREQ_NONE;
    return DECLINED;
}

static int rc_map_to_storage(request_rec *r)
{
    rc_match_t *m = ap_get_module_config(r->request_config,
                                         &revcache_module);

    if (m && m->claimed) {
        return OK;     /* no file behind a proxied URI */
    }
    return DECLINED;
}

rc_backend_t *rc_backend_of(const rc_worker_t *w)
{
    return w->index >= 0 && w->index < nbackends ? backends[w->index]
                                                  : NULL;
}

int rc_route_exchange(request_rec *r, const rc_match_t *m,
                      apr_table_t *set_headers, rc_exchange_t *x,
                      const rc_worker_t **wp)
{
    const rc_worker_t *w = m->route->worker;
    rc_backend_t *be;

    if (w->lb) {
        return rc_lb_exchange(r, m, set_headers, x, wp);
    }
    be = rc_backend_of(w);
    *wp = w;
    apr_table_setn(r->notes, "revcache-backend", w->url);
    if (!be) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, RCLOGNO(00104)
                      "backend %s is not available in this process",
                      w->url);
        memset(x, 0, sizeof(*x));
        x->outcome = RC_OUT_CONNECT;
        x->http_status = HTTP_BAD_GATEWAY;
        return x->http_status;
    }
    return rc_proxy_exchange(r, w, be, m->backend_path, set_headers, 0, x);
}

void rc_route_done(request_rec *r, const rc_match_t *m,
                   const rc_worker_t *w, const rc_exchange_t *x)
{
    (void)w;
    if (m->route->worker->lb) {
        rc_lb_done(r, x);       /* the balancer learns the outcome */
    }
}

int rc_route_forward(request_rec *r, const rc_match_t *m)
{
    rc_exchange_t x;
    const rc_worker_t *w;
    int rv;

    if ((rv = rc_route_exchange(r, m, NULL, &x, &w)) == OK) {
        rc_proxy_set_response(r, &x);
        rv = rc_proxy_relay_body(r, w, &x, NULL);
    }
    rc_route_done(r, m, w, &x);
    return rv;
}

static int rc_handler(request_rec *r)
{
    rc_match_t *m;

    if (!r->handler || strcmp(r->handler, RC_HANDLER) != 0) {
        return DECLINED;
    }
    m = ap_get_module_config(r->request_config, &revcache_module);
    if (!m || !m->claimed) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, RCLOGNO(00103)
                      "handler 'revcache' set for %s, but no RevProxyPass "
                      "route matches it", r->uri);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (rc_cache_enabled(r)) {
        return rc_cache_handle(r, m);
    }
    return rc_route_forward(r, m);
}

static void rc_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_config(rc_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(rc_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(rc_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_quick_handler(rc_quick_handler, NULL, NULL, APR_HOOK_MIDDLE);
    /* Before mod_alias and mod_rewrite's per-server rules, like
     * mod_proxy's ProxyPass. */
    ap_hook_translate_name(rc_translate_name, NULL, NULL,
                           APR_HOOK_FIRST);
    ap_hook_map_to_storage(rc_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(rc_handler, NULL, NULL, APR_HOOK_MIDDLE);
    rc_lb_register_hooks(p);
    rc_cache_register_hooks(p);
    rc_status_register_hooks(p);
}

AP_DECLARE_MODULE(revcache) = {
    STANDARD20_MODULE_STUFF,
    rc_create_dir_conf,
    rc_merge_dir_conf,
    rc_create_server_conf,
    rc_merge_server_conf,
    rc_cmds,
    rc_register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    AP_MODULE_FLAG_ALWAYS_MERGE
#endif
};
