/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * balancer_conf.c -- the balancer's configuration helpers: parsing and
 * validating the arguments of RevBalancerMember, RevBalancerMethod,
 * RevBalancerHashKey, RevBalancerEject and the fails=/passes= part of
 * RevHealthCheck, then applying defaults (rc_bal_conf_check).
 *
 * OWNS   rc_bal_conf_t contents (pconf, config time only).
 * DOES NOT OWN   shared memory, selection, health (balancer.c); file:line
 *        reporting (the glue prints our message with its cmd_parms).
 * No locks, no shared state: runs in the parent while reading the config.
 * Split from balancer.c to keep each file to one job and under ~1,500 lines.
 */

#include "balancer.h"

#include <apr_strings.h>

#include <string.h>
#include <strings.h>

rc_bal_conf_t *rc_bal_conf_create(apr_pool_t *p, const char *name)
{
    rc_bal_conf_t *c = apr_pcalloc(p, sizeof(*c));

    c->name = apr_pstrdup(p, name ? name : "");
    c->members = apr_array_make(p, 4, sizeof(rc_bal_member_conf_t));
    c->method = -1;
    c->key_set = 0;
    c->key.kind = RC_BAL_KEY_URI;
    c->eject_fails = -1;
    c->eject_window = -1;
    c->eject_cooldown = -1;
    c->eject_max_cooldown = -1;
    c->eject_5xx = -1;
    c->eject_panic = -1;
    c->eject_streak = -1;
    c->hc_fails = -1;
    c->hc_passes = -1;
    c->slow_start = -1;
    c->retries = -1;
    c->bound_c = -1.0;
    c->ewma_tau = -1;
    return c;
}

static const char *const bal_method_names[] = {
    "round-robin", "least-conn", "hash", "p2c-ewma"
};

const char *rc_bal_method_name(int method)
{
    if (method < 0 || method > RC_BAL_P2C) {
        return "unknown";
    }
    return bal_method_names[method];
}

const char *rc_bal_state_name(rc_bal_state_e st)
{
    static const char *const names[] = {
        "up", "backup", "draining", "ejected", "down", "disabled"
    };

    if ((int)st < 0 || st > RC_BAL_ST_DISABLED) {
        return "unknown";
    }
    return names[st];
}

const char *rc_bal_parse_method(const char *arg, int *method)
{
    int i;

    for (i = 0; arg && i <= RC_BAL_P2C; i++) {
        if (!strcasecmp(arg, bal_method_names[i])) {
            *method = i;
            return NULL;
        }
    }
    return "RevBalancerMethod must be round-robin, least-conn, hash or "
           "p2c-ewma";
}

/* A header or cookie name: an RFC 9110 token. */
static int bal_is_token(const char *s)
{
    if (!*s) {
        return 0;
    }
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')
              || (*s >= '0' && *s <= '9') || strchr("!#$%&'*+-.^_`|~", *s))) {
            return 0;
        }
    }
    return 1;
}

const char *rc_bal_parse_hash_key(apr_pool_t *p, const char *arg,
                                  rc_bal_key_t *key)
{
    if (!arg) {
        return "RevBalancerHashKey needs an argument";
    }
    if (!strcasecmp(arg, "uri")) {
        key->kind = RC_BAL_KEY_URI;
        key->name = NULL;
        return NULL;
    }
    if (!strcasecmp(arg, "client-ip")) {
        key->kind = RC_BAL_KEY_CLIENT_IP;
        key->name = NULL;
        return NULL;
    }
    if (!strncasecmp(arg, "header:", 7) || !strncasecmp(arg, "cookie:", 7)) {
        if (!bal_is_token(arg + 7)) {
            return apr_psprintf(p, "RevBalancerHashKey '%s': the name after "
                                "':' must be a non-empty token", arg);
        }
        key->kind = (arg[0] == 'h' || arg[0] == 'H') ? RC_BAL_KEY_HEADER
                                                     : RC_BAL_KEY_COOKIE;
        key->name = apr_pstrdup(p, arg + 7);
        return NULL;
    }
    return apr_psprintf(p, "RevBalancerHashKey '%s': expected uri, "
                        "header:NAME, cookie:NAME or client-ip", arg);
}

