/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * config.c - the directives of mod_revcache: parsing, validation,
 * create/merge of the configuration records, and the worker registry.
 *
 * Every directive checks its arguments when the configuration is read,
 * so `apachectl configtest` names file, line and reason (httpd prefixes
 * the string a handler returns with both).
 *
 * Create functions leave every field unset (RC_UNSET / NULL); merge
 * functions name every field; defaults are applied late by accessors or
 * in rc_config_resolve_workers(), so a vhost inherits what it did not
 * say.
 *
 * The worker registry is a process-global array rebuilt on every
 * configuration cycle (reset in pre_config, filled by directive
 * handlers, read in post_config/child_init). Directives run single
 * threaded, so it needs no lock. All of it lives in pconf.
 */

#include <apr_strings.h>
#include <apr_uri.h>
#include <http_core.h>
#include <http_main.h>
#include <ap_mpm.h>

#include "mod_revcache.h"

APLOG_USE_MODULE(revcache);

static apr_array_header_t *workers;   /* rc_worker_t *, this cycle's */

void rc_config_workers_reset(apr_pool_t *pconf)
{
    workers = apr_array_make(pconf, 8, sizeof(rc_worker_t *));
}

apr_array_header_t *rc_config_workers(void)
{
    return workers;
}

void rc_config_worker_add(rc_worker_t *w)
{
    w->index = workers->nelts;
    APR_ARRAY_PUSH(workers, rc_worker_t *) = w;
}

void *rc_create_server_conf(apr_pool_t *p, server_rec *s)
{
    rc_server_conf_t *sc = apr_pcalloc(p, sizeof(*sc));

    (void)s;
    sc->routes = apr_array_make(p, 4, sizeof(rc_route_t));
    sc->reverse = apr_array_make(p, 2, sizeof(rc_reverse_map_t));
    sc->preserve_host = RC_UNSET;
    sc->forwarded = RC_UNSET;
    sc->timeout = RC_UNSET;
    sc->connect_timeout = RC_UNSET;
    sc->pool_max_idle = RC_UNSET;
    sc->pool_idle_ttl = RC_UNSET;
    sc->cache_quick = RC_UNSET;
    return sc;
}

/* Inserts a route keeping the array ordered longest prefix first; among
 * equal lengths the earlier insertion stays first. */
static void route_insert(apr_array_header_t *routes, const rc_route_t *rt)
{
    int i;

    apr_array_push(routes);
    for (i = routes->nelts - 1; i > 0; i--) {
        rc_route_t *prev = &APR_ARRAY_IDX(routes, i - 1, rc_route_t);
        if (prev->prefix_len >= rt->prefix_len) {
            break;
        }
        APR_ARRAY_IDX(routes, i, rc_route_t) = *prev;
    }
    APR_ARRAY_IDX(routes, i, rc_route_t) = *rt;
}

#define MERGE(f) (add->f != RC_UNSET ? add->f : base->f)

void *rc_merge_server_conf(apr_pool_t *p, void *basev, void *addv)
{
    rc_server_conf_t *base = basev, *add = addv;
    rc_server_conf_t *sc = apr_pcalloc(p, sizeof(*sc));
    int i;

    /* A vhost's own routes win over inherited ones of equal length. */
    sc->routes = apr_array_copy(p, add->routes);
    for (i = 0; i < base->routes->nelts; i++) {
        route_insert(sc->routes, &APR_ARRAY_IDX(base->routes, i,
                                                rc_route_t));
    }
    sc->reverse = apr_array_append(p, add->reverse, base->reverse);
    sc->preserve_host = MERGE(preserve_host);
    sc->forwarded = MERGE(forwarded);
    sc->timeout = MERGE(timeout);
    sc->connect_timeout = MERGE(connect_timeout);
    sc->pool_max_idle = MERGE(pool_max_idle);
    sc->pool_idle_ttl = MERGE(pool_idle_ttl);
    sc->cache_quick = MERGE(cache_quick);
    return sc;
}

