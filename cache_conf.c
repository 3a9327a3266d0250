/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * cache_conf.c - the RevCache* directives: parsing, validation, the
 * create/merge of their per-directory record, and the server-wide
 * settings of the shared segment.
 *
 * One handler (rc_cache_cmd) parses every directive by name; its table
 * entries are RC_CACHE_CMDS in mod_revcache.h, spliced into config.c's
 * rc_cmds. Conventions are config.c's: create leaves every field unset
 * (RC_UNSET / NULL), merge names every field, defaults are applied late
 * (rc_cache_opts(), post_config), and an error names what is wrong
 * (httpd adds file and line).
 *
 * Per-request options (RevCacheEnable, ...) live in the per-directory
 * record: said at server or vhost level they land in that server's
 * defaults, in <Location> they apply there. RevCacheSize and
 * RevCacheMaxObjectSize are server-wide (one segment for all children):
 * a process-global record rebuilt on every configuration cycle (reset
 * in pre_config, filled by the single-threaded directive pass, read by
 * post_config), like config.c's worker registry. RevCacheQuickHandler
 * is per server (main server or virtual host, like mod_cache's
 * CacheQuickHandler): a field of rc_server_conf_t, merged by config.c.
 * All of it in pconf.
 */

#include <errno.h>

#include <apr_strings.h>
#include <apr_lib.h>
#include <http_core.h>

#include "cache.h"

static rc_cache_global_t global;

rc_cache_global_t *rc_cache_global(void)
{
    return &global;
}

void rc_cache_global_reset(apr_pool_t *pconf)
{
    (void)pconf;
    global.size = RC_UNSET;
    global.max_object = RC_UNSET;
    global.enabled = 0;
}

rc_cache_dconf_t *rc_cache_dconf_create(apr_pool_t *p)
{
    rc_cache_dconf_t *dc = apr_pcalloc(p, sizeof(*dc));

    dc->enable = RC_UNSET;
    dc->status_header = RC_UNSET;
    dc->default_ttl = RC_UNSET;
    dc->lock_timeout = RC_UNSET;
    dc->purge = RC_UNSET;
    dc->ignore_query = RC_UNSET;
    dc->key_headers = NULL;
    dc->heuristic_percent = RC_UNSET;
    dc->stale_if_error = RC_UNSET;
    dc->hit_for_miss = RC_UNSET;
    dc->convert_head = RC_UNSET;
    return dc;
}

#define MERGE(f) (add->f != RC_UNSET ? add->f : base->f)

rc_cache_dconf_t *rc_cache_dconf_merge(apr_pool_t *p,
                                       const rc_cache_dconf_t *base,
                                       const rc_cache_dconf_t *add)
{
    rc_cache_dconf_t *dc = apr_pcalloc(p, sizeof(*dc));

    dc->enable = MERGE(enable);
    dc->status_header = MERGE(status_header);
    dc->default_ttl = MERGE(default_ttl);
    dc->lock_timeout = MERGE(lock_timeout);
    dc->purge = MERGE(purge);
    dc->ignore_query = MERGE(ignore_query);
    dc->key_headers = add->key_headers ? add->key_headers
                                       : base->key_headers;
    dc->heuristic_percent = MERGE(heuristic_percent);
    dc->stale_if_error = MERGE(stale_if_error);
    dc->hit_for_miss = MERGE(hit_for_miss);
    dc->convert_head = MERGE(convert_head);
    return dc;
}

void rc_cache_opts(const rc_cache_dconf_t *dc, rc_rules_opts_t *o)
{
    rc_rules_opts_init(o);
    if (dc->heuristic_percent != RC_UNSET) {
        o->heuristic_percent = (unsigned int)dc->heuristic_percent;
    }
    if (dc->default_ttl != RC_UNSET) {
        o->default_ttl = dc->default_ttl;
    }
    if (dc->stale_if_error != RC_UNSET) {
        o->default_sie = dc->stale_if_error;
    }
    o->ignore_query = dc->ignore_query == 1;
    o->key_headers = dc->key_headers;
}

/* A size: "1048576", "512K", "64M", "1G" (binary multiples). */
static const char *parse_size(cmd_parms *cmd, const char *v,
                              apr_int64_t min, apr_int64_t max,
                              apr_int64_t *out)
{
    char *end;
    apr_int64_t n, mult = 1;

    errno = 0;
    n = apr_strtoi64(v, &end, 10);
    if (end != v && *end && !end[1]) {
        switch (apr_toupper(*end)) {
        case 'K': mult = (apr_int64_t)1 << 10; end++; break;
        case 'M': mult = (apr_int64_t)1 << 20; end++; break;
        case 'G': mult = (apr_int64_t)1 << 30; end++; break;
        }
    }
    if (end == v || *end || errno || n < 0 || n > max / mult
        || n * mult < min) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a size from "
                            "%" APR_INT64_T_FMT " to %" APR_INT64_T_FMT
                            " bytes (e.g. 512K, 64M, 1G)", cmd->cmd->name,
                            v, min, max);
    }
    *out = n * mult;
    return NULL;
}

/* A time ("30", "500ms", "2s", "1mi", "1h"), > 0, or "Off" when off_ok
 * (then 0). */
static const char *parse_time(cmd_parms *cmd, const char *v, int off_ok,
                              apr_interval_time_t *t)
{
    if (off_ok && !strcasecmp(v, "off")) {
        *t = 0;
        return NULL;
    }
    if (ap_timeout_parameter_parse(v, t, "s") != APR_SUCCESS || *t <= 0) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a positive time "
                            "(e.g. 30, 500ms, 2s, 1mi)%s", cmd->cmd->name,
                            v, off_ok ? " or Off" : "");
    }
    return NULL;
}

