/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * test_backend.c -- unit tests of backend.c against a scripted origin
 * running in threads of this process on 127.0.0.1 (ephemeral port):
 * connect errors, Content-Length / chunked / close-delimited bodies,
 * interim 1xx heads, keep-alive reuse, stale idle connections, the
 * reasons a released connection is closed instead of pooled (not
 * reusable, keep-alive off, body not read, bytes left over, peer
 * closed, pool full), idle TTL, read timeouts, truncated bodies, and
 * non-blocking reads. Assertions use both the backend's counters and
 * what the origin saw (connections accepted, requests read).
 *
 * The origin: an accept thread, and one handler thread per connection.
 * A handler reads a request head, takes the next step of the script
 * (shared by all connections, in order), sends its bytes, optionally
 * pauses (cut short when the client goes away) and sends more, and
 * optionally closes. The whole binary runs in about two seconds.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "backend.h"

#include "rc_unit.h"

static const rc_http_limits_t limits = { 16384, 100 };

#define MS(x) ((apr_interval_time_t)(x) * 1000)

/* ------------------------------------------------------------------ */
/* The scripted origin.                                                 */

typedef struct {
    const char *send;     /* sent once a request head is read; NULL: none */
    int         pause_ms; /* then wait (cut short if the client closes) */
    const char *send2;    /* then send this; NULL: nothing */
    int         close;    /* then close the connection */
} step_t;

#define MAX_HANDLERS 32

typedef struct {
    int             lfd;
    apr_port_t      port;
    pthread_t       acceptor;
    pthread_mutex_t mu;
    const step_t   *steps;
    int             nsteps;
    int             next_step;   /* guarded by mu, as are the counters */
    int             accepted;
    int             requests;
    int             closed;      /* connections the origin closed first */
    pthread_t       handlers[MAX_HANDLERS];
    int             nhandlers;
    volatile int    stop;
} origin_t;

typedef struct {
    origin_t *o;
    int       fd;
} handler_arg_t;

static int origin_get(origin_t *o, const int *field)
{
    int v;

    pthread_mutex_lock(&o->mu);
    v = *field;
    pthread_mutex_unlock(&o->mu);
    return v;
}

/* Waits up to 2 s for *field to reach want. */
static int origin_wait(origin_t *o, const int *field, int want)
{
    int i;

    for (i = 0; i < 1000; i++) {
        if (origin_get(o, field) >= want) {
            return 1;
        }
        usleep(2000);
    }
    return 0;
}

static int send_all(int fd, const char *s)
{
    size_t len = strlen(s), off = 0;

    while (off < len) {
        ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        off += (size_t)n;
    }
    return 0;
}

/* Reads up to the end of a request head; 0 on EOF, error or 3 s idle. */
static int read_request(int fd)
{
    char buf[4096];
    size_t have = 0;

    for (;;) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        ssize_t n;

        if (poll(&pfd, 1, 3000) <= 0) {
            return 0;
        }
        n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return 0;
        }
        have += (size_t)n;
        buf[have] = '\0';
        if (strstr(buf, "\r\n\r\n")) {
            return 1;
        }
        if (have == sizeof(buf) - 1) {
            return 0;
        }
    }
}

/* Sleeps ms, or less when the client closes (or sends: it should not). */
static int pause_unless_closed(int fd, int ms)
{
    struct pollfd pfd = { fd, POLLIN, 0 };

    return poll(&pfd, 1, ms) == 0;
}

