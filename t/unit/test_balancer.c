/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * test_balancer.c -- unit tests of balancer.c: exact smooth-WRR sequences,
 * least-conn, consistent hashing (distribution, minimal movement, bounded
 * load), EWMA arithmetic, p2c, passive ejection / backoff / half-open,
 * active thresholds, slow start, max=N across forked processes, backup,
 * sticky, retry masks, re-attach, and a lock holder SIGKILLed.
 * Time is injected: T0 + offsets, no clock.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "balancer.h"

#define SEC(x)  ((apr_time_t)((x) * 1000000.0))
#define T0      SEC(1000)

static apr_pool_t *pool;

/* cmocka 1.1's assert_float_equal compares floats; we need doubles. */
static void near_(double a, double b, double tol, const char *file, int line)
{
    double d = a - b;

    if (d < 0) {
        d = -d;
    }
    if (!(d <= tol)) {
        print_error("%.17g != %.17g (tolerance %g)\n", a, b, tol);
        _fail(file, line);
    }
}
#define assert_near(a, b, tol) near_((a), (b), (tol), __FILE__, __LINE__)

/* ------------------------------------------------------------------ */
/* Fixtures.                                                             */

/* A balancer config: method name, then member specs "URL k=v ..." up to
 * NULL. */
static rc_bal_conf_t *mkconf(const char *method, ...)
{
    rc_bal_conf_t *c = rc_bal_conf_create(pool, "test");
    const char *spec, *err;
    va_list ap;

    if (method) {
        assert_null(rc_bal_parse_method(method, &c->method));
    }
    va_start(ap, method);
    while ((spec = va_arg(ap, const char *)) != NULL) {
        char **argv;
        int argc = 0;

        assert_int_equal(apr_tokenize_to_argv(spec, &argv, pool), 0);
        while (argv[argc]) {
            argc++;
        }
        err = rc_bal_conf_add_member(pool, c, argv[0], argc - 1,
                                     (const char *const *)argv + 1);
        assert_null(err);
    }
    va_end(ap);
    return c;
}

static void *shared_area(apr_size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    assert_true(p != MAP_FAILED);
    return p;
}

static rc_bal_t *attach_in(rc_bal_conf_t *c, void *area, apr_size_t size,
                           int *reused)
{
    const rc_bal_conf_t *cs[1];
    rc_bal_t *b = NULL;

    cs[0] = c;
    assert_int_equal(rc_bal_shm_attach(pool, area, size, cs, 1, 1, &b,
                                       reused), APR_SUCCESS);
    return b;
}

static rc_bal_t *mkbal(rc_bal_conf_t *c)
{
    const rc_bal_conf_t *cs[1];
    apr_size_t size;

    assert_null(rc_bal_conf_check(pool, c));
    cs[0] = c;
    size = rc_bal_shm_size(cs, 1);
    return attach_in(c, shared_area(size), size, NULL);
}

/* Pick and end at once (latency 0). */
static int pick1(rc_bal_t *b, apr_time_t now)
{
    rc_bal_ticket_t t;
    rc_bal_req_t rq = { NULL, 0, 0, NULL };
    int idx = rc_bal_pick(b, &rq, now, &t);

    if (idx >= 0) {
        rc_bal_end(b, &t, now, RC_BAL_OK);
    }
    return idx;
}

static void seq(rc_bal_t *b, int n, apr_time_t now, char *out)
{
    int i, idx;

    for (i = 0; i < n; i++) {
        idx = pick1(b, now);
        out[i] = idx >= 0 ? (char)('a' + idx) : '-';
    }
    out[n] = '\0';
}

static apr_uint32_t inflight(rc_bal_t *b, int i)
{
    rc_bal_member_stats_t st;

    assert_int_equal(rc_bal_member_stats(b, i, T0, &st), APR_SUCCESS);
    return st.inflight;
}

static rc_bal_state_e state(rc_bal_t *b, int i, apr_time_t now)
{
    rc_bal_member_stats_t st;

    assert_int_equal(rc_bal_member_stats(b, i, now, &st), APR_SUCCESS);
    return st.state;
}

/* ------------------------------------------------------------------ */
/* Configuration.                                                        */

static void test_conf_parse(void **state_)
{
    rc_bal_conf_t *c;
    rc_bal_member_conf_t m = { "u", NULL, -1, -1, -1 };
    rc_bal_key_t k;
    apr_interval_time_t t;
    int meth = -1, used;
    const char *argv[2];

    (void)state_;
    assert_null(rc_bal_parse_method("p2c-ewma", &meth));
    assert_int_equal(meth, RC_BAL_P2C);
    assert_null(rc_bal_parse_method("Least-Conn", &meth));
    assert_int_equal(meth, RC_BAL_LEASTCONN);
    assert_non_null(rc_bal_parse_method("random", &meth));
    assert_string_equal(rc_bal_method_name(RC_BAL_HASH), "hash");

    assert_null(rc_bal_parse_hash_key(pool, "header:X-User", &k));
    assert_int_equal(k.kind, RC_BAL_KEY_HEADER);
    assert_string_equal(k.name, "X-User");
    assert_null(rc_bal_parse_hash_key(pool, "cookie:sid", &k));
    assert_int_equal(k.kind, RC_BAL_KEY_COOKIE);
    assert_null(rc_bal_parse_hash_key(pool, "client-ip", &k));
    assert_int_equal(k.kind, RC_BAL_KEY_CLIENT_IP);
    assert_null(rc_bal_parse_hash_key(pool, "uri", &k));
    assert_int_equal(k.kind, RC_BAL_KEY_URI);
    assert_non_null(rc_bal_parse_hash_key(pool, "header:", &k));
    assert_non_null(rc_bal_parse_hash_key(pool, "cookie:a b", &k));
    assert_non_null(rc_bal_parse_hash_key(pool, "path", &k));

    assert_null(rc_bal_parse_interval("250ms", &t));
    assert_true(t == 250000);
    assert_null(rc_bal_parse_interval("10s", &t));
    assert_true(t == SEC(10));
    assert_null(rc_bal_parse_interval("2m", &t));
    assert_true(t == SEC(120));
    assert_null(rc_bal_parse_interval("3", &t));
    assert_true(t == SEC(3));
    assert_non_null(rc_bal_parse_interval("3x", &t));
    assert_non_null(rc_bal_parse_interval("-1s", &t));
    assert_non_null(rc_bal_parse_interval("2d", &t));
    assert_non_null(rc_bal_parse_interval("25h", &t));

    assert_null(rc_bal_member_param(pool, &m, "weight=100"));
    assert_int_equal(m.weight, 100);
    assert_non_null(rc_bal_member_param(pool, &m, "weight=0"));
    assert_non_null(rc_bal_member_param(pool, &m, "weight=101"));
    assert_non_null(rc_bal_member_param(pool, &m, "weight=2.5"));
    assert_non_null(rc_bal_member_param(pool, &m, "weight="));
    assert_null(rc_bal_member_param(pool, &m, "status=backup,drain"));
    assert_int_equal(m.flags, RC_BAL_F_BACKUP | RC_BAL_F_DRAIN);
    assert_non_null(rc_bal_member_param(pool, &m, "status=sleepy"));
    assert_null(rc_bal_member_param(pool, &m, "max=10"));
    assert_int_equal(m.max, 10);
    assert_non_null(rc_bal_member_param(pool, &m, "max=-1"));
    assert_null(rc_bal_member_param(pool, &m, "route=node-1"));
    assert_string_equal(m.route, "node-1");
    assert_non_null(rc_bal_member_param(pool, &m, "route=a;b"));
    assert_non_null(rc_bal_member_param(pool, &m, "colour=red"));
    assert_non_null(rc_bal_member_param(pool, &m, "weight"));

    /* duplicate member, duplicate route, empty balancer */
    c = mkconf(NULL, "http://a:1/ route=x", NULL);
    argv[0] = "weight=2";
    assert_non_null(rc_bal_conf_add_member(pool, c, "HTTP://A:1", 1, argv));
    argv[0] = "route=x";
    assert_null(rc_bal_conf_add_member(pool, c, "http://b:1", 1, argv));
    assert_non_null(rc_bal_conf_check(pool, c));
    assert_non_null(rc_bal_conf_check(pool, rc_bal_conf_create(pool, "e")));
    argv[0] = "bogus=1";
    assert_non_null(rc_bal_conf_add_member(pool, c, "http://c:1", 1, argv));

    /* eject / health params, defaults, derived routes */
    c = mkconf("hash", "http://a:1", "http://b:1", NULL);
    assert_null(rc_bal_eject_param(c, "fails=4"));
    assert_null(rc_bal_eject_param(c, "window=20s"));
    assert_null(rc_bal_eject_param(c, "cooldown=500ms"));
    assert_null(rc_bal_eject_param(c, "max-cooldown=1m"));
    assert_null(rc_bal_eject_param(c, "5xx=on"));
    assert_non_null(rc_bal_eject_param(c, "fails=33"));
    assert_non_null(rc_bal_eject_param(c, "window=0s"));
    assert_non_null(rc_bal_eject_param(c, "speed=1"));
    assert_null(rc_bal_health_param(c, "passes=4", &used));
    assert_int_equal(used, 1);
    assert_null(rc_bal_health_param(c, "uri=/health", &used));
    assert_int_equal(used, 0);
    assert_non_null(rc_bal_health_param(c, "fails=0", &used));
    assert_null(rc_bal_conf_check(pool, c));
    assert_int_equal(c->eject_fails, 4);
    assert_true(c->eject_window == SEC(20));
    assert_true(c->eject_cooldown == 500000);
    assert_true(c->eject_max_cooldown == SEC(60));
    assert_int_equal(c->eject_5xx, 1);
    assert_int_equal(c->hc_fails, 3);
    assert_int_equal(c->hc_passes, 4);
    assert_int_equal(c->key.kind, RC_BAL_KEY_URI);
    assert_true(c->bound_c == 1.25);
    assert_int_equal(strlen(((rc_bal_member_conf_t *)c->members->elts)[0]
                            .route), 8);
    assert_null(rc_bal_eject_param(c, "max-cooldown=100ms"));
    assert_non_null(rc_bal_conf_check(pool, c));
}

