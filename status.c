/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * status.c - the revcache-status handler: what the module knows about
 * itself, for the operator, in three formats:
 *
 *   GET /revcache-status           HTML: plain tables, no JavaScript;
 *                                  ?refresh=N adds <meta http-equiv=refresh>
 *   GET /revcache-status?json      JSON (fields named as in the C structs)
 *   GET /revcache-status?prom      Prometheus text exposition format 0.0.4
 *
 * The handler is "SetHandler revcache-status": httpd's access control
 * (Require) runs in front of it like for any handler; there are no
 * directives of its own.
 *
 * Shown: version, MPM, config generation, uptime; the shared cache's
 * counters (rc_cache_stats_t, via cache.c) and hit ratio; each balancer
 * (lb.c / balancer.c snapshots: method, stickiness, health check, and
 * per member its state, weights, in-flight, counters and EWMA latency);
 * each worker's connection pool counters. The pools are per process
 * (mod_revcache.c creates them in child_init), so those counters are of
 * the child that answered, and the output says so and gives its pid.
 *
 * How: one snapshot of everything is taken first (status_snap_t, in
 * r->pool; lock-free reads of shared memory: numbers may be torn between
 * fields, never within one), then rendered by one of three writers. Field
 * tables (cache_fields, member_fields) drive all three, so a counter
 * added there appears everywhere. Every string that comes from the
 * configuration is escaped for its format: ap_escape_html for HTML,
 * json_esc for JSON, prom_esc for Prometheus label values.
 *
 * Owns no state but the server's start time (process pool userdata, so
 * it survives graceful restarts) and the time of the last (re)load.
 * Locks: none. Logs: nothing (RC005xx reserved).
 */

#include <stddef.h>
#include <unistd.h>

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
#include "cache_mem.h"

#define RC_STATUS_START_KEY "revcache-status-start"
#define RC_STATUS_MAX_REFRESH 3600

/* Time of the first start (kept in the process pool) and of the last
 * configuration load; set in post_config, read by the children. */
static apr_time_t status_started;
static apr_time_t status_loaded;

/* ------------------------------------------------------------------ */
/* What is shown: field tables                                         */

typedef enum { F_U64, F_U32, F_INT, F_DBL } status_ftype_e;

typedef struct {
    const char     *name;      /* JSON key, suffix of the metric name */
    const char     *prom;      /* the suffix when it differs, or NULL */
    const char     *help;      /* HTML title, Prometheus HELP */
    int             counter;   /* 1: a counter (_total), 0: a gauge */
    status_ftype_e  type;
    apr_size_t      off;
} status_field_t;

#define CF(n, c, h) { #n, NULL, h, c, F_U64, offsetof(rc_cache_stats_t, n) }
/* a gauge whose C name ends in _total: another metric name */
#define CG(n, pn, h) { #n, pn, h, 0, F_U64, offsetof(rc_cache_stats_t, n) }
static const status_field_t cache_fields[] = {
    CF(lookups, 1, "cache lookups"),
    CF(hits, 1, "lookups that found an entry"),
    CF(misses, 1, "lookups that did not"),
    CF(stores, 1, "responses stored"),
    CF(store_aborts, 1, "stores aborted or failed"),
    CF(store_toobig, 1, "stores refused for size"),
    CF(evictions, 1, "live entries evicted for space"),
    CF(expired, 1, "expired entries reclaimed"),
    CF(purged, 1, "entries removed by purges"),
    CF(purges, 1, "purge requests"),
    CF(replaced, 1, "entries replaced by a newer response"),
    CF(meta_updates, 1, "headers refreshed by a 304"),
    CF(collapsed_waits, 1, "requests that waited for another's fetch"),
    CF(collapsed_timeouts, 1, "such waits that timed out"),
    CF(collapsed_streams, 1, "waiters that streamed the body being fetched"),
    CF(fill_takeovers, 1, "fetches taken over from dead or old owners"),
    CF(pins_reaped, 1, "pins of dead processes released"),
    CF(writers_reaped, 1, "writes of dead processes reclaimed"),
    CF(lock_repairs, 1, "locks recovered from dead owners"),
    CF(corrupt, 1, "entries that failed validation"),
    CF(nospace, 1, "allocations that found no space"),
    CF(busy, 1, "lookups refused for lack of a pin slot"),
    CF(stale_served, 1, "stale entries served (max-stale, SWR, stale-if-error)"),
    CF(objects, 0, "live entries"),
    CF(bytes_used, 0, "bytes of the data area in use (blocks x block "
                      "size: keys, metadata, bodies, last-block tails)"),
    CG(bytes_total, "size_bytes", "bytes of the data area (RevCacheSize "
                                  "less table_bytes)"),
    CG(entries_total, "entry_slots", "entry slots"),
    CF(block_size, 0, "bytes per block"),
    CF(entry_bytes, 0, "bytes of one entry descriptor (one per object, "
                       "preallocated in table_bytes)"),
    CF(table_bytes, 0, "bytes of the segment outside the data area, "
                       "preallocated: index, entry descriptors, pins, "
                       "block links"),
    CF(generation, 0, "segment generation (bumped on every attach)"),
};
#undef CF
#undef CG

