/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/**
 * @file backend.h
 * @brief The HTTP/1.1 client side of the proxy: a per-process pool of
 *        keep-alive connections to one backend, and the reading of
 *        responses from them.
 *
 * APR only (httpd-free), so the unit tests drive it against a local
 * socket without a server.
 */
#ifndef RC_BACKEND_H
#define RC_BACKEND_H

#include <apr_network_io.h>
#include <apr_thread_mutex.h>
#include <sys/uio.h>

#include "http_parse.h"

/** Options of one backend target; copied at creation. */
typedef struct {
    const char          *host;            /**< name or address */
    apr_port_t           port;
    apr_interval_time_t  connect_timeout;
    apr_interval_time_t  io_timeout;      /**< every read and write */
    int                  keepalive;       /**< 0: one request per conn */
    int                  max_idle;        /**< idle connections kept */
    apr_interval_time_t  idle_ttl;        /**< how long one may idle */
    apr_size_t           buffer_size;     /**< read buffer per conn */
} rc_backend_opts_t;

/** A backend target with its idle-connection pool (one per process). */
typedef struct rc_backend_t rc_backend_t;

/** One connection to a backend, owned by one request at a time. */
typedef struct rc_conn_t rc_conn_t;

/** Counters of one backend in this process (read without locking). */
typedef struct {
    apr_uint64_t connects;      /**< new connections opened */
    apr_uint64_t reuses;        /**< requests sent on a pooled conn */
    apr_uint64_t stale_closed;  /**< pooled conns found closed by peer */
} rc_backend_stats_t;

/**
 * Creates a backend in pool p (the child's pool: the pool lives as long
 * as the process). Resolves the host now.
 * @param threaded non-zero when several threads will share it
 */
apr_status_t rc_backend_create(rc_backend_t **be,
                               const rc_backend_opts_t *opts, int threaded,
                               apr_pool_t *p);

/** Flags of rc_backend_acquire(). */
#define RC_ACQ_FRESH      1   /**< skip the pool: connect anew */
#define RC_ACQ_TRUST_IDLE 2   /**< a pooled connection idle for under a
                                   second is used without the liveness
                                   check (one syscall less): for requests
                                   the caller may retry on failure */

/**
 * Takes a connection: the most recently used idle one that is still
 * open (checked without blocking, see RC_ACQ_TRUST_IDLE), or a new one.
 * @param flags RC_ACQ_* (0 for the default)
 * @param reused set to non-zero when the connection came from the pool
 * @return APR_SUCCESS, or the connect error (APR_TIMEUP on timeout)
 */
apr_status_t rc_backend_acquire(rc_backend_t *be, int flags,
                                rc_conn_t **conn, int *reused);

/**
 * Gives a connection back. It returns to the pool only when reusable is
 * set, keep-alive is on, the last response was read to its end and the
 * pool has room; otherwise it is closed.
 */
void rc_backend_release(rc_conn_t *conn, int reusable);

/** Returns the counters of this backend in this process. */
void rc_backend_stats(rc_backend_t *be, rc_backend_stats_t *st);

/** The backend a connection belongs to. */
rc_backend_t *rc_conn_backend(rc_conn_t *conn);

/** Writes all of the given buffers, with the backend's I/O timeout. */
apr_status_t rc_conn_writev(rc_conn_t *conn, const struct iovec *vec,
                            int nvec);

/**
 * Reads a response head (skipping nothing: interim 1xx heads are
 * returned like final ones; the caller loops). Strings go to pool p.
 * @param got_bytes set to non-zero once any byte of the response came
 *        (so a failure before that can be retried on a fresh connection)
 * @param err a short reason when the head is malformed (APR_EGENERAL)
 * @return APR_SUCCESS; APR_EOF when the backend closed first;
 *         APR_TIMEUP on timeout; APR_EGENERAL on a malformed head; other
 *         socket errors as they come
 */
apr_status_t rc_conn_read_head(rc_conn_t *conn, apr_pool_t *p,
                               const rc_http_limits_t *limits,
                               rc_resp_head_t *head, int *got_bytes,
                               const char **err);

/**
 * Prepares to read the body of the response whose head was just read.
 */
void rc_conn_body_start(rc_conn_t *conn, rc_body_kind_e kind,
                        apr_off_t length);

/**
 * Reads the next piece of the body, in place: *data points into the
 * connection's buffer and stays valid until the next call.
 * @param block zero to return APR_EAGAIN instead of waiting for the
 *        backend (the caller flushes what it has, then calls again with
 *        block set)
 * @return APR_SUCCESS with data (len > 0); APR_EOF at the complete end
 *         of the body (len 0); APR_EAGAIN; APR_TIMEUP; APR_EGENERAL with
 *         err for a malformed chunked body; APR_INCOMPLETE when the
 *         backend closed before the end (a truncated body).
 */
apr_status_t rc_conn_read_body(rc_conn_t *conn, int block,
                               const char **data, apr_size_t *len,
                               const char **err);

/** Non-zero once the current response body was read to its end. */
int rc_conn_body_done(const rc_conn_t *conn);

#endif /* RC_BACKEND_H */
