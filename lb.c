/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * lb.c - the httpd glue of the load balancer. The APR-only core
 * (balancer.c, balancer_conf.c) selects members and keeps their health
 * in shared memory; this file wires it into httpd:
 *
 *   directives   <RevBalancer NAME> and what goes inside it, parsed with
 *                the core's helpers; each RevBalancerMember is also a
 *                worker of the registry (config.c), so it gets a
 *                per-process connection pool like any RevProxyPass URL.
 *                "RevProxyPass /p/ balancer://NAME/" makes a route
 *                worker without a pool; check_config resolves NAME (an
 *                unknown one stops the start, naming file:line).
 *   shared mem   post_config sizes one anonymous segment for every
 *                balancer and attaches the core to it. The segment is
 *                kept in the process pool across (graceful) restarts
 *                while the layout (names, member URLs) is unchanged, so
 *                health, EWMA and in-flight counts survive a reload; a
 *                changed layout gets a new segment (children of the old
 *                generation keep their own mapping of the old one).
 *                Children inherit the mapping and the handles on fork;
 *                each claims a process slot on its first pick and frees
 *                it when its pool goes (rc_bal_child_exit). What a killed
 *                child held is given back by rc_bal_reap(), called once a
 *                second by the watchdog below and, as a fallback, by the
 *                parent's monitor hook (which httpd runs only every ~10 s).
 *   per request  rc_lb_exchange(): hash key or sticky cookie -> pick /
 *                acquire (waiting, bounded, while every member is at
 *                max=N) -> rc_proxy_exchange() on that member -> on a
 *                failure that is safe to repeat, report it and try
 *                another member (exclusion mask, RevBalancerRetries).
 *                The reservation (ticket) is ended in rc_lb_done() with
 *                the time the head came (the latency the EWMA learns) or,
 *                if nobody calls it, by a cleanup of r->pool.
 *   health       one prober for the whole server: a callback on a
 *                singleton mod_watchdog instance, so exactly one child
 *                (event, worker or prefork alike) runs it (and reaps). Each due
 *                member is probed (plain HTTP/1.1 GET, blocking socket
 *                with the check's timeout) on a small thread pool, one
 *                probe per member at a time; results go to
 *                rc_bal_report_probe(). When the child running it exits
 *                (prefork retiring an idle child, MaxConnectionsPerChild),
 *                mod_watchdog hands the singleton to another child, which
 *                waits ~10 s before it starts: checks pause meanwhile,
 *                the members keep the health they had.
 *
 * Pools: configuration (rc_lb_t, members, the handles of the core) in
 * pconf; the segment in the process pool; the prober's pool under the
 * child's pool with an allocator of its own (created in child_init, used
 * only by the watchdog child: its thread pool, and one subpool per probe,
 * destroyed when the probe ends); per request state in r->pool.
 * Locks: none here; the core's shared state is atomics and robust
 * mutexes inside balancer.c. The prober's busy flags are atomics.
 */

#include <apr_atomic.h>
#include <apr_lib.h>
#include <apr_optional.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <apr_thread_pool.h>
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <ap_mpm.h>
#include <mpm_common.h>
#include <mod_watchdog.h>

#include "mod_revcache.h"

APLOG_USE_MODULE(revcache);

#define RC_LB_DEF_WAIT         apr_time_from_sec(5)
#define RC_LB_DEF_HC_INTERVAL  apr_time_from_sec(2)
#define RC_LB_DEF_HC_TIMEOUT   apr_time_from_sec(1)
#define RC_LB_HC_THREADS       16
#define RC_LB_MAX_EXPECT       8
#define RC_LB_WATCHDOG         "_revcache_hc_"
#define RC_LB_SHM_KEY          "rc_lb_shm"

/* What RevHealthCheck said; uri NULL: no active checks. */
typedef struct {
    const char          *uri;
    apr_interval_time_t  interval;
    apr_interval_time_t  timeout;
    int                  nexpect;
    int                  expect_lo[RC_LB_MAX_EXPECT];
    int                  expect_hi[RC_LB_MAX_EXPECT];
} rc_lb_hc_t;

/* One RevBalancerMember: its worker (pool, options) and prober state. */
typedef struct {
    rc_worker_t         *worker;
    const char          *base;      /* URL path without a trailing '/' */
    const char          *route;     /* sticky route id */
    const char          *note;      /* "NAME/ROUTE" for r->notes */
    /* prober only (the watchdog child) */
    apr_time_t           probe_next;
    apr_uint32_t         probe_busy;
    int                  idx;
    struct rc_lb_t      *lb;
} rc_lb_member_t;

struct rc_lb_t {
    const char          *name;
    const char          *where;     /* "file:line" of <RevBalancer> */
    rc_bal_conf_t       *conf;
    apr_array_header_t  *members;   /* rc_lb_member_t */
    const char          *sticky;    /* cookie name, NULL: no stickiness */
    apr_interval_time_t  wait;      /* RC_UNSET: RC_LB_DEF_WAIT */
    rc_lb_hc_t           hc;
    rc_bal_t            *bal;       /* attached in post_config */
};

/* What the shared segment is kept as across restarts (process pool). */
typedef struct {
    apr_shm_t           *shm;
    apr_size_t           size;
    apr_uint64_t         layout;    /* hash of names and member URLs */
} rc_lb_keep_t;

/* One exchange's reservation (r->pool). */
typedef struct {
    rc_lb_t             *lb;
    rc_bal_ticket_t      ticket;
    apr_time_t           head_at;   /* when the response head came */
} rc_lb_req_t;

/* This configuration's balancers and balancer routes (pconf; rebuilt on
 * every cycle, reset in pre_config; directives run single threaded). */
static apr_array_header_t *balancers;     /* rc_lb_t * */
static apr_array_header_t *lb_routes;     /* rc_worker_t * */
static rc_lb_t *lb_cur;                   /* the section being read */

/* The prober (watchdog child only). */
static apr_pool_t *hc_pool;
static apr_thread_pool_t *hc_threads;
static apr_thread_mutex_t *hc_lock;     /* hc_threads: watchdog vs exit */
static server_rec *hc_server;
static volatile apr_uint32_t hc_ready;

/* ------------------------------------------------------------------ */
/* Configuration                                                        */

static int lb_is_name(const char *s)
{
    if (!*s || strlen(s) > 64) {
        return 0;
    }
    for (; *s; s++) {
        if (!apr_isalnum(*s) && !strchr("._-", *s)) {
            return 0;
        }
    }
    return 1;
}

