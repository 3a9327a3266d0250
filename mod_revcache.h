/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/**
 * @file mod_revcache.h
 * @brief Types shared by the httpd glue of mod_revcache: configuration
 *        records, routes and workers, and the module's constants.
 *
 * Only the glue files (mod_revcache.c, config.c, proxy.c) include this;
 * the APR-only cores never do.
 */
#ifndef MOD_REVCACHE_H
#define MOD_REVCACHE_H

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include "backend.h"
#include "balancer.h"
#include "headers.h"

/** Log tags: RCLOGNO(00042) gives "RC00042: ". Each number is used once. */
#define RCLOGNO(n) "RC" #n ": "

#define RC_HANDLER        "revcache"
#define RC_STATUS_HANDLER "revcache-status"

/** The module's version, shown by the status page. */
#define RC_VERSION        "0.1.0"

/* Defaults, applied late by the accessors in config.c. */
#define RC_DEF_CONNECT_TIMEOUT  apr_time_from_sec(5)
#define RC_DEF_IDLE_TTL         apr_time_from_sec(4)  /* < httpd's 5s */
#define RC_DEF_BUFFER_SIZE      (64 * 1024)
#define RC_DEF_MAX_HEAD_BYTES   (64 * 1024)
#define RC_DEF_MAX_FIELDS       200

#define RC_UNSET   (-1)

/** What RevProxyForwarded adds to forwarded requests. */
enum {
    RC_FWD_OFF = 0,
    RC_FWD_X = 1,            /**< X-Forwarded-For/-Host/-Proto + Via */
    RC_FWD_RFC7239 = 2,      /**< Forwarded + Via */
    RC_FWD_BOTH = 3
};

/**
 * A worker: one backend target with the options of the route that named
 * it. Two routes to the same URL get two workers (mod_proxy shares one
 * and silently drops the second route's options). Built at config time
 * in pconf; its per-process connection pool is rc_backend_t, found by
 * index in the array child_init creates.
 */
typedef struct rc_worker_t {
    int                  index;        /**< into the per-process array */
    const char          *url;          /**< as configured */
    const char          *host;         /**< "127.0.0.1", "[::1]" unbracketed */
    apr_port_t           port;
    const char          *authority;    /**< Host header: "host:port" */
    const char          *base_path;    /**< path of the URL, ends in '/' or not */
    apr_interval_time_t  timeout;      /**< RC_UNSET until post_config */
    apr_interval_time_t  connect_timeout;
    apr_interval_time_t  idle_ttl;
    int                  keepalive;
    int                  max_idle;
    server_rec          *server;       /**< where it was defined (defaults) */
    /** "RevProxyPass /p/ balancer://NAME/path": NAME, else NULL. Such a
     *  route worker has no pool (index -1, not in the registry); lb.c
     *  resolves lb in check_config and picks a member per request. */
    const char          *balancer;
    struct rc_lb_t      *lb;
    const char          *where;        /**< "file:line" of the directive */
} rc_worker_t;

/** A route: a path prefix and where it goes. */
typedef struct {
    const char   *prefix;      /**< decoded path prefix, "/app/" */
    apr_size_t    prefix_len;
    int           exclude;     /**< "RevProxyPass /x/ !" */
    rc_worker_t  *worker;      /**< NULL when excluded */
} rc_route_t;

/** The cache's state of one request (cache.c), opaque elsewhere. */
typedef struct rc_cache_req_t rc_cache_req_t;

/** What translate_name (or the quick handler) decided for a request
 *  (r->request_config). */
typedef struct {
    const rc_route_t *route;
    const char       *backend_path;  /**< raw path + query for the backend */
    /** set by the cache, else NULL; left by a quick handler that
     *  declined: its lookup, which translate_name hands on */
    rc_cache_req_t   *cache;
    int               claimed;       /**< the request is ours; 0: only
                                          such a quick handler's leftover */
} rc_match_t;