void *rc_create_dir_conf(apr_pool_t *p, char *dir)
{
    rc_dir_conf_t *dc = apr_pcalloc(p, sizeof(*dc));

    (void)dir;
    dc->reverse = apr_array_make(p, 1, sizeof(rc_reverse_map_t));
    dc->cache = rc_cache_dconf_create(p);
    return dc;
}

void *rc_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    rc_dir_conf_t *base = basev, *add = addv;
    rc_dir_conf_t *dc = apr_pcalloc(p, sizeof(*dc));

    dc->route = add->route ? add->route : base->route;
    dc->reverse = apr_array_append(p, add->reverse, base->reverse);
    dc->cache = rc_cache_dconf_merge(p, base->cache, add->cache);
    return dc;
}

int rc_conf_preserve_host(const rc_server_conf_t *sc)
{
    return sc->preserve_host == RC_UNSET ? 0 : sc->preserve_host;
}

int rc_conf_forwarded(const rc_server_conf_t *sc)
{
    return sc->forwarded == RC_UNSET ? RC_FWD_X : sc->forwarded;
}

void rc_config_resolve_workers(void)
{
    int i;

    for (i = 0; i < workers->nelts; i++) {
        rc_worker_t *w = APR_ARRAY_IDX(workers, i, rc_worker_t *);
        rc_server_conf_t *sc = ap_get_module_config(w->server->module_config,
                                                    &revcache_module);
        int threads = 0;

        if (w->timeout == RC_UNSET) {
            w->timeout = sc->timeout != RC_UNSET ? sc->timeout
                                                 : w->server->timeout;
        }
        if (w->connect_timeout == RC_UNSET) {
            w->connect_timeout = sc->connect_timeout != RC_UNSET
                                 ? sc->connect_timeout
                                 : RC_DEF_CONNECT_TIMEOUT;
        }
        if (w->idle_ttl == RC_UNSET) {
            w->idle_ttl = sc->pool_idle_ttl != RC_UNSET ? sc->pool_idle_ttl
                                                        : RC_DEF_IDLE_TTL;
        }
        if (w->keepalive == RC_UNSET) {
            w->keepalive = 1;
        }
        if (w->max_idle == RC_UNSET) {
            /* As many idle connections as threads could want at once. */
            ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
            w->max_idle = sc->pool_max_idle != RC_UNSET ? sc->pool_max_idle
                          : (threads > 0 ? threads : 1);
        }
    }
}

/* "On"/"Off" (any case) as 1/0; -1 when neither. */
int rc_conf_parse_onoff(const char *v)
{
    if (!strcasecmp(v, "on")) {
        return 1;
    }
    if (!strcasecmp(v, "off")) {
        return 0;
    }
    return -1;
}

/* A time: "30" (seconds), "500ms", "2s", "1mi", "1h". Must be > 0. */
static const char *parse_time(cmd_parms *cmd, const char *what,
                              const char *v, apr_interval_time_t *t)
{
    if (ap_timeout_parameter_parse(v, t, "s") != APR_SUCCESS || *t <= 0) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a positive time "
                            "(e.g. 30, 500ms, 2s, 1mi)", what, v);
    }
    return NULL;
}

static const char *parse_count(cmd_parms *cmd, const char *what,
                               const char *v, int min, int max, int *n)
{
    char *end;
    apr_int64_t x = apr_strtoi64(v, &end, 10);

    if (!*v || *end || x < min || x > max) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a whole number "
                            "from %d to %d", what, v, min, max);
    }
    *n = (int)x;
    return NULL;
}