static rc_lb_t *lb_find(const char *name)
{
    int i;

    for (i = 0; balancers && i < balancers->nelts; i++) {
        rc_lb_t *lb = APR_ARRAY_IDX(balancers, i, rc_lb_t *);
        if (!strcmp(lb->name, name)) {
            return lb;
        }
    }
    return NULL;
}

static const char *lb_where(cmd_parms *cmd)
{
    return apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename,
                        cmd->directive->line_num);
}

/* Status patterns of expect=: "2xx", "200", "2xx,3xx,404". */
static const char *lb_parse_expect(cmd_parms *cmd, rc_lb_hc_t *hc,
                                   const char *v)
{
    char *list = apr_pstrdup(cmd->temp_pool, v), *last, *tok;

    hc->nexpect = 0;
    for (tok = apr_strtok(list, ",", &last); tok;
         tok = apr_strtok(NULL, ",", &last)) {
        int n = hc->nexpect;

        if (n == RC_LB_MAX_EXPECT || strlen(tok) != 3 || tok[0] < '1'
            || tok[0] > '5') {
            return apr_psprintf(cmd->pool, "RevHealthCheck: expect '%s' "
                                "must be up to %d of 2xx or 200 style "
                                "statuses, comma separated", v,
                                RC_LB_MAX_EXPECT);
        }
        if (apr_tolower(tok[1]) == 'x' && apr_tolower(tok[2]) == 'x') {
            hc->expect_lo[n] = (tok[0] - '0') * 100;
            hc->expect_hi[n] = hc->expect_lo[n] + 99;
        }
        else if (apr_isdigit(tok[1]) && apr_isdigit(tok[2])) {
            hc->expect_lo[n] = hc->expect_hi[n] = atoi(tok);
        }
        else {
            return apr_psprintf(cmd->pool, "RevHealthCheck: expect '%s' "
                                "is not like 2xx or 200", tok);
        }
        hc->nexpect++;
    }
    if (!hc->nexpect) {
        return "RevHealthCheck: expect= needs a status, e.g. 2xx";
    }
    return NULL;
}

static const char *lb_health(cmd_parms *cmd, rc_lb_t *lb, int argc,
                             char *const argv[])
{
    rc_lb_hc_t *hc = &lb->hc;
    const char *err;
    int i, used;

    for (i = 0; i < argc; i++) {
        const char *kv = argv[i], *v = strchr(kv, '=');
        apr_interval_time_t t;

        if ((err = rc_bal_health_param(lb->conf, kv, &used))) {
            return err;
        }
        if (used) {
            continue;
        }
        if (!v) {
            return apr_psprintf(cmd->pool, "RevHealthCheck: '%s' is not "
                                "key=value", kv);
        }
        v++;
        if (!strncasecmp(kv, "uri=", 4)) {
            if (*v != '/' || strpbrk(v, " \t\r\n")) {
                return apr_psprintf(cmd->pool, "RevHealthCheck: uri '%s' "
                                    "must be a path starting with '/'", v);
            }
            hc->uri = v;
        }
        else if (!strncasecmp(kv, "interval=", 9)
                 || !strncasecmp(kv, "timeout=", 8)) {
            if (rc_bal_parse_interval(v, &t) || t < apr_time_from_msec(50)) {
                return apr_psprintf(cmd->pool, "RevHealthCheck: '%s' needs "
                                    "a duration of at least 50ms (e.g. "
                                    "2s, 500ms)", kv);
            }
            if (apr_tolower(kv[0]) == 'i') {
                hc->interval = t;
            }
            else {
                hc->timeout = t;
            }
        }
        else if (!strncasecmp(kv, "expect=", 7)) {
            if ((err = lb_parse_expect(cmd, hc, v))) {
                return err;
            }
        }
        else {
            return apr_psprintf(cmd->pool, "RevHealthCheck: unknown "
                                "parameter '%s' (expected uri, interval, "
                                "timeout, fails, passes, expect)", kv);
        }
    }
    if (!hc->uri) {
        return "RevHealthCheck needs uri=PATH";
    }
    return NULL;
}

static int lb_is_worker_option(const char *kv)
{
    static const char *const opts[] = {
        "timeout=", "connecttimeout=", "keepalive=", "maxidle=",
        "idlettl=", NULL
    };
    int i;

    for (i = 0; opts[i]; i++) {
        if (!strncasecmp(kv, opts[i], strlen(opts[i]))) {
            return 1;
        }
    }
    return 0;
}

static const char *lb_member(cmd_parms *cmd, rc_lb_t *lb, int argc,
                             char *const argv[])
{
    const char **bal_args = apr_palloc(cmd->temp_pool,
                                       sizeof(char *) * (argc + 1));
    rc_lb_member_t *mb;
    rc_worker_t *w;
    const char *err;
    apr_size_t blen;
    int i, nbal = 0;

    if (argc < 1) {
        return "RevBalancerMember needs a URL";
    }
    if ((err = rc_config_worker_parse(cmd, argv[0], &w))) {
        return apr_pstrcat(cmd->pool, "RevBalancerMember: ", err, NULL);
    }
    for (i = 1; i < argc; i++) {
        if (lb_is_worker_option(argv[i])) {
            if ((err = rc_config_worker_option(cmd, w, argv[i]))) {
                return apr_pstrcat(cmd->pool, "RevBalancerMember: ", err,
                                   NULL);
            }
        }
        else if (!strchr(argv[i], '=')
                 || !(!strncasecmp(argv[i], "weight=", 7)
                      || !strncasecmp(argv[i], "status=", 7)
                      || !strncasecmp(argv[i], "max=", 4)
                      || !strncasecmp(argv[i], "route=", 6))) {
            return apr_psprintf(cmd->pool, "RevBalancerMember: unknown "
                                "parameter '%s' (expected weight, status, "
                                "max, route, timeout, connecttimeout, "
                                "keepalive, maxidle, idlettl)", argv[i]);
        }
        else {
            bal_args[nbal++] = argv[i];
        }
    }
    if ((err = rc_bal_conf_add_member(cmd->pool, lb->conf, argv[0], nbal,
                                      bal_args))) {
        return err;
    }
    rc_config_worker_add(w);
    mb = apr_array_push(lb->members);
    memset(mb, 0, sizeof(*mb));
    mb->worker = w;
    blen = strlen(w->base_path);
    while (blen && w->base_path[blen - 1] == '/') {
        blen--;
    }
    mb->base = apr_pstrmemdup(cmd->pool, w->base_path, blen);
    mb->idx = lb->members->nelts - 1;
    mb->lb = lb;
    return NULL;
}

