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

/**
 * The field names listed by a message's Connection fields (they are
 * hop-by-hop for that message), or NULL when there are none.
 */
apr_array_header_t *rc_hdr_connection_tokens(apr_pool_t *p,
                                             const apr_table_t *headers);

/**
 * May a field travel to the next hop? Not when it is one of the fixed
 * hop-by-hop names, nor when the message's Connection named it (tokens
 * from rc_hdr_connection_tokens(), may be NULL). One pass over a
 * message with this costs far less than unsetting every name.
 */
int rc_hdr_forwardable(const char *name, const apr_array_header_t *tokens);

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


#endif /* RC_HEADERS_H */