/** Server (and virtual host) configuration. */
typedef struct {
    apr_array_header_t  *routes;        /**< rc_route_t, longest first */
    apr_array_header_t  *reverse;       /**< rc_reverse_map_t */
    int                  preserve_host; /**< RC_UNSET, 0, 1 */
    int                  forwarded;     /**< RC_UNSET or RC_FWD_* */
    apr_interval_time_t  timeout;       /**< RC_UNSET: httpd's Timeout */
    apr_interval_time_t  connect_timeout;
    int                  pool_max_idle; /**< RC_UNSET: threads per child */
    apr_interval_time_t  pool_idle_ttl;
    int                  cache_quick;   /**< RevCacheQuickHandler: RC_UNSET,
                                             0, 1 */
} rc_server_conf_t;

/** The cache's directives of a directory (cache_conf.c), opaque here. */
typedef struct rc_cache_dconf_t rc_cache_dconf_t;

/** Directory (<Location>) configuration. */
typedef struct {
    rc_route_t          *route;         /**< RevProxyPass in <Location> */
    apr_array_header_t  *reverse;       /**< rc_reverse_map_t */
    rc_cache_dconf_t    *cache;         /**< RevCache* directives */
} rc_dir_conf_t;

extern module AP_MODULE_DECLARE_DATA revcache_module;

/* config.c */
extern const command_rec rc_cmds[];
void *rc_create_server_conf(apr_pool_t *p, server_rec *s);
void *rc_merge_server_conf(apr_pool_t *p, void *base, void *add);
void *rc_create_dir_conf(apr_pool_t *p, char *dir);
void *rc_merge_dir_conf(apr_pool_t *p, void *base, void *add);
/** Forgets the workers of the previous configuration cycle. */
void rc_config_workers_reset(apr_pool_t *pconf);
/** Every worker of this configuration, in index order. */
apr_array_header_t *rc_config_workers(void);
/** Parses "http://host[:port][/path]" into a new, unregistered worker
 *  (options unset). Returns NULL or the reason it is not valid. */
const char *rc_config_worker_parse(cmd_parms *cmd, const char *url,
                                   rc_worker_t **out);
/** Applies one "key=value" connection option (timeout, connecttimeout,
 *  keepalive, maxidle, idlettl) to a worker. */
const char *rc_config_worker_option(cmd_parms *cmd, rc_worker_t *w,
                                    const char *arg);
/** Adds a worker to the registry: it gets an index and, in child_init,
 *  a per-process connection pool. */
void rc_config_worker_add(rc_worker_t *w);
/** Fills each worker's unset options from its server's config. */
void rc_config_resolve_workers(void);
int rc_conf_preserve_host(const rc_server_conf_t *sc);
/** "On"/"Off" (any case) as 1/0; -1 when neither. */
int rc_conf_parse_onoff(const char *v);
int rc_conf_forwarded(const rc_server_conf_t *sc);

/* proxy.c: one exchange with a backend, in phases, so the cache and the
 * balancer can step in between them:
 *   rc_proxy_exchange()      send the request, read the final head
 *   rc_proxy_set_response()  status and headers of r from that head
 *   rc_proxy_relay_body()    stream the body to the client (with a tee)
 * or rc_proxy_abandon() to drop a response without relaying it. */

/** How an exchange with a backend ended. */
typedef enum {
    RC_OUT_OK = 0,        /**< a final response head was read */
    RC_OUT_CONNECT,       /**< no connection: nothing was sent */
    RC_OUT_TIMEOUT,       /**< no answer within the timeout */
    RC_OUT_BAD_RESPONSE,  /**< malformed answer or I/O error */
    RC_OUT_CLIENT         /**< the client's request body failed */
} rc_outcome_e;

/** One request/response exchange with a backend. */
typedef struct {
    rc_outcome_e    outcome;
    int             http_status;  /**< OK, or what the handler returns */
    int             body_sent;    /**< the client's body was consumed */
    rc_resp_head_t  head;         /**< the final response head */
    rc_body_kind_e  kind;         /**< its body framing */
    apr_off_t       length;
    int             keepalive;    /**< backend keeps the connection */
    const char     *failure;      /**< what failed, when not RC_OUT_OK */
    rc_conn_t      *conn;         /**< held until relayed or abandoned */
    void           *route_ctx;    /**< the route layer's state for this
                                       exchange (a balancer reservation),
                                       set by rc_route_exchange() */
} rc_exchange_t;