/* Parses "http://host[:port][/path]" into a new worker. */
const char *rc_config_worker_parse(cmd_parms *cmd, const char *url,
                                   rc_worker_t **out)
{
    apr_uri_t u;
    rc_worker_t *w;
    int ipv6;

    if (apr_uri_parse(cmd->pool, url, &u) != APR_SUCCESS || !u.scheme
        || !u.hostname || !*u.hostname) {
        return apr_psprintf(cmd->pool, "'%s' is not an absolute URL "
                            "(http://host[:port]/path)", url);
    }
    if (strcasecmp(u.scheme, "http") != 0) {
        return apr_psprintf(cmd->pool, "'%s': scheme '%s' is not "
                            "supported (only http)", url, u.scheme);
    }
    if (u.query || u.fragment || u.user || u.password) {
        return apr_psprintf(cmd->pool, "'%s': a backend URL may not have "
                            "a query, fragment or user info", url);
    }
    if (u.port_str) {
        /* apr_uri_parse() silently wraps 99999 into a 16-bit port. */
        char *end;
        apr_int64_t port = apr_strtoi64(u.port_str, &end, 10);

        if (!*u.port_str || *end || port < 1 || port > 65535) {
            return apr_psprintf(cmd->pool, "'%s': bad port '%s' (1 to "
                                "65535)", url, u.port_str);
        }
    }
    w = apr_pcalloc(cmd->pool, sizeof(*w));
    w->url = url;
    w->host = u.hostname;
    w->port = u.port ? u.port : 80;
    ipv6 = strchr(u.hostname, ':') != NULL;
    w->authority = apr_psprintf(cmd->pool, "%s%s%s", ipv6 ? "[" : "",
                                u.hostname, ipv6 ? "]" : "");
    if (w->port != 80) {
        w->authority = apr_psprintf(cmd->pool, "%s:%u", w->authority,
                                    (unsigned)w->port);
    }
    w->base_path = u.path && *u.path ? u.path : "/";
    w->timeout = RC_UNSET;
    w->connect_timeout = RC_UNSET;
    w->idle_ttl = RC_UNSET;
    w->keepalive = RC_UNSET;
    w->max_idle = RC_UNSET;
    w->server = cmd->server;
    *out = w;
    return NULL;
}

/* Applies "key=value" route options to a worker. */
const char *rc_config_worker_option(cmd_parms *cmd, rc_worker_t *w,
                                    const char *arg)
{
    const char *eq = strchr(arg, '=');
    const char *key, *val;
    int on;

    if (!eq || eq == arg) {
        return apr_psprintf(cmd->pool, "option '%s' is not key=value",
                            arg);
    }
    key = apr_pstrmemdup(cmd->pool, arg, eq - arg);
    val = eq + 1;
    if (!strcasecmp(key, "timeout")) {
        return parse_time(cmd, "timeout", val, &w->timeout);
    }
    if (!strcasecmp(key, "connecttimeout")) {
        return parse_time(cmd, "connecttimeout", val, &w->connect_timeout);
    }
    if (!strcasecmp(key, "idlettl")) {
        return parse_time(cmd, "idlettl", val, &w->idle_ttl);
    }
    if (!strcasecmp(key, "maxidle")) {
        return parse_count(cmd, "maxidle", val, 0, 100000, &w->max_idle);
    }
    if (!strcasecmp(key, "keepalive")) {
        if ((on = rc_conf_parse_onoff(val)) < 0) {
            return apr_psprintf(cmd->pool, "keepalive: '%s' is not On or "
                                "Off", val);
        }
        w->keepalive = on;
        return NULL;
    }
    return apr_psprintf(cmd->pool, "unknown option '%s' (known: timeout, "
                        "connecttimeout, keepalive, maxidle, idlettl)", key);
}

/* Where a directive sits: the server/vhost level, or a <Location>. */
static const char *location_context(cmd_parms *cmd, int *in_location)
{
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIRECTORY
                                                | NOT_IN_FILES
                                                | NOT_IN_HTACCESS);
    if (err) {
        return err;
    }
    *in_location = cmd->path != NULL;
    if (*in_location) {
        const ap_directive_t *sect = cmd->directive->parent;

        /* A route needs a literal prefix: no regex, no <If>. */
        if (!sect || strcasecmp(sect->directive, "<Location") != 0
            || sect->args[0] == '~') {
            return apr_pstrcat(cmd->pool, cmd->cmd->name, " is only "
                               "allowed at server level or in <Location "
                               "PATH> (not <LocationMatch>, <Location ~>, "
                               "<If>)", NULL);
        }
    }
    return NULL;
}