#define MF(n, c, t, h) \
    { #n, NULL, h, c, t, offsetof(rc_bal_member_stats_t, n) }
static const status_field_t member_fields[] = {
    MF(weight, 0, F_INT, "configured weight"),
    MF(eff_weight, 0, F_DBL, "weight in force (slow start)"),
    MF(inflight, 0, F_U32, "requests in flight, all processes"),
    MF(max, 0, F_INT, "in-flight cap (max=N, 0 unlimited)"),
    MF(requests, 1, F_U64, "requests sent to the member"),
    MF(failures, 1, F_U64, "failed requests (connect, timeout, 5xx)"),
    MF(timeouts, 1, F_U64, "requests that timed out"),
    MF(connect_errors, 1, F_U64, "connections that failed"),
    MF(http_5xx, 1, F_U64, "5xx responses"),
    MF(ejections, 1, F_U64, "passive-health ejections"),
    MF(full_skips, 1, F_U64, "times skipped for being at max=N"),
    MF(panic_picks, 1, F_U64, "requests sent while ejected (panic: every member was ejected)"),
    MF(ewma_us, 0, F_DBL, "peak EWMA latency in microseconds"),
    MF(eject_level, 0, F_U32, "ejection cooldown doubling level"),
    MF(probe_up, 0, F_INT, "active health check says up (1) or down"),
};
#undef MF

#define WF(n, h) { #n, NULL, h, 1, F_U64, offsetof(rc_backend_stats_t, n) }
static const status_field_t worker_fields[] = {
    WF(connects, "new backend connections (this child process)"),
    WF(reuses, "requests on a pooled connection (this child process)"),
    WF(stale_closed, "pooled connections found closed (this child "
                     "process)"),
};
#undef WF

#define NFIELDS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *field_str(apr_pool_t *p, const status_field_t *f,
                             const void *base)
{
    const char *at = (const char *)base + f->off;

    switch (f->type) {
    case F_U64:
        return apr_psprintf(p, "%" APR_UINT64_T_FMT,
                            *(const apr_uint64_t *)at);
    case F_U32:
        return apr_psprintf(p, "%u", (unsigned)*(const apr_uint32_t *)at);
    case F_INT:
        return apr_psprintf(p, "%d", *(const int *)at);
    default:
        return apr_psprintf(p, "%.3f", *(const double *)at);
    }
}

/* ------------------------------------------------------------------ */
/* The snapshot                                                        */

typedef struct {
    const char             *name;
    const char             *method;
    const char             *health_uri;    /* NULL: no active checks */
    const char             *sticky;        /* NULL: no stickiness */
    int                     attached;      /* shared state available */
    rc_bal_info_t           info;
    int                     nmembers;
    rc_bal_member_stats_t  *members;
    int                    *member_ok;
} status_lb_t;