const char *rc_lb_cmd_section(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE);
    const char *end = ap_strrchr_c(arg, '>');
    rc_bal_member_conf_t *ms;
    rc_lb_t *lb, *dup;
    char *name;
    int i;

    if (err) {
        return err;
    }
    if (!end) {
        return "<RevBalancer NAME> lacks its closing '>'";
    }
    name = apr_pstrmemdup(cmd->temp_pool, arg, end - arg);
    name = ap_getword_conf(cmd->pool, (const char **)&name);
    if (!lb_is_name(name)) {
        return apr_psprintf(cmd->pool, "<RevBalancer %s>: the name must be "
                            "1 to 64 of A-Z a-z 0-9 . _ -", name);
    }
    if (lb_cur) {
        return "<RevBalancer> sections cannot be nested";
    }
    if ((dup = lb_find(name))) {
        return apr_psprintf(cmd->pool, "<RevBalancer %s> is already "
                            "defined at %s", name, dup->where);
    }
    lb = apr_pcalloc(cmd->pool, sizeof(*lb));
    lb->name = name;
    lb->where = lb_where(cmd);
    lb->conf = rc_bal_conf_create(cmd->pool, name);
    lb->members = apr_array_make(cmd->pool, 4, sizeof(rc_lb_member_t));
    lb->wait = RC_UNSET;
    lb->hc.interval = RC_UNSET;
    lb->hc.timeout = RC_UNSET;

    lb_cur = lb;
    err = ap_walk_config(cmd->directive->first_child, cmd, dc);
    lb_cur = NULL;
    if (err) {
        return err;
    }
    if ((err = rc_bal_conf_check(cmd->pool, lb->conf))) {
        return err;
    }
    if (lb->hc.uri) {
        if (lb->hc.interval == RC_UNSET) {
            lb->hc.interval = RC_LB_DEF_HC_INTERVAL;
        }
        if (lb->hc.timeout == RC_UNSET) {
            lb->hc.timeout = RC_LB_DEF_HC_TIMEOUT;
        }
        if (!lb->hc.nexpect) {
            lb->hc.nexpect = 1;
            lb->hc.expect_lo[0] = 200;
            lb->hc.expect_hi[0] = 299;
        }
    }
    if (lb->wait == RC_UNSET) {
        lb->wait = RC_LB_DEF_WAIT;
    }
    ms = (rc_bal_member_conf_t *)lb->conf->members->elts;
    for (i = 0; i < lb->members->nelts; i++) {
        rc_lb_member_t *mb = &APR_ARRAY_IDX(lb->members, i, rc_lb_member_t);

        mb->route = ms[i].route;
        mb->note = apr_pstrcat(cmd->pool, name, "/", ms[i].route, NULL);
    }
    APR_ARRAY_PUSH(balancers, rc_lb_t *) = lb;
    return NULL;
}

const char *rc_lb_cmd(cmd_parms *cmd, void *dc, int argc,
                      char *const argv[])
{
    rc_lb_t *lb = lb_cur;
    const char *err = NULL;
    apr_interval_time_t t;
    int what = (int)(apr_uintptr_t)cmd->info, i;

    (void)dc;
    if (!lb) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, " is only allowed "
                           "inside <RevBalancer NAME>", NULL);
    }
    if (what != RC_LB_MEMBER && what != RC_LB_HEALTH
        && what != RC_LB_EJECT && argc != 1) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, " takes one "
                           "argument", NULL);
    }
    if (argc < 1) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, " needs arguments",
                           NULL);
    }
    switch (what) {
    case RC_LB_MEMBER:
        return lb_member(cmd, lb, argc, argv);
    case RC_LB_METHOD:
        if ((err = rc_bal_parse_method(argv[0], &lb->conf->method))) {
            return apr_psprintf(cmd->pool, "'%s': %s", argv[0], err);
        }
        return NULL;
    case RC_LB_HASHKEY:
        lb->conf->key_set = 1;
        return rc_bal_parse_hash_key(cmd->pool, argv[0], &lb->conf->key);
    case RC_LB_STICKY:
        if (strncasecmp(argv[0], "cookie=", 7) || !argv[0][7]
            || !lb_is_name(argv[0] + 7)) {
            return "RevBalancerSticky takes cookie=NAME (NAME of A-Z a-z "
                   "0-9 . _ -)";
        }
        lb->sticky = argv[0] + 7;
        return NULL;
    case RC_LB_HEALTH:
        return lb_health(cmd, lb, argc, argv);
    case RC_LB_EJECT:
        for (i = 0; i < argc && !err; i++) {
            err = rc_bal_eject_param(lb->conf, argv[i]);
        }
        return err;
    case RC_LB_SLOWSTART:
        if ((err = rc_bal_parse_interval(argv[0], &t))) {
            return apr_psprintf(cmd->pool, "RevBalancerSlowStart '%s': %s",
                                argv[0], err);
        }
        lb->conf->slow_start = t;
        return NULL;
    case RC_LB_RETRIES:
        {
            char *end;
            apr_int64_t n = apr_strtoi64(argv[0], &end, 10);

            if (!*argv[0] || *end || n < 0 || n >= RC_BAL_MAX_MEMBERS) {
                return apr_psprintf(cmd->pool, "RevBalancerRetries '%s' "
                                    "must be a whole number from 0 to %d",
                                    argv[0], RC_BAL_MAX_MEMBERS - 1);
            }
            lb->conf->retries = (int)n;
            return NULL;
        }
    case RC_LB_WAIT:
        if ((err = rc_bal_parse_interval(argv[0], &t))) {
            return apr_psprintf(cmd->pool, "RevBalancerWait '%s': %s",
                                argv[0], err);
        }
        lb->wait = t;
        return NULL;
    }
    return "unknown balancer directive";
}