static const char *cmd_pass(cmd_parms *cmd, void *dirconf, int argc,
                            char *const argv[])
{
    rc_server_conf_t *sc = ap_get_module_config(cmd->server->module_config,
                                                &revcache_module);
    rc_dir_conf_t *dc = dirconf;
    rc_route_t rt;
    const char *err, *target;
    int in_location, i, next = 0;

    if ((err = location_context(cmd, &in_location))) {
        return err;
    }
    memset(&rt, 0, sizeof(rt));
    if (argc > 0 && argv[0][0] == '/') {
        rt.prefix = argv[next++];
        if (in_location && strcmp(rt.prefix, cmd->path) != 0) {
            return apr_psprintf(cmd->pool, "RevProxyPass in <Location %s> "
                                "takes no prefix, or exactly '%s'",
                                cmd->path, cmd->path);
        }
    }
    else if (in_location) {
        rt.prefix = cmd->path;
    }
    else {
        return "RevProxyPass needs a path prefix starting with '/' "
               "outside <Location>";
    }
    if (next >= argc) {
        return "RevProxyPass needs a backend URL or '!'";
    }
    target = argv[next++];
    rt.prefix_len = strlen(rt.prefix);
    if (!strcmp(target, "!")) {
        if (next < argc) {
            return "RevProxyPass PREFIX ! takes no options";
        }
        rt.exclude = 1;
    }
    else if (!strncasecmp(target, "balancer://", 11)) {
        if (next < argc) {
            return "RevProxyPass PREFIX balancer://NAME/ takes no options "
                   "(give them to each RevBalancerMember)";
        }
        if ((err = rc_lb_route_target(cmd, target, &rt.worker))) {
            return err;
        }
    }
    else {
        if ((err = rc_config_worker_parse(cmd, target, &rt.worker))) {
            return err;
        }
        for (i = next; i < argc; i++) {
            if ((err = rc_config_worker_option(cmd, rt.worker, argv[i]))) {
                return err;
            }
        }
    }
    if (in_location) {
        if (dc->route) {
            return "RevProxyPass given twice in the same <Location>";
        }
        dc->route = apr_pmemdup(cmd->pool, &rt, sizeof(rt));
    }
    else {
        for (i = 0; i < sc->routes->nelts; i++) {
            if (!strcmp(APR_ARRAY_IDX(sc->routes, i, rc_route_t).prefix,
                        rt.prefix)) {
                return apr_psprintf(cmd->pool, "RevProxyPass for '%s' is "
                                    "already defined in this server",
                                    rt.prefix);
            }
        }
        route_insert(sc->routes, &rt);
    }
    if (rt.worker && !rt.worker->balancer) {
        rc_config_worker_add(rt.worker);
    }
    return NULL;
}

static const char *cmd_pass_reverse(cmd_parms *cmd, void *dirconf,
                                    const char *a1, const char *a2)
{
    rc_server_conf_t *sc = ap_get_module_config(cmd->server->module_config,
                                                &revcache_module);
    rc_dir_conf_t *dc = dirconf;
    rc_reverse_map_t map;
    rc_worker_t *check;
    const char *err;
    int in_location;

    if ((err = location_context(cmd, &in_location))) {
        return err;
    }
    if (a2) {
        if (a1[0] != '/' || (in_location && strcmp(a1, cmd->path))) {
            return "RevProxyPassReverse: the prefix must start with '/' "
                   "(and equal the <Location> path inside one)";
        }
        map.front = a1;
        map.backend = a2;
    }
    else if (in_location) {
        map.front = cmd->path;
        map.backend = a1;
    }
    else {
        return "RevProxyPassReverse needs PREFIX URL outside <Location>";
    }
    if ((err = rc_config_worker_parse(cmd, map.backend, &check))) {
        return apr_pstrcat(cmd->pool, "RevProxyPassReverse: ", err, NULL);
    }
    APR_ARRAY_PUSH(in_location ? dc->reverse : sc->reverse,
                   rc_reverse_map_t) = map;
    return NULL;
}

