/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * backend.c - connections to one backend: the per-process keep-alive
 * pool, connecting with a timeout, and reading responses off the wire.
 *
 * Owns: rc_backend_t (one per configured worker per process) and its
 * idle stack, rc_conn_t (socket + read buffer). Does not own: what is
 * sent (proxy.c builds the request) or how it is parsed (http_parse.c).
 *
 * Pools and lifetimes: a backend lives in the child's pool. Each
 * connection has its own unmanaged pool, created when it connects and
 * destroyed when it closes, so nothing grows with the number of
 * requests a connection carries. Reads go into a buffer allocated once
 * per connection; body data is handed out in place.
 *
 * Locking: be->mutex (threaded MPMs only) guards the idle stack and
 * nothing else; it is never held across I/O. A connection is used by one
 * request at a time, without locks. Counters are atomics.
 *
 * Sockets: once connected, the fd is blocking with the I/O timeout in
 * SO_RCVTIMEO / SO_SNDTIMEO, so a read that has to wait for the backend
 * sleeps in read() itself: one syscall, where a non-blocking fd costs
 * read (EAGAIN) + poll + read on nearly every response. EAGAIN from a
 * blocking call is the timeout. Reads that must not wait (the "would
 * block" signal the streaming code uses to flush, the liveness peek)
 * pass MSG_DONTWAIT.
 */

#include <apr_strings.h>
#include <apr_atomic.h>
#include <sys/time.h>
#include <apr_portable.h>

#include <errno.h>
#include <unistd.h>
#include <sys/socket.h>

#include "backend.h"

struct rc_backend_t {
    rc_backend_opts_t    opts;
    apr_pool_t          *pool;
    apr_sockaddr_t      *addr;     /* resolved once; may hold a list */
    apr_thread_mutex_t  *mutex;    /* NULL when not threaded */
    rc_conn_t          **idle;     /* stack: idle[nidle - 1] is warmest */
    int                  nidle;
    rc_backend_stats_t   stats;
};

struct rc_conn_t {
    rc_backend_t   *be;
    apr_pool_t     *pool;          /* owns sock and buf */
    apr_socket_t   *sock;
    int             fd;
    char           *buf;
    apr_size_t      cap;
    apr_size_t      pos;           /* unread bytes are buf[pos..end) */
    apr_size_t      end;
    apr_time_t      idle_since;
    rc_body_kind_e  kind;
    apr_off_t       remaining;     /* RC_BODY_LENGTH */
    rc_chunk_t      chunk;         /* RC_BODY_CHUNKED */
    int             body_done;
    int             peer_closed;
};

static void lock(rc_backend_t *be)
{
    if (be->mutex) {
        apr_thread_mutex_lock(be->mutex);
    }
}

static void unlock(rc_backend_t *be)
{
    if (be->mutex) {
        apr_thread_mutex_unlock(be->mutex);
    }
}

static void conn_close(rc_conn_t *conn)
{
    apr_socket_close(conn->sock);
    apr_pool_destroy(conn->pool);
}

/* Closes the idle connections when the process's pool goes away. */
static apr_status_t backend_cleanup(void *data)
{
    rc_backend_t *be = data;

    while (be->nidle > 0) {
        conn_close(be->idle[--be->nidle]);
    }
    return APR_SUCCESS;
}

apr_status_t rc_backend_create(rc_backend_t **out,
                               const rc_backend_opts_t *opts, int threaded,
                               apr_pool_t *p)
{
    rc_backend_t *be = apr_pcalloc(p, sizeof(*be));
    apr_status_t rv;

    be->opts = *opts;
    be->pool = p;
    if (be->opts.max_idle < 0) {
        be->opts.max_idle = 0;
    }
    if (be->opts.buffer_size < 4096) {
        be->opts.buffer_size = 4096;
    }
    rv = apr_sockaddr_info_get(&be->addr, opts->host, APR_UNSPEC,
                               opts->port, 0, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (threaded) {
        rv = apr_thread_mutex_create(&be->mutex, APR_THREAD_MUTEX_DEFAULT,
                                     p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    be->idle = apr_pcalloc(p, sizeof(rc_conn_t *)
                              * (be->opts.max_idle ? be->opts.max_idle : 1));
    apr_pool_cleanup_register(p, be, backend_cleanup,
                              apr_pool_cleanup_null);
    *out = be;
    return APR_SUCCESS;
}

/* Blocking fd; the kernel enforces @timeout on each read and write. */
static apr_status_t conn_blocking(apr_socket_t *sock, int fd,
                                  apr_interval_time_t timeout)
{
    struct timeval tv;

    apr_socket_timeout_set(sock, -1);       /* clears O_NONBLOCK */
    if (timeout <= 0) {
        return APR_SUCCESS;
    }
    tv.tv_sec = (time_t)apr_time_sec(timeout);
    tv.tv_usec = (suseconds_t)apr_time_usec(timeout);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0
        || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
        return errno;
    }
    return APR_SUCCESS;
}

static apr_status_t conn_open(rc_backend_t *be, rc_conn_t **out)
{
    apr_pool_t *cp;
    rc_conn_t *conn;
    apr_sockaddr_t *sa;
    apr_status_t rv = APR_EGENERAL;

    /* Unmanaged: connections come and go on many threads, and a child
     * pool of the shared process pool would need its lock each time. */
    rv = apr_pool_create_unmanaged_ex(&cp, NULL, NULL);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    conn = apr_pcalloc(cp, sizeof(*conn));
    conn->be = be;
    conn->pool = cp;
    for (sa = be->addr; sa; sa = sa->next) {
        rv = apr_socket_create(&conn->sock, sa->family, SOCK_STREAM,
                               APR_PROTO_TCP, cp);
        if (rv != APR_SUCCESS) {
            continue;
        }
        apr_socket_opt_set(conn->sock, APR_TCP_NODELAY, 1);
        apr_socket_timeout_set(conn->sock, be->opts.connect_timeout);
        rv = apr_socket_connect(conn->sock, sa);
        if (rv == APR_SUCCESS) {
            break;
        }
        apr_socket_close(conn->sock);
    }
    if (rv != APR_SUCCESS) {
        apr_pool_destroy(cp);
        return rv;
    }
    apr_os_sock_get(&conn->fd, conn->sock);
    rv = conn_blocking(conn->sock, conn->fd, be->opts.io_timeout);
    if (rv != APR_SUCCESS) {
        apr_pool_destroy(cp);
        return rv;
    }
    conn->cap = be->opts.buffer_size;
    conn->buf = apr_palloc(cp, conn->cap);
    conn->body_done = 1;
    apr_atomic_inc64(&be->stats.connects);
    *out = conn;
    return APR_SUCCESS;
}

/* Is an idle connection still open? The backend may have closed it (or,
 * wrongly, sent bytes nobody asked for): either way it is unusable. */
static int conn_alive(rc_conn_t *conn)
{
    char c;
    ssize_t n;

    do {
        n = recv(conn->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

apr_status_t rc_backend_acquire(rc_backend_t *be, int flags,
                                rc_conn_t **conn, int *reused)
{
    while (!(flags & RC_ACQ_FRESH)) {
        rc_conn_t *c = NULL;
        apr_time_t now = apr_time_now();

        lock(be);
        /* Oldest entries sit at the bottom: drop those past their TTL. */
        while (be->nidle > 0 && be->opts.idle_ttl > 0
               && now - be->idle[0]->idle_since > be->opts.idle_ttl) {
            c = be->idle[0];
            memmove(be->idle, be->idle + 1,
                    (be->nidle - 1) * sizeof(rc_conn_t *));
            be->nidle--;
            unlock(be);
            conn_close(c);
            lock(be);
        }
        c = be->nidle > 0 ? be->idle[--be->nidle] : NULL;
        unlock(be);
        if (!c) {
            break;
        }
        /* A backend closes idle connections after seconds, not
         * milliseconds; a caller that can retry skips the check for a
         * connection that was just in use. */
        if (((flags & RC_ACQ_TRUST_IDLE)
             && now - c->idle_since < apr_time_from_sec(1))
            || conn_alive(c)) {
            apr_atomic_inc64(&be->stats.reuses);
            *conn = c;
            *reused = 1;
            return APR_SUCCESS;
        }
        apr_atomic_inc64(&be->stats.stale_closed);
        conn_close(c);
    }
    *reused = 0;
    return conn_open(be, conn);
}

void rc_backend_release(rc_conn_t *conn, int reusable)
{
    rc_backend_t *be = conn->be;

    /* Leftover bytes after the body mean the backend said more than it
     * framed: the connection cannot be trusted for another request. */
    if (reusable && be->opts.keepalive && conn->body_done
        && !conn->peer_closed && conn->pos == conn->end) {
        conn->pos = conn->end = 0;
        conn->idle_since = apr_time_now();
        lock(be);
        if (be->nidle < be->opts.max_idle) {
            be->idle[be->nidle++] = conn;
            conn = NULL;
        }
        unlock(be);
    }
    if (conn) {
        conn_close(conn);
    }
}

void rc_backend_stats(rc_backend_t *be, rc_backend_stats_t *st)
{
    st->connects = apr_atomic_read64(&be->stats.connects);
    st->reuses = apr_atomic_read64(&be->stats.reuses);
    st->stale_closed = apr_atomic_read64(&be->stats.stale_closed);
}

rc_backend_t *rc_conn_backend(rc_conn_t *conn)
{
    return conn->be;
}

apr_status_t rc_conn_writev(rc_conn_t *conn, const struct iovec *vec_in,
                            int nvec)
{
    struct iovec vec[16];
    struct msghdr msg;
    int i = 0;

    if (nvec > 16) {
        return APR_EINVAL;
    }
    memcpy(vec, vec_in, nvec * sizeof(*vec));
    memset(&msg, 0, sizeof(msg));
    while (i < nvec) {
        ssize_t n;

        msg.msg_iov = vec + i;
        msg.msg_iovlen = nvec - i;
        /* MSG_NOSIGNAL: a backend that went away is an error to report,
         * not a SIGPIPE. */
        n = sendmsg(conn->fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return APR_TIMEUP;          /* SO_SNDTIMEO */
            }
            return errno;
        }
        while (i < nvec && (size_t)n >= vec[i].iov_len) {
            n -= vec[i].iov_len;
            i++;
        }
        if (i < nvec) {
            vec[i].iov_base = (char *)vec[i].iov_base + n;
            vec[i].iov_len -= n;
        }
    }
    return APR_SUCCESS;
}

/* Reads more bytes into the buffer (compacting first). */
static apr_status_t conn_fill(rc_conn_t *conn, int block)
{
    if (conn->pos == conn->end) {
        conn->pos = conn->end = 0;
    }
    else if (conn->end == conn->cap && conn->pos > 0) {
        memmove(conn->buf, conn->buf + conn->pos, conn->end - conn->pos);
        conn->end -= conn->pos;
        conn->pos = 0;
    }
    if (conn->end == conn->cap) {
        return APR_ENOSPC;
    }
    for (;;) {
        ssize_t n = recv(conn->fd, conn->buf + conn->end,
                         conn->cap - conn->end, block ? 0 : MSG_DONTWAIT);
        if (n > 0) {
            conn->end += n;
            return APR_SUCCESS;
        }
        if (n == 0) {
            conn->peer_closed = 1;
            return APR_EOF;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return block ? APR_TIMEUP : APR_EAGAIN;    /* SO_RCVTIMEO */
        }
        return errno;
    }
}

apr_status_t rc_conn_read_head(rc_conn_t *conn, apr_pool_t *p,
                               const rc_http_limits_t *limits,
                               rc_resp_head_t *head, int *got_bytes,
                               const char **err)
{
    apr_size_t hend;
    apr_status_t rv;

    /* From here until a body is started and read, the connection is in
     * the middle of a response: a failure below must not let release()
     * pool it (a late answer would be read by the next request). */
    conn->body_done = 0;
    *got_bytes = conn->end > conn->pos;
    for (;;) {
        hend = rc_http_head_end(conn->buf + conn->pos,
                                conn->end - conn->pos);
        if (hend) {
            break;
        }
        if (conn->end - conn->pos > limits->max_head_bytes) {
            *err = "response head too large";
            return APR_EGENERAL;
        }
        rv = conn_fill(conn, 1);
        if (rv == APR_ENOSPC) {
            *err = "response head too large";
            return APR_EGENERAL;
        }
        if (rv == APR_EOF && conn->end > conn->pos) {
            *err = "backend closed the connection inside the head";
            return APR_EGENERAL;
        }
        if (rv != APR_SUCCESS) {
            return rv;
        }
        *got_bytes = 1;
    }
    rv = rc_http_parse_head(p, conn->buf + conn->pos, hend, limits, head,
                            err);
    conn->pos += hend;
    return rv;
}

void rc_conn_body_start(rc_conn_t *conn, rc_body_kind_e kind,
                        apr_off_t length)
{
    conn->kind = kind;
    conn->remaining = length;
    conn->body_done = kind == RC_BODY_NONE;
    rc_chunk_init(&conn->chunk);
}

int rc_conn_body_done(const rc_conn_t *conn)
{
    return conn->body_done;
}

apr_status_t rc_conn_read_body(rc_conn_t *conn, int block,
                               const char **data, apr_size_t *len,
                               const char **err)
{
    apr_status_t rv;

    *len = 0;
    for (;;) {
        apr_size_t avail = conn->end - conn->pos;

        if (conn->body_done) {
            return APR_EOF;
        }
        if (avail > 0) {
            const char *at = conn->buf + conn->pos;

            switch (conn->kind) {
            case RC_BODY_LENGTH:
                if ((apr_off_t)avail > conn->remaining) {
                    avail = (apr_size_t)conn->remaining;
                }
                conn->remaining -= avail;
                conn->body_done = conn->remaining == 0;
                conn->pos += avail;
                *data = at;
                *len = avail;
                return APR_SUCCESS;
            case RC_BODY_CHUNKED: {
                apr_size_t used = 0;

                rv = rc_chunk_decode(&conn->chunk, at, avail, &used, data,
                                     len, err);
                if (rv != APR_SUCCESS) {
                    return rv;
                }
                conn->pos += used;
                conn->body_done = rc_chunk_done(&conn->chunk);
                if (*len) {
                    return APR_SUCCESS;
                }
                continue;
            }
            default:   /* RC_BODY_CLOSE */
                conn->pos += avail;
                *data = at;
                *len = avail;
                return APR_SUCCESS;
            }
        }
        rv = conn_fill(conn, block);
        if (rv == APR_EOF) {
            if (conn->kind == RC_BODY_CLOSE) {
                conn->body_done = 1;
                return APR_EOF;
            }
            return APR_INCOMPLETE;
        }
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
}