const char *rc_lb_route_target(cmd_parms *cmd, const char *url,
                               rc_worker_t **out)
{
    const char *name = url + strlen("balancer://");
    const char *slash = strchr(name, '/');
    rc_worker_t *w = apr_pcalloc(cmd->pool, sizeof(*w));

    w->balancer = slash ? apr_pstrmemdup(cmd->pool, name, slash - name)
                        : name;
    if (!lb_is_name(w->balancer)) {
        return apr_psprintf(cmd->pool, "'%s': the balancer name must be 1 "
                            "to 64 of A-Z a-z 0-9 . _ -", url);
    }
    if (slash && strpbrk(slash, "?#")) {
        return apr_psprintf(cmd->pool, "'%s': a backend URL may not have "
                            "a query or fragment", url);
    }
    w->url = url;
    w->base_path = slash ? slash : "/";
    w->host = "";
    w->authority = "";
    w->index = -1;
    w->timeout = RC_UNSET;
    w->connect_timeout = RC_UNSET;
    w->idle_ttl = RC_UNSET;
    w->keepalive = RC_UNSET;
    w->max_idle = RC_UNSET;
    w->server = cmd->server;
    w->where = lb_where(cmd);
    APR_ARRAY_PUSH(lb_routes, rc_worker_t *) = w;
    *out = w;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Hooks: configuration cycle, shared memory, reaping                   */

static int lb_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                         apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    balancers = apr_array_make(pconf, 4, sizeof(rc_lb_t *));
    lb_routes = apr_array_make(pconf, 4, sizeof(rc_worker_t *));
    lb_cur = NULL;
    return OK;
}

/* RevProxyPass balancer://NAME/: NAME must be a <RevBalancer>. Runs
 * before `httpd -t` reports, so configtest catches it too. */
static int lb_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp, server_rec *s)
{
    int i, rv = OK;

    (void)pconf;
    (void)plog;
    (void)ptemp;
    for (i = 0; i < lb_routes->nelts; i++) {
        rc_worker_t *w = APR_ARRAY_IDX(lb_routes, i, rc_worker_t *);

        if (!(w->lb = lb_find(w->balancer))) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s,
                         RCLOGNO(00400) "%s: RevProxyPass %s: no "
                         "<RevBalancer %s> is defined", w->where, w->url,
                         w->balancer);
            rv = !OK;
        }
    }
    return rv;
}

static apr_uint64_t lb_layout(void)
{
    apr_uint64_t h = 0;
    int i, j;

    for (i = 0; i < balancers->nelts; i++) {
        rc_lb_t *lb = APR_ARRAY_IDX(balancers, i, rc_lb_t *);
        const rc_bal_member_conf_t *ms =
            (const rc_bal_member_conf_t *)lb->conf->members->elts;

        h = h * 31 + rc_bal_hash(lb->name, strlen(lb->name) + 1);
        for (j = 0; j < lb->conf->members->nelts; j++) {
            h = h * 31 + rc_bal_hash(ms[j].url, strlen(ms[j].url) + 1);
        }
    }
    return h;
}

static apr_status_t lb_tick(int state, void *data, apr_pool_t *p);

static int lb_any_health_checks(void)
{
    int i;

    for (i = 0; i < balancers->nelts; i++) {
        if (APR_ARRAY_IDX(balancers, i, rc_lb_t *)->hc.uri) {
            return 1;
        }
    }
    return 0;
}

/* A balancer route's worker has no pool, but others read its options
 * (the cache sizes its fill markers by worker->timeout): give it the
 * longest of its members', resolved by then (rc_post_config ran). */
static void lb_resolve_route_workers(void)
{
    int i, j;

    for (i = 0; i < lb_routes->nelts; i++) {
        rc_worker_t *w = APR_ARRAY_IDX(lb_routes, i, rc_worker_t *);

        for (j = 0; w->lb && j < w->lb->members->nelts; j++) {
            const rc_worker_t *mw = APR_ARRAY_IDX(w->lb->members, j,
                                                  rc_lb_member_t).worker;
#define LB_MAX(f) if (mw->f > w->f) w->f = mw->f
            LB_MAX(timeout);
            LB_MAX(connect_timeout);
            LB_MAX(idle_ttl);
            LB_MAX(keepalive);
            LB_MAX(max_idle);
#undef LB_MAX
        }
    }
}

static int lb_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                          apr_pool_t *ptemp, server_rec *s)
{
    apr_pool_t *pproc = s->process->pool;
    const rc_bal_conf_t **confs;
    rc_bal_t **handles;
    rc_lb_keep_t *keep = NULL;
    apr_size_t size;
    apr_uint64_t layout;
    apr_status_t rv;
    char *base;
    int i, n = balancers->nelts, reused = 0;

    (void)plog;
    lb_resolve_route_workers();
    if (n == 0) {
        return OK;
    }
    confs = apr_palloc(ptemp, sizeof(*confs) * n);
    handles = apr_pcalloc(pconf, sizeof(*handles) * n);
    for (i = 0; i < n; i++) {
        confs[i] = APR_ARRAY_IDX(balancers, i, rc_lb_t *)->conf;
    }
    size = rc_bal_shm_size(confs, n);
    layout = lb_layout();
    apr_pool_userdata_get((void **)&keep, RC_LB_SHM_KEY, pproc);
    if (!keep) {
        keep = apr_pcalloc(pproc, sizeof(*keep));
        apr_pool_userdata_set(keep, RC_LB_SHM_KEY, apr_pool_cleanup_null,
                              pproc);
    }
    if (!keep->shm || keep->size != size || keep->layout != layout) {
        if (keep->shm) {
            /* Children of the old generation keep their mapping. */
            apr_shm_destroy(keep->shm);
            keep->shm = NULL;
        }
        /* apr_shm's usable base is not 64-byte aligned: room to align. */
        rv = apr_shm_create(&keep->shm, size + 64, NULL, pproc);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, RCLOGNO(00401)
                         "cannot create the balancers' shared memory "
                         "(%" APR_SIZE_T_FMT " bytes)", size + 64);
            return !OK;
        }
        keep->size = size;
        keep->layout = layout;
    }
    base = apr_shm_baseaddr_get(keep->shm);
    base += (64 - ((apr_uintptr_t)base % 64)) % 64;
    rv = rc_bal_shm_attach(pconf, base, size, confs, n,
                           (apr_uint32_t)ap_state_query(AP_SQ_CONFIG_GEN),
                           handles, &reused);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, RCLOGNO(00402)
                     "cannot lay out the balancers' shared memory");
        return !OK;
    }
    for (i = 0; i < n; i++) {
        APR_ARRAY_IDX(balancers, i, rc_lb_t *)->bal = handles[i];
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, RCLOGNO(00403)
                 "%d balancer(s), %" APR_SIZE_T_FMT " bytes of shared "
                 "memory (%s)", n, size, reused ? "kept from before the "
                 "restart" : "new");

    /* The watchdog singleton reaps (once a second: the parent's monitor
     * hook only runs every ~10 s) and probes. */
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG) {
        APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) *wd_get;
        APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *wd_reg;
        ap_watchdog_t *wd;

        wd_get = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
        wd_reg = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
        if (!wd_get || !wd_reg) {
            if (!lb_any_health_checks()) {
                return OK;          /* the monitor hook still reaps */
            }
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, RCLOGNO(00404)
                         "RevHealthCheck needs mod_watchdog");
            return !OK;
        }
        rv = wd_get(&wd, RC_LB_WATCHDOG, 0, 1, pconf);
        if (rv == APR_SUCCESS) {
            rv = wd_reg(wd, AP_WD_TM_SLICE, NULL, lb_tick);
        }
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, RCLOGNO(00405)
                         "cannot set up the balancers' watchdog");
            return !OK;
        }
    }
    return OK;
}