/* ------------------------------------------------------------------ */
/* Round-robin.                                                          */

static void test_rr_smooth(void **state_)
{
    char out[64];
    rc_bal_t *b;

    (void)state_;
    b = mkbal(mkconf("round-robin", "http://a weight=5", "http://b weight=1",
                     "http://c weight=1", NULL));
    seq(b, 14, T0, out);
    assert_string_equal(out, "aabacaaaabacaa");

    b = mkbal(mkconf("round-robin", "http://a weight=3", "http://b", NULL));
    seq(b, 8, T0, out);
    assert_string_equal(out, "aabaaaba");

    b = mkbal(mkconf(NULL, "http://a", "http://b", "http://c", NULL));
    seq(b, 7, T0, out);
    assert_string_equal(out, "abcabca");

    /* {2,3,5}: computed by hand, total 10 */
    b = mkbal(mkconf(NULL, "http://a weight=2", "http://b weight=3",
                     "http://c weight=5", NULL));
    seq(b, 10, T0, out);
    assert_string_equal(out, "cbacbccabc");
}

/* The sequence is global: a second process continues it. */
static void test_rr_across_processes(void **state_)
{
    rc_bal_t *b;
    char out[16], *child_out = shared_area(4096);
    pid_t pid;
    int st;

    (void)state_;
    b = mkbal(mkconf(NULL, "http://a weight=5", "http://b weight=1",
                     "http://c weight=1", NULL));
    seq(b, 2, T0, out);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        seq(b, 3, T0, child_out);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    seq(b, 2, T0, out + 2);
    assert_string_equal(out, "aaaa");
    assert_string_equal(child_out, "bac");
}

/* ------------------------------------------------------------------ */
/* Least-conn.                                                           */

static void test_least_conn(void **state_)
{
    rc_bal_req_t rq = { NULL, 0, 0, NULL };
    rc_bal_ticket_t t[16];
    int seen[3] = { 0, 0, 0 }, i, idx;
    rc_bal_t *b;

    (void)state_;
    /* idle, equal weights: ties rotate, all three within three picks */
    b = mkbal(mkconf("least-conn", "http://a", "http://b", "http://c",
                     NULL));
    for (i = 0; i < 3; i++) {
        seen[pick1(b, T0)]++;
    }
    assert_int_equal(seen[0] + seen[1] + seen[2], 3);
    assert_true(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);

    /* held requests spread out; the member that frees up gets the next */
    for (i = 0; i < 6; i++) {
        assert_true(rc_bal_pick(b, &rq, T0, &t[i]) >= 0);
    }
    assert_int_equal(inflight(b, 0), 2);
    assert_int_equal(inflight(b, 1), 2);
    assert_int_equal(inflight(b, 2), 2);
    for (i = 0; i < 6; i++) {
        if (t[i].member == 1) {
            rc_bal_end(b, &t[i], T0, RC_BAL_OK);
            break;
        }
    }
    idx = rc_bal_pick(b, &rq, T0, &t[i]);
    assert_int_equal(idx, 1);
    for (i = 0; i < 6; i++) {
        rc_bal_end(b, &t[i], T0, RC_BAL_OK);
    }
    assert_int_equal(inflight(b, 0) + inflight(b, 1) + inflight(b, 2), 0);

    /* weighted 3:1: in-flight settles at 6:2 after 8 held picks; the
     * first two go to the heavy member */
    b = mkbal(mkconf("least-conn", "http://a weight=3", "http://b", NULL));
    for (i = 0; i < 8; i++) {
        idx = rc_bal_pick(b, &rq, T0, &t[i]);
        if (i < 2) {
            assert_int_equal(idx, 0);
        }
    }
    assert_int_equal(inflight(b, 0), 6);
    assert_int_equal(inflight(b, 1), 2);
}

/* ------------------------------------------------------------------ */
/* Consistent hashing.                                                   */

#define NKEYS 100000

static int hash_pick(rc_bal_t *b, int key, apr_uint64_t exclude)
{
    char k[32];
    rc_bal_req_t rq;
    rc_bal_ticket_t t;
    int idx;

    rq.key = k;
    rq.key_len = (apr_size_t)snprintf(k, sizeof(k), "/item/%d", key);
    rq.exclude = exclude;
    rq.rng = NULL;
    idx = rc_bal_pick(b, &rq, T0, &t);
    rc_bal_end(b, &t, T0, RC_BAL_OK);
    return idx;
}