/** Sees every piece of a relayed body, then its end. */
typedef struct {
    void  (*piece)(void *ctx, const char *data, apr_size_t len);
    /** complete is zero when the body broke off or the client left */
    void  (*end)(void *ctx, int complete);
    void   *ctx;
    /** optional: the backend paused (what was seen is all there is now) */
    void  (*flush)(void *ctx);
    /** optional: the client left; non-zero to read the body on for the
     *  tee alone (then end() tells how it ended) */
    int   (*orphan)(void *ctx);
} rc_body_tee_t;

/**
 * Sends r to the worker's backend and reads the final response head.
 * Interim 1xx responses are relayed or dropped; a dead pooled
 * connection is retried once for an idempotent bodyless request.
 * @param set_headers fields to set on the backend request (e.g. the
 *        conditionals of a revalidation), or NULL
 * @param flags RC_EXCH_RETRYING: the caller may try another backend, so
 *        a failure is logged at info only (the caller logs the outcome)
 * @return OK with x->conn held, or x->http_status (502, 504, 4xx) with
 *         the failure logged once, x->outcome saying what failed and
 *         x->failure in words
 */
#define RC_EXCH_RETRYING 1
int rc_proxy_exchange(request_rec *r, const rc_worker_t *w,
                      rc_backend_t *be, const char *backend_path,
                      apr_table_t *set_headers, int flags,
                      rc_exchange_t *x);

/** Sets r->status and the response headers from the exchange's head
 *  (hop-by-hop removed, RevProxyPassReverse applied). */
void rc_proxy_set_response(request_rec *r, rc_exchange_t *x);

/** Streams the response body to the client, showing each piece to tee
 *  (may be NULL), and releases the connection. Returns OK. */
int rc_proxy_relay_body(request_rec *r, const rc_worker_t *w,
                        rc_exchange_t *x, const rc_body_tee_t *tee);

/** Ends a response whose body cannot be completed: no final chunk, no
 *  keep-alive (HTTP/1.1), stream reset (HTTP/2); @a bb is reused. */
void rc_proxy_abort_client(request_rec *r, apr_bucket_brigade *bb);

/** Releases the connection of an exchange that is not relayed. */
void rc_proxy_abandon(rc_exchange_t *x);

/** exchange + set_response + relay_body, for the plain proxy path. */
int rc_proxy_forward(request_rec *r, const rc_worker_t *w,
                     rc_backend_t *be, const char *backend_path);

/* mod_revcache.c: the route layer between the handler and proxy.c.
 * The cache calls rc_route_exchange() / rc_route_done() around its own
 * relay; the balancer picks the member inside rc_route_exchange(). */

/** This process's connection pool for a worker, NULL if unavailable. */
rc_backend_t *rc_backend_of(const rc_worker_t *w);

/**
 * Chooses the backend for the matched route and runs one exchange.
 * @param wp set to the worker that was used (for relay and done)
 * @return OK, or an HTTP status to return (failure already logged)
 */
int rc_route_exchange(request_rec *r, const rc_match_t *m,
                      apr_table_t *set_headers, rc_exchange_t *x,
                      const rc_worker_t **wp);

/** Called once the exchange is over (relayed, abandoned or failed). */
void rc_route_done(request_rec *r, const rc_match_t *m,
                   const rc_worker_t *w, const rc_exchange_t *x);

/** The plain path: exchange, relay to the client, done. */
int rc_route_forward(request_rec *r, const rc_match_t *m);

/* lb.c: the httpd glue of the load balancer (<RevBalancer>, its
 * directives, the shared memory, the health-check prober, and the
 * per-request pick / retry / report). The APR-only core is balancer.c. */

/** One <RevBalancer NAME> (opaque; lb.c). */
typedef struct rc_lb_t rc_lb_t;

/* Directive handlers, listed in rc_cmds through RC_LB_CMDS. */
const char *rc_lb_cmd_section(cmd_parms *cmd, void *dc, const char *arg);
const char *rc_lb_cmd(cmd_parms *cmd, void *dc, int argc,
                      char *const argv[]);

enum {
    RC_LB_MEMBER = 1, RC_LB_METHOD, RC_LB_HASHKEY, RC_LB_STICKY,
    RC_LB_HEALTH, RC_LB_EJECT, RC_LB_SLOWSTART, RC_LB_RETRIES, RC_LB_WAIT
};

#define RC_LB_CMD(name, what, help) \
    AP_INIT_TAKE_ARGV(name, rc_lb_cmd, (void *)(what), RSRC_CONF, help),