static apr_status_t lb_child_exit(void *data)
{
    rc_bal_child_exit(data);
    return APR_SUCCESS;
}

/* Stops the prober's threads (each finishes its probe: bounded by the
 * check's timeout) and keeps the watchdog from starting new ones. */
static apr_status_t hc_stop(void *data)
{
    (void)data;
    apr_atomic_set32(&hc_ready, 0);
    apr_thread_mutex_lock(hc_lock);
    if (hc_threads) {
        apr_thread_pool_destroy(hc_threads);
        hc_threads = NULL;
    }
    apr_thread_mutex_unlock(hc_lock);
    return APR_SUCCESS;
}

static void lb_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_allocator_t *alloc;
    apr_thread_mutex_t *mx;
    rc_lb_t *first;
    int i, j;

    if (!balancers->nelts
        || !(first = APR_ARRAY_IDX(balancers, 0, rc_lb_t *))->bal) {
        return;
    }
    apr_pool_cleanup_register(pchild, first->bal, lb_child_exit,
                              apr_pool_cleanup_null);
    hc_server = s;
    if (!lb_any_health_checks()) {
        return;
    }
    /* The prober's pool, for whichever child the watchdog elects. Its
     * threads create and destroy subpools at once: an allocator of its
     * own, with a mutex (pchild's has none). */
    if (apr_allocator_create(&alloc) != APR_SUCCESS
        || apr_thread_mutex_create(&mx, APR_THREAD_MUTEX_DEFAULT, pchild)
           != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, RCLOGNO(00407)
                     "health checks: cannot set up their memory");
        return;
    }
    apr_allocator_mutex_set(alloc, mx);
    if (apr_thread_mutex_create(&hc_lock, APR_THREAD_MUTEX_DEFAULT, pchild)
        != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, RCLOGNO(00407)
                     "health checks: cannot set up their memory");
        apr_allocator_destroy(alloc);
        return;
    }
    apr_pool_create_ex(&hc_pool, pchild, NULL, alloc);
    apr_allocator_owner_set(alloc, hc_pool);
    apr_pool_tag(hc_pool, "revcache_hc");
    /* A pre-cleanup: it runs before the probes' subpools are destroyed
     * (APR destroys subpools before a pool's plain cleanups), so no
     * probe thread is left using a pool, or the allocator, being freed
     * when the child exits. */
    apr_pool_pre_cleanup_register(hc_pool, NULL, hc_stop);
    for (i = 0; i < balancers->nelts; i++) {
        rc_lb_t *lb = APR_ARRAY_IDX(balancers, i, rc_lb_t *);

        for (j = 0; j < lb->members->nelts; j++) {
            rc_lb_member_t *mb = &APR_ARRAY_IDX(lb->members, j,
                                                rc_lb_member_t);
            mb->probe_next = 0;
            mb->probe_busy = 0;
        }
    }
    apr_atomic_set32(&hc_ready, 1);
}

/* The parent, when httpd runs its monitor hook (every ~10 s), at most
 * once a second: give back what dead children held. A fallback for the
 * watchdog's reaping, e.g. while no child holds the singleton. */
static int lb_monitor(apr_pool_t *p, server_rec *s)
{
    static apr_time_t last;
    apr_time_t now = apr_time_now();
    rc_lb_t *first;
    int n;

    (void)p;
    if (!balancers || !balancers->nelts || now - last < apr_time_from_sec(1)
        || !(first = APR_ARRAY_IDX(balancers, 0, rc_lb_t *))->bal) {
        return DECLINED;
    }
    last = now;
    if ((n = rc_bal_reap(first->bal)) > 0) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, RCLOGNO(00406)
                     "balancer: took back %d in-flight request(s) of child "
                     "processes that died", n);
    }
    return DECLINED;
}

/* ------------------------------------------------------------------ */
/* Events                                                               */

static void lb_log_events(request_rec *r, server_rec *s, rc_lb_t *lb,
                          int idx, int ev)
{
    const char *url = APR_ARRAY_IDX(lb->members, idx, rc_lb_member_t)
                      .worker->url;

    if (!s) {
        s = r->server;
    }
#define LB_LOG(level, tag, what) \
    do { \
        if (r) { \
            ap_log_rerror(APLOG_MARK, level, 0, r, tag "balancer %s: " \
                          "member %s " what, lb->name, url); \
        } \
        else { \
            ap_log_error(APLOG_MARK, level, 0, s, tag "balancer %s: " \
                         "member %s " what, lb->name, url); \
        } \
    } while (0)
    if (ev & RC_BAL_EV_EJECTED) {
        LB_LOG(APLOG_WARNING, RCLOGNO(00410), "ejected after repeated "
               "failures (passive health)");
    }
    if (ev & RC_BAL_EV_RECOVERED) {
        LB_LOG(APLOG_INFO, RCLOGNO(00411), "recovered: its trial request "
               "succeeded");
    }
    if (ev & RC_BAL_EV_DOWN) {
        LB_LOG(APLOG_WARNING, RCLOGNO(00412), "marked down by its health "
               "checks");
    }
    if (ev & RC_BAL_EV_UP) {
        LB_LOG(APLOG_INFO, RCLOGNO(00413), "marked up by its health "
               "checks");
    }
#undef LB_LOG
}

/* ------------------------------------------------------------------ */
/* Per request                                                          */