static void test_hash_distribution(void **state_)
{
    int count[3] = { 0, 0, 0 }, i;
    double share;
    rc_bal_t *b;

    (void)state_;
    b = mkbal(mkconf("hash", "http://10.0.0.1:80", "http://10.0.0.2:80 "
                     "weight=2", "http://10.0.0.3:80 weight=3", NULL));
    for (i = 0; i < NKEYS; i++) {
        count[hash_pick(b, i, 0)]++;
    }
    for (i = 0; i < 3; i++) {
        share = (double)count[i] / NKEYS;
        print_message("hash share member %d: %.4f (want %.4f)\n", i, share,
                      (i + 1) / 6.0);
        assert_true(share > (i + 1) / 6.0 * 0.85);
        assert_true(share < (i + 1) / 6.0 * 1.15);
    }
    /* no key: falls back to least-conn, still a member */
    assert_true(pick1(b, T0) >= 0);
}

static void test_hash_minimal_movement(void **state_)
{
    static unsigned char before[NKEYS], after[NKEYS];
    rc_bal_conf_t *c;
    rc_bal_t *b, *b2;
    int i, moved = 0, idx;

    (void)state_;
    c = mkconf("hash", "http://m0", "http://m1", "http://m2", "http://m3",
               "http://m4", NULL);
    b = mkbal(c);
    for (i = 0; i < NKEYS; i++) {
        before[i] = (unsigned char)hash_pick(b, i, 0);
    }
    /* eject (disable) m2: only its keys move, about 1/5 of them */
    assert_int_equal(rc_bal_set_flags(b, 2, RC_BAL_F_DISABLED), 0);
    for (i = 0; i < NKEYS; i++) {
        after[i] = (unsigned char)hash_pick(b, i, 0);
        assert_true(after[i] != 2);
        if (after[i] != before[i]) {
            assert_int_equal(before[i], 2);
            moved++;
        }
    }
    print_message("moved on eject: %d of %d\n", moved, NKEYS);
    assert_true(moved < NKEYS / 5 + NKEYS / 20);
    /* a retry mask moves the same keys to the same places */
    for (i = 0; i < NKEYS; i += 7) {
        assert_int_equal(rc_bal_set_flags(b, 2, 0), 0);
        idx = hash_pick(b, i, before[i] == 2 ? (1u << 2) : 0);
        assert_int_equal(idx, after[i]);
    }

    /* removed from the config: same story, member indices shift */
    b2 = mkbal(mkconf("hash", "http://m0", "http://m1", "http://m3",
                      "http://m4", NULL));
    moved = 0;
    for (i = 0; i < NKEYS; i++) {
        static const int old_of_new[4] = { 0, 1, 3, 4 };
        int now_on = old_of_new[hash_pick(b2, i, 0)];

        if (before[i] != 2) {
            assert_int_equal(now_on, before[i]);
        }
        else {
            moved++;
            assert_int_equal(now_on, after[i]);
        }
    }
    assert_true(moved < NKEYS / 5 + NKEYS / 20);
}

static void test_hash_bounded_load(void **state_)
{
    rc_bal_req_t rq = { "/hot", 4, 0, NULL };
    rc_bal_ticket_t t[60];
    int owner, i, j, held = 0;
    apr_uint32_t in, maxin;
    rc_bal_t *b;

    (void)state_;
    b = mkbal(mkconf("hash", "http://a", "http://b", "http://c", NULL));
    owner = rc_bal_pick(b, &rq, T0, &t[0]);
    held = 1;
    for (i = 1; i < 60; i++) {
        assert_true(rc_bal_pick(b, &rq, T0, &t[i]) >= 0);
        held++;
        /* no member above ceil(1.25 * total / 3) */
        maxin = 0;
        for (j = 0; j < 3; j++) {
            in = inflight(b, j);
            maxin = in > maxin ? in : maxin;
        }
        assert_true(maxin <= (apr_uint32_t)((5 * held + 11) / 12));
    }
    assert_true(inflight(b, owner) >= inflight(b, (owner + 1) % 3));
    assert_true(inflight(b, owner) >= inflight(b, (owner + 2) % 3));
    assert_true(inflight(b, owner) <= 25);
    for (i = 0; i < 60; i++) {
        rc_bal_end(b, &t[i], T0, RC_BAL_OK);
    }
    /* load gone: the hot key is back on its owner */
    rq.exclude = 0;
    assert_int_equal(rc_bal_pick(b, &rq, T0, &t[0]), owner);
    rc_bal_end(b, &t[0], T0, RC_BAL_OK);
}

/* ------------------------------------------------------------------ */
/* EWMA and p2c.                                                         */

static void test_ewma_math(void **state_)
{
    (void)state_;
    assert_near(rc_bal_exp_neg(0.0), 1.0, 1e-15);
    assert_near(rc_bal_exp_neg(-1.0), 0.36787944117144233, 1e-15);
    assert_near(rc_bal_exp_neg(-0.5), 0.6065306597126334, 1e-15);
    assert_near(rc_bal_exp_neg(-10.0), 4.5399929762484854e-05,
                       1e-18);
    assert_near(rc_bal_exp_neg(-100.0) / 3.720075976020836e-44, 1.0,
                       1e-12);
    assert_near(rc_bal_exp_neg(-1000.0), 0.0, 1e-300);

    /* 100 then 50 after one tau: 100 e^-1 + 50 (1 - e^-1) */
    assert_near(rc_bal_ewma_next(100.0, SEC(10), 50.0, SEC(10)),
                       68.39397205857212, 1e-6);
    /* peak: a higher sample replaces at once */
    assert_near(rc_bal_ewma_next(100.0, SEC(10), 200.0, SEC(10)),
                       200.0, 1e-6);
    assert_near(rc_bal_ewma_next(100.0, 0, 50.0, SEC(10)), 100.0,
                       1e-6);
    assert_near(rc_bal_ewma_next(100.0, -5, 50.0, SEC(10)), 100.0,
                       1e-6);
    /* half a tau: 1000 e^-.5 + 500 (1 - e^-.5) */
    assert_near(rc_bal_ewma_next(1000.0, SEC(5), 500.0, SEC(10)),
                       803.2653298563167, 1e-6);
}

static void ewma_sample(rc_bal_t *b, int idx, apr_time_t start,
                        apr_time_t end)
{
    rc_bal_ticket_t t;

    assert_int_equal(rc_bal_acquire(b, idx, start, &t), idx);
    rc_bal_end(b, &t, end, RC_BAL_OK);
}

static void test_ewma_member(void **state_)
{
    rc_bal_member_stats_t st;
    rc_bal_t *b;

    (void)state_;
    b = mkbal(mkconf("p2c-ewma", "http://a", "http://b", NULL));
    ewma_sample(b, 0, T0 - 1000, T0);                   /* 1000 us */
    assert_int_equal(rc_bal_member_stats(b, 0, T0, &st), 0);
    assert_near(st.ewma_us, 1000.0, 1e-6);
    ewma_sample(b, 0, T0 + SEC(5) - 500, T0 + SEC(5));  /* 500 us */
    assert_int_equal(rc_bal_member_stats(b, 0, T0 + SEC(5), &st), 0);
    assert_near(st.ewma_us, 803.2653298563167, 1e-6);
    /* read decay: 5 s later, * e^-.5 */
    assert_int_equal(rc_bal_member_stats(b, 0, T0 + SEC(10), &st), 0);
    assert_near(st.ewma_us, 803.2653298563167 * 0.6065306597126334,
                       1e-6);
    /* peak */
    ewma_sample(b, 0, T0 + SEC(10) - 9000, T0 + SEC(10));
    assert_int_equal(rc_bal_member_stats(b, 0, T0 + SEC(10), &st), 0);
    assert_near(st.ewma_us, 9000.0, 1e-6);
}

