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
#include "headers.h"

/** Log tags: RCLOGNO(00042) gives "RC00042: ". Each number is used once. */
#define RCLOGNO(n) "RC" #n ": "

#define RC_HANDLER        "revcache"

/* Defaults, applied late by the accessors in config.c. */
#define RC_DEF_CONNECT_TIMEOUT  apr_time_from_sec(5)
#define RC_DEF_IDLE_TTL         apr_time_from_sec(30)
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
} rc_worker_t;

/** A route: a path prefix and where it goes. */
typedef struct {
    const char   *prefix;      /**< decoded path prefix, "/app/" */
    apr_size_t    prefix_len;
    int           exclude;     /**< "RevProxyPass /x/ !" */
    rc_worker_t  *worker;      /**< NULL when excluded */
} rc_route_t;

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
} rc_server_conf_t;

/** Directory (<Location>) configuration. */
typedef struct {
    rc_route_t          *route;         /**< RevProxyPass in <Location> */
    apr_array_header_t  *reverse;       /**< rc_reverse_map_t */
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
/** Fills each worker's unset options from its server's config. */
void rc_config_resolve_workers(void);
int rc_conf_preserve_host(const rc_server_conf_t *sc);
int rc_conf_forwarded(const rc_server_conf_t *sc);

/* proxy.c */
/**
 * Forwards r to the worker's backend and streams the answer back.
 * @param backend_path the raw path + query to request from the backend
 * @return an HTTP status for the handler: OK once a response was sent,
 *         else HTTP_BAD_GATEWAY, HTTP_GATEWAY_TIME_OUT, a 4xx for a bad
 *         request body
 */
int rc_proxy_forward(request_rec *r, const rc_worker_t *w,
                     rc_backend_t *be, const char *backend_path);

#endif /* MOD_REVCACHE_H */