/* The value of cookie @a name in the request's Cookie fields, or NULL. */
static const char *lb_cookie(request_rec *r, const char *name)
{
    const apr_array_header_t *h = apr_table_elts(r->headers_in);
    const apr_table_entry_t *e = (const apr_table_entry_t *)h->elts;
    apr_size_t nlen = strlen(name);
    int i;

    for (i = 0; i < h->nelts; i++) {
        const char *s = e[i].val;

        if (!e[i].key || strcasecmp(e[i].key, "Cookie") || !s) {
            continue;
        }
        while (*s) {
            const char *end;

            while (*s == ' ' || *s == '\t' || *s == ';') {
                s++;
            }
            end = s + strcspn(s, ";");
            if ((apr_size_t)(end - s) > nlen && s[nlen] == '='
                && !strncmp(s, name, nlen)) {
                const char *v = s + nlen + 1, *ve = end;

                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) {
                    ve--;
                }
                return apr_pstrmemdup(r->pool, v, ve - v);
            }
            s = end;
        }
    }
    return NULL;
}

/* The key the hash method hashes, NULL when the request has none (it
 * then goes least-conn). */
static const char *lb_hash_key(request_rec *r, const rc_lb_t *lb)
{
    const rc_bal_key_t *k = &lb->conf->key;

    if (lb->conf->method != RC_BAL_HASH) {
        return NULL;
    }
    switch (k->kind) {
    case RC_BAL_KEY_HEADER:
        return apr_table_get(r->headers_in, k->name);
    case RC_BAL_KEY_COOKIE:
        return lb_cookie(r, k->name);
    case RC_BAL_KEY_CLIENT_IP:
        return r->useragent_ip;
    default:
        return r->args ? apr_pstrcat(r->pool, r->uri, "?", r->args, NULL)
                       : r->uri;
    }
}

static apr_status_t lb_req_cleanup(void *data)
{
    rc_lb_req_t *st = data;

    if (st->ticket.member >= 0) {
        rc_bal_end(st->lb->bal, &st->ticket, apr_time_now(),
                   RC_BAL_ABANDONED);
    }
    return APR_SUCCESS;
}

/*
 * A member for this attempt: the sticky one while it can serve, else
 * the method's pick. While every usable member is at max=N, wait (short
 * naps growing to 50 ms) up to RevBalancerWait.
 */
static int lb_choose(rc_lb_t *lb, rc_lb_req_t *st, const char *key,
                     const char *sticky, apr_uint64_t exclude)
{
    apr_interval_time_t nap = apr_time_from_msec(2);
    apr_time_t now, deadline = 0;
    rc_bal_req_t rq;
    int pinned = -1, idx;

    rq.key = key;
    rq.key_len = key ? strlen(key) : 0;
    rq.exclude = exclude;
    rq.rng = NULL;
    if (sticky) {
        pinned = rc_bal_route_find(lb->bal, sticky, strlen(sticky));
    }
    for (;;) {
        now = apr_time_now();
        idx = RC_BAL_NONE;
        if (pinned >= 0 && !(exclude & RC_BAL_BIT(pinned))) {
            idx = rc_bal_acquire(lb->bal, pinned, now, &st->ticket);
            if (idx == RC_BAL_NONE) {
                pinned = -1;    /* not usable: pick another */
            }
        }
        if (idx == RC_BAL_NONE) {
            idx = rc_bal_pick(lb->bal, &rq, now, &st->ticket);
        }
        if (idx != RC_BAL_FULL) {
            return idx;
        }
        if (!deadline) {
            deadline = now + lb->wait;
        }
        if (now >= deadline) {
            return RC_BAL_FULL;
        }
        apr_sleep(nap < deadline - now ? nap : deadline - now);
        if (nap < apr_time_from_msec(50)) {
            nap *= 2;
        }
    }
}

static int lb_unavailable(request_rec *r, rc_lb_t *lb, int why,
                          rc_exchange_t *x)
{
    if (!apr_table_get(r->notes, "revcache-backend")) {
        apr_table_setn(r->notes, "revcache-backend",
                       apr_pstrcat(r->pool, "balancer://", lb->name, NULL));
    }
    memset(x, 0, sizeof(*x));
    x->outcome = RC_OUT_CONNECT;
    x->http_status = HTTP_SERVICE_UNAVAILABLE;
    if (why == RC_BAL_FULL) {
        apr_table_setn(r->err_headers_out, "Retry-After", "1");
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, RCLOGNO(00420)
                      "balancer %s: every member is at its max= limit; "
                      "gave up after waiting %" APR_TIME_T_FMT " ms",
                      lb->name, apr_time_as_msec(lb->wait));
    }
    else {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, RCLOGNO(00421)
                      "balancer %s: no member can take the request (all "
                      "down, ejected, disabled or draining)", lb->name);
    }
    return x->http_status;
}

/* May this failed attempt go to another member? */
static int lb_retryable(const request_rec *r, const rc_exchange_t *x)
{
    int idempotent;

    if (x->outcome == RC_OUT_CONNECT) {
        return 1;                   /* nothing reached the backend */
    }
    if (x->outcome != RC_OUT_TIMEOUT && x->outcome != RC_OUT_BAD_RESPONSE) {
        return 0;
    }
    switch (r->method_number) {
    case M_GET: case M_PUT: case M_DELETE: case M_OPTIONS:
        idempotent = 1;
        break;
    default:
        idempotent = r->header_only || !strcmp(r->method, "TRACE");
    }
    return idempotent && !x->body_sent;
}

static rc_bal_outcome_e lb_outcome(const rc_exchange_t *x)
{
    switch (x->outcome) {
    case RC_OUT_OK:
        return x->head.status >= 500 ? RC_BAL_HTTP_5XX : RC_BAL_OK;
    case RC_OUT_TIMEOUT:
        return RC_BAL_TIMEOUT;
    case RC_OUT_CLIENT:
        return RC_BAL_ABANDONED;
    default:
        return RC_BAL_CONNECT_ERROR;  /* no connection, or a broken one */
    }
}