static void test_p2c(void **state_)
{
    rc_bal_req_t rq;
    rc_bal_ticket_t t, t2, held[9];
    apr_uint64_t rng = 42;
    int count[3] = { 0, 0, 0 }, i, idx;
    apr_time_t now = T0;
    rc_bal_t *b;

    (void)state_;
    b = mkbal(mkconf("p2c-ewma", "http://fast", "http://slow1",
                     "http://slow2", NULL));
    ewma_sample(b, 0, now - 10000, now);
    ewma_sample(b, 1, now - 100000, now);
    ewma_sample(b, 2, now - 100000, now);
    memset(&rq, 0, sizeof(rq));
    rq.rng = &rng;
    for (i = 0; i < 600; i++) {
        now += 1000;
        idx = rc_bal_pick(b, &rq, now, &t);
        assert_true(idx >= 0);
        count[idx]++;
        rc_bal_end(b, &t, now + (idx == 0 ? 10000 : 100000), RC_BAL_OK);
    }
    print_message("p2c picks: fast %d slow %d %d\n", count[0], count[1],
                  count[2]);
    /* fast wins whenever it is drawn (2/3 of the pairs) */
    assert_true(count[0] > 360);
    assert_true(count[1] > 60 && count[2] > 60);

    /* two members: always the cheaper, until in-flight tips it:
     * 10 ms x (n+1) vs 100 ms x 1 -> fast takes 9 held, then slow */
    b = mkbal(mkconf("p2c-ewma", "http://fast", "http://slow", NULL));
    ewma_sample(b, 0, T0 - 10000, T0);
    ewma_sample(b, 1, T0 - 100000, T0);
    for (i = 0; i < 8; i++) {
        assert_int_equal(rc_bal_pick(b, &rq, T0, &held[i]), 0);
    }
    assert_int_equal(rc_bal_pick(b, &rq, T0, &t), 0);       /* 9 x 10 < 100 */
    assert_int_equal(rc_bal_acquire(b, 0, T0, &held[8]), 0);
    assert_int_equal(inflight(b, 0), 10);
    /* fast: 10 ms x 11 > slow: 100 ms x 1 */
    assert_int_equal(rc_bal_pick(b, &rq, T0, &t2), 1);
    rc_bal_end(b, &t2, T0, RC_BAL_ABANDONED);
    rc_bal_end(b, &t, T0, RC_BAL_ABANDONED);
    assert_int_equal(inflight(b, 0), 9);
    assert_int_equal(inflight(b, 1), 0);
}

/* ------------------------------------------------------------------ */
/* Health.                                                               */

static void fail_at(rc_bal_t *b, int idx, apr_time_t now, int expect_ev)
{
    rc_bal_ticket_t t;

    assert_int_equal(rc_bal_acquire(b, idx, now, &t), idx);
    assert_int_equal(rc_bal_end(b, &t, now, RC_BAL_CONNECT_ERROR),
                     expect_ev);
}

/* Picks at @now until the trial lands on @idx; asserts it is a trial. */
static void trial_at(rc_bal_t *b, int idx, apr_time_t now,
                     rc_bal_outcome_e oc, int expect_ev)
{
    rc_bal_req_t rq = { NULL, 0, 0, NULL };
    rc_bal_ticket_t t, t2;
    int i;

    assert_int_equal(rc_bal_pick(b, &rq, now, &t), idx);
    assert_int_equal(t.trial, 1);
    /* while the trial is out, nobody else gets the member */
    for (i = 0; i < 10; i++) {
        assert_int_not_equal(rc_bal_pick(b, &rq, now, &t2), idx);
        rc_bal_end(b, &t2, now, RC_BAL_OK);
    }
    assert_int_equal(rc_bal_end(b, &t, now + 1000, oc), expect_ev);
}

static void test_passive_ejection(void **state_)
{
    rc_bal_conf_t *c;
    rc_bal_t *b;
    rc_bal_member_stats_t st;
    char out[32];
    int i;

    (void)state_;
    c = mkconf(NULL, "http://a", "http://b", "http://c", NULL);
    assert_null(rc_bal_eject_param(c, "fails=3"));
    assert_null(rc_bal_eject_param(c, "window=10s"));
    assert_null(rc_bal_eject_param(c, "cooldown=5s"));
    assert_null(rc_bal_eject_param(c, "max-cooldown=20s"));
    assert_null(rc_bal_eject_param(c, "streak=3"));
    b = mkbal(c);

    /* three failures spread over more than the window: no ejection */
    fail_at(b, 1, T0, 0);
    fail_at(b, 1, T0 + SEC(6), 0);
    fail_at(b, 1, T0 + SEC(11), 0);
    assert_int_equal(state(b, 1, T0 + SEC(11)), RC_BAL_ST_UP);
    /* 6, 11, 12 are within 10 s: ejected for 5 s */
    fail_at(b, 1, T0 + SEC(12), RC_BAL_EV_EJECTED);
    assert_int_equal(state(b, 1, T0 + SEC(12)), RC_BAL_ST_EJECTED);
    seq(b, 6, T0 + SEC(12), out);
    assert_null(strchr(out, 'b'));
    seq(b, 6, T0 + SEC(17) - 1, out);
    assert_null(strchr(out, 'b'));
    assert_int_equal(rc_bal_acquire(b, 1, T0 + SEC(13), &(rc_bal_ticket_t){0}),
                     RC_BAL_NONE);

    /* cooldown over: one trial; it fails -> 10 s */
    trial_at(b, 1, T0 + SEC(17), RC_BAL_TIMEOUT, RC_BAL_EV_EJECTED);
    seq(b, 6, T0 + SEC(27), out);
    assert_null(strchr(out, 'b'));
    /* fails again -> 20 s (the cap) */
    trial_at(b, 1, T0 + SEC(27) + 1000, RC_BAL_CONNECT_ERROR,
             RC_BAL_EV_EJECTED);
    assert_int_equal(rc_bal_member_stats(b, 1, T0 + SEC(28), &st), 0);
    assert_true(st.eject_until == T0 + SEC(27) + 1000 + 1000 + SEC(20));
    /* and again -> still 20 s */
    trial_at(b, 1, st.eject_until, RC_BAL_TIMEOUT, RC_BAL_EV_EJECTED);
    assert_int_equal(rc_bal_member_stats(b, 1, T0 + SEC(60), &st), 0);
    assert_int_equal(st.ejections, 4);
    assert_int_equal(st.eject_level, 4);
    /* success: recovered, backoff level kept until a streak of 3 */
    trial_at(b, 1, st.eject_until, RC_BAL_OK, RC_BAL_EV_RECOVERED);
    assert_int_equal(state(b, 1, T0 + SEC(100)), RC_BAL_ST_UP);
    seq(b, 3, T0 + SEC(100), out);
    assert_non_null(strchr(out, 'b'));
    assert_int_equal(rc_bal_member_stats(b, 1, T0 + SEC(100), &st), 0);
    assert_int_equal(st.eject_level, 4);
    for (i = 0; i < 3; i++) {
        ewma_sample(b, 1, T0 + SEC(100), T0 + SEC(100));
    }
    assert_int_equal(rc_bal_member_stats(b, 1, T0 + SEC(100), &st), 0);
    assert_int_equal(st.eject_level, 0);
    assert_int_equal(st.failures, 7);
    assert_int_equal(st.timeouts, 2);

    /* next ejection starts at 5 s again */
    fail_at(b, 1, T0 + SEC(200), 0);
    fail_at(b, 1, T0 + SEC(200), 0);
    fail_at(b, 1, T0 + SEC(200), RC_BAL_EV_EJECTED);
    assert_int_equal(rc_bal_member_stats(b, 1, T0 + SEC(200), &st), 0);
    assert_true(st.eject_until == T0 + SEC(205));
    /* an abandoned trial frees the trial for the next request */
    {
        rc_bal_req_t rq = { NULL, 0, 0, NULL };
        rc_bal_ticket_t t;

        assert_int_equal(rc_bal_pick(b, &rq, T0 + SEC(205), &t), 1);
        assert_int_equal(rc_bal_end(b, &t, T0 + SEC(205), RC_BAL_ABANDONED),
                         0);
        assert_int_equal(rc_bal_pick(b, &rq, T0 + SEC(205), &t), 1);
        assert_int_equal(t.trial, 1);
        rc_bal_end(b, &t, T0 + SEC(205), RC_BAL_OK);
    }
    /* 5xx counts only with 5xx=on (default off) */
    for (i = 0; i < 5; i++) {
        rc_bal_ticket_t t;

        assert_int_equal(rc_bal_acquire(b, 0, T0 + SEC(300), &t), 0);
        assert_int_equal(rc_bal_end(b, &t, T0 + SEC(300), RC_BAL_HTTP_5XX),
                         0);
    }
    assert_int_equal(state(b, 0, T0 + SEC(300)), RC_BAL_ST_UP);
}