/* Strict decimal integer in [lo, hi]. */
static int bal_int(const char *s, apr_int64_t lo, apr_int64_t hi,
                   apr_int64_t *out)
{
    apr_int64_t v = 0;

    if (!s || !*s) {
        return 0;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return 0;
        }
        v = v * 10 + (*s - '0');
        if (v > hi) {
            return 0;
        }
    }
    if (v < lo) {
        return 0;
    }
    *out = v;
    return 1;
}

const char *rc_bal_parse_interval(const char *arg, apr_interval_time_t *t)
{
    char num[32];
    const char *u;
    apr_size_t len;
    apr_int64_t v, mult;

    if (!arg) {
        return "missing duration";
    }
    for (u = arg; *u >= '0' && *u <= '9'; u++)
        ;
    len = (apr_size_t)(u - arg);
    if (len == 0 || len >= sizeof(num)) {
        return "duration must be a number with an optional unit ms, s, m "
               "or h";
    }
    memcpy(num, arg, len);
    num[len] = '\0';
    if (!*u || !strcasecmp(u, "s")) {
        mult = APR_USEC_PER_SEC;
    }
    else if (!strcasecmp(u, "ms")) {
        mult = 1000;
    }
    else if (!strcasecmp(u, "m")) {
        mult = 60 * APR_USEC_PER_SEC;
    }
    else if (!strcasecmp(u, "h")) {
        mult = 3600 * APR_USEC_PER_SEC;
    }
    else {
        return "duration unit must be ms, s, m or h";
    }
    if (!bal_int(num, 0, APR_INT64_C(86400000), &v)
        || v * mult > APR_INT64_C(86400) * APR_USEC_PER_SEC) {
        return "duration must be at most one day";
    }
    *t = v * mult;
    return NULL;
}

/* A sticky route id: what goes into a cookie value. */
static int bal_is_route(const char *s)
{
    apr_size_t n = strlen(s);

    if (n == 0 || n > 64) {
        return 0;
    }
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')
              || (*s >= '0' && *s <= '9') || strchr("._~-", *s))) {
            return 0;
        }
    }
    return 1;
}

const char *rc_bal_member_param(apr_pool_t *p, rc_bal_member_conf_t *m,
                                const char *kv)
{
    const char *eq = kv ? strchr(kv, '=') : NULL;
    const char *val;
    apr_size_t klen;
    apr_int64_t v;

    if (!eq || eq == kv) {
        return apr_psprintf(p, "RevBalancerMember: '%s' is not key=value",
                            kv ? kv : "");
    }
    klen = (apr_size_t)(eq - kv);
    val = eq + 1;
    if (klen == 6 && !strncasecmp(kv, "weight", 6)) {
        if (!bal_int(val, 1, RC_BAL_MAX_WEIGHT, &v)) {
            return apr_psprintf(p, "RevBalancerMember: weight '%s' must be "
                                "an integer from 1 to %d", val,
                                RC_BAL_MAX_WEIGHT);
        }
        m->weight = (int)v;
    }
    else if (klen == 6 && !strncasecmp(kv, "status", 6)) {
        char *list = apr_pstrdup(p, val), *last = NULL, *tok;
        int f = 0;

        for (tok = apr_strtok(list, ",", &last); tok;
             tok = apr_strtok(NULL, ",", &last)) {
            if (!strcasecmp(tok, "backup")) {
                f |= RC_BAL_F_BACKUP;
            }
            else if (!strcasecmp(tok, "disabled")) {
                f |= RC_BAL_F_DISABLED;
            }
            else if (!strcasecmp(tok, "drain")) {
                f |= RC_BAL_F_DRAIN;
            }
            else {
                return apr_psprintf(p, "RevBalancerMember: status '%s' must "
                                    "be backup, disabled or drain", tok);
            }
        }
        if (!f) {
            return "RevBalancerMember: status= needs backup, disabled or "
                   "drain";
        }
        m->flags = (m->flags < 0 ? 0 : m->flags) | f;
    }
    else if (klen == 3 && !strncasecmp(kv, "max", 3)) {
        if (!bal_int(val, 0, 1000000, &v)) {
            return apr_psprintf(p, "RevBalancerMember: max '%s' must be an "
                                "integer from 0 (unlimited) to 1000000",
                                val);
        }
        m->max = (int)v;
    }
    else if (klen == 5 && !strncasecmp(kv, "route", 5)) {
        if (!bal_is_route(val)) {
            return apr_psprintf(p, "RevBalancerMember: route '%s' must be 1 "
                                "to 64 of A-Z a-z 0-9 . _ ~ -", val);
        }
        m->route = apr_pstrdup(p, val);
    }
    else {
        return apr_psprintf(p, "RevBalancerMember: unknown parameter '%.*s' "
                            "(expected weight, status, max or route)",
                            (int)klen, kv);
    }
    return NULL;
}