static rc_server_conf_t *server_conf_for(cmd_parms *cmd)
{
    return ap_get_module_config(cmd->server->module_config,
                                &revcache_module);
}

static const char *cmd_preserve_host(cmd_parms *cmd, void *d, int on)
{
    (void)d;
    server_conf_for(cmd)->preserve_host = on;
    return NULL;
}

static const char *cmd_forwarded(cmd_parms *cmd, void *d, const char *v)
{
    rc_server_conf_t *sc = server_conf_for(cmd);

    (void)d;
    if (!strcasecmp(v, "off")) {
        sc->forwarded = RC_FWD_OFF;
    }
    else if (!strcasecmp(v, "on")) {
        sc->forwarded = RC_FWD_X;
    }
    else if (!strcasecmp(v, "rfc7239")) {
        sc->forwarded = RC_FWD_RFC7239;
    }
    else if (!strcasecmp(v, "both")) {
        sc->forwarded = RC_FWD_BOTH;
    }
    else {
        return apr_psprintf(cmd->pool, "RevProxyForwarded: '%s' is not "
                            "On, Off, RFC7239 or Both", v);
    }
    return NULL;
}

static const char *cmd_timeout(cmd_parms *cmd, void *d, const char *v)
{
    (void)d;
    return parse_time(cmd, cmd->cmd->name, v, &server_conf_for(cmd)->timeout);
}

static const char *cmd_connect_timeout(cmd_parms *cmd, void *d,
                                       const char *v)
{
    (void)d;
    return parse_time(cmd, cmd->cmd->name, v,
                      &server_conf_for(cmd)->connect_timeout);
}

static const char *cmd_pool_max_idle(cmd_parms *cmd, void *d, const char *v)
{
    (void)d;
    return parse_count(cmd, cmd->cmd->name, v, 0, 100000,
                       &server_conf_for(cmd)->pool_max_idle);
}

static const char *cmd_pool_idle_ttl(cmd_parms *cmd, void *d, const char *v)
{
    (void)d;
    return parse_time(cmd, cmd->cmd->name, v,
                      &server_conf_for(cmd)->pool_idle_ttl);
}

const command_rec rc_cmds[] = {
    AP_INIT_TAKE_ARGV("RevProxyPass", cmd_pass, NULL,
                      RSRC_CONF | ACCESS_CONF,
                      "[PREFIX] URL|! [key=value ...]: forward requests "
                      "under PREFIX to URL"),
    AP_INIT_TAKE12("RevProxyPassReverse", cmd_pass_reverse, NULL,
                   RSRC_CONF | ACCESS_CONF,
                   "[PREFIX] URL: rewrite Location, Content-Location and "
                   "URI response headers that point at URL"),
    AP_INIT_FLAG("RevProxyPreserveHost", cmd_preserve_host, NULL, RSRC_CONF,
                 "On: send the client's Host to the backend"),
    AP_INIT_TAKE1("RevProxyForwarded", cmd_forwarded, NULL, RSRC_CONF,
                  "On|Off|RFC7239|Both: X-Forwarded-* and/or Forwarded, "
                  "with Via"),
    AP_INIT_TAKE1("RevProxyTimeout", cmd_timeout, NULL, RSRC_CONF,
                  "time to wait for each backend read or write"),
    AP_INIT_TAKE1("RevProxyConnectTimeout", cmd_connect_timeout, NULL,
                  RSRC_CONF, "time to wait for a backend connection"),
    AP_INIT_TAKE1("RevProxyPoolMaxIdle", cmd_pool_max_idle, NULL, RSRC_CONF,
                  "idle connections kept per backend per child process"),
    AP_INIT_TAKE1("RevProxyPoolIdleTimeout", cmd_pool_idle_ttl, NULL,
                  RSRC_CONF, "how long an idle backend connection is kept"),
    RC_LB_CMDS
    RC_CACHE_CMDS,
    { NULL }
};