static void *handler_main(void *data)
{
    handler_arg_t *ha = data;
    origin_t *o = ha->o;
    int fd = ha->fd;

    free(ha);
    while (read_request(fd)) {
        const step_t *st;

        pthread_mutex_lock(&o->mu);
        o->requests++;
        st = o->next_step < o->nsteps ? &o->steps[o->next_step++] : NULL;
        pthread_mutex_unlock(&o->mu);
        if (!st) {
            break;
        }
        if (st->send && send_all(fd, st->send)) {
            break;
        }
        if (st->pause_ms && !pause_unless_closed(fd, st->pause_ms)) {
            break;
        }
        if (st->send2 && send_all(fd, st->send2)) {
            break;
        }
        if (st->close) {
            close(fd);
            fd = -1;
            pthread_mutex_lock(&o->mu);
            o->closed++;
            pthread_mutex_unlock(&o->mu);
            break;
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    return NULL;
}

static void *acceptor_main(void *data)
{
    origin_t *o = data;

    while (!o->stop) {
        struct pollfd pfd = { o->lfd, POLLIN, 0 };
        handler_arg_t *ha;
        int fd;

        if (poll(&pfd, 1, 20) <= 0) {
            continue;
        }
        fd = accept(o->lfd, NULL, NULL);
        if (fd < 0) {
            continue;
        }
        ha = malloc(sizeof(*ha));
        ha->o = o;
        ha->fd = fd;
        pthread_mutex_lock(&o->mu);
        o->accepted++;
        if (o->nhandlers < MAX_HANDLERS
            && pthread_create(&o->handlers[o->nhandlers], NULL,
                              handler_main, ha) == 0) {
            o->nhandlers++;
            ha = NULL;
        }
        pthread_mutex_unlock(&o->mu);
        if (ha) {
            close(fd);
            free(ha);
        }
    }
    return NULL;
}

/* Binds 127.0.0.1:0; returns the socket and sets *port. */
static int listen_any(apr_port_t *port)
{
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

static origin_t *origin_start(const step_t *steps, int nsteps)
{
    origin_t *o = calloc(1, sizeof(*o));

    o->lfd = listen_any(&o->port);
    assert_int_equal(listen(o->lfd, 16), 0);
    o->steps = steps;
    o->nsteps = nsteps;
    pthread_mutex_init(&o->mu, NULL);
    assert_int_equal(pthread_create(&o->acceptor, NULL, acceptor_main, o),
                     0);
    return o;
}

/* Call after every client connection is closed (pool destroyed). */
static void origin_stop(origin_t *o)
{
    int i;

    o->stop = 1;
    pthread_join(o->acceptor, NULL);
    close(o->lfd);
    for (i = 0; i < o->nhandlers; i++) {
        pthread_join(o->handlers[i], NULL);
    }
    pthread_mutex_destroy(&o->mu);
    free(o);
}

/* ------------------------------------------------------------------ */
/* Client helpers.                                                      */

static rc_backend_opts_t default_opts(apr_port_t port)
{
    rc_backend_opts_t opts;

    memset(&opts, 0, sizeof(opts));
    opts.host = "127.0.0.1";
    opts.port = port;
    opts.connect_timeout = MS(1000);
    opts.io_timeout = MS(2000);
    opts.keepalive = 1;
    opts.max_idle = 4;
    opts.idle_ttl = 0;
    opts.buffer_size = 0;        /* the minimum, 4096 */
    return opts;
}

static rc_backend_t *mkbackend(const rc_backend_opts_t *opts,
                               apr_pool_t **bp)
{
    rc_backend_t *be;

    assert_int_equal(apr_pool_create(bp, pool), APR_SUCCESS);
    assert_int_equal(rc_backend_create(&be, opts, 1, *bp), APR_SUCCESS);
    return be;
}

static rc_backend_stats_t stats(rc_backend_t *be)
{
    rc_backend_stats_t st;

    rc_backend_stats(be, &st);
    return st;
}

static void send_request(rc_conn_t *conn)
{
    struct iovec v[3];

    v[0].iov_base = (char *)"GET / HTTP/1.1\r\n";
    v[0].iov_len = strlen(v[0].iov_base);
    v[1].iov_base = (char *)"Host: origin\r\n";
    v[1].iov_len = strlen(v[1].iov_base);
    v[2].iov_base = (char *)"\r\n";
    v[2].iov_len = 2;
    assert_int_equal(rc_conn_writev(conn, v, 3), APR_SUCCESS);
}

/* Reads a head and starts its body; returns the read_head status. */
static apr_status_t start_response(rc_conn_t *conn, rc_resp_head_t *head,
                                   int *got, const char **err)
{
    rc_body_kind_e kind;
    apr_off_t len;
    apr_status_t rv;

    *err = NULL;
    rv = rc_conn_read_head(conn, pool, &limits, head, got, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    assert_int_equal(rc_http_body_framing(head, 0, &kind, &len, err),
                     APR_SUCCESS);
    rc_conn_body_start(conn, kind, len);
    return APR_SUCCESS;
}

/* Reads the body to its end (blocking), appending to *out. Returns the
 * last status: APR_EOF at a complete end. */
static apr_status_t read_body(rc_conn_t *conn, char **out,
                              const char **err)
{
    apr_status_t rv;
    const char *d;
    apr_size_t n;

    *out = "";
    for (;;) {
        rv = rc_conn_read_body(conn, 1, &d, &n, err);
        if (rv != APR_SUCCESS) {
            if (rv == APR_EOF) {
                assert_int_equal(n, 0);
            }
            return rv;
        }
        assert_true(n > 0);
        *out = apr_pstrcat(pool, *out, apr_pstrmemdup(pool, d, n), NULL);
    }
}

/* Sends a request, reads the whole response; asserts status and body. */
static void exchange(rc_conn_t *conn, int status, const char *body)
{
    rc_resp_head_t head;
    const char *err;
    char *got_body;
    int got;

    send_request(conn);
    assert_int_equal(start_response(conn, &head, &got, &err), APR_SUCCESS);
    assert_true(got);
    assert_int_equal(head.status, status);
    assert_int_equal(read_body(conn, &got_body, &err), APR_EOF);
    assert_string_equal(got_body, body);
    assert_true(rc_conn_body_done(conn));
}

static rc_conn_t *acquire(rc_backend_t *be, int want_reused)
{
    rc_conn_t *conn = NULL;
    int reused = -1;

    assert_int_equal(rc_backend_acquire(be, 0, &conn, &reused),
                     APR_SUCCESS);
    assert_non_null(conn);
    assert_int_equal(reused, want_reused);
    assert_ptr_equal(rc_conn_backend(conn), be);
    return conn;
}

#define CL_OK(body) \
    "HTTP/1.1 200 OK\r\nContent-Length: " #body "\r\n\r\n"

/* ------------------------------------------------------------------ */
/* Tests.                                                               */

static void test_connect_refused(void **state)
{
    apr_port_t port;
    int fd = listen_any(&port);     /* bound, not listening */
    rc_backend_opts_t opts = default_opts(port);
    apr_pool_t *bp;
    rc_backend_t *be;
    rc_conn_t *conn = NULL;
    int reused = -1;
    apr_status_t rv;

    (void)state;
    close(fd);
    be = mkbackend(&opts, &bp);
    rv = rc_backend_acquire(be, 0, &conn, &reused);
    assert_true(APR_STATUS_IS_ECONNREFUSED(rv));
    assert_int_equal(reused, 0);
    assert_true(stats(be).connects == 0);
    apr_pool_destroy(bp);
}

static void test_content_length_and_reuse(void **state)
{
    static const step_t steps[] = {
        { CL_OK(11) "hello world", 0, NULL, 0 },
        { CL_OK(3) "two", 0, NULL, 0 },
        { "HTTP/1.1 204 No Content\r\n\r\n", 0, NULL, 0 },
    };
    origin_t *o = origin_start(steps, 3);
    rc_backend_opts_t opts = default_opts(o->port);
    apr_pool_t *bp;
    rc_backend_t *be = mkbackend(&opts, &bp);
    rc_conn_t *conn, *first;
    rc_backend_stats_t st;

    (void)state;
    first = conn = acquire(be, 0);
    exchange(conn, 200, "hello world");
    rc_backend_release(conn, 1);

    conn = acquire(be, 1);
    assert_ptr_equal(conn, first);
    exchange(conn, 200, "two");
    rc_backend_release(conn, 1);

    conn = acquire(be, 1);
    exchange(conn, 204, "");
    rc_backend_release(conn, 1);

    st = stats(be);
    assert_true(st.connects == 1);
    assert_true(st.reuses == 2);
    assert_true(st.stale_closed == 0);
    assert_int_equal(origin_get(o, &o->accepted), 1);
    assert_int_equal(origin_get(o, &o->requests), 3);

    /* fresh=1 skips the pool even when it holds one. */
    {
        rc_conn_t *c2 = NULL;
        int reused = -1;

        assert_int_equal(rc_backend_acquire(be, 1, &c2, &reused),
                         APR_SUCCESS);
        assert_int_equal(reused, 0);
        assert_true(c2 != conn);
        rc_backend_release(c2, 1);
        assert_true(stats(be).connects == 2);
    }
    apr_pool_destroy(bp);
    origin_stop(o);
}

static void test_chunked(void **state)
{
    static const step_t steps[] = {
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
          20, "lo\r\n6;x=y\r\n world\r\n0\r\nT: 1\r\n\r\n", 0 },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
          "3\r\nabc\r\n0\r\n\r\n", 0, NULL, 0 },
    };
    origin_t *o = origin_start(steps, 2);
    rc_backend_opts_t opts = default_opts(o->port);
    apr_pool_t *bp;
    rc_backend_t *be = mkbackend(&opts, &bp);
    rc_conn_t *conn;

    (void)state;
    conn = acquire(be, 0);
    exchange(conn, 200, "hello world");
    rc_backend_release(conn, 1);
    conn = acquire(be, 1);
    exchange(conn, 200, "abc");
    rc_backend_release(conn, 1);
    assert_int_equal(origin_get(o, &o->accepted), 1);
    apr_pool_destroy(bp);
    origin_stop(o);
}

static void test_close_delimited(void **state)
{
    static const step_t steps[] = {
        { "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil",
          20, " close", 1 },
        { CL_OK(2) "ok", 0, NULL, 0 },
    };
    origin_t *o = origin_start(steps, 2);
    rc_backend_opts_t opts = default_opts(o->port);
    apr_pool_t *bp;
    rc_backend_t *be = mkbackend(&opts, &bp);
    rc_conn_t *conn;
    rc_backend_stats_t st;

    (void)state;
    conn = acquire(be, 0);
    exchange(conn, 200, "until close");
    /* Done, but the peer closed: not pooled. */
    rc_backend_release(conn, 1);
    conn = acquire(be, 0);
    exchange(conn, 200, "ok");
    rc_backend_release(conn, 1);
    st = stats(be);
    assert_true(st.connects == 2);
    assert_true(st.stale_closed == 0);
    assert_int_equal(origin_get(o, &o->accepted), 2);
    apr_pool_destroy(bp);
    origin_stop(o);
}

static void test_interim_head(void **state)
{
    static const step_t steps[] = {
        { "HTTP/1.1 100 Continue\r\n\r\n"
          "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
          CL_OK(2) "ok", 0, NULL, 0 },
    };
    origin_t *o = origin_start(steps, 1);
    rc_backend_opts_t opts = default_opts(o->port);
    apr_pool_t *bp;
    rc_backend_t *be = mkbackend(&opts, &bp);
    rc_conn_t *conn;
    rc_resp_head_t head;
    const char *err;
    char *body;
    int got;

    (void)state;
    conn = acquire(be, 0);
    send_request(conn);
    assert_int_equal(start_response(conn, &head, &got, &err), APR_SUCCESS);
    assert_int_equal(head.status, 100);
    assert_true(rc_conn_body_done(conn));
    assert_int_equal(start_response(conn, &head, &got, &err), APR_SUCCESS);
    assert_int_equal(head.status, 103);
    assert_string_equal(apr_table_get(head.headers, "Link"), "</s.css>");
    assert_true(got);
    assert_int_equal(start_response(conn, &head, &got, &err), APR_SUCCESS);
    assert_int_equal(head.status, 200);
    assert_int_equal(read_body(conn, &body, &err), APR_EOF);
    assert_string_equal(body, "ok");
    rc_backend_release(conn, 1);
    conn = acquire(be, 1);
    rc_backend_release(conn, 1);
    apr_pool_destroy(bp);
    origin_stop(o);
}

/* The origin closes an idle keep-alive connection: found at acquire. */
static void test_stale_idle(void **state)
{
    static const step_t steps[] = {
        { CL_OK(2) "hi", 0, NULL, 1 },
        { CL_OK(5) "again", 0, NULL, 0 },
    };
    origin_t *o = origin_start(steps, 2);
    rc_backend_opts_t opts = default_opts(o->port);
    apr_pool_t *bp;
    rc_backend_t *be = mkbackend(&opts, &bp);
    rc_conn_t *conn;
    rc_backend_stats_t st;

    (void)state;
    conn = acquire(be, 0);
    exchange(conn, 200, "hi");
    rc_backend_release(conn, 1);         /* pooled: close not seen yet */
    assert_true(origin_wait(o, &o->closed, 1));
    usleep(20000);                       /* let the FIN arrive */
    conn = acquire(be, 0);
    st = stats(be);
    assert_true(st.stale_closed == 1);
    assert_true(st.connects == 2);
    assert_true(st.reuses == 0);
    exchange(conn, 200, "again");
    rc_backend_release(conn, 1);
    apr_pool_destroy(bp);
    origin_stop(o);
}

/* The reasons a released connection is closed rather than pooled. */
static void test_release_closes(void **state)
{
    static const step_t steps[] = {
        { CL_OK(2) "r1", 0, NULL, 0 },          /* released not reusable */
        { CL_OK(11) "hello world", 0, NULL, 0 },/* body left unread */
        { CL_OK(10) "hello", 30, "world", 0 },  /* body half read */
        { CL_OK(2) "hiEXTRA", 0, NULL, 0 },     /* bytes past the body */
        { CL_OK(2) "ok", 0, NULL, 0 },
    };
    origin_t *o = origin_start(steps, 5);
    rc_backend_opts_t opts = default_opts(o->port);
    apr_pool_t *bp;
    rc_backend_t *be = mkbackend(&opts, &bp);
    rc_conn_t *conn;
    rc_resp_head_t head;
    const char *err, *d;
    apr_size_t n;
    int got;

    (void)state;
    /* reusable = 0. */
    conn = acquire(be, 0);
    exchange(conn, 200, "r1");
    rc_backend_release(conn, 0);

    /* Head read, body not. */
    conn = acquire(be, 0);
    send_request(conn);
    assert_int_equal(start_response(conn, &head, &got, &err), APR_SUCCESS);
    assert_false(rc_conn_body_done(conn));
    rc_backend_release(conn, 1);

    /* Part of the body read. */
    conn = acquire(be, 0);
    send_request(conn);
    assert_int_equal(start_response(conn, &head, &got, &err), APR_SUCCESS);
    assert_int_equal(rc_conn_read_body(conn, 1, &d, &n, &err), APR_SUCCESS);
    assert_true(n > 0 && n <= 5);
    assert_false(rc_conn_body_done(conn));
    rc_backend_release(conn, 1);

    /* The origin sent more than it framed. */
    conn = acquire(be, 0);
    exchange(conn, 200, "hi");
    rc_backend_release(conn, 1);

    conn = acquire(be, 0);
    exchange(conn, 200, "ok");
    rc_backend_release(conn, 1);
    assert_true(stats(be).connects == 5);
    assert_true(stats(be).reuses == 0);
    assert_true(stats(be).stale_closed == 0);
    assert_int_equal(origin_get(o, &o->accepted), 5);
    apr_pool_destroy(bp);
    origin_stop(o);
}

/* Unsolicited bytes arriving on an idle connection make it unusable. */
static void test_late_garbage(void **state)
{
    static const step_t steps[] = {
        { CL_OK(2) "hi", 30, "JUNK", 0 },
        { CL_OK(2) "ok", 0, NULL, 0 },
    };
    origin_t *o = origin_start(steps, 2);
    rc_backend_opts_t opts = default_opts(o->port);
    apr_pool_t *bp;
    rc_backend_t *be = mkbackend(&opts, &bp);
    rc_conn_t *conn;

    (void)state;
    conn = acquire(be, 0);
    exchange(conn, 200, "hi");
    rc_backend_release(conn, 1);
    usleep(100000);
    conn = acquire(be, 0);
    assert_true(stats(be).stale_closed == 1);
    exchange(conn, 200, "ok");
    rc_backend_release(conn, 1);
    apr_pool_destroy(bp);
    origin_stop(o);
}

static void test_keepalive_off(void **state)
{
    static const step_t steps[] = {
        { CL_OK(2) "k1", 0, NULL, 0 },
        { CL_OK(2) "k2", 0, NULL, 0 },
    };
    origin_t *o = origin_start(steps, 2);
    rc_backend_opts_t opts = default_opts(o->port);
    apr_pool_t *bp;
    rc_backend_t *be;
    rc_conn_t *conn;

    (void)state;
    opts.keepalive = 0;
    be = mkbackend(&opts, &bp);
    conn = acquire(be, 0);
    exchange(conn, 200, "k1");
    rc_backend_release(conn, 1);
    conn = acquire(be, 0);
    exchange(conn, 200, "k2");
    rc_backend_release(conn, 1);
    assert_true(stats(be).connects == 2);
    assert_int_equal(origin_get(o, &o->accepted), 2);
    apr_pool_destroy(bp);
    origin_stop(o);
}

static void test_max_idle(void **state)
{
    origin_t *o = origin_start(NULL, 0);
    rc_backend_opts_t opts = default_opts(o->port);
    apr_pool_t *bp;
    rc_backend_t *be;
    rc_conn_t *c1, *c2, *c3, *c;

    (void)state;
    opts.max_idle = 2;
    be = mkbackend(&opts, &bp);
    c1 = acquire(be, 0);
    c2 = acquire(be, 0);
    c3 = acquire(be, 0);
    rc_backend_release(c1, 1);
    rc_backend_release(c2, 1);
    rc_backend_release(c3, 1);            /* pool full: closed */
    /* Most recently released first. */
    c = acquire(be, 1);
    assert_ptr_equal(c, c2);
    c = acquire(be, 1);
    assert_ptr_equal(c, c1);
    c3 = acquire(be, 0);
    assert_true(stats(be).connects == 4);
    assert_true(stats(be).reuses == 2);
    assert_true(origin_wait(o, &o->accepted, 4));
    rc_backend_release(c1, 1);
    rc_backend_release(c2, 1);
    rc_backend_release(c3, 1);
    apr_pool_destroy(bp);

    /* max_idle 0: nothing is ever pooled. */
    opts.max_idle = 0;
    be = mkbackend(&opts, &bp);
    c1 = acquire(be, 0);
    rc_backend_release(c1, 1);
    c1 = acquire(be, 0);
    rc_backend_release(c1, 1);
    assert_true(stats(be).connects == 2);
    apr_pool_destroy(bp);
    assert_true(origin_wait(o, &o->accepted, 6));
    origin_stop(o);
}

static void test_idle_ttl(void **state)
{
    origin_t *o = origin_start(NULL, 0);
    rc_backend_opts_t opts = default_opts(o->port);
    apr_pool_t *bp;
    rc_backend_t *be;
    rc_conn_t *c1, *c2, *c;
    rc_backend_stats_t st;

    (void)state;
    opts.idle_ttl = MS(60);
    be = mkbackend(&opts, &bp);

    /* Within the TTL: reused. */
    c1 = acquire(be, 0);
    rc_backend_release(c1, 1);
    c = acquire(be, 1);
    assert_ptr_equal(c, c1);
    rc_backend_release(c, 1);

    /* Past it: closed at acquire, not counted as stale. */
    usleep(120000);
    c1 = acquire(be, 0);
    st = stats(be);
    assert_true(st.connects == 2);
    assert_true(st.stale_closed == 0);

    /* The old one expires, the young one stays. */
    c2 = acquire(be, 0);
    rc_backend_release(c1, 1);
    usleep(100000);
    rc_backend_release(c2, 1);
    c = acquire(be, 1);
    assert_ptr_equal(c, c2);
    c1 = acquire(be, 0);
    assert_true(stats(be).connects == 4);
    rc_backend_release(c, 1);
    rc_backend_release(c1, 1);
    apr_pool_destroy(bp);
    origin_stop(o);
}

static void test_read_timeout(void **state)
{
    static const step_t steps[] = {
        { NULL, 3000, NULL, 0 },                  /* no answer at all */
        { CL_OK(10) "hello", 3000, "world", 0 },  /* stalls mid-body */
    };
    origin_t *o = origin_start(steps, 2);
    rc_backend_opts_t opts = default_opts(o->port);
    apr_pool_t *bp;
    rc_backend_t *be;
    rc_conn_t *conn;
    rc_resp_head_t head;
    const char *err, *d;
    apr_size_t n, total = 0;
    apr_time_t t0;
    apr_interval_time_t took;
    apr_status_t rv;
    int got = -1;

    (void)state;
    opts.io_timeout = MS(150);
    be = mkbackend(&opts, &bp);

    conn = acquire(be, 0);
    send_request(conn);
    t0 = apr_time_now();
    rv = rc_conn_read_head(conn, pool, &limits, &head, &got, &err);
    took = apr_time_now() - t0;
    assert_int_equal(rv, APR_TIMEUP);
    assert_int_equal(got, 0);
    assert_true(took >= MS(120) && took < MS(1500));
    /* Nobody answered: closed, not pooled, or a late answer would be
     * read as the response to the next request. */
    rc_backend_release(conn, 1);

    conn = acquire(be, 0);
    send_request(conn);
    assert_int_equal(start_response(conn, &head, &got, &err), APR_SUCCESS);
    t0 = apr_time_now();
    for (;;) {
        rv = rc_conn_read_body(conn, 1, &d, &n, &err);
        if (rv != APR_SUCCESS) {
            break;
        }
        total += n;
    }
    took = apr_time_now() - t0;
    assert_int_equal(rv, APR_TIMEUP);
    assert_int_equal(total, 5);
    assert_true(took >= MS(120) && took < MS(1500));
    rc_backend_release(conn, 1);
    assert_true(stats(be).connects == 2);
    apr_pool_destroy(bp);
    origin_stop(o);
}

static void test_truncated(void **state)
{
    static const step_t steps[] = {
        { CL_OK(100) "short", 0, NULL, 1 },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
          0, NULL, 1 },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
          "5\r\nhello\r\n", 0, NULL, 1 },
        { NULL, 0, NULL, 1 },                         /* closes at once */
        { "HTTP/1.1 200 OK\r\nContent-Le", 0, NULL, 1 },
    };
    origin_t *o = origin_start(steps, 5);
    rc_backend_opts_t opts = default_opts(o->port);
    apr_pool_t *bp;
    rc_backend_t *be = mkbackend(&opts, &bp);
    rc_conn_t *conn;
    rc_resp_head_t head;
    const char *err;
    char *body;
    int got, i;

    (void)state;
    for (i = 0; i < 3; i++) {
        conn = acquire(be, 0);
        send_request(conn);
        assert_int_equal(start_response(conn, &head, &got, &err),
                         APR_SUCCESS);
        assert_int_equal(read_body(conn, &body, &err), APR_INCOMPLETE);
        assert_string_equal(body, i == 0 ? "short" : i == 1 ? "hel"
                                                           : "hello");
        assert_false(rc_conn_body_done(conn));
        rc_backend_release(conn, 1);
    }

    /* Closed before any byte: APR_EOF, retryable. */
    conn = acquire(be, 0);
    send_request(conn);
    got = -1;
    assert_int_equal(rc_conn_read_head(conn, pool, &limits, &head, &got,
                                       &err), APR_EOF);
    assert_int_equal(got, 0);
    rc_backend_release(conn, 0);

    /* Closed inside the head. */
    conn = acquire(be, 0);
    send_request(conn);
    err = NULL;
    assert_int_equal(rc_conn_read_head(conn, pool, &limits, &head, &got,
                                       &err), APR_EGENERAL);
    assert_int_equal(got, 1);
    assert_non_null(err);
    rc_backend_release(conn, 0);
    assert_true(stats(be).connects == 5);
    apr_pool_destroy(bp);
    origin_stop(o);
}