/* URLs compare without case and without trailing slashes. */
static int bal_same_url(const char *a, const char *b)
{
    apr_size_t la = strlen(a), lb = strlen(b);

    while (la && a[la - 1] == '/') {
        la--;
    }
    while (lb && b[lb - 1] == '/') {
        lb--;
    }
    return la == lb && !strncasecmp(a, b, la);
}

const char *rc_bal_conf_add_member(apr_pool_t *p, rc_bal_conf_t *c,
                                   const char *url, int argc,
                                   const char *const *argv)
{
    rc_bal_member_conf_t m, *ms = (rc_bal_member_conf_t *)c->members->elts;
    const char *err;
    int i;

    if (!url || !*url) {
        return "RevBalancerMember needs a URL";
    }
    if (c->members->nelts >= RC_BAL_MAX_MEMBERS) {
        return apr_psprintf(p, "RevBalancer %s: more than %d members",
                            c->name, RC_BAL_MAX_MEMBERS);
    }
    for (i = 0; i < c->members->nelts; i++) {
        if (bal_same_url(ms[i].url, url)) {
            return apr_psprintf(p, "RevBalancer %s: duplicate member %s",
                                c->name, url);
        }
    }
    m.url = apr_pstrdup(p, url);
    m.route = NULL;
    m.weight = -1;
    m.flags = -1;
    m.max = -1;
    for (i = 0; i < argc; i++) {
        if ((err = rc_bal_member_param(p, &m, argv[i])) != NULL) {
            return err;
        }
    }
    *(rc_bal_member_conf_t *)apr_array_push(c->members) = m;
    return NULL;
}

static const char *bal_kv(const char *kv, const char *key, const char **val)
{
    apr_size_t n = strlen(key);

    if (!strncasecmp(kv, key, n) && kv[n] == '=') {
        *val = kv + n + 1;
        return key;
    }
    return NULL;
}

const char *rc_bal_eject_param(rc_bal_conf_t *c, const char *kv)
{
    const char *v;
    apr_interval_time_t t;
    apr_int64_t n;

    if (!kv) {
        return "RevBalancerEject: missing parameter";
    }
    if (bal_kv(kv, "fails", &v)) {
        if (!bal_int(v, 0, RC_BAL_MAX_EJECT_FAILS, &n)) {
            return "RevBalancerEject: fails must be 0 (off) to 32";
        }
        c->eject_fails = (int)n;
    }
    else if (bal_kv(kv, "streak", &v)) {
        if (!bal_int(v, 1, 1000, &n)) {
            return "RevBalancerEject: streak must be 1 to 1000";
        }
        c->eject_streak = (int)n;
    }
    else if (bal_kv(kv, "5xx", &v) || bal_kv(kv, "panic", &v)) {
        int *f = (kv[0] == '5') ? &c->eject_5xx : &c->eject_panic;

        if (!strcasecmp(v, "on")) {
            *f = 1;
        }
        else if (!strcasecmp(v, "off")) {
            *f = 0;
        }
        else {
            return kv[0] == '5' ? "RevBalancerEject: 5xx must be on or off"
                                : "RevBalancerEject: panic must be on or off";
        }
    }
    else if (bal_kv(kv, "window", &v) || bal_kv(kv, "cooldown", &v)
             || bal_kv(kv, "max-cooldown", &v)) {
        if (rc_bal_parse_interval(v, &t) || t <= 0) {
            return "RevBalancerEject: window, cooldown and max-cooldown "
                   "must be positive durations (e.g. 10s, 500ms)";
        }
        if (kv[0] == 'w' || kv[0] == 'W') {
            c->eject_window = t;
        }
        else if (kv[0] == 'c' || kv[0] == 'C') {
            c->eject_cooldown = t;
        }
        else {
            c->eject_max_cooldown = t;
        }
    }
    else {
        return "RevBalancerEject: unknown parameter (expected fails=, "
               "window=, cooldown=, max-cooldown=, 5xx=, streak=, panic=)";
    }
    return NULL;
}