/* Every member ejected: panic uses them anyway (default), spread at
 * random; a panic pick's success recovers its member, its failure does
 * not lengthen the cooldown; panic=off answers RC_BAL_NONE. */
static void test_panic(void **state_)
{
    rc_bal_req_t rq = { NULL, 0, 0, NULL };
    rc_bal_member_stats_t st0, st1, st;
    rc_bal_ticket_t t;
    rc_bal_conf_t *c;
    rc_bal_t *b;
    int i, idx, n[2] = { 0, 0 };
    char out[16];

    (void)state_;
    c = mkconf(NULL, "http://a", "http://b", NULL);
    assert_null(rc_bal_eject_param(c, "fails=1"));
    assert_null(rc_bal_eject_param(c, "cooldown=5s"));
    assert_null(rc_bal_eject_param(c, "max-cooldown=20s"));
    assert_string_equal(rc_bal_eject_param(c, "panic=maybe"),
                        "RevBalancerEject: panic must be on or off");
    b = mkbal(c);
    fail_at(b, 0, T0, RC_BAL_EV_EJECTED);
    fail_at(b, 1, T0, RC_BAL_EV_EJECTED);
    assert_int_equal(rc_bal_member_stats(b, 0, T0, &st0), 0);
    assert_int_equal(rc_bal_member_stats(b, 1, T0, &st1), 0);

    /* spread over both, as panic picks */
    for (i = 0; i < 200; i++) {
        idx = rc_bal_pick(b, &rq, T0 + SEC(1), &t);
        assert_true(idx == 0 || idx == 1);
        assert_int_equal(t.trial, RC_BAL_PANIC);
        n[idx]++;
        rc_bal_end(b, &t, T0 + SEC(1), RC_BAL_ABANDONED);
    }
    assert_true(n[0] > 50 && n[1] > 50);
    /* both excluded: nothing */
    rq.exclude = 3;
    assert_int_equal(rc_bal_pick(b, &rq, T0 + SEC(1), &t), RC_BAL_NONE);
    rq.exclude = 2;
    assert_int_equal(rc_bal_pick(b, &rq, T0 + SEC(1), &t), 0);
    rc_bal_end(b, &t, T0 + SEC(1), RC_BAL_ABANDONED);
    rq.exclude = 0;

    /* a failed panic pick: no new ejection, cooldown unchanged */
    idx = rc_bal_pick(b, &rq, T0 + SEC(2), &t);
    assert_true(idx >= 0);
    assert_int_equal(rc_bal_end(b, &t, T0 + SEC(2), RC_BAL_CONNECT_ERROR), 0);
    assert_int_equal(rc_bal_member_stats(b, idx, T0 + SEC(2), &st), 0);
    assert_true(st.eject_until == (idx ? st1.eject_until : st0.eject_until));
    assert_int_equal(st.eject_level, 1);
    assert_int_equal(st.state, RC_BAL_ST_EJECTED);

    /* a successful one brings its member back; the other stays out */
    idx = rc_bal_pick(b, &rq, T0 + SEC(3), &t);
    assert_true(idx >= 0);
    assert_int_equal(rc_bal_end(b, &t, T0 + SEC(3), RC_BAL_OK),
                     RC_BAL_EV_RECOVERED);
    assert_int_equal(state(b, idx, T0 + SEC(3)), RC_BAL_ST_UP);
    assert_int_equal(state(b, !idx, T0 + SEC(3)), RC_BAL_ST_EJECTED);
    seq(b, 6, T0 + SEC(3), out);
    assert_string_equal(out, idx ? "bbbbbb" : "aaaaaa");
    assert_int_equal(rc_bal_member_stats(b, 0, T0 + SEC(3), &st0), 0);
    assert_int_equal(rc_bal_member_stats(b, 1, T0 + SEC(3), &st1), 0);
    assert_int_equal(st0.panic_picks + st1.panic_picks, 200 + 1 + 2);

    /* panic=off: every member ejected is RC_BAL_NONE */
    c = mkconf(NULL, "http://a", "http://b", NULL);
    assert_null(rc_bal_eject_param(c, "fails=1"));
    assert_null(rc_bal_eject_param(c, "panic=off"));
    b = mkbal(c);
    fail_at(b, 0, T0, RC_BAL_EV_EJECTED);
    fail_at(b, 1, T0, RC_BAL_EV_EJECTED);
    assert_int_equal(rc_bal_pick(b, &rq, T0 + SEC(1), &t), RC_BAL_NONE);
}