int rc_lb_exchange(request_rec *r, const rc_match_t *m,
                   apr_table_t *set_headers, rc_exchange_t *x,
                   const rc_worker_t **wp)
{
    rc_lb_t *lb = m->route->worker->lb;
    const char *key, *sticky = NULL;
    apr_uint64_t exclude = 0;
    rc_lb_req_t *st;
    int attempt, attempts, tried = 0, idx, rv = HTTP_SERVICE_UNAVAILABLE;

    *wp = m->route->worker;
    if (!lb->bal) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, RCLOGNO(00422)
                      "balancer %s has no shared state in this process",
                      lb->name);
        return lb_unavailable(r, lb, RC_BAL_NONE, x);
    }
    st = apr_pcalloc(r->pool, sizeof(*st));
    st->lb = lb;
    st->ticket.member = -1;
    apr_pool_cleanup_register(r->pool, st, lb_req_cleanup,
                              apr_pool_cleanup_null);
    key = lb_hash_key(r, lb);
    if (lb->sticky) {
        sticky = lb_cookie(r, lb->sticky);
    }
    attempts = 1 + rc_bal_retries(lb->bal);
    for (attempt = 0; attempt < attempts; attempt++) {
        const rc_lb_member_t *mb;
        rc_backend_t *be;
        const char *path;
        int ev;

        idx = lb_choose(lb, st, key, attempt ? NULL : sticky, exclude);
        if (idx < 0) {
            if (attempt > 0) {
                break;              /* nobody else: the last failure */
            }
            return lb_unavailable(r, lb, idx, x);
        }
        mb = &APR_ARRAY_IDX(lb->members, idx, rc_lb_member_t);
        *wp = mb->worker;
        apr_table_setn(r->notes, "revcache-backend", mb->worker->url);
        apr_table_setn(r->notes, "revcache-balancer-member", mb->note);
        path = *mb->base ? apr_pstrcat(r->pool, mb->base, m->backend_path,
                                       NULL)
                         : m->backend_path;
        tried++;
        if ((be = rc_backend_of(mb->worker))) {
            rv = rc_proxy_exchange(r, mb->worker, be, path, set_headers,
                                   attempts > 1 ? RC_EXCH_RETRYING : 0, x);
        }
        else {
            memset(x, 0, sizeof(*x));
            x->failure = apr_psprintf(r->pool, "backend %s is not "
                                      "available in this process",
                                      mb->worker->url);
            ap_log_rerror(APLOG_MARK, attempts > 1 ? APLOG_INFO : APLOG_ERR,
                          0, r, RCLOGNO(00423) "%s", x->failure);
            x->outcome = RC_OUT_CONNECT;
            rv = x->http_status = HTTP_BAD_GATEWAY;
        }
        if (rv == OK) {
            st->head_at = apr_time_now();
            x->route_ctx = st;
            if (lb->sticky && (!sticky || strcmp(sticky, mb->route))) {
                apr_table_addn(r->err_headers_out, "Set-Cookie",
                               apr_pstrcat(r->pool, lb->sticky, "=",
                                           mb->route, "; Path=/; HttpOnly",
                                           NULL));
            }
            return OK;
        }
        ev = rc_bal_end(lb->bal, &st->ticket, apr_time_now(),
                        lb_outcome(x));
        if (ev) {
            lb_log_events(r, NULL, lb, idx, ev);
        }
        if (!lb_retryable(r, x)) {
            break;
        }
        exclude |= RC_BAL_BIT(idx);
        if (attempt + 1 < attempts) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, RCLOGNO(00424)
                          "balancer %s: member %s failed, trying another",
                          lb->name, mb->worker->url);
        }
    }
    if (attempts > 1) {
        /* the attempts logged at info: this is the request's one error */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, RCLOGNO(00425)
                      "balancer %s: %s (%d attempt%s, at most %d)",
                      lb->name, x->failure ? x->failure : "failed",
                      tried, tried == 1 ? "" : "s", attempts);
    }
    return rv;
}

void rc_lb_done(request_rec *r, const rc_exchange_t *x)
{
    rc_lb_req_t *st = x->route_ctx;
    int ev, idx;

    if (!st || st->ticket.member < 0) {
        return;
    }
    idx = st->ticket.member;
    /* "now" is when the head came: the latency the EWMA learns. */
    ev = rc_bal_end(st->lb->bal, &st->ticket, st->head_at, lb_outcome(x));
    if (ev) {
        lb_log_events(r, NULL, st->lb, idx, ev);
    }
}

/* ------------------------------------------------------------------ */
/* Active health checks (the watchdog child)                            */

/* One probe: GET base+uri over a fresh connection; the status must
 * match expect=. Returns 1 when healthy, else 0 with *why set. */
static int lb_probe(rc_lb_t *lb, rc_lb_member_t *mb, apr_pool_t *p,
                    const char **why)
{
    const rc_worker_t *w = mb->worker;
    apr_sockaddr_t *sa;
    apr_socket_t *sock;
    apr_status_t rv;
    const char *req;
    char buf[512];
    apr_size_t got = 0, len;
    int status, i;

    rv = apr_sockaddr_info_get(&sa, w->host, APR_UNSPEC, w->port, 0, p);
    if (rv == APR_SUCCESS) {
        rv = apr_socket_create(&sock, sa->family, SOCK_STREAM,
                               APR_PROTO_TCP, p);
    }
    if (rv != APR_SUCCESS) {
        *why = apr_psprintf(p, "cannot resolve or open a socket (%pm)",
                            &rv);
        return 0;
    }
    apr_socket_timeout_set(sock, lb->hc.timeout);
    if ((rv = apr_socket_connect(sock, sa)) != APR_SUCCESS) {
        apr_socket_close(sock);
        *why = apr_psprintf(p, "connect: %pm", &rv);
        return 0;
    }
    req = apr_pstrcat(p, "GET ", mb->base, lb->hc.uri, " HTTP/1.1\r\n"
                      "Host: ", w->authority, "\r\n"
                      "User-Agent: mod_revcache-health-check\r\n"
                      "Connection: close\r\n\r\n", NULL);
    len = strlen(req);
    rv = apr_socket_send(sock, req, &len);
    /* The status line is all we need. */
    while (rv == APR_SUCCESS && got < sizeof(buf) - 1
           && !memchr(buf, '\n', got)) {
        len = sizeof(buf) - 1 - got;
        rv = apr_socket_recv(sock, buf + got, &len);
        got += len;
    }
    apr_socket_close(sock);
    buf[got] = '\0';
    if (strncmp(buf, "HTTP/1.", 7) || !apr_isdigit(buf[7]) || buf[8] != ' '
        || !apr_isdigit(buf[9]) || !apr_isdigit(buf[10])
        || !apr_isdigit(buf[11])) {
        *why = rv == APR_TIMEUP ? "no answer within the timeout"
               : got ? "not an HTTP/1.x response" : "connection closed";
        return 0;
    }
    status = atoi(buf + 9);
    for (i = 0; i < lb->hc.nexpect; i++) {
        if (status >= lb->hc.expect_lo[i] && status <= lb->hc.expect_hi[i]) {
            return 1;
        }
    }
    *why = apr_psprintf(p, "status %d", status);
    return 0;
}