const char *rc_bal_health_param(rc_bal_conf_t *c, const char *kv, int *used)
{
    const char *v;
    apr_int64_t n;

    *used = 0;
    if (!kv) {
        return NULL;
    }
    if (bal_kv(kv, "fails", &v) || bal_kv(kv, "passes", &v)) {
        *used = 1;
        if (!bal_int(v, 1, 100, &n)) {
            return "RevHealthCheck: fails and passes must be 1 to 100";
        }
        if (kv[0] == 'f' || kv[0] == 'F') {
            c->hc_fails = (int)n;
        }
        else {
            c->hc_passes = (int)n;
        }
    }
    return NULL;
}

#define DEF(f, d) ((f) < 0 ? (d) : (f))

const char *rc_bal_conf_check(apr_pool_t *p, rc_bal_conf_t *c)
{
    rc_bal_member_conf_t *ms = (rc_bal_member_conf_t *)c->members->elts;
    int i, j;

    if (c->members->nelts == 0) {
        return apr_psprintf(p, "RevBalancer %s has no RevBalancerMember",
                            c->name);
    }
    c->method = DEF(c->method, RC_BAL_RR);
    c->eject_fails = DEF(c->eject_fails, 3);
    c->eject_window = DEF(c->eject_window, 10 * APR_USEC_PER_SEC);
    c->eject_cooldown = DEF(c->eject_cooldown, 5 * APR_USEC_PER_SEC);
    c->eject_max_cooldown = DEF(c->eject_max_cooldown,
                                60 * APR_USEC_PER_SEC);
    c->eject_5xx = DEF(c->eject_5xx, 0);
    c->eject_streak = DEF(c->eject_streak, 5);
    c->eject_panic = DEF(c->eject_panic, 1);
    c->hc_fails = DEF(c->hc_fails, 3);
    c->hc_passes = DEF(c->hc_passes, 2);
    c->slow_start = DEF(c->slow_start, 0);
    c->retries = DEF(c->retries, 1);
    c->bound_c = c->bound_c < 0 ? 1.25 : c->bound_c;
    c->ewma_tau = DEF(c->ewma_tau, 10 * APR_USEC_PER_SEC);
    if (c->eject_max_cooldown < c->eject_cooldown) {
        return apr_psprintf(p, "RevBalancer %s: RevBalancerEject "
                            "max-cooldown is shorter than cooldown",
                            c->name);
    }
    if (c->bound_c < 1.0) {
        return apr_psprintf(p, "RevBalancer %s: bounded-load factor must "
                            "be >= 1", c->name);
    }
    if (c->retries > RC_BAL_MAX_MEMBERS) {
        return apr_psprintf(p, "RevBalancer %s: RevBalancerRetries is at "
                            "most %d", c->name, RC_BAL_MAX_MEMBERS);
    }
    for (i = 0; i < c->members->nelts; i++) {
        ms[i].weight = DEF(ms[i].weight, 1);
        ms[i].flags = DEF(ms[i].flags, 0);
        ms[i].max = DEF(ms[i].max, 0);
        if (!ms[i].route) {
            /* stable across reordering and restarts: derived from URL */
            ms[i].route = apr_psprintf(p, "%08x", (unsigned)
                                       (rc_bal_hash(ms[i].url,
                                                    strlen(ms[i].url))
                                        >> 32));
        }
    }
    for (i = 0; i < c->members->nelts; i++) {
        for (j = i + 1; j < c->members->nelts; j++) {
            if (bal_same_url(ms[i].url, ms[j].url)) {
                return apr_psprintf(p, "RevBalancer %s: duplicate member %s",
                                    c->name, ms[j].url);
            }
            if (!strcmp(ms[i].route, ms[j].route)) {
                return apr_psprintf(p, "RevBalancer %s: members %s and %s "
                                    "have the same route '%s'", c->name,
                                    ms[i].url, ms[j].url, ms[i].route);
            }
        }
    }
    return NULL;
}