static void test_nonblocking(void **state)
{
    static const step_t steps[] = {
        { CL_OK(10) "hello", 300, "world", 0 },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
          "5\r\nhello\r\n", 300, "5\r\nworld\r\n0\r\n\r\n", 0 },
    };
    origin_t *o = origin_start(steps, 2);
    rc_backend_opts_t opts = default_opts(o->port);
    apr_pool_t *bp;
    rc_backend_t *be = mkbackend(&opts, &bp);
    rc_conn_t *conn;
    rc_resp_head_t head;
    const char *err, *d;
    char *body;
    apr_size_t n, total;
    apr_time_t t0;
    int got, k;

    (void)state;
    conn = acquire(be, 0);
    for (k = 0; k < 2; k++) {
        send_request(conn);
        assert_int_equal(start_response(conn, &head, &got, &err),
                         APR_SUCCESS);
        for (total = 0; total < 5; total += n) {
            assert_int_equal(rc_conn_read_body(conn, 1, &d, &n, &err),
                             APR_SUCCESS);
        }
        assert_int_equal(total, 5);
        /* The origin pauses: a non-blocking read says so at once. */
        t0 = apr_time_now();
        assert_int_equal(rc_conn_read_body(conn, 0, &d, &n, &err),
                         APR_EAGAIN);
        assert_int_equal(n, 0);
        assert_true(apr_time_now() - t0 < MS(100));
        assert_false(rc_conn_body_done(conn));
        assert_int_equal(read_body(conn, &body, &err), APR_EOF);
        assert_string_equal(body, "world");
        assert_true(rc_conn_body_done(conn));
        /* Done: non-blocking read reports the end too. */
        assert_int_equal(rc_conn_read_body(conn, 0, &d, &n, &err), APR_EOF);
    }
    rc_backend_release(conn, 1);
    conn = acquire(be, 1);
    rc_backend_release(conn, 1);
    apr_pool_destroy(bp);
    origin_stop(o);
}