typedef struct {
    const rc_worker_t      *w;
    int                     has_pool;
    rc_backend_stats_t      st;
} status_worker_t;

typedef struct {
    apr_time_t              now;
    int                     generation;
    pid_t                   pid;
    int                     has_cache;
    rc_cache_stats_t        cache;
    double                  hit_ratio;
    int                     nlb;
    status_lb_t            *lbs;
    int                     nworkers;
    status_worker_t        *workers;
} status_snap_t;

static void status_snapshot(request_rec *r, status_snap_t *s)
{
    apr_array_header_t *ws = rc_config_workers();
    int i, j;

    memset(s, 0, sizeof(*s));
    s->now = apr_time_now();
    s->generation = ap_state_query(AP_SQ_CONFIG_GEN);
    s->pid = getpid();
    s->has_cache = rc_cache_status_stats(&s->cache);
    if (s->has_cache && s->cache.hits + s->cache.misses > 0) {
        s->hit_ratio = (double)s->cache.hits
                       / (double)(s->cache.hits + s->cache.misses);
    }

    s->nlb = rc_lb_count();
    s->lbs = apr_pcalloc(r->pool, sizeof(*s->lbs) * (s->nlb + 1));
    for (i = 0; i < s->nlb; i++) {
        rc_lb_t *lb = rc_lb_get(i);
        status_lb_t *l = &s->lbs[i];
        rc_bal_t *bal = rc_lb_core(lb);

        l->name = rc_lb_name(lb);
        l->health_uri = rc_lb_health_uri(lb);
        l->sticky = rc_lb_sticky(lb);
        l->method = "unknown";
        if (!bal) {
            continue;
        }
        l->attached = 1;
        l->method = rc_bal_method_name(rc_bal_conf(bal)->method);
        rc_bal_info(bal, &l->info);
        l->nmembers = rc_bal_count(bal);
        l->members = apr_pcalloc(r->pool, sizeof(*l->members)
                                          * (l->nmembers + 1));
        l->member_ok = apr_pcalloc(r->pool, sizeof(int)
                                            * (l->nmembers + 1));
        for (j = 0; j < l->nmembers; j++) {
            l->member_ok[j] = rc_lb_member_stats(lb, j, &l->members[j])
                              == APR_SUCCESS;
        }
    }

    s->nworkers = ws ? ws->nelts : 0;
    s->workers = apr_pcalloc(r->pool, sizeof(*s->workers)
                                      * (s->nworkers + 1));
    for (i = 0; i < s->nworkers; i++) {
        status_worker_t *sw = &s->workers[i];
        rc_backend_t *be;

        sw->w = APR_ARRAY_IDX(ws, i, rc_worker_t *);
        if ((be = rc_backend_of(sw->w)) != NULL) {
            sw->has_pool = 1;
            rc_backend_stats(be, &sw->st);
        }
    }
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */

/* A JSON string literal (with its quotes) for s; NULL gives null.
 * Control characters, quote and backslash are escaped, and < > & too so
 * that no browser takes the answer for markup. Other bytes pass: the
 * configuration is read as UTF-8. */
static const char *json_esc(apr_pool_t *p, const char *s)
{
    apr_size_t n = 0;
    const unsigned char *c;
    char *out, *o;

    if (!s) {
        return "null";
    }
    for (c = (const unsigned char *)s; *c; c++) {
        n += (*c < 0x20 || *c == '<' || *c == '>' || *c == '&') ? 6
             : (*c == '"' || *c == '\\') ? 2 : 1;
    }
    o = out = apr_palloc(p, n + 3);
    *o++ = '"';
    for (c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            *o++ = '\\';
            *o++ = (char)*c;
        }
        else if (*c < 0x20 || *c == '<' || *c == '>' || *c == '&') {
            apr_snprintf(o, 7, "\\u%04x", (unsigned)*c);
            o += 6;
        }
        else {
            *o++ = (char)*c;
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

static void json_fields(request_rec *r, const status_field_t *f, int n,
                        const void *base)
{
    int i;

    for (i = 0; i < n; i++) {
        ap_rprintf(r, "%s\"%s\": %s", i ? ", " : "", f[i].name,
                   field_str(r->pool, &f[i], base));
    }
}

static void status_json(request_rec *r, const status_snap_t *s)
{
    apr_pool_t *p = r->pool;
    int i, j;

    ap_set_content_type(r, "application/json");
    /* "cache" first and on one line, as it always was. */
    if (s->has_cache) {
        ap_rputs("{\"cache\": {", r);
        json_fields(r, cache_fields, NFIELDS(cache_fields), &s->cache);
        ap_rprintf(r, ", \"hit_ratio\": %.4f, \"pid\": %" APR_PID_T_FMT
                   "},\n", s->hit_ratio, s->pid);
    }
    else {
        ap_rputs("{\"cache\": null,\n", r);
    }
    ap_rprintf(r, " \"server\": {\"version\": %s, \"mpm\": %s, "
               "\"generation\": %d, \"uptime\": %" APR_TIME_T_FMT ", "
               "\"since_reload\": %" APR_TIME_T_FMT ", \"pid\": %"
               APR_PID_T_FMT "},\n",
               json_esc(p, RC_VERSION), json_esc(p, ap_show_mpm()),
               s->generation, apr_time_sec(s->now - status_started),
               apr_time_sec(s->now - status_loaded), s->pid);

    ap_rputs(" \"balancers\": [", r);
    for (i = 0; i < s->nlb; i++) {
        const status_lb_t *l = &s->lbs[i];

        ap_rprintf(r, "%s\n  {\"name\": %s, \"method\": %s, "
                   "\"sticky_cookie\": %s, \"health_check\": %s, "
                   "\"attached\": %s",
                   i ? "," : "", json_esc(p, l->name),
                   json_esc(p, l->method), json_esc(p, l->sticky),
                   json_esc(p, l->health_uri),
                   l->attached ? "true" : "false");
        if (l->attached) {
            ap_rprintf(r, ", \"lock_recoveries\": %" APR_UINT64_T_FMT
                       ", \"lock_errors\": %" APR_UINT64_T_FMT
                       ", \"reaped\": %" APR_UINT64_T_FMT
                       ", \"epoch\": %u, \"slots_used\": %d",
                       l->info.lock_recoveries, l->info.lock_errors,
                       l->info.reaped, (unsigned)l->info.epoch,
                       l->info.slots_used);
        }
        ap_rputs(", \"members\": [", r);
        for (j = 0; j < l->nmembers; j++) {
            const rc_bal_member_stats_t *m = &l->members[j];

            if (!l->member_ok[j]) {
                ap_rprintf(r, "%s\n    null", j ? "," : "");
                continue;
            }
            ap_rprintf(r, "%s\n    {\"url\": %s, \"route\": %s, "
                       "\"state\": %s, \"backup\": %s, ",
                       j ? "," : "", json_esc(p, m->url),
                       json_esc(p, m->route),
                       json_esc(p, rc_bal_state_name(m->state)),
                       (m->flags & RC_BAL_F_BACKUP) ? "true" : "false");
            json_fields(r, member_fields, NFIELDS(member_fields), m);
            ap_rprintf(r, ", \"eject_remaining_ms\": %" APR_TIME_T_FMT
                       "}", m->eject_until > s->now
                            ? apr_time_as_msec(m->eject_until - s->now)
                            : 0);
        }
        ap_rputs("]}", r);
    }
    ap_rputs("],\n", r);

    ap_rprintf(r, " \"workers\": {\"scope\": \"per child process\", "
               "\"pid\": %" APR_PID_T_FMT ", \"list\": [", s->pid);
    for (i = 0; i < s->nworkers; i++) {
        const status_worker_t *sw = &s->workers[i];

        ap_rprintf(r, "%s\n  {\"url\": %s, \"defined\": %s, "
                   "\"pool\": %s", i ? "," : "", json_esc(p, sw->w->url),
                   json_esc(p, sw->w->where),
                   sw->has_pool ? "true" : "false");
        if (sw->has_pool) {
            ap_rputs(", ", r);
            json_fields(r, worker_fields, NFIELDS(worker_fields), &sw->st);
        }
        ap_rputs("}", r);
    }
    ap_rputs("]}}\n", r);
}

/* ------------------------------------------------------------------ */
/* Prometheus text format                                              */

/* A label value: backslash, double quote and newline escaped. */
static const char *prom_esc(apr_pool_t *p, const char *s)
{
    apr_size_t n = 0;
    const char *c;
    char *out, *o;

    s = s ? s : "";
    for (c = s; *c; c++) {
        n += (*c == '\\' || *c == '"' || *c == '\n') ? 2 : 1;
    }
    o = out = apr_palloc(p, n + 1);
    for (c = s; *c; c++) {
        if (*c == '\\' || *c == '"') {
            *o++ = '\\';
            *o++ = *c;
        }
        else if (*c == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        }
        else {
            *o++ = *c;
        }
    }
    *o = '\0';
    return out;
}

static const char *prom_family(request_rec *r, const char *prefix,
                               const status_field_t *f)
{
    const char *name = apr_pstrcat(r->pool, prefix,
                                   f->prom ? f->prom : f->name,
                                   f->counter ? "_total" : "", NULL);

    ap_rprintf(r, "# HELP %s %s\n# TYPE %s %s\n", name, f->help, name,
               f->counter ? "counter" : "gauge");
    return name;
}

static void status_prom(request_rec *r, const status_snap_t *s)
{
    apr_pool_t *p = r->pool;
    int i, j, k;

    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    ap_rprintf(r, "# HELP revcache_info mod_revcache version and MPM\n"
               "# TYPE revcache_info gauge\n"
               "revcache_info{version=\"%s\",mpm=\"%s\"} 1\n",
               prom_esc(p, RC_VERSION), prom_esc(p, ap_show_mpm()));
    ap_rprintf(r, "# HELP revcache_config_generation httpd configuration "
               "generation\n# TYPE revcache_config_generation gauge\n"
               "revcache_config_generation %d\n", s->generation);
    ap_rprintf(r, "# HELP revcache_uptime_seconds seconds since httpd "
               "started\n# TYPE revcache_uptime_seconds gauge\n"
               "revcache_uptime_seconds %" APR_TIME_T_FMT "\n",
               apr_time_sec(s->now - status_started));

    if (s->has_cache) {
        for (i = 0; i < NFIELDS(cache_fields); i++) {
            const char *name = prom_family(r, "revcache_cache_",
                                           &cache_fields[i]);

            ap_rprintf(r, "%s %s\n", name,
                       field_str(p, &cache_fields[i], &s->cache));
        }
        ap_rprintf(r, "# HELP revcache_cache_hit_ratio hits / (hits + "
                   "misses)\n# TYPE revcache_cache_hit_ratio gauge\n"
                   "revcache_cache_hit_ratio %.4f\n", s->hit_ratio);
    }

    if (s->nlb) {
        ap_rputs("# HELP revcache_balancer_info a balancer and its "
                 "method\n# TYPE revcache_balancer_info gauge\n", r);
        for (i = 0; i < s->nlb; i++) {
            ap_rprintf(r, "revcache_balancer_info{balancer=\"%s\","
                       "method=\"%s\"} 1\n", prom_esc(p, s->lbs[i].name),
                       prom_esc(p, s->lbs[i].method));
        }
        ap_rputs("# HELP revcache_balancer_member_state the member's "
                 "state (1 for the one in force)\n"
                 "# TYPE revcache_balancer_member_state gauge\n", r);
        for (i = 0; i < s->nlb; i++) {
            const status_lb_t *l = &s->lbs[i];

            for (j = 0; j < l->nmembers; j++) {
                const rc_bal_member_stats_t *m = &l->members[j];

                if (!l->member_ok[j]) {
                    continue;
                }
                ap_rprintf(r, "revcache_balancer_member_state{balancer="
                           "\"%s\",member=\"%s\",route=\"%s\","
                           "state=\"%s\"} 1\n", prom_esc(p, l->name),
                           prom_esc(p, m->url), prom_esc(p, m->route),
                           rc_bal_state_name(m->state));
            }
        }
        for (k = 0; k < NFIELDS(member_fields); k++) {
            const char *name = prom_family(r, "revcache_balancer_member_",
                                           &member_fields[k]);

            for (i = 0; i < s->nlb; i++) {
                const status_lb_t *l = &s->lbs[i];

                for (j = 0; j < l->nmembers; j++) {
                    if (!l->member_ok[j]) {
                        continue;
                    }
                    ap_rprintf(r, "%s{balancer=\"%s\",member=\"%s\","
                               "route=\"%s\"} %s\n", name,
                               prom_esc(p, l->name),
                               prom_esc(p, l->members[j].url),
                               prom_esc(p, l->members[j].route),
                               field_str(p, &member_fields[k],
                                         &l->members[j]));
                }
            }
        }
    }

    if (s->nworkers) {
        for (k = 0; k < NFIELDS(worker_fields); k++) {
            const char *name = prom_family(r, "revcache_worker_",
                                           &worker_fields[k]);

            for (i = 0; i < s->nworkers; i++) {
                const status_worker_t *sw = &s->workers[i];

                if (!sw->has_pool) {
                    continue;
                }
                ap_rprintf(r, "%s{worker=\"%s\",index=\"%d\",pid=\"%"
                           APR_PID_T_FMT "\"} %s\n", name,
                           prom_esc(p, sw->w->url), sw->w->index, s->pid,
                           field_str(p, &worker_fields[k], &sw->st));
            }
        }
    }
}

/* ------------------------------------------------------------------ */
/* HTML                                                                */

static const char *h(apr_pool_t *p, const char *s)
{
    return s ? ap_escape_html(p, s) : "-";
}

static const char *html_ago(apr_pool_t *p, apr_interval_time_t t)
{
    apr_int64_t sec = apr_time_sec(t);

    return apr_psprintf(p, "%" APR_INT64_T_FMT "d %02d:%02d:%02d",
                        sec / 86400, (int)(sec / 3600 % 24),
                        (int)(sec / 60 % 60), (int)(sec % 60));
}

static void html_head_row(request_rec *r, const status_field_t *f, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        ap_rprintf(r, "<th title=\"%s\">%s</th>", h(r->pool, f[i].help),
                   h(r->pool, f[i].name));
    }
}

static void html_cells(request_rec *r, const status_field_t *f, int n,
                       const void *base)
{
    int i;

    for (i = 0; i < n; i++) {
        ap_rprintf(r, "<td>%s</td>", field_str(r->pool, &f[i], base));
    }
}

static void status_html(request_rec *r, const status_snap_t *s, int refresh)
{
    apr_pool_t *p = r->pool;
    int i, j;

    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_rputs(DOCTYPE_HTML_4_01 "<html><head>\n"
             "<meta http-equiv=\"Content-Type\" "
             "content=\"text/html; charset=utf-8\">\n", r);
    if (refresh > 0) {
        ap_rprintf(r, "<meta http-equiv=\"refresh\" content=\"%d\">\n",
                   refresh);
    }
    ap_rputs("<title>mod_revcache status</title>\n<style>\n"
             "body{font-family:sans-serif}"
             "table{border-collapse:collapse;margin-bottom:1em}"
             "th,td{border:1px solid #999;padding:2px 6px;"
             "text-align:right}th{background:#eee}"
             "td.l,th.l{text-align:left}\n"
             "</style></head><body>\n<h1>mod_revcache status</h1>\n", r);
    ap_rprintf(r, "<table><tr><th class=\"l\">version</th>"
               "<td class=\"l\">%s</td></tr>"
               "<tr><th class=\"l\">server</th><td class=\"l\">%s</td></tr>"
               "<tr><th class=\"l\">MPM</th><td class=\"l\">%s</td></tr>"
               "<tr><th class=\"l\">config generation</th>"
               "<td class=\"l\">%d</td></tr>"
               "<tr><th class=\"l\">uptime</th><td class=\"l\">%s</td></tr>"
               "<tr><th class=\"l\">since last reload</th>"
               "<td class=\"l\">%s</td></tr>"
               "<tr><th class=\"l\">answered by pid</th>"
               "<td class=\"l\">%" APR_PID_T_FMT "</td></tr></table>\n",
               h(p, RC_VERSION), h(p, ap_get_server_description()),
               h(p, ap_show_mpm()), s->generation,
               html_ago(p, s->now - status_started),
               html_ago(p, s->now - status_loaded), s->pid);

    ap_rputs("<h2>Cache</h2>\n", r);
    if (!s->has_cache) {
        ap_rputs("<p>No cache segment (no RevCacheEnable On).</p>\n", r);
    }
    else {
        char pct[32];

        apr_snprintf(pct, sizeof(pct), "%.1f%%", s->hit_ratio * 100.0);
        ap_rprintf(r, "<table><tr><th class=\"l\">hit ratio</th>"
                   "<td>%s</td></tr>\n", pct);
        for (i = 0; i < NFIELDS(cache_fields); i++) {
            ap_rprintf(r, "<tr><th class=\"l\" title=\"%s\">%s</th>"
                       "<td>%s</td></tr>\n", h(p, cache_fields[i].help),
                       h(p, cache_fields[i].name),
                       field_str(p, &cache_fields[i], &s->cache));
        }
        ap_rputs("</table>\n", r);
    }

    ap_rputs("<h2>Balancers</h2>\n", r);
    if (!s->nlb) {
        ap_rputs("<p>No &lt;RevBalancer&gt; configured.</p>\n", r);
    }
    for (i = 0; i < s->nlb; i++) {
        const status_lb_t *l = &s->lbs[i];

        ap_rprintf(r, "<h3>balancer://%s</h3>\n<p>method %s; sticky "
                   "cookie %s; health check %s", h(p, l->name),
                   h(p, l->method), h(p, l->sticky), h(p, l->health_uri));
        if (l->attached) {
            ap_rprintf(r, "; lock recoveries %" APR_UINT64_T_FMT
                       ", lock errors %" APR_UINT64_T_FMT
                       ", in-flight reaped %" APR_UINT64_T_FMT,
                       l->info.lock_recoveries, l->info.lock_errors,
                       l->info.reaped);
        }
        ap_rputs("</p>\n", r);
        if (!l->attached) {
            ap_rputs("<p>(no shared state)</p>\n", r);
            continue;
        }
        ap_rputs("<table><tr><th class=\"l\">member</th>"
                 "<th class=\"l\">route</th><th class=\"l\">state</th>", r);
        html_head_row(r, member_fields, NFIELDS(member_fields));
        ap_rputs("<th>ejected for (ms)</th></tr>\n", r);
        for (j = 0; j < l->nmembers; j++) {
            const rc_bal_member_stats_t *m = &l->members[j];

            if (!l->member_ok[j]) {
                continue;
            }
            ap_rprintf(r, "<tr><td class=\"l\">%s</td>"
                       "<td class=\"l\">%s</td><td class=\"l\">%s%s</td>",
                       h(p, m->url), h(p, m->route),
                       h(p, rc_bal_state_name(m->state)),
                       (m->flags & RC_BAL_F_BACKUP)
                       && m->state != RC_BAL_ST_BACKUP ? " (backup)" : "");
            html_cells(r, member_fields, NFIELDS(member_fields), m);
            ap_rprintf(r, "<td>%" APR_TIME_T_FMT "</td></tr>\n",
                       m->eject_until > s->now
                       ? apr_time_as_msec(m->eject_until - s->now) : 0);
        }
        ap_rputs("</table>\n", r);
    }

    ap_rprintf(r, "<h2>Workers</h2>\n<p>Connection pool counters of "
               "<strong>this child process only</strong> (pid %"
               APR_PID_T_FMT "): each child has its own pools, another "
               "request may be answered by another child.</p>\n", s->pid);
    ap_rputs("<table><tr><th>#</th><th class=\"l\">worker URL</th>"
             "<th class=\"l\">defined at</th>", r);
    html_head_row(r, worker_fields, NFIELDS(worker_fields));
    ap_rputs("</tr>\n", r);
    for (i = 0; i < s->nworkers; i++) {
        const status_worker_t *sw = &s->workers[i];

        ap_rprintf(r, "<tr><td>%d</td><td class=\"l\">%s</td>"
                   "<td class=\"l\">%s</td>", sw->w->index,
                   h(p, sw->w->url), h(p, sw->w->where));
        if (sw->has_pool) {
            html_cells(r, worker_fields, NFIELDS(worker_fields), &sw->st);
        }
        else {
            ap_rprintf(r, "<td colspan=\"%d\">no pool</td>",
                       NFIELDS(worker_fields));
        }
        ap_rputs("</tr>\n", r);
    }
    ap_rputs("</table>\n<p>Also as <a href=\"?json\">JSON</a> and "
             "<a href=\"?prom\">Prometheus</a> text.</p>\n"
             "</body></html>\n", r);
}

/* ------------------------------------------------------------------ */
/* The handler                                                         */

enum { FMT_HTML, FMT_JSON, FMT_PROM };

/* "json", "prom" (or "format=json|prom|prometheus", "prometheus"),
 * "refresh=N", separated by '&'; anything else is ignored. */
static void parse_args(request_rec *r, int *fmt, int *refresh)
{
    char *args, *tok, *last;

    *fmt = FMT_HTML;
    *refresh = 0;
    if (!r->args) {
        return;
    }
    args = apr_pstrdup(r->pool, r->args);
    for (tok = apr_strtok(args, "&;", &last); tok;
         tok = apr_strtok(NULL, "&;", &last)) {
        if (!strncmp(tok, "format=", 7)) {
            tok += 7;
        }
        if (!strcmp(tok, "json")) {
            *fmt = FMT_JSON;
        }
        else if (!strcmp(tok, "prom") || !strcmp(tok, "prometheus")) {
            *fmt = FMT_PROM;
        }
        else if (!strncmp(tok, "refresh=", 8)) {
            char *end;
            apr_int64_t n = apr_strtoi64(tok + 8, &end, 10);

            if (*end == '\0' && end != tok + 8 && n > 0) {
                *refresh = n > RC_STATUS_MAX_REFRESH ? RC_STATUS_MAX_REFRESH
                                                     : (int)n;
            }
        }
    }
}

static int status_handler(request_rec *r)
{
    status_snap_t snap;
    int fmt, refresh;

    if (!r->handler || strcmp(r->handler, RC_STATUS_HANDLER) != 0) {
        return DECLINED;
    }
    r->allowed |= (AP_METHOD_BIT << M_GET);
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    parse_args(r, &fmt, &refresh);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    status_snapshot(r, &snap);
    switch (fmt) {
    case FMT_JSON:
        status_json(r, &snap);
        break;
    case FMT_PROM:
        status_prom(r, &snap);
        break;
    default:
        status_html(r, &snap, refresh);
        break;
    }
    return OK;
}

static int status_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *s)
{
    apr_pool_t *pproc = s->process->pool;
    apr_time_t *started = NULL;

    (void)pconf;
    (void)plog;
    (void)ptemp;
    apr_pool_userdata_get((void **)&started, RC_STATUS_START_KEY, pproc);
    if (!started) {
        started = apr_palloc(pproc, sizeof(*started));
        *started = apr_time_now();
        apr_pool_userdata_set(started, RC_STATUS_START_KEY,
                              apr_pool_cleanup_null, pproc);
    }
    status_started = *started;
    status_loaded = apr_time_now();
    return OK;
}

void rc_status_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_post_config(status_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(status_handler, NULL, NULL, APR_HOOK_MIDDLE);
}