static void test_active_health(void **state_)
{
    rc_bal_t *b;
    char out[16];

    (void)state_;
    b = mkbal(mkconf(NULL, "http://a", "http://b", NULL));
    assert_int_equal(rc_bal_report_probe(b, 0, 0, T0), 0);
    assert_int_equal(rc_bal_report_probe(b, 0, 0, T0), 0);
    assert_int_equal(rc_bal_report_probe(b, 0, 1, T0), 0);   /* resets */
    assert_int_equal(rc_bal_report_probe(b, 0, 0, T0), 0);
    assert_int_equal(rc_bal_report_probe(b, 0, 0, T0), 0);
    assert_int_equal(rc_bal_report_probe(b, 0, 0, T0), RC_BAL_EV_DOWN);
    assert_int_equal(rc_bal_report_probe(b, 0, 0, T0), 0);
    assert_int_equal(state(b, 0, T0), RC_BAL_ST_DOWN);
    seq(b, 4, T0, out);
    assert_string_equal(out, "bbbb");
    assert_int_equal(rc_bal_report_probe(b, 0, 1, T0), 0);
    assert_int_equal(rc_bal_report_probe(b, 0, 0, T0), 0);
    assert_int_equal(rc_bal_report_probe(b, 0, 1, T0), 0);
    assert_int_equal(rc_bal_report_probe(b, 0, 1, T0), RC_BAL_EV_UP);
    assert_int_equal(rc_bal_report_probe(b, 0, 1, T0), 0);
    seq(b, 4, T0, out);
    assert_string_equal(out, "abab");
}

static void test_slow_start(void **state_)
{
    rc_bal_member_stats_t st;
    rc_bal_conf_t *c;
    rc_bal_t *b;
    char out[128];
    int i, na;

    (void)state_;
    c = mkconf(NULL, "http://a", "http://b", NULL);
    c->slow_start = SEC(10);
    assert_null(rc_bal_eject_param(c, "fails=1"));
    b = mkbal(c);
    assert_int_equal(rc_bal_slow_start_pct(b, 0, T0), 100);
    /* down by probes, back at T0 + 1 s */
    for (i = 0; i < 3; i++) {
        rc_bal_report_probe(b, 0, 0, T0);
    }
    rc_bal_report_probe(b, 0, 1, T0 + SEC(1) - 1);
    assert_int_equal(rc_bal_report_probe(b, 0, 1, T0 + SEC(1)),
                     RC_BAL_EV_UP);
    assert_int_equal(rc_bal_slow_start_pct(b, 0, T0 + SEC(1)), 10);
    assert_int_equal(rc_bal_slow_start_pct(b, 0, T0 + SEC(3.5)), 32);
    assert_int_equal(rc_bal_slow_start_pct(b, 0, T0 + SEC(6)), 55);
    assert_int_equal(rc_bal_slow_start_pct(b, 0, T0 + SEC(10)), 91);
    assert_int_equal(rc_bal_slow_start_pct(b, 0, T0 + SEC(11)), 100);
    assert_int_equal(rc_bal_slow_start_pct(b, 0, T0 + SEC(50)), 100);
    assert_int_equal(rc_bal_member_stats(b, 0, T0 + SEC(6), &st), 0);
    assert_near(st.eff_weight, 0.55, 1e-9);

    /* at 10 %: a gets 10 of every 110 picks (smooth WRR on 10:100) */
    seq(b, 110, T0 + SEC(1), out);
    for (i = 0, na = 0; out[i]; i++) {
        na += out[i] == 'a';
    }
    assert_int_equal(na, 10);
    /* at 55 %: 55 of 155 -> of 31 picks, 11 */
    seq(b, 31, T0 + SEC(6), out);
    for (i = 0, na = 0; out[i]; i++) {
        na += out[i] == 'a';
    }
    assert_true(na >= 10 && na <= 12);

    /* passive ejection + trial success starts the ramp too */
    fail_at(b, 1, T0 + SEC(20), RC_BAL_EV_EJECTED);
    trial_at(b, 1, T0 + SEC(25), RC_BAL_OK, RC_BAL_EV_RECOVERED);
    assert_int_equal(rc_bal_slow_start_pct(b, 1, T0 + SEC(25) + 1000), 10);
    assert_int_equal(rc_bal_slow_start_pct(b, 1, T0 + SEC(30) + 1000), 55);
}

/* ------------------------------------------------------------------ */
/* max=N, backup, sticky, exclusion.                                     */

static void test_max_and_backup(void **state_)
{
    rc_bal_req_t rq = { NULL, 0, 0, NULL };
    rc_bal_ticket_t t[8];
    rc_bal_t *b;
    char out[16];

    (void)state_;
    b = mkbal(mkconf(NULL, "http://a max=1", "http://b max=2", NULL));
    assert_true(rc_bal_pick(b, &rq, T0, &t[0]) >= 0);
    assert_true(rc_bal_pick(b, &rq, T0, &t[1]) >= 0);
    assert_true(rc_bal_pick(b, &rq, T0, &t[2]) >= 0);
    assert_int_equal(rc_bal_pick(b, &rq, T0, &t[3]), RC_BAL_FULL);
    assert_int_equal(t[3].member, -1);
    assert_int_equal(inflight(b, 0), 1);
    assert_int_equal(inflight(b, 1), 2);
    assert_int_equal(rc_bal_acquire(b, 0, T0, &t[4]), RC_BAL_FULL);
    rc_bal_end(b, &t[1], T0, RC_BAL_OK);
    rc_bal_end(b, &t[1], T0, RC_BAL_OK);        /* twice: no effect */
    assert_true(rc_bal_pick(b, &rq, T0, &t[1]) >= 0);
    assert_int_equal(rc_bal_pick(b, &rq, T0, &t[3]), RC_BAL_FULL);

    /* backup: idle while a primary is usable, used when none is */
    b = mkbal(mkconf(NULL, "http://a", "http://b", "http://c status=backup",
                     NULL));
    seq(b, 6, T0, out);
    assert_string_equal(out, "ababab");
    assert_int_equal(state(b, 2, T0), RC_BAL_ST_BACKUP);
    rc_bal_set_flags(b, 0, RC_BAL_F_DISABLED);
    seq(b, 2, T0, out);
    assert_string_equal(out, "bb");
    rc_bal_set_flags(b, 1, RC_BAL_F_DRAIN);
    seq(b, 3, T0, out);
    assert_string_equal(out, "ccc");
    /* sticky to the backup only while no primary */
    assert_int_equal(rc_bal_acquire(b, 2, T0, &t[0]), 2);
    rc_bal_end(b, &t[0], T0, RC_BAL_OK);
    /* retries: exclude the backup too -> nothing left */
    rq.exclude = 1u << 2;
    assert_int_equal(rc_bal_pick(b, &rq, T0, &t[0]), RC_BAL_NONE);
    rq.exclude = 0;
    rc_bal_set_flags(b, 0, 0);
    seq(b, 2, T0, out);
    assert_string_equal(out, "aa");
    assert_int_equal(rc_bal_acquire(b, 2, T0, &t[0]), RC_BAL_NONE);

    /* primaries full: spill to the backup, then FULL */
    b = mkbal(mkconf(NULL, "http://a max=1", "http://c status=backup max=1",
                     NULL));
    assert_int_equal(rc_bal_pick(b, &rq, T0, &t[0]), 0);
    assert_int_equal(rc_bal_pick(b, &rq, T0, &t[1]), 1);
    assert_int_equal(rc_bal_pick(b, &rq, T0, &t[2]), RC_BAL_FULL);
    /* everything disabled: NONE, not FULL */
    rc_bal_set_flags(b, 0, RC_BAL_F_DISABLED);
    rc_bal_set_flags(b, 1, RC_BAL_F_DISABLED);
    assert_int_equal(rc_bal_pick(b, &rq, T0, &t[2]), RC_BAL_NONE);
}