static void test_malformed(void **state)
{
    static const step_t steps[] = {
        { "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", 0, NULL, 0 },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
          "zz\r\n", 0, NULL, 0 },
    };
    origin_t *o = origin_start(steps, 2);
    rc_backend_opts_t opts = default_opts(o->port);
    apr_pool_t *bp;
    rc_backend_t *be = mkbackend(&opts, &bp);
    rc_conn_t *conn;
    rc_resp_head_t head;
    const char *err, *d;
    apr_size_t n;
    int got;

    (void)state;
    conn = acquire(be, 0);
    send_request(conn);
    err = NULL;
    assert_int_equal(rc_conn_read_head(conn, pool, &limits, &head, &got,
                                       &err), APR_EGENERAL);
    assert_non_null(err);
    rc_backend_release(conn, 0);

    conn = acquire(be, 0);
    send_request(conn);
    assert_int_equal(start_response(conn, &head, &got, &err), APR_SUCCESS);
    err = NULL;
    assert_int_equal(rc_conn_read_body(conn, 1, &d, &n, &err),
                     APR_EGENERAL);
    assert_non_null(err);
    rc_backend_release(conn, 1);          /* not done: closed */
    assert_true(stats(be).connects == 2);
    apr_pool_destroy(bp);
    origin_stop(o);
}

