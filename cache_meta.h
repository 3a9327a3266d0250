/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/**
 * @file cache_meta.h
 * @brief mod_revcache: the metadata blob of a cached entry (APR only).
 *
 * A stored entry carries one opaque "meta" blob (cache_mem.h) beside its
 * body.  This codec turns what the glue needs to serve a hit (status,
 * status line, rc_fresh_t, the stored header fields in order) or a Vary
 * record (the spec of a key's variants) into that blob and back.  The
 * format is compact (most blobs of an ordinary response are ~130 bytes)
 * and decoding is strict: anything that is not exactly what the encoder
 * writes is refused.  The format is described at the top of
 * cache_meta.c; changing it must bump RC_SEG_VERSION (cache_mem_int.h).
 */

#ifndef RC_CACHE_META_H
#define RC_CACHE_META_H

#include "apr.h"
#include "apr_pools.h"
#include "apr_tables.h"

#include "cache_rules.h"      /* rc_fresh_t */

#ifdef __cplusplus
extern "C" {
#endif

/** @name Blob kinds (rc_meta_t.kind).
 * @{ */
#define RC_META_RESPONSE  1   /**< a stored response */
#define RC_META_VARY      2   /**< a key's Vary record */
#define RC_META_PASS      3   /**< a hit-for-miss marker (no body) */
/** @} */

/** The most header fields a blob may hold. */
#define RC_META_MAX_FIELDS 1000

/** A decoded blob.  Strings live in the pool given to rc_meta_decode(). */
typedef struct rc_meta_t {
    int          kind;         /**< RC_META_RESPONSE, _VARY or _PASS */
    int          status;       /**< RESPONSE: 200..999 */
    const char  *status_line;  /**< RESPONSE: NULL = httpd's own */
    rc_fresh_t   fresh;        /**< RESPONSE */
    apr_table_t *headers;      /**< RESPONSE: the stored fields, in order */
    const char  *vary_spec;    /**< VARY */
} rc_meta_t;

/**
 * Encode a response: @a status, @a status_line (NULL or "" for none),
 * freshness @a f and the fields of @a headers in table order.  Never
 * fails; rc_meta_decode() gives back exactly these values as long as
 * @a status is in 200..999 and there are at most RC_META_MAX_FIELDS
 * fields (a backend response has at most RC_DEF_MAX_FIELDS, 200).
 * @return the blob (in @a p), its length in @a *len
 */
const void *rc_meta_encode_response(apr_pool_t *p, int status,
                                    const char *status_line,
                                    const rc_fresh_t *f,
                                    const apr_table_t *headers,
                                    apr_size_t *len);

/** Encode a Vary record holding @a spec.  @return the blob, @a *len */
const void *rc_meta_encode_vary(apr_pool_t *p, const char *spec,
                                apr_size_t *len);

/** Encode a hit-for-miss marker (one byte).  @return the blob, @a *len */
const void *rc_meta_encode_pass(apr_pool_t *p, apr_size_t *len);

/**
 * Decode @a len bytes at @a blob into @a m (strings and the header table
 * allocated in @a p; @a blob is not referenced afterwards).
 * @return the kind (RC_META_RESPONSE, RC_META_VARY, RC_META_PASS), or 0
 *         when the blob is not exactly what rc_meta_encode_* writes for
 *         what it holds (truncated, trailing bytes, unknown codes,
 *         out-of-range numbers, a NUL in a string, a response status
 *         outside 200..999, any non-canonical form): an accepted blob
 *         re-encodes to itself.
 */
int rc_meta_decode(apr_pool_t *p, const void *blob, apr_size_t len,
                   rc_meta_t *m);

/**
 * Parse an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") of @a n bytes
 * that formats back to exactly the same bytes; seconds since the epoch
 * in @a *secs.  @return 1, or 0 (any other form, before 1970, a wrong
 * weekday, a field out of range).  Exposed for the unit tests.
 */
int rc_meta_date_parse(const char *s, apr_size_t n, apr_int64_t *secs);

#ifdef __cplusplus
}
#endif

#endif /* RC_CACHE_META_H */