static void test_sticky_and_exclude(void **state_)
{
    rc_bal_req_t rq = { NULL, 0, 0, NULL };
    rc_bal_ticket_t t;
    rc_bal_conf_t *c;
    rc_bal_t *b;
    int i, idx, m;

    (void)state_;
    c = mkconf("least-conn", "http://a route=r1", "http://b route=r2",
               "http://c route=r3 max=1", "http://d", NULL);
    b = mkbal(c);
    assert_int_equal(rc_bal_route_find(b, "r2", 2), 1);
    assert_int_equal(rc_bal_route_find(b, "r22", 2), 1);     /* length */
    assert_int_equal(rc_bal_route_find(b, "r", 1), -1);
    assert_int_equal(rc_bal_route_find(b, NULL, 0), -1);
    assert_int_equal(rc_bal_route_find(b, ((rc_bal_member_conf_t *)
                                           c->members->elts)[3].route, 8),
                     3);
    /* drain: no new sessions, sticky ones still served */
    rc_bal_set_flags(b, 1, RC_BAL_F_DRAIN);
    for (i = 0; i < 12; i++) {
        assert_int_not_equal(pick1(b, T0), 1);
    }
    assert_int_equal(state(b, 1, T0), RC_BAL_ST_DRAINING);
    assert_int_equal(rc_bal_acquire(b, 1, T0, &t), 1);
    rc_bal_end(b, &t, T0, RC_BAL_OK);
    /* disabled / down: no */
    rc_bal_set_flags(b, 1, RC_BAL_F_DISABLED);
    assert_int_equal(rc_bal_acquire(b, 1, T0, &t), RC_BAL_NONE);
    rc_bal_set_flags(b, 1, 0);
    for (i = 0; i < 3; i++) {
        rc_bal_report_probe(b, 1, 0, T0);
    }
    assert_int_equal(rc_bal_acquire(b, 1, T0, &t), RC_BAL_NONE);
    assert_int_equal(rc_bal_acquire(b, 9, T0, &t), RC_BAL_NONE);

    /* retry masks: each pick avoids every member tried so far */
    rq.exclude = 0;
    for (i = 0; i < 3; i++) {
        idx = rc_bal_pick(b, &rq, T0, &t);
        assert_true(idx >= 0 && idx != 1);
        assert_true(!(rq.exclude & (APR_UINT64_C(1) << idx)));
        rq.exclude |= APR_UINT64_C(1) << idx;
        rc_bal_end(b, &t, T0, RC_BAL_CONNECT_ERROR);
    }
    assert_int_equal(rc_bal_pick(b, &rq, T0, &t), RC_BAL_NONE);
    /* exclusion works for every method */
    for (m = RC_BAL_RR; m <= RC_BAL_P2C; m++) {
        rc_bal_conf_t *c2 = mkconf(NULL, "http://a", "http://b", "http://c",
                                   NULL);
        apr_uint64_t rng = 7;

        c2->method = m;
        b = mkbal(c2);
        rq.key = "k";
        rq.key_len = 1;
        rq.rng = &rng;
        for (i = 0; i < 20; i++) {
            rq.exclude = APR_UINT64_C(1) << (i % 3);
            idx = rc_bal_pick(b, &rq, T0, &t);
            assert_true(idx >= 0 && idx != i % 3);
            rc_bal_end(b, &t, T0, RC_BAL_OK);
        }
        rq.exclude = 7;
        assert_int_equal(rc_bal_pick(b, &rq, T0, &t), RC_BAL_NONE);
    }
}

/* ------------------------------------------------------------------ */
/* Shared memory: re-attach, concurrency, robustness.                    */

static void test_reattach(void **state_)
{
    const rc_bal_conf_t *cs[1];
    rc_bal_conf_t *c1, *c2;
    rc_bal_ticket_t t, t2;
    rc_bal_t *b, *b2;
    apr_size_t size;
    void *area;
    int reused = -1;

    (void)state_;
    c1 = mkconf(NULL, "http://a", "http://b", NULL);
    assert_null(rc_bal_conf_check(pool, c1));
    size = 64 * 1024;
    area = shared_area(size);
    b = attach_in(c1, area, size, &reused);
    assert_int_equal(reused, 0);
    fail_at(b, 1, T0, 0);
    fail_at(b, 1, T0, 0);
    fail_at(b, 1, T0, RC_BAL_EV_EJECTED);
    assert_int_equal(rc_bal_acquire(b, 0, T0, &t), 0);

    /* graceful restart, same layout: state kept, weights refreshed */
    c2 = mkconf(NULL, "http://a weight=2", "http://b", NULL);
    assert_null(rc_bal_conf_check(pool, c2));
    b2 = attach_in(c2, area, size, &reused);
    assert_int_equal(reused, 1);
    assert_int_equal(state(b2, 1, T0), RC_BAL_ST_EJECTED);
    assert_int_equal(inflight(b2, 0), 1);
    rc_bal_end(b, &t, T0, RC_BAL_OK);           /* old child's ticket */
    assert_int_equal(inflight(b2, 0), 0);

    /* layout changed: fresh state, old tickets ignored */
    assert_int_equal(rc_bal_acquire(b, 0, T0, &t), 0);
    c2 = mkconf(NULL, "http://a", "http://b", "http://c", NULL);
    assert_null(rc_bal_conf_check(pool, c2));
    b2 = attach_in(c2, area, size, &reused);
    assert_int_equal(reused, 0);
    assert_int_equal(state(b2, 1, T0), RC_BAL_ST_UP);
    assert_int_equal(rc_bal_acquire(b2, 0, T0, &t2), 0);
    rc_bal_end(b, &t, T0, RC_BAL_OK);
    assert_int_equal(inflight(b2, 0), 1);
    rc_bal_end(b2, &t2, T0, RC_BAL_OK);
    assert_int_equal(inflight(b2, 0), 0);

    /* too small / misaligned */
    cs[0] = c2;
    assert_int_equal(rc_bal_shm_attach(pool, area, rc_bal_shm_size(cs, 1) - 1,
                                       cs, 1, 1, &b2, NULL), APR_EINVAL);
    assert_int_equal(rc_bal_shm_attach(pool, (char *)area + 8, size - 8,
                                       cs, 1, 1, &b2, NULL), APR_EINVAL);
}

#define STRESS_PROCS   3
#define STRESS_THREADS 3

typedef struct {
    rc_bal_t *b;
    volatile apr_uint32_t *violations;
    volatile apr_uint32_t *served;
    apr_time_t until;
    int max[4];
    apr_uint64_t rng;
} stress_arg_t;