/* An RFC 9110 token (a field name). */
static int is_token(const char *s)
{
    if (!*s) {
        return 0;
    }
    for (; *s; s++) {
        if (!apr_isalnum(*s) && !strchr("!#$%&'*+-.^_`|~", *s)) {
            return 0;
        }
    }
    return 1;
}

/* Where a per-directory cache directive may be: server, vhost,
 * <Location> / <LocationMatch> / <If>; not <Directory> or <Files>
 * (a proxied URI has no file). */
static const char *dir_context(cmd_parms *cmd)
{
    return ap_check_cmd_context(cmd, NOT_IN_DIRECTORY | NOT_IN_FILES
                                     | NOT_IN_HTACCESS);
}

static const char *one_arg(cmd_parms *cmd, int argc)
{
    return argc == 1 ? NULL : apr_psprintf(cmd->pool, "%s takes one "
                                           "argument", cmd->cmd->name);
}

static const char *flag(cmd_parms *cmd, int argc, char *const argv[],
                        int *out)
{
    const char *err = one_arg(cmd, argc);

    if (err) {
        return err;
    }
    if ((*out = rc_conf_parse_onoff(argv[0])) < 0) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not On or Off",
                            cmd->cmd->name, argv[0]);
    }
    return NULL;
}

static const char *cmd_global(cmd_parms *cmd, const char *name, int argc,
                              char *const argv[])
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err || (err = one_arg(cmd, argc))) {
        return err;
    }
    if (!strcasecmp(name, "RevCacheSize")) {
        rc_cache_params_t prm;

        rc_cache_params_default(&prm);
        return parse_size(cmd, argv[0], (apr_int64_t)rc_cache_min_size(&prm),
                          RC_CACHE_MAX_SIZE, &global.size);
    }
    /* RevCacheMaxObjectSize: at most 1/8 of the segment (post_config
     * warns when it caps it). */
    return parse_size(cmd, argv[0], 1, RC_CACHE_MAX_SIZE / 8,
                      &global.max_object);
}

const char *rc_cache_cmd(cmd_parms *cmd, void *dconf, int argc,
                         char *const argv[])
{
    rc_dir_conf_t *d = dconf;
    rc_cache_dconf_t *dc = d->cache;
    const char *name = cmd->cmd->name;
    const char *err;

    if (!strcasecmp(name, "RevCacheSize")
        || !strcasecmp(name, "RevCacheMaxObjectSize")) {
        return cmd_global(cmd, name, argc, argv);
    }
    if (!strcasecmp(name, "RevCacheQuickHandler")) {
        rc_server_conf_t *sc = ap_get_module_config(
                                   cmd->server->module_config,
                                   &revcache_module);

        if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE))) {
            return err;
        }
        return flag(cmd, argc, argv, &sc->cache_quick);
    }
    if ((err = dir_context(cmd))) {
        return err;
    }
    if (!strcasecmp(name, "RevCacheKeyHeaders")) {
        int i;

        if (argc < 1) {
            return "RevCacheKeyHeaders needs at least one header name";
        }
        dc->key_headers = apr_array_make(cmd->pool, argc,
                                         sizeof(const char *));
        for (i = 0; i < argc; i++) {
            if (!is_token(argv[i])) {
                return apr_psprintf(cmd->pool, "RevCacheKeyHeaders: '%s' "
                                    "is not a header name", argv[i]);
            }
            APR_ARRAY_PUSH(dc->key_headers, const char *) = argv[i];
        }
        return NULL;
    }
    if ((err = one_arg(cmd, argc))) {
        return err;
    }
    if (!strcasecmp(name, "RevCacheEnable")) {
        if ((err = flag(cmd, argc, argv, &dc->enable))) {
            return err;
        }
        global.enabled |= dc->enable;
        return NULL;
    }
    if (!strcasecmp(name, "RevCacheStatusHeader")) {
        return flag(cmd, argc, argv, &dc->status_header);
    }
    if (!strcasecmp(name, "RevCachePurge")) {
        return flag(cmd, argc, argv, &dc->purge);
    }
    if (!strcasecmp(name, "RevCacheConvertHead")) {
        return flag(cmd, argc, argv, &dc->convert_head);
    }
    if (!strcasecmp(name, "RevCacheIgnoreQueryString")) {
        return flag(cmd, argc, argv, &dc->ignore_query);
    }
    if (!strcasecmp(name, "RevCacheDefaultTTL")) {
        return parse_time(cmd, argv[0], 1, &dc->default_ttl);
    }
    if (!strcasecmp(name, "RevCacheStaleIfError")) {
        return parse_time(cmd, argv[0], 1, &dc->stale_if_error);
    }
    if (!strcasecmp(name, "RevCacheHitForMiss")) {
        return parse_time(cmd, argv[0], 1, &dc->hit_for_miss);
    }
    if (!strcasecmp(name, "RevCacheLockTimeout")) {
        return parse_time(cmd, argv[0], 0, &dc->lock_timeout);
    }
    if (!strcasecmp(name, "RevCacheHeuristicFraction")) {
        char *end;
        apr_int64_t pct = apr_strtoi64(argv[0], &end, 10);

        if (end != argv[0] && *end == '%') {
            end++;
        }
        if (end == argv[0] || *end || pct < 0 || pct > 100) {
            return apr_psprintf(cmd->pool, "RevCacheHeuristicFraction: "
                                "'%s' is not a percentage from 0 to 100",
                                argv[0]);
        }
        dc->heuristic_percent = (int)pct;
        return NULL;
    }
    return apr_psprintf(cmd->pool, "%s: unknown cache directive", name);
}
