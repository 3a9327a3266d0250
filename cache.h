/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/**
 * @file cache.h
 * @brief What the httpd glue of the cache shares between its files:
 *        cache_conf.c (directives), cache.c (segment, lookups, hits,
 *        PURGE, status) and cache_fetch.c (misses, stores, revalidation,
 *        stale serving, background refresh, invalidation).
 *
 * Only those three files include this. The APR-only cores they drive
 * are cache_rules.h (RFC 9111 decisions) and cache_mem.h (the store).
 */
#ifndef RC_CACHE_H
#define RC_CACHE_H

#include "mod_revcache.h"
#include "cache_rules.h"
#include "cache_mem.h"
#include "cache_meta.h"

/* Defaults, applied late (rc_cache_opts() and post_config). */
#define RC_CACHE_DEF_SIZE          (64 * 1024 * 1024)
#define RC_CACHE_DEF_LOCK_TIMEOUT  apr_time_from_sec(5)
#define RC_CACHE_DEF_HIT_FOR_MISS  apr_time_from_sec(120)
#define RC_CACHE_MAX_SIZE          ((apr_int64_t)64 << 30)
/** How long past its last usable instant an entry with a validator is
 *  kept for revalidation (memory permitting: LRU evicts before). */
#define RC_CACHE_KEEP_VALIDATABLE  apr_time_from_sec(86400)
/** ... and one without, for clients that accept stale copies
 *  (max-stale, their own stale-if-error). */
#define RC_CACHE_KEEP_STALE        apr_time_from_sec(600)

/** RevCache* directives of a server or <Location>; RC_UNSET when not
 *  said, merged field by field. */
struct rc_cache_dconf_t {
    int                  enable;
    int                  status_header;
    apr_interval_time_t  default_ttl;     /**< 0 = Off */
    apr_interval_time_t  lock_timeout;
    int                  purge;
    int                  ignore_query;
    apr_array_header_t  *key_headers;     /**< const char *, NULL unset */
    int                  heuristic_percent;
    apr_interval_time_t  stale_if_error;  /**< 0 = Off */
    apr_interval_time_t  hit_for_miss;    /**< 0 = Off */
    int                  convert_head;    /**< HEAD miss -> GET, stored */
};

/** Server-wide settings of this configuration cycle (GLOBAL_ONLY
 *  directives), read by post_config. */
typedef struct {
    apr_int64_t  size;            /**< RC_UNSET: RC_CACHE_DEF_SIZE */
    apr_int64_t  max_object;      /**< RC_UNSET: the store's default */
    int          enabled;         /**< some RevCacheEnable On was read */
} rc_cache_global_t;

/** cache_conf.c: this cycle's server-wide settings (reset in
 *  pre_config). */
rc_cache_global_t *rc_cache_global(void);
void rc_cache_global_reset(apr_pool_t *pconf);
/** The rules options of a directory configuration. */
void rc_cache_opts(const rc_cache_dconf_t *dc, rc_rules_opts_t *o);

/** A stored response as the glue sees it (one lookup's copy). */
typedef struct {
    rc_cache_hit_t  *hit;          /**< pinned until r->pool ends */
    int              status;
    const char      *status_line;  /**< NULL: httpd's own reason */
    apr_table_t     *headers;      /**< stored fields, Content-Type incl. */
    rc_fresh_t       fresh;
    apr_uint64_t     body_len;
} rc_cache_entry_t;

/** The cache's state of one request (rc_match_t.cache). */
struct rc_cache_req_t {
    request_rec             *r;
    rc_match_t              *m;
    const rc_cache_dconf_t  *dc;
    rc_cache_t              *c;
    rc_rules_opts_t          opts;
    rc_cc_t                  req_cc;
    const char              *key;       /**< URL key: purge drops all */
    const char              *bv;        /**< base variant: key headers */
    const char              *variant;   /**< store variant: bv [+ Vary] */
    const char              *mkey;      /**< fill marker key */
    const char              *vary_spec; /**< of the primary record, or NULL */
    rc_cache_fill_t          fill;      /**< held while we fetch */
    int                      collapsed; /**< waited for another fetch */
    int                      refresh;   /**< SWR: refresh after logging */
    int                      hfm;       /**< a hit-for-miss marker stands */
    rc_cache_entry_t        *stale;     /**< what the refresh revalidates */
    int                      quick;     /**< serving in the quick handler:
                                             decline, never forward */
    int                      looked_up; /**< the quick handler looked up:
                                             found / found_why are that */
    rc_cache_entry_t        *found;     /**< its entry (pinned), or NULL */
    const char              *found_why; /**< its miss reason */
};

/* cache.c */
/** The segment of this configuration cycle, NULL if none. */
rc_cache_t *rc_cache_segment(void);
/** Adds to the Cache-Status field of the response (when enabled). */
void rc_cache_status(rc_cache_req_t *q, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** Answers from a stored entry (304 to a matching conditional, HEAD,
 *  Range through httpd's byterange filter). In the quick handler
 *  (q->quick) it runs the insert_filter hook first, and returns
 *  DECLINED where it would otherwise forward (If-Match, a corrupt body).
 *  @return handler status */
int rc_cache_serve(rc_cache_req_t *q, rc_cache_entry_t *e,
                   const char *status_fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** A HEAD miss of @a q is fetched as a GET and stored. */
int rc_cache_head_as_get(const rc_cache_req_t *q);
/** Looks the request up again; NULL on a miss (*why set). */
rc_cache_entry_t *rc_cache_find(rc_cache_req_t *q, apr_time_t now,
                                const char **why);

/* cache_fetch.c */
/**
 * Goes to the backend for q: a miss (e NULL) or the revalidation of a
 * stale entry e. Stores what is storable while relaying it, merges a
 * 304, serves e on a backend error when stale-if-error allows.
 * @param why Cache-Status "fwd=" value: uri-miss, vary-miss, stale,
 *        request
 * @param detail Cache-Status "detail=", or NULL
 */
int rc_cache_fetch(rc_cache_req_t *q, rc_cache_entry_t *e,
                   const char *why, const char *detail);
/** The background refresh of a stale-while-revalidate hit, run once
 *  the response has been sent (log_transaction). */
void rc_cache_refresh(rc_cache_req_t *q);
/** After a successful unsafe method: drops the target URI and the
 *  Location / Content-Location URIs of the same host. */
void rc_cache_invalidate(rc_cache_req_t *q);
/** The path and query the keys use: escaped r->uri and r->args. */
const char *rc_cache_key_path(request_rec *r);

#endif /* RC_CACHE_H */
