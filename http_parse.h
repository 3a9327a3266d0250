/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/**
 * @file http_parse.h
 * @brief Strict parsing of what a backend sends: the HTTP/1.x response
 *        head, the body framing it implies, and chunked transfer coding.
 *
 * APR only, no I/O: bytes in, structures out. The backend client
 * (backend.c) feeds it and the fuzzer (fuzz/) attacks it.
 */
#ifndef RC_HTTP_PARSE_H
#define RC_HTTP_PARSE_H

#include <apr_pools.h>
#include <apr_tables.h>

/** Limits a response head must respect, else it is refused (502). */
typedef struct {
    apr_size_t max_head_bytes;     /**< status line + all header lines */
    int        max_fields;         /**< header lines */
} rc_http_limits_t;

/** A parsed response head. Strings live in the pool given to the parser. */
typedef struct {
    int          version;   /**< 10 or 11 (HTTP/1.0, HTTP/1.1) */
    int          status;    /**< 100..599 */
    const char  *reason;    /**< reason phrase, may be "" */
    apr_table_t *headers;   /**< field names as received, values trimmed */
    /* Framing fields, noted while parsing (for rc_http_body_framing). */
    const char  *content_length;     /**< last Content-Length value */
    const char  *transfer_encoding;  /**< last Transfer-Encoding value */
    int          te_fields;          /**< how many Transfer-Encoding */
    int          cl_conflict;        /**< differing Content-Length */
} rc_resp_head_t;

/** How a response body is delimited (RFC 9112 section 6.3). */
typedef enum {
    RC_BODY_NONE,       /**< HEAD, 1xx, 204, 304 */
    RC_BODY_LENGTH,     /**< Content-Length bytes */
    RC_BODY_CHUNKED,    /**< Transfer-Encoding: chunked */
    RC_BODY_CLOSE       /**< until the backend closes the connection */
} rc_body_kind_e;

/**
 * Finds the end of a response head.
 * @return the offset just past the empty line that ends the head, or 0
 *         when buf does not hold a whole head yet. Lines may end in CRLF
 *         or a bare LF (RFC 9112 section 2.2 lets a recipient accept it).
 */
apr_size_t rc_http_head_end(const char *buf, apr_size_t len);

/**
 * Parses a complete response head (buf[0..len) as delimited by
 * rc_http_head_end()). Refuses: a bad status line or version, a status
 * outside 100..599, obs-fold continuation lines, field names with bad
 * characters, control characters (other than HTAB) in values, more than
 * limits->max_fields fields, a head over limits->max_head_bytes.
 * @param err set to a short static reason on failure
 * @return APR_SUCCESS or APR_EGENERAL
 */
apr_status_t rc_http_parse_head(apr_pool_t *p, const char *buf,
                                apr_size_t len,
                                const rc_http_limits_t *limits,
                                rc_resp_head_t *head, const char **err);

/**
 * Decides the framing of a response body.
 * @param head_request non-zero when the request was HEAD
 * @param length set to the Content-Length for RC_BODY_LENGTH
 * @param err set to a short static reason on failure
 * @return APR_SUCCESS, or APR_EGENERAL for a message that must not be
 *         trusted: Transfer-Encoding other than exactly "chunked", both
 *         Transfer-Encoding and Content-Length, conflicting or malformed
 *         Content-Length values.
 */
apr_status_t rc_http_body_framing(const rc_resp_head_t *head,
                                  int head_request, rc_body_kind_e *kind,
                                  apr_off_t *length, const char **err);

/**
 * Parses a Content-Length field value (possibly a list of repeated
 * identical values, "42, 42"). Digits only, no sign, no overflow.
 * @return 0 on success, -1 when the value is not a valid length
 */
int rc_http_parse_length(const char *value, apr_off_t *length);

/** Chunked decoder state; zero it (or call rc_chunk_init) to start. */
typedef struct {
    int        state;        /**< private */
    apr_off_t  remaining;    /**< bytes left in the current chunk */
    apr_size_t line_bytes;   /**< bytes of the current size/trailer line */
    apr_size_t trailer_bytes;/**< bytes of trailer section so far */
    int        digits;       /**< hex digits seen on the size line */
} rc_chunk_t;

/** Starts a new chunked body. */
void rc_chunk_init(rc_chunk_t *ch);

/** Non-zero once the last chunk and the trailer section are consumed. */
int rc_chunk_done(const rc_chunk_t *ch);

/**
 * Decodes chunked coding incrementally, without copying.
 *
 * Consumes bytes from in[0..in_len) and stops at the first run of body
 * data (returned in place through data/data_len), at the end of the
 * input, or at the end of the body. The caller loops, advancing in by
 * *consumed each time, until the input is used up or rc_chunk_done().
 *
 * Example: "5\r\nhello\r\n0\r\n\r\n" gives, over successive calls,
 * data "hello" (consumed 8), then data_len 0 with done (consumed 7).
 *
 * Chunk extensions are skipped; trailer fields are discarded. Refuses
 * bad hex, sizes over 2^62, a missing CRLF after data, and size lines or
 * trailer sections longer than 8 KiB.
 * @return APR_SUCCESS or APR_EGENERAL (err set)
 */
apr_status_t rc_chunk_decode(rc_chunk_t *ch, const char *in,
                             apr_size_t in_len, apr_size_t *consumed,
                             const char **data, apr_size_t *data_len,
                             const char **err);

#endif /* RC_HTTP_PARSE_H */