/* A head larger than the limit, or than the read buffer, is refused. */
static void test_head_too_large(void **state)
{
    static char big[6000];
    static step_t steps[] = {
        { NULL, 0, NULL, 0 },
        { NULL, 0, NULL, 0 },
    };
    origin_t *o;
    rc_backend_opts_t opts;
    apr_pool_t *bp;
    rc_backend_t *be;
    rc_conn_t *conn;
    rc_resp_head_t head;
    rc_http_limits_t small = { 1000, 100 };
    const char *err;
    int got;

    (void)state;
    strcpy(big, "HTTP/1.1 200 OK\r\nX: ");
    memset(big + strlen(big), 'x', 5000);
    strcat(big, "\r\n\r\n");
    steps[0].send = big;
    steps[1].send = big;
    o = origin_start(steps, 2);
    opts = default_opts(o->port);
    be = mkbackend(&opts, &bp);

    conn = acquire(be, 0);
    send_request(conn);
    err = NULL;
    assert_int_equal(rc_conn_read_head(conn, pool, &small, &head, &got,
                                       &err), APR_EGENERAL);
    assert_non_null(err);
    rc_backend_release(conn, 0);

    /* Limit above the 4096-byte buffer: the buffer is the limit. */
    conn = acquire(be, 0);
    send_request(conn);
    err = NULL;
    assert_int_equal(rc_conn_read_head(conn, pool, &limits, &head, &got,
                                       &err), APR_EGENERAL);
    assert_non_null(err);
    rc_backend_release(conn, 0);
    apr_pool_destroy(bp);
    origin_stop(o);
}

