/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/**
 * @file headers.h
 * @brief Header policy of a proxy: what is hop-by-hop and must not be
 *        forwarded, and rewriting backend URLs in response headers.
 *
 * APR only: operates on apr_table_t, so it is unit-tested without httpd.
 */
#ifndef RC_HEADERS_H
#define RC_HEADERS_H

#include <apr_pools.h>
#include <apr_tables.h>

/**
 * Removes hop-by-hop fields from a message's headers: Connection and
 * every field it names, Keep-Alive, TE, Trailer, Transfer-Encoding,
 * Upgrade, Proxy-Connection, Proxy-Authorization, Proxy-Authenticate.
 * Connection may name any field; names that are end-to-end essentials
 * (Host, Content-Length framing is handled separately) are removed too,
 * as RFC 9110 section 7.6.1 asks.
 */
void rc_hdr_strip_hop_by_hop(apr_table_t *headers);

/**
 * Is the field name one of the fixed hop-by-hop names?
 * @return non-zero when it is
 */
int rc_hdr_is_hop_by_hop(const char *name);

/** One RevProxyPassReverse mapping. */
typedef struct {
    const char *backend;   /**< "http://127.0.0.1:8081/app/" as configured */
    const char *front;     /**< path prefix on the front, "/app/" */
} rc_reverse_map_t;

/**
 * Rewrites a Location-like value that points at a mapped backend.
 *
 * Example: with backend "http://127.0.0.1:8081/b/" and front "/app/",
 * "http://127.0.0.1:8081/b/x?y" becomes front_base + "/app/x?y", where
 * front_base is "http://www.example.com" (scheme and authority of the
 * client's view). Scheme and host compare case-insensitively; the first
 * matching map wins. A value that matches no map is returned as is.
 *
 * @return the rewritten value (allocated in p) or value itself
 */
const char *rc_hdr_reverse_map(apr_pool_t *p, const char *value,
                               const rc_reverse_map_t *maps, int nmaps,
                               const char *front_base);

/**
 * Appends a value to a comma-separated list field (X-Forwarded-For, Via):
 * sets it when absent, else joins "old, value".
 */
void rc_hdr_append_list(apr_pool_t *p, apr_table_t *headers,
                        const char *name, const char *value);

#endif /* RC_HEADERS_H */