#define RC_LB_CMDS \
    AP_INIT_RAW_ARGS("<RevBalancer", rc_lb_cmd_section, NULL, RSRC_CONF, \
                     "<RevBalancer NAME> ... </RevBalancer>: a load " \
                     "balancer, used as RevProxyPass /p/ balancer://NAME/"), \
    RC_LB_CMD("RevBalancerMember", RC_LB_MEMBER, "URL [weight=N] " \
              "[status=backup|disabled|drain] [max=N] [route=ID] " \
              "[timeout= connecttimeout= keepalive= maxidle= idlettl=]") \
    RC_LB_CMD("RevBalancerMethod", RC_LB_METHOD, \
              "round-robin | least-conn | hash | p2c-ewma") \
    RC_LB_CMD("RevBalancerHashKey", RC_LB_HASHKEY, \
              "uri | header:NAME | cookie:NAME | client-ip") \
    RC_LB_CMD("RevBalancerSticky", RC_LB_STICKY, "cookie=NAME") \
    RC_LB_CMD("RevHealthCheck", RC_LB_HEALTH, "uri=PATH [interval=2s] " \
              "[timeout=1s] [fails=3] [passes=2] [expect=2xx]") \
    RC_LB_CMD("RevBalancerEject", RC_LB_EJECT, "fails=N window=T " \
              "cooldown=T max-cooldown=T [5xx=on|off] [streak=N]") \
    RC_LB_CMD("RevBalancerSlowStart", RC_LB_SLOWSTART, \
              "time a recovered member takes to reach its full weight") \
    RC_LB_CMD("RevBalancerRetries", RC_LB_RETRIES, \
              "other members tried when one fails before answering") \
    RC_LB_CMD("RevBalancerWait", RC_LB_WAIT, \
              "how long a request waits when every member is at max=N")

/** RevProxyPass's target "balancer://NAME[/path]": a route worker. */
const char *rc_lb_route_target(cmd_parms *cmd, const char *url,
                               rc_worker_t **out);

/** Hooks of the balancer glue (pre_config, check_config, post_config,
 *  child_init, monitor); called from the module's register_hooks. */
void rc_lb_register_hooks(apr_pool_t *p);

/** rc_route_exchange() for a balancer route: pick a member, exchange,
 *  retry elsewhere when that is safe; 503 when no member can take it. */
int rc_lb_exchange(request_rec *r, const rc_match_t *m,
                   apr_table_t *set_headers, rc_exchange_t *x,
                   const rc_worker_t **wp);

/** rc_route_done() for a balancer route: reports the outcome. */
void rc_lb_done(request_rec *r, const rc_exchange_t *x);

/* For the status page: the balancers of this configuration. */

/** Number of <RevBalancer> sections. */
int rc_lb_count(void);
/** Balancer @a i (0 .. rc_lb_count() - 1), NULL when out of range. */
rc_lb_t *rc_lb_get(int i);
/** Its name. */
const char *rc_lb_name(const rc_lb_t *lb);
/** Its core handle (shared state), NULL before post_config. */
rc_bal_t *rc_lb_core(const rc_lb_t *lb);
/** RevHealthCheck's uri=, NULL without active health checks. */
const char *rc_lb_health_uri(const rc_lb_t *lb);
/** RevBalancerSticky's cookie name, NULL without stickiness. */
const char *rc_lb_sticky(const rc_lb_t *lb);
/** Snapshot of member @a idx (see rc_bal_member_stats()). */
apr_status_t rc_lb_member_stats(const rc_lb_t *lb, int idx,
                                rc_bal_member_stats_t *st);
/* cache_conf.c: the RevCache* directives. One handler parses them all
 * (by name); RC_CACHE_CMDS are their entries in config.c's rc_cmds. */
const char *rc_cache_cmd(cmd_parms *cmd, void *dconf, int argc,
                         char *const argv[]);
#define RC_CACHE_CMD(name, where, help) \
    AP_INIT_TAKE_ARGV(name, rc_cache_cmd, NULL, where, help)