static void test_writev_limits(void **state)
{
    origin_t *o = origin_start(NULL, 0);
    rc_backend_opts_t opts = default_opts(o->port);
    apr_pool_t *bp;
    rc_backend_t *be = mkbackend(&opts, &bp);
    rc_conn_t *conn;
    struct iovec v[17];
    int i;

    (void)state;
    for (i = 0; i < 17; i++) {
        v[i].iov_base = (char *)"x";
        v[i].iov_len = 1;
    }
    conn = acquire(be, 0);
    assert_int_equal(rc_conn_writev(conn, v, 17), APR_EINVAL);
    assert_int_equal(rc_conn_writev(conn, v, 0), APR_SUCCESS);
    v[1].iov_len = 0;                     /* empty pieces are skipped */
    assert_int_equal(rc_conn_writev(conn, v, 16), APR_SUCCESS);
    rc_backend_release(conn, 0);
    apr_pool_destroy(bp);
    origin_stop(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_content_length_and_reuse),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_close_delimited),
        cmocka_unit_test(test_interim_head),
        cmocka_unit_test(test_stale_idle),
        cmocka_unit_test(test_release_closes),
        cmocka_unit_test(test_late_garbage),
        cmocka_unit_test(test_keepalive_off),
        cmocka_unit_test(test_max_idle),
        cmocka_unit_test(test_idle_ttl),
        cmocka_unit_test(test_read_timeout),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_nonblocking),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_head_too_large),
        cmocka_unit_test(test_writev_limits),
    };
    RC_UNIT_RUN(tests);
}