static apr_time_t mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (apr_time_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *stress_thread(void *arg)
{
    stress_arg_t *a = arg;
    rc_bal_req_t rq = { NULL, 0, 0, NULL };
    rc_bal_ticket_t t;
    rc_bal_member_stats_t st;
    char key[16];
    apr_time_t now;
    int idx, n = 0;

    rq.rng = &a->rng;
    rq.key = key;
    while ((now = mono_now()) < a->until) {
        rq.key_len = (apr_size_t)snprintf(key, sizeof(key), "k%d", n++ % 50);
        idx = (n % 4 == 0) ? rc_bal_acquire(a->b, n % 3, now, &t)
                           : rc_bal_pick(a->b, &rq, now, &t);
        if (idx < 0) {
            continue;
        }
        rc_bal_member_stats(a->b, idx, now, &st);
        if (st.inflight > (apr_uint32_t)a->max[idx] || st.inflight == 0) {
            __atomic_add_fetch(a->violations, 1, __ATOMIC_RELAXED);
        }
        __atomic_add_fetch(a->served, 1, __ATOMIC_RELAXED);
        if (n % 8 == 0) {
            sched_yield();
        }
        rc_bal_end(a->b, &t, mono_now(), RC_BAL_OK);
        if (n % 100 == 0) {
            rc_bal_report_probe(a->b, n % 3, 1, now);
        }
    }
    return NULL;
}

static void stress(int method)
{
    volatile apr_uint32_t *shm = shared_area(4096);
    rc_bal_conf_t *c = mkconf(NULL, "http://a max=2", "http://b max=3",
                              "http://c max=1", NULL);
    rc_bal_t *b;
    pid_t pids[STRESS_PROCS];
    apr_time_t until;
    int p, i, st;

    c->method = method;
    b = mkbal(c);
    until = mono_now() + 250000;
    for (p = 0; p < STRESS_PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            pthread_t th[STRESS_THREADS];
            stress_arg_t args[STRESS_THREADS];

            for (i = 0; i < STRESS_THREADS; i++) {
                args[i].b = b;
                args[i].violations = &shm[0];
                args[i].served = &shm[1];
                args[i].until = until;
                args[i].max[0] = 2;
                args[i].max[1] = 3;
                args[i].max[2] = 1;
                args[i].rng = (apr_uint64_t)(p * 100 + i);
                if (pthread_create(&th[i], NULL, stress_thread, &args[i])) {
                    _exit(2);
                }
            }
            for (i = 0; i < STRESS_THREADS; i++) {
                pthread_join(th[i], NULL);
            }
            _exit(0);
        }
    }
    for (p = 0; p < STRESS_PROCS; p++) {
        assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    print_message("stress %s: %u served, %u violations\n",
                  rc_bal_method_name(method), shm[1], shm[0]);
    assert_int_equal(shm[0], 0);
    assert_true(shm[1] > 100);
    for (i = 0; i < 3; i++) {
        assert_int_equal(inflight(b, i), 0);
    }
    assert_int_equal(rc_bal_reap(b), 0);    /* nothing leaked */
}

static void test_max_across_processes(void **state_)
{
    int m;

    (void)state_;
    for (m = RC_BAL_RR; m <= RC_BAL_P2C; m++) {
        stress(m);
    }
}

static void kill_holder(rc_bal_t *b, int idx)
{
    int fds[2], st;
    char ch;
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (rc_bal_debug_hold_lock(b, idx) != APR_SUCCESS) {
            _exit(1);
        }
        if (write(fds[1], "x", 1) != 1) {
            _exit(1);
        }
        for (;;) {
            pause();
        }
    }
    assert_int_equal(read(fds[0], &ch, 1), 1);
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    close(fds[0]);
    close(fds[1]);
}

static void test_killed_lock_holder(void **state_)
{
    rc_bal_info_t info;
    rc_bal_t *b;
    char out[16];

    (void)state_;
    alarm(20);                  /* a wedge fails the test, not the run */
    b = mkbal(mkconf(NULL, "http://a weight=5", "http://b weight=1",
                     "http://c weight=1", NULL));
    seq(b, 3, T0, out);
    kill_holder(b, -1);
    /* the next locker repairs (restarts the sequence) and goes on */
    seq(b, 7, T0, out);
    assert_string_equal(out, "aabacaa");
    rc_bal_info(b, &info);
    assert_int_equal(info.lock_recoveries, 1);
    kill_holder(b, 0);
    fail_at(b, 0, T0, 0);
    assert_int_equal(rc_bal_report_probe(b, 0, 1, T0), 0);
    rc_bal_info(b, &info);
    assert_int_equal(info.lock_recoveries, 2);
    seq(b, 7, T0, out);
    assert_string_equal(out, "aabacaa");
    alarm(0);
}

/* A child SIGKILLed while holding reservations: max=N members stay full
 * until rc_bal_reap() gives its holdings back. */
static void test_reap_dead_holders(void **state_)
{
    rc_bal_req_t rq = { NULL, 0, 0, NULL };
    rc_bal_ticket_t mine, t;
    rc_bal_info_t info;
    int fds[2], st, i;
    char ch;
    pid_t pid;
    rc_bal_t *b;

    (void)state_;
    b = mkbal(mkconf("least-conn", "http://a max=2", "http://b max=2",
                     NULL));
    assert_true(rc_bal_pick(b, &rq, T0, &mine) >= 0);
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (i = 0; i < 3; i++) {
            if (rc_bal_pick(b, &rq, T0, &t) < 0) {
                _exit(1);
            }
        }
        if (write(fds[1], "x", 1) != 1) {
            _exit(1);
        }
        for (;;) {
            pause();
        }
    }
    assert_int_equal(read(fds[0], &ch, 1), 1);
    assert_int_equal(rc_bal_pick(b, &rq, T0, &t), RC_BAL_FULL);
    assert_int_equal(rc_bal_reap(b), 0);                /* still alive */
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    close(fds[0]);
    close(fds[1]);
    assert_int_equal(rc_bal_pick(b, &rq, T0, &t), RC_BAL_FULL);
    rc_bal_info(b, &info);
    assert_int_equal(info.slots_used, 2);
    assert_int_equal(rc_bal_reap(b), 3);
    assert_int_equal(inflight(b, 0) + inflight(b, 1), 1);  /* ours */
    rc_bal_info(b, &info);
    assert_int_equal(info.reaped, 3);
    assert_int_equal(info.slots_used, 1);
    assert_int_equal(rc_bal_reap(b), 0);
    assert_true(rc_bal_pick(b, &rq, T0, &t) >= 0);
    rc_bal_end(b, &t, T0, RC_BAL_OK);
    rc_bal_end(b, &mine, T0, RC_BAL_OK);
    assert_int_equal(inflight(b, 0) + inflight(b, 1), 0);

    /* a clean exit frees its slot itself */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (rc_bal_pick(b, &rq, T0, &t) < 0) {
            _exit(1);
        }
        rc_bal_end(b, &t, T0, RC_BAL_OK);
        rc_bal_child_exit(b);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    rc_bal_info(b, &info);
    assert_int_equal(info.slots_used, 1);
    assert_int_equal(rc_bal_reap(b), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_parse),
        cmocka_unit_test(test_rr_smooth),
        cmocka_unit_test(test_rr_across_processes),
        cmocka_unit_test(test_least_conn),
        cmocka_unit_test(test_hash_distribution),
        cmocka_unit_test(test_hash_minimal_movement),
        cmocka_unit_test(test_hash_bounded_load),
        cmocka_unit_test(test_ewma_math),
        cmocka_unit_test(test_ewma_member),
        cmocka_unit_test(test_p2c),
        cmocka_unit_test(test_passive_ejection),
        cmocka_unit_test(test_panic),
        cmocka_unit_test(test_active_health),
        cmocka_unit_test(test_slow_start),
        cmocka_unit_test(test_max_and_backup),
        cmocka_unit_test(test_sticky_and_exclude),
        cmocka_unit_test(test_reattach),
        cmocka_unit_test(test_max_across_processes),
        cmocka_unit_test(test_killed_lock_holder),
        cmocka_unit_test(test_reap_dead_holders),
    };
    int rv;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rv = cmocka_run_group_tests_name("balancer", tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rv;
}