#define RC_CACHE_CMDS \
    RC_CACHE_CMD("RevCacheEnable", RSRC_CONF | ACCESS_CONF, \
                 "On|Off: cache responses of the routes here"), \
    RC_CACHE_CMD("RevCacheSize", RSRC_CONF, \
                 "size of the shared cache segment (K/M/G), server-wide"), \
    RC_CACHE_CMD("RevCacheMaxObjectSize", RSRC_CONF, \
                 "largest body stored (K/M/G); larger ones stream uncached"), \
    RC_CACHE_CMD("RevCacheStatusHeader", RSRC_CONF | ACCESS_CONF, \
                 "On|Off: send Cache-Status (RFC 9211)"), \
    RC_CACHE_CMD("RevCacheDefaultTTL", RSRC_CONF | ACCESS_CONF, \
                 "Off|time: lifetime of responses without freshness " \
                 "information"), \
    RC_CACHE_CMD("RevCacheLockTimeout", RSRC_CONF | ACCESS_CONF, \
                 "time a request waits for another one's fetch"), \
    RC_CACHE_CMD("RevCachePurge", RSRC_CONF | ACCESS_CONF, \
                 "On|Off: accept PURGE here (subject to Require)"), \
    RC_CACHE_CMD("RevCacheIgnoreQueryString", RSRC_CONF | ACCESS_CONF, \
                 "On|Off: leave the query string out of cache keys"), \
    RC_CACHE_CMD("RevCacheKeyHeaders", RSRC_CONF | ACCESS_CONF, \
                 "NAME...: request headers added to cache keys"), \
    RC_CACHE_CMD("RevCacheHeuristicFraction", RSRC_CONF | ACCESS_CONF, \
                 "percent of (Date - Last-Modified) used as heuristic " \
                 "lifetime (0 disables)"), \
    RC_CACHE_CMD("RevCacheStaleIfError", RSRC_CONF | ACCESS_CONF, \
                 "Off|time: default stale-if-error window"), \
    RC_CACHE_CMD("RevCacheConvertHead", RSRC_CONF | ACCESS_CONF, \
                 "On|Off: a HEAD miss fetches (and stores) the GET"), \
    RC_CACHE_CMD("RevCacheHitForMiss", RSRC_CONF | ACCESS_CONF, \
                 "Off|time: how long a URL that answered uncacheable " \
                 "skips collapsed forwarding"), \
    RC_CACHE_CMD("RevCacheQuickHandler", RSRC_CONF, \
                 "On|Off: serve fresh hits in the quick_handler hook, " \
                 "before access control (per server)")
rc_cache_dconf_t *rc_cache_dconf_create(apr_pool_t *p);
rc_cache_dconf_t *rc_cache_dconf_merge(apr_pool_t *p,
                                       const rc_cache_dconf_t *base,
                                       const rc_cache_dconf_t *add);

/* cache.c: the HTTP cache in front of the route layer. */
/** Registers the cache's own hooks (segment life cycle, background
 *  refresh, reaping); called from the module's register_hooks. */
void rc_cache_register_hooks(apr_pool_t *p);
/** Is the cache on for this request (RevCacheEnable, a segment)? */
int rc_cache_enabled(request_rec *r);
/**
 * Handles a routed request through the cache: lookups, hits, collapsed
 * misses, stores, revalidation, stale serving, invalidation and PURGE.
 * Calls rc_route_exchange()/rc_route_done() itself when it must fetch.
 * @return what the handler returns
 */
int rc_cache_handle(request_rec *r, rc_match_t *m);
/**
 * RevCacheQuickHandler: answers r from the cache in the quick_handler
 * hook when a stored entry may be served as is (fresh, or stale within
 * the client's max-stale; 304 to a client conditional). r->uri is the
 * normalised path, r->per_dir_config merged by the caller's location
 * walk, and m claimed. Anything else is DECLINED, the lookup's result
 * left in m->cache for rc_cache_handle(), which then does not look the
 * same key up a second time.
 * @return OK (served) or DECLINED; an HTTP status if a filter's init
 *         failed
 */
int rc_cache_quick(request_rec *r, rc_match_t *m);
/** For the status page: a snapshot of the shared store's counters.
 *  @return 0 when this configuration has no cache segment */
struct rc_cache_stats_t;
int rc_cache_status_stats(struct rc_cache_stats_t *st);

/* status.c: the revcache-status handler (HTML, JSON, Prometheus). */
void rc_status_register_hooks(apr_pool_t *p);

#endif /* MOD_REVCACHE_H */