static void *APR_THREAD_FUNC lb_probe_task(apr_thread_t *t, void *data)
{
    rc_lb_member_t *mb = data;
    rc_lb_t *lb = mb->lb;
    const char *why = NULL;
    apr_pool_t *p;
    int ok, ev;

    (void)t;
    if (apr_pool_create(&p, hc_pool) != APR_SUCCESS) {
        apr_atomic_set32(&mb->probe_busy, 0);
        return NULL;
    }
    ok = lb_probe(lb, mb, p, &why);
    ap_log_error(APLOG_MARK, APLOG_TRACE1, 0, hc_server, RCLOGNO(00433)
                 "balancer %s: "
                 "probe of %s: %s", lb->name, mb->worker->url,
                 ok ? "ok" : why);
    ev = rc_bal_report_probe(lb->bal, mb->idx, ok, apr_time_now());
    if (ev & RC_BAL_EV_DOWN) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, hc_server, RCLOGNO(00430)
                     "balancer %s: last probe of %s: %s", lb->name,
                     mb->worker->url, why);
    }
    if (ev) {
        lb_log_events(NULL, hc_server, lb, mb->idx, ev);
    }
    apr_pool_destroy(p);
    apr_atomic_set32(&mb->probe_busy, 0);
    return NULL;
}

static void lb_start_probes(apr_time_t now);

/* Every 100 ms in the one watchdog child: once a second, give back what
 * dead children held; start the probes that are due (one per member at
 * a time) on the prober's thread pool. */
static apr_status_t lb_tick(int state, void *data, apr_pool_t *p)
{
    static apr_time_t last_reap;
    rc_lb_t *first;
    apr_time_t now;
    int n;

    (void)data;
    (void)p;
    if (state == AP_WATCHDOG_STATE_STOPPING) {
        if (hc_lock) {
            hc_stop(NULL);
        }
        return APR_SUCCESS;
    }
    if (state != AP_WATCHDOG_STATE_RUNNING || !balancers->nelts
        || !(first = APR_ARRAY_IDX(balancers, 0, rc_lb_t *))->bal) {
        return APR_SUCCESS;
    }
    now = apr_time_now();
    if (now - last_reap >= apr_time_from_sec(1)) {
        last_reap = now;
        if ((n = rc_bal_reap(first->bal)) > 0) {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, hc_server, RCLOGNO(00408)
                         "balancer: took back %d in-flight request(s) of "
                         "child processes that died", n);
        }
    }
    if (!apr_atomic_read32(&hc_ready)) {
        return APR_SUCCESS;
    }
    apr_thread_mutex_lock(hc_lock);
    if (!apr_atomic_read32(&hc_ready)) {         /* the child is exiting */
        apr_thread_mutex_unlock(hc_lock);
        return APR_SUCCESS;
    }
    lb_start_probes(now);
    apr_thread_mutex_unlock(hc_lock);
    return APR_SUCCESS;
}

/* Under hc_lock: the thread pool, then the probes that are due. */
static void lb_start_probes(apr_time_t now)
{
    apr_status_t rv;
    int i, j;

    if (!hc_threads) {
        rv = apr_thread_pool_create(&hc_threads, 1, RC_LB_HC_THREADS,
                                    hc_pool);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, hc_server,
                         RCLOGNO(00431) "health checks: cannot start "
                         "their threads");
            hc_threads = NULL;
            return;
        }
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, hc_server, RCLOGNO(00432)
                     "health checks run in this process (pid %" APR_PID_T_FMT
                     ")", getpid());
    }
    for (i = 0; i < balancers->nelts; i++) {
        rc_lb_t *lb = APR_ARRAY_IDX(balancers, i, rc_lb_t *);

        for (j = 0; lb->hc.uri && lb->bal && j < lb->members->nelts; j++) {
            rc_lb_member_t *mb = &APR_ARRAY_IDX(lb->members, j,
                                                rc_lb_member_t);

            if (now < mb->probe_next
                || apr_atomic_cas32(&mb->probe_busy, 1, 0) != 0) {
                continue;
            }
            /* keep the cadence the 100 ms ticks would round up */
            mb->probe_next = mb->probe_next && now - mb->probe_next
                             < lb->hc.interval
                             ? mb->probe_next + lb->hc.interval
                             : now + lb->hc.interval;
            if (apr_thread_pool_push(hc_threads, lb_probe_task, mb,
                                     APR_THREAD_TASK_PRIORITY_NORMAL,
                                     NULL) != APR_SUCCESS) {
                apr_atomic_set32(&mb->probe_busy, 0);
            }
        }
    }
}

/* ------------------------------------------------------------------ */
/* Introspection (status page)                                          */

int rc_lb_count(void)
{
    return balancers ? balancers->nelts : 0;
}

rc_lb_t *rc_lb_get(int i)
{
    return i >= 0 && i < rc_lb_count() ? APR_ARRAY_IDX(balancers, i,
                                                       rc_lb_t *) : NULL;
}

const char *rc_lb_name(const rc_lb_t *lb)
{
    return lb->name;
}

rc_bal_t *rc_lb_core(const rc_lb_t *lb)
{
    return lb->bal;
}

const char *rc_lb_health_uri(const rc_lb_t *lb)
{
    return lb->hc.uri;
}

const char *rc_lb_sticky(const rc_lb_t *lb)
{
    return lb->sticky;
}

apr_status_t rc_lb_member_stats(const rc_lb_t *lb, int idx,
                                rc_bal_member_stats_t *st)
{
    if (!lb->bal) {
        return APR_EINIT;
    }
    return rc_bal_member_stats(lb->bal, idx, apr_time_now(), st);
}

void rc_lb_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_config(lb_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(lb_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    /* after rc_post_config (member options resolved), before
     * mod_watchdog's (APR_HOOK_LAST) */
    ap_hook_post_config(lb_post_config, NULL, NULL, APR_HOOK_MIDDLE + 1);
    /* before mod_watchdog's child_init starts the thread that runs
     * lb_tick() */
    ap_hook_child_init(lb_child_init, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_monitor(lb_monitor, NULL, NULL, APR_HOOK_MIDDLE);
}
