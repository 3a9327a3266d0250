/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * balancer.c -- mod_revcache's load balancer core (APR + POSIX only).
 *
 * OWNS
 *   - member selection: smooth weighted round-robin, weighted least-conn,
 *     consistent hashing with bounded load, p2c over peak-EWMA latency;
 *   - member health in shared memory: passive ejection with exponential
 *     backoff and a half-open trial, active probe thresholds, slow start,
 *     max=N in-flight caps, backup tier, drain, stickiness by route id;
 *   (validation of the directive arguments lives in balancer_conf.c).
 * DOES NOT OWN
 *   cookies, headers, the prober's I/O, logging, retries themselves (the
 *   glue does them; the core returns RC_BAL_EV_* so the glue can log, and
 *   takes an exclusion mask so the glue can retry elsewhere).
 *
 * SHARED STATE (one area, carved by the glue from its anonymous shared
 * mapping in post_config and inherited by every forked child):
 *
 *   rc_bal_seg_sh_t       {magic, version, size, generation, epoch,
 *                          fingerprint}; epoch changes only when the area
 *                          is (re)initialised, tickets carry it.
 *   per balancer:
 *     rc_bal_sh_t         bal lock (robust), least-conn cursor, counters
 *     rc_bal_member_sh_t  x n, one cache line aligned slot each
 *
 *   No pointers live in shared memory: the process-local rc_bal_t holds
 *   the addresses, the config, and the hash ring (built from the config,
 *   so every process computes the same ring; it is read-only).
 *
 * WHO WRITES WHAT
 *   - atomics, any process, no lock: inflight (CAS reservation: never
 *     above max), per-process counts[slot][member], the pid slots, the
 *     counters, flags (admin), eject_level (read), the
 *     fields pick reads (health, eject_until, trial_at, recovered_at,
 *     ewma_bits/ewma_at are written under the member lock but stored
 *     atomically so pick reads them lock-free).
 *   - bal lock: rr_current of every member (smooth WRR needs them all at
 *     once).  Held for one O(n) loop plus a CAS.
 *   - member lock: the passive-health window (fail_ts ring), streak,
 *     probe counters, EWMA read-modify-write, state transitions.
 *   Both locks are PTHREAD_PROCESS_SHARED + PTHREAD_MUTEX_ROBUST: a
 *   process killed inside a critical section hands EOWNERDEAD to the next
 *   locker, which repairs what the lock guards (zeroes rr_current, clamps
 *   the fail ring) and marks the mutex consistent.  Critical sections do
 *   no I/O, no allocation, no logging.
 *
 * LIFETIMES
 *   rc_bal_t and the ring live in the pool given to rc_bal_shm_attach()
 *   (pconf): rebuilt on every (graceful) restart.  The shared area lives
 *   as long as the glue keeps it; re-attaching an unchanged layout keeps
 *   health, EWMA, counters and in-flight counts (old-generation children
 *   still end their tickets into the same slots).  A changed layout is
 *   reinitialised with a new epoch; tickets of the old epoch are ignored.
 *   A process killed between pick and end would leak its reservations:
 *   each reservation is also counted per process (a pid slot table in the
 *   area, claimed on a process's first pick), and rc_bal_reap(), called
 *   periodically by the glue, gives a dead pid's counts back.
 */

#include "balancer.h"
#include "procid.h"

#include <apr_strings.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Atomics.  GCC/Clang __atomic builtins rather than apr_atomic_*: APR's
 * 64-bit atomics fall back to a process-local mutex on some builds, which
 * would be wrong in memory shared between processes.  These are lock-free
 * on every target we build for (checked at compile time below).          */

#define RC_LD(p)        __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define RC_ST(p, v)     __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define RC_ADD(p, v)    __atomic_add_fetch((p), (v), __ATOMIC_ACQ_REL)
#define RC_OR(p, v)     __atomic_fetch_or((p), (v), __ATOMIC_ACQ_REL)
#define RC_AND(p, v)    __atomic_fetch_and((p), (v), __ATOMIC_ACQ_REL)
#define RC_CAS(p, e, d) __atomic_compare_exchange_n((p), (e), (d), 0, \
                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

#if !defined(__GCC_ATOMIC_LLONG_LOCK_FREE) || __GCC_ATOMIC_LLONG_LOCK_FREE != 2
#error "balancer.c needs lock-free 64-bit atomics"
#endif

/* ------------------------------------------------------------------ */
/* Shared-memory layout.                                                 */

#define RC_BAL_SEG_MAGIC    0x52434253u   /* "RCBS" */
#define RC_BAL_SH_MAGIC     0x5243424cu   /* "RCBL" */
#define RC_BAL_HT_MAGIC     0x52434248u   /* "RCBH": process-local handle */
#define RC_BAL_SHM_VERSION  2u   /* 2: panic picks counter */
#define RC_BAL_ALIGN        64
#define RC_ALIGN_UP(x)      (((x) + RC_BAL_ALIGN - 1) \
                             & ~(apr_size_t)(RC_BAL_ALIGN - 1))

#define RC_BAL_H_EJECTED    0x01u   /* passive health */
#define RC_BAL_H_DOWN       0x02u   /* active health */

#define RC_BAL_RING_MAX     (1u << 18)
#define RC_BAL_LEVEL_MAX    30u

#define RC_GOLDEN           APR_UINT64_C(0x9E3779B97F4A7C15)
#define BIT(i)              (APR_UINT64_C(1) << (i))

typedef struct {
    apr_uint32_t magic;
    apr_uint32_t version;
    apr_uint64_t size;          /* bytes laid out (rc_bal_shm_size) */
    apr_uint32_t generation;    /* httpd generation of the last attach */
    apr_uint32_t epoch;         /* bumped on every (re)initialisation */
    apr_uint64_t fingerprint;   /* balancer names + member URLs */
    apr_uint32_t nbal;
    apr_uint32_t pad;
    apr_uint64_t rng;           /* shared splitmix sequence */
} rc_bal_seg_sh_t;

typedef struct {
    apr_uint32_t magic;
    apr_uint32_t nmembers;
    apr_uint32_t cursor;        /* least-conn tie rotation */
    apr_uint32_t pad;
    apr_uint64_t lock_recoveries;
    apr_uint64_t lock_errors;
    apr_uint64_t reaped;        /* in-flight slots taken back from the dead */
    pthread_mutex_t lock;       /* guards every member's rr_current */
} rc_bal_sh_t;

typedef struct {
    pthread_mutex_t lock;       /* guards the "member lock" fields */
    /* atomics */
    apr_uint32_t inflight;
    apr_uint32_t flags;         /* RC_BAL_F_* */
    apr_uint32_t health;        /* RC_BAL_H_* */
    apr_uint32_t eject_level;   /* ejections since the last streak */
    apr_int64_t eject_until;
    apr_int64_t trial_at;       /* half-open trial claimed at, 0: none */
    apr_int64_t recovered_at;   /* slow start origin, 0: none */
    apr_uint64_t ewma_bits;     /* double, microseconds */
    apr_int64_t ewma_at;        /* 0: no sample yet */
    apr_uint64_t requests;
    apr_uint64_t failures;
    apr_uint64_t timeouts;
    apr_uint64_t connect_errors;
    apr_uint64_t http_5xx;
    apr_uint64_t ejections;
    apr_uint64_t full_skips;
    apr_uint64_t panic_picks;
    /* bal lock */
    apr_int64_t rr_current;
    /* member lock */
    apr_uint32_t streak;
    apr_uint32_t probe_fails;
    apr_uint32_t probe_passes;
    apr_uint32_t fail_pos;
    apr_uint32_t fail_count;
    apr_uint32_t pad;
    apr_int64_t fail_ts[RC_BAL_MAX_EJECT_FAILS];
} rc_bal_member_sh_t;

/*
 * Layout: [seg header][slot pids: RC_BAL_SLOTS x u32] then per balancer
 * [rc_bal_sh_t][n x rc_bal_member_sh_t][RC_BAL_SLOTS x n x u32 counts].
 * counts[slot][member] is what the process in that slot holds in flight;
 * rc_bal_reap() gives a dead process's holdings back.
 */
#define RC_SEG_BYTES    RC_ALIGN_UP(sizeof(rc_bal_seg_sh_t))
#define RC_HEAD_BYTES   (RC_SEG_BYTES \
                         + RC_ALIGN_UP(RC_BAL_SLOTS * sizeof(apr_uint32_t)))
#define RC_BAL_BYTES    RC_ALIGN_UP(sizeof(rc_bal_sh_t))
#define RC_MEM_BYTES    RC_ALIGN_UP(sizeof(rc_bal_member_sh_t))
#define RC_CNT_BYTES(n) RC_ALIGN_UP((apr_size_t)RC_BAL_SLOTS * (n) \
                                    * sizeof(apr_uint32_t))
#define RC_SPAN(n)      (RC_BAL_BYTES + (apr_size_t)(n) * RC_MEM_BYTES \
                         + RC_CNT_BYTES(n))
#define RC_SLOT_REAPING 0xffffffffu

/* One point on the hash ring (process-local). */
typedef struct {
    apr_uint64_t point;
    apr_uint32_t member;
    apr_uint32_t pad;
} rc_bal_vnode_t;

struct rc_bal_t {
    apr_uint32_t magic;
    int n;
    int method;
    const rc_bal_conf_t *conf;
    rc_bal_seg_sh_t *seg;
    rc_bal_sh_t *sh;
    char *mem;                  /* first rc_bal_member_sh_t */
    apr_uint32_t *counts;       /* [slot * n + member] */
    apr_uint32_t *slots;        /* slot -> pid, shared by all balancers */
    apr_uint64_t *proc;         /* this process's slot: pid << 32 | slot+1
                                   (process-local, one per attach) */
    apr_uint32_t epoch;
    /* resolved config */
    int weight[RC_BAL_MAX_MEMBERS];
    apr_uint32_t max[RC_BAL_MAX_MEMBERS];
    const char *url[RC_BAL_MAX_MEMBERS];
    const char *route[RC_BAL_MAX_MEMBERS];
    apr_uint64_t backup;        /* mask of backup members */
    int eject_fails;
    apr_interval_time_t eject_window;
    apr_interval_time_t eject_cooldown;
    apr_interval_time_t eject_max_cooldown;
    int eject_5xx;
    int eject_panic;
    int eject_streak;
    int hc_fails;
    int hc_passes;
    apr_interval_time_t slow_start;
    int retries;
    double bound_c;
    apr_interval_time_t ewma_tau;
    /* hash ring */
    rc_bal_vnode_t *ring;
    apr_size_t nring;
};

#define MSH(b, i) \
    ((rc_bal_member_sh_t *)((b)->mem + (apr_size_t)(i) * RC_MEM_BYTES))

/* ------------------------------------------------------------------ */
/* Small arithmetic: exp without libm, EWMA, PRNG, hash.                 */

/*
 * exp(x), x <= 0.  Range reduction x = -k ln2 + r with |r| <= ln2/2, a
 * Taylor series for e^r (terms fall below 1e-17 by the 18th), then exact
 * division by 2^k.  Example: x = -1 -> k = 1, r = -1 + ln2 = -0.30685,
 * e^r = 0.73576, / 2 = 0.36788 = e^-1.
 */
double rc_bal_exp_neg(double x)
{
    static const double ln2 = 0.69314718055994530942;
    double r, term, sum;
    int k, i;

    if (x >= 0.0) {
        return 1.0;
    }
    if (x < -745.0) {
        return 0.0;
    }
    k = (int)(-x / ln2 + 0.5);
    r = x + k * ln2;
    sum = 1.0;
    term = 1.0;
    for (i = 1; i < 20; i++) {
        term *= r / i;
        sum += term;
    }
    while (k >= 30) {
        sum /= 1073741824.0;
        k -= 30;
    }
    return sum / (double)(1u << k);
}

/*
 * Peak EWMA (Finagle's "peak EWMA"; our own code).  Decay by time, not by
 * sample count, so a quiet member's history fades at the same rate as a
 * busy one's.  Worked example, tau = 10 s, average 100 ms:
 *   sample 50 ms, 10 s later:  w = e^-1 = 0.3679,
 *                              avg = 100 * 0.3679 + 50 * 0.6321 = 68.39
 *   sample 200 ms, any time:   200 > 100, the peak replaces it: 200
 *   sample 50 ms, 0 s later:   w = 1, avg stays 100
 */
double rc_bal_ewma_next(double avg, apr_interval_time_t dt, double x,
                        apr_interval_time_t tau)
{
    double w;

    if (x > avg || tau <= 0) {
        return x;
    }
    if (dt < 0) {
        dt = 0;
    }
    w = rc_bal_exp_neg(-(double)dt / (double)tau);
    return avg * w + x * (1.0 - w);
}

static apr_uint64_t bal_mix64(apr_uint64_t z)
{
    z = (z ^ (z >> 30)) * APR_UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * APR_UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

apr_uint64_t rc_bal_rand(apr_uint64_t *state)
{
    *state += RC_GOLDEN;
    return bal_mix64(*state);
}

static apr_uint64_t bal_fnv(apr_uint64_t h, const void *key, apr_size_t len)
{
    const unsigned char *s = key;
    apr_size_t i;

    for (i = 0; i < len; i++) {
        h ^= s[i];
        h *= APR_UINT64_C(0x100000001b3);
    }
    return h;
}

#define RC_FNV_BASIS APR_UINT64_C(0xcbf29ce484222325)

apr_uint64_t rc_bal_hash(const void *key, apr_size_t len)
{
    return bal_mix64(bal_fnv(RC_FNV_BASIS, key, len));
}

static double bits2d(apr_uint64_t u)
{
    double d;

    memcpy(&d, &u, sizeof(d));
    return d;
}

static apr_uint64_t d2bits(double d)
{
    apr_uint64_t u;

    memcpy(&u, &d, sizeof(u));
    return u;
}

/* 0 means "unset" in the time fields: never store a real 0. */
static apr_time_t nz(apr_time_t t)
{
    return t ? t : 1;
}

#define DEF(f, d) ((f) < 0 ? (d) : (f))

/* ------------------------------------------------------------------ */
/* Shared memory: size, layout, attach.                                 */

apr_size_t rc_bal_shm_size(const rc_bal_conf_t *const *confs, int n)
{
    apr_size_t sz = RC_HEAD_BYTES;
    int i;

    for (i = 0; i < n; i++) {
        sz += RC_SPAN(confs[i]->members->nelts);
    }
    return sz;
}

static apr_uint64_t bal_fingerprint(const rc_bal_conf_t *const *confs,
                                    int n)
{
    apr_uint64_t h = RC_FNV_BASIS;
    apr_uint32_t v[3];
    int i, j;

    v[0] = RC_BAL_SHM_VERSION;
    v[1] = (apr_uint32_t)RC_MEM_BYTES;
    v[2] = (apr_uint32_t)n;
    h = bal_fnv(h, v, sizeof(v));
    for (i = 0; i < n; i++) {
        const rc_bal_member_conf_t *ms =
            (const rc_bal_member_conf_t *)confs[i]->members->elts;

        h = bal_fnv(h, confs[i]->name, strlen(confs[i]->name) + 1);
        for (j = 0; j < confs[i]->members->nelts; j++) {
            h = bal_fnv(h, ms[j].url, strlen(ms[j].url) + 1);
        }
        h = bal_fnv(h, "|", 1);
    }
    return bal_mix64(h);
}

static apr_status_t bal_mutex_init(pthread_mutex_t *mx)
{
    pthread_mutexattr_t a;
    int rv;

    if ((rv = pthread_mutexattr_init(&a)) != 0) {
        return rv;
    }
    if ((rv = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) == 0
        && (rv = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)) == 0) {
        rv = pthread_mutex_init(mx, &a);
    }
    pthread_mutexattr_destroy(&a);
    return rv;
}

static int bal_vnode_cmp(const void *a, const void *b)
{
    const rc_bal_vnode_t *x = a, *y = b;

    if (x->point != y->point) {
        return x->point < y->point ? -1 : 1;
    }
    return x->member < y->member ? -1 : (x->member > y->member);
}

/*
 * The consistent-hash ring.  Each member owns weight * V points, point j
 * at mix(hash(url) ^ (j+1) * golden): positions depend only on the URL, so
 * adding, removing or reordering members leaves the other members' points
 * where they were.  V = RC_BAL_VNODES_PER_WEIGHT (160), reduced when the
 * ring would exceed RC_BAL_RING_MAX points.
 */
static void bal_build_ring(apr_pool_t *p, rc_bal_t *b)
{
    apr_size_t total = 0, per, k = 0;
    int i, j;

    for (i = 0; i < b->n; i++) {
        total += (apr_size_t)b->weight[i];
    }
    per = RC_BAL_VNODES_PER_WEIGHT;
    if (total * per > RC_BAL_RING_MAX) {
        per = RC_BAL_RING_MAX / total;
        per = per ? per : 1;
    }
    b->nring = total * per;
    b->ring = apr_palloc(p, b->nring * sizeof(*b->ring));
    for (i = 0; i < b->n; i++) {
        apr_uint64_t uh = rc_bal_hash(b->url[i], strlen(b->url[i]));

        for (j = 0; j < b->weight[i] * (int)per; j++) {
            b->ring[k].point = bal_mix64(uh ^ ((apr_uint64_t)(j + 1)
                                               * RC_GOLDEN));
            b->ring[k].member = (apr_uint32_t)i;
            b->ring[k].pad = 0;
            k++;
        }
    }
    qsort(b->ring, b->nring, sizeof(*b->ring), bal_vnode_cmp);
}

static apr_status_t bal_init_one(rc_bal_sh_t *sh, char *mem,
                                 const rc_bal_conf_t *c)
{
    int i, n = c->members->nelts;
    apr_status_t rv;

    sh->nmembers = (apr_uint32_t)n;
    if ((rv = bal_mutex_init(&sh->lock)) != 0) {
        return rv;
    }
    for (i = 0; i < n; i++) {
        rc_bal_member_sh_t *m = (rc_bal_member_sh_t *)(mem + i * RC_MEM_BYTES);

        if ((rv = bal_mutex_init(&m->lock)) != 0) {
            return rv;
        }
        m->ewma_bits = d2bits(0.0);
    }
    RC_ST(&sh->magic, RC_BAL_SH_MAGIC);
    return APR_SUCCESS;
}

apr_status_t rc_bal_shm_attach(apr_pool_t *p, void *base, apr_size_t size,
                               const rc_bal_conf_t *const *confs, int n,
                               apr_uint32_t generation, rc_bal_t **out,
                               int *reused)
{
    rc_bal_seg_sh_t *seg = base;
    apr_size_t need = rc_bal_shm_size(confs, n), off;
    apr_uint64_t *proc = apr_pcalloc(p, sizeof(*proc));
    apr_uint64_t fp = bal_fingerprint(confs, n);
    apr_status_t rv;
    int reuse, i, j;

    if (!base || size < need || ((apr_uintptr_t)base % RC_BAL_ALIGN)) {
        return APR_EINVAL;
    }
    reuse = seg->magic == RC_BAL_SEG_MAGIC
            && seg->version == RC_BAL_SHM_VERSION && seg->size == need
            && seg->fingerprint == fp && seg->nbal == (apr_uint32_t)n;
    for (i = 0, off = RC_HEAD_BYTES; reuse && i < n; i++) {
        rc_bal_sh_t *sh = (rc_bal_sh_t *)((char *)base + off);

        reuse = sh->magic == RC_BAL_SH_MAGIC
                && sh->nmembers == (apr_uint32_t)confs[i]->members->nelts;
        off += RC_SPAN(confs[i]->members->nelts);
    }
    if (!reuse) {
        apr_uint32_t epoch = seg->magic == RC_BAL_SEG_MAGIC
                             ? seg->epoch + 1 : 1;

        memset(base, 0, need);
        seg->version = RC_BAL_SHM_VERSION;
        seg->size = need;
        seg->fingerprint = fp;
        seg->nbal = (apr_uint32_t)n;
        seg->epoch = epoch ? epoch : 1;
        seg->rng = fp;
        for (i = 0, off = RC_HEAD_BYTES; i < n; i++) {
            rv = bal_init_one((rc_bal_sh_t *)((char *)base + off),
                              (char *)base + off + RC_BAL_BYTES, confs[i]);
            if (rv != APR_SUCCESS) {
                return rv;
            }
            off += RC_SPAN(confs[i]->members->nelts);
        }
        RC_ST(&seg->magic, RC_BAL_SEG_MAGIC);
    }
    RC_ST(&seg->generation, generation);
    if (reused) {
        *reused = reuse;
    }

    for (i = 0, off = RC_HEAD_BYTES; i < n; i++) {
        const rc_bal_conf_t *c = confs[i];
        const rc_bal_member_conf_t *ms =
            (const rc_bal_member_conf_t *)c->members->elts;
        rc_bal_t *b = apr_pcalloc(p, sizeof(*b));

        b->magic = RC_BAL_HT_MAGIC;
        b->conf = c;
        b->n = c->members->nelts;
        b->seg = seg;
        b->sh = (rc_bal_sh_t *)((char *)base + off);
        b->mem = (char *)base + off + RC_BAL_BYTES;
        b->counts = (apr_uint32_t *)(b->mem + b->n * RC_MEM_BYTES);
        b->slots = (apr_uint32_t *)((char *)base + RC_SEG_BYTES);
        b->proc = proc;
        b->epoch = seg->epoch;
        b->method = DEF(c->method, RC_BAL_RR);
        b->eject_fails = DEF(c->eject_fails, 3);
        b->eject_window = DEF(c->eject_window, 10 * APR_USEC_PER_SEC);
        b->eject_cooldown = DEF(c->eject_cooldown, 5 * APR_USEC_PER_SEC);
        b->eject_max_cooldown = DEF(c->eject_max_cooldown,
                                    60 * APR_USEC_PER_SEC);
        if (b->eject_max_cooldown < b->eject_cooldown) {
            b->eject_max_cooldown = b->eject_cooldown;
        }
        b->eject_5xx = DEF(c->eject_5xx, 0);
        b->eject_panic = DEF(c->eject_panic, 1);
        b->eject_streak = DEF(c->eject_streak, 5);
        b->hc_fails = DEF(c->hc_fails, 3);
        b->hc_passes = DEF(c->hc_passes, 2);
        b->slow_start = DEF(c->slow_start, 0);
        b->retries = DEF(c->retries, 1);
        b->bound_c = c->bound_c < 1.0 ? 1.25 : c->bound_c;
        b->ewma_tau = DEF(c->ewma_tau, 10 * APR_USEC_PER_SEC);
        for (j = 0; j < b->n; j++) {
            int f = DEF(ms[j].flags, 0);

            b->weight[j] = ms[j].weight < 1 ? 1 : ms[j].weight;
            b->max[j] = (apr_uint32_t)DEF(ms[j].max, 0);
            b->url[j] = ms[j].url;
            b->route[j] = ms[j].route ? ms[j].route : "";
            if (f & RC_BAL_F_BACKUP) {
                b->backup |= BIT(j);
            }
            /* config is the truth at every (re)start */
            RC_ST(&MSH(b, j)->flags, (apr_uint32_t)f);
        }
        if (b->method == RC_BAL_HASH) {
            bal_build_ring(p, b);
        }
        out[i] = b;
        off += RC_SPAN(b->n);
    }
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Robust locks.                                                         */

/*
 * Lock a shared mutex.  EOWNERDEAD: the holder died inside its critical
 * section; *dead is set so the caller repairs what the lock guards before
 * using it, then the mutex is made consistent.  Returns 0 when held.
 */
static int bal_lock(rc_bal_t *b, pthread_mutex_t *mx, int *dead)
{
    int rv = pthread_mutex_lock(mx);

    *dead = 0;
    if (rv == EOWNERDEAD) {
        *dead = 1;
        RC_ADD(&b->sh->lock_recoveries, 1);
        pthread_mutex_consistent(mx);
        rv = 0;
    }
    if (rv != 0) {
        RC_ADD(&b->sh->lock_errors, 1);
    }
    return rv;
}

static int bal_lock_rr(rc_bal_t *b)
{
    int dead, i;

    if (bal_lock(b, &b->sh->lock, &dead) != 0) {
        return -1;
    }
    if (dead) {
        /* smooth WRR state half-updated: restart the sequence */
        for (i = 0; i < b->n; i++) {
            MSH(b, i)->rr_current = 0;
        }
    }
    return 0;
}

static int bal_lock_member(rc_bal_t *b, rc_bal_member_sh_t *m)
{
    int dead;

    if (bal_lock(b, &m->lock, &dead) != 0) {
        return -1;
    }
    if (dead && (m->fail_pos >= RC_BAL_MAX_EJECT_FAILS
                 || m->fail_count > RC_BAL_MAX_EJECT_FAILS)) {
        m->fail_pos = 0;
        m->fail_count = 0;
    }
    return 0;
}

apr_status_t rc_bal_debug_hold_lock(rc_bal_t *b, int idx)
{
    if (idx >= b->n) {
        return APR_EINVAL;
    }
    if (idx < 0) {
        return bal_lock_rr(b) == 0 ? APR_SUCCESS : APR_EGENERAL;
    }
    return bal_lock_member(b, MSH(b, idx)) == 0 ? APR_SUCCESS : APR_EGENERAL;
}

/* ------------------------------------------------------------------ */
/* Member state as pick sees it (lock-free reads).                       */

/*
 * Slow start: a member back from ejection or down starts at 10 % of its
 * weight and ramps linearly to 100 % over RevBalancerSlowStart.
 * Example, slow start 10 s, recovered at t: t -> 10 %, t+2.5 s -> 32 %,
 * t+5 s -> 55 %, t+10 s and later -> 100 %.
 */
static int bal_pct(const rc_bal_t *b, rc_bal_member_sh_t *m, apr_time_t now)
{
    apr_time_t ra = RC_LD(&m->recovered_at);
    apr_interval_time_t e;

    if (b->slow_start <= 0 || ra == 0) {
        return 100;
    }
    e = now - ra;
    if (e >= b->slow_start) {
        return 100;
    }
    if (e <= 0) {
        return 10;
    }
    return 10 + (int)((90 * e) / b->slow_start);
}

int rc_bal_slow_start_pct(const rc_bal_t *b, int idx, apr_time_t now)
{
    if (idx < 0 || idx >= b->n) {
        return 0;
    }
    return bal_pct(b, MSH(b, idx), now);
}

/* Peak EWMA as of now: the stored value decayed since its last sample
 * (so a member that was slow once is tried again eventually). */
static double bal_ewma_now(const rc_bal_t *b, rc_bal_member_sh_t *m,
                           apr_time_t now)
{
    apr_time_t at = RC_LD(&m->ewma_at);
    double v = bits2d(RC_LD(&m->ewma_bits));

    if (at == 0 || now <= at || b->ewma_tau <= 0) {
        return at ? v : 0.0;
    }
    return v * rc_bal_exp_neg(-(double)(now - at) / (double)b->ewma_tau);
}

/* The candidates of one tier (primary or backup) for one request. */
typedef struct {
    apr_uint64_t cand;          /* usable, below max, not excluded */
    apr_uint64_t full;          /* usable but at max */
    apr_uint64_t halfopen;      /* cooldown over, trial not taken */
    apr_uint64_t ejected;       /* ejected, else usable (for panic) */
    apr_int64_t ew[RC_BAL_MAX_MEMBERS]; /* weight * pct, for cand */
} bal_set_t;

static int bal_trial_taken(const rc_bal_t *b, rc_bal_member_sh_t *m,
                           apr_time_t now, apr_time_t *ta)
{
    *ta = RC_LD(&m->trial_at);
    /* a trial older than max-cooldown belonged to a dead process */
    return *ta != 0 && now - *ta < b->eject_max_cooldown;
}

static void bal_scan(rc_bal_t *b, int backup, apr_uint64_t exclude,
                     apr_time_t now, bal_set_t *s)
{
    int i;

    s->cand = s->full = s->halfopen = s->ejected = 0;
    for (i = 0; i < b->n; i++) {
        rc_bal_member_sh_t *m = MSH(b, i);
        apr_uint32_t f, h, max;
        apr_time_t ta;

        if (!(b->backup & BIT(i)) != !backup || (exclude & BIT(i))) {
            continue;
        }
        f = RC_LD(&m->flags);
        h = RC_LD(&m->health);
        if ((f & (RC_BAL_F_DISABLED | RC_BAL_F_DRAIN))
            || (h & RC_BAL_H_DOWN)) {
            continue;
        }
        max = b->max[i];
        if (h & RC_BAL_H_EJECTED) {
            s->ejected |= BIT(i);
            if (now >= RC_LD(&m->eject_until)
                && !bal_trial_taken(b, m, now, &ta)
                && (!max || RC_LD(&m->inflight) < max)) {
                s->halfopen |= BIT(i);
            }
            continue;
        }
        if (max && RC_LD(&m->inflight) >= max) {
            s->full |= BIT(i);
            RC_ADD(&m->full_skips, 1);
            continue;
        }
        s->cand |= BIT(i);
        s->ew[i] = (apr_int64_t)b->weight[i] * bal_pct(b, m, now);
    }
}

/* Take one in-flight slot on member i unless that would pass max=N. */
static int bal_reserve(rc_bal_t *b, int i)
{
    rc_bal_member_sh_t *m = MSH(b, i);
    apr_uint32_t cur = RC_LD(&m->inflight), max = b->max[i];

    do {
        if (max && cur >= max) {
            RC_ADD(&m->full_skips, 1);
            return 0;
        }
    } while (!RC_CAS(&m->inflight, &cur, cur + 1));
    RC_ADD(&m->requests, 1);
    return 1;
}

static apr_uint64_t bal_random(rc_bal_t *b, const rc_bal_req_t *rq)
{
    if (rq && rq->rng) {
        return rc_bal_rand(rq->rng);
    }
    return bal_mix64(RC_ADD(&b->seg->rng, RC_GOLDEN));
}

/* ------------------------------------------------------------------ */
/* Methods.  Each picks among s->cand, reserves, and returns the index,
 * or RC_BAL_FULL when every candidate filled up under it.               */

/*
 * Smooth weighted round-robin (the idea nginx uses; our code).  Every pick:
 * each candidate's current += its effective weight, the largest current
 * wins and gives back the total.  State is in shared memory under the bal
 * lock, so the sequence is global across every child.
 * Worked example, weights a=5 b=1 c=1 (total 7), currents before a pick:
 *   ( 0, 0, 0) +w ( 5, 1, 1) -> a, a -= 7
 *   (-2, 1, 1) +w ( 3, 2, 2) -> a
 *   (-4, 2, 2) +w ( 1, 3, 3) -> b (tie: lowest index)
 *   ( 1,-4, 3) +w ( 6,-3, 4) -> a
 *   (-1,-3, 4) +w ( 4,-2, 5) -> c
 *   ( 4,-2,-2) +w ( 9,-1,-1) -> a
 *   ( 2,-1,-1) +w ( 7, 0, 0) -> a    back to (0,0,0): a a b a c a a
 * Weights are in percent units (weight * slow-start pct), which scales
 * every current by 100 and leaves the sequence unchanged.
 */
static int bal_pick_lc(rc_bal_t *b, bal_set_t *s);

static int bal_pick_rr(rc_bal_t *b, bal_set_t *s)
{
    apr_int64_t total;
    int i, best;

    if (bal_lock_rr(b) != 0) {
        return bal_pick_lc(b, s);       /* lock unusable: still serve */
    }
    for (;;) {
        best = -1;
        total = 0;
        for (i = 0; i < b->n; i++) {
            rc_bal_member_sh_t *m = MSH(b, i);

            if (!(s->cand & BIT(i))) {
                continue;
            }
            m->rr_current += s->ew[i];
            total += s->ew[i];
            if (best < 0 || m->rr_current > MSH(b, best)->rr_current) {
                best = i;
            }
        }
        MSH(b, best)->rr_current -= total;
        if (bal_reserve(b, best)) {
            break;
        }
        /* filled up by a sticky acquire meanwhile: undo, drop it, redo */
        MSH(b, best)->rr_current += total;
        for (i = 0; i < b->n; i++) {
            if (s->cand & BIT(i)) {
                MSH(b, i)->rr_current -= s->ew[i];
            }
        }
        s->cand &= ~BIT(best);
        if (!s->cand) {
            best = RC_BAL_FULL;
            break;
        }
    }
    pthread_mutex_unlock(&b->sh->lock);
    return best;
}

/*
 * Weighted least-conn: the smallest (inflight + 1) / weight wins, compared
 * by cross-multiplication.  The scan starts at a shared rotating cursor so
 * ties go round (not always to member 0).
 * Example, weights a=3 b=1, nothing ending: scores (1/3, 1/1) -> a;
 * (2/3, 1) -> a; (3/3, 1/1) tie -> whoever the cursor reaches first; in
 * the long run in-flight settles at 3:1.
 */
static int bal_pick_lc(rc_bal_t *b, bal_set_t *s)
{
    apr_uint32_t start = RC_ADD(&b->sh->cursor, 1);
    int k, i, best;
    apr_int64_t in_best = 0, in;

    while (s->cand) {
        best = -1;
        for (k = 0; k < b->n; k++) {
            i = (int)((start + (apr_uint32_t)k) % (apr_uint32_t)b->n);
            if (!(s->cand & BIT(i))) {
                continue;
            }
            in = (apr_int64_t)RC_LD(&MSH(b, i)->inflight) + 1;
            if (best < 0 || in * s->ew[best] < in_best * s->ew[i]) {
                best = i;
                in_best = in;
            }
        }
        if (bal_reserve(b, best)) {
            return best;
        }
        s->cand &= ~BIT(best);
    }
    return RC_BAL_FULL;
}

static apr_size_t bal_ring_find(const rc_bal_t *b, apr_uint64_t h)
{
    apr_size_t lo = 0, hi = b->nring;

    while (lo < hi) {
        apr_size_t mid = lo + (hi - lo) / 2;

        if (b->ring[mid].point < h) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    return lo == b->nring ? 0 : lo;
}

/*
 * Consistent hashing with bounded loads (Mirrokni et al.): walk the ring
 * clockwise from hash(key); the first candidate member whose in-flight + 1
 * fits its capacity ceil(c * (L + 1) * ew / W) wins, where L is the total
 * in-flight and W the total effective weight of the candidates.  Members
 * that are not candidates (ejected, down, excluded) are walked past, so
 * only their keys move.
 * Example, 3 equal members, c = 1.25, one hot key owned by a, nothing
 * ending: L=0 cap ceil(1.25*1/3)=1 -> a; L=1 cap 1: a is at 1 -> next
 * member on the ring b; L=2 cap 1 -> c; L=3 cap ceil(1.25*4/3)=2 -> a ...
 * no member ever holds more than ceil(1.25 * (L+1) / 3).
 */
static int bal_pick_hash(rc_bal_t *b, const rc_bal_req_t *rq, bal_set_t *s)
{
    apr_uint64_t h, seen;
    apr_size_t pos, k;
    apr_int64_t load, wsum;
    int i, owner;

    if (!rq || !rq->key || !b->nring) {
        return bal_pick_lc(b, s);       /* no key in this request */
    }
    h = rc_bal_hash(rq->key, rq->key_len);
    while (s->cand) {
        load = 0;
        wsum = 0;
        for (i = 0; i < b->n; i++) {
            if (s->cand & BIT(i)) {
                load += RC_LD(&MSH(b, i)->inflight);
                wsum += s->ew[i];
            }
        }
        owner = -1;
        seen = 0;
        pos = bal_ring_find(b, h);
        for (k = 0; k < b->nring && (seen & s->cand) != s->cand; k++) {
            i = (int)b->ring[(pos + k) % b->nring].member;
            if ((seen & BIT(i)) || !(s->cand & BIT(i))) {
                continue;
            }
            seen |= BIT(i);
            if (owner < 0) {
                owner = i;
            }
            /* in + 1 <= ceil(c (L+1) ew / W)  <=>  in < c (L+1) ew / W */
            if ((double)RC_LD(&MSH(b, i)->inflight) * (double)wsum
                < b->bound_c * (double)(load + 1) * (double)s->ew[i]) {
                owner = i;
                break;
            }
        }
        if (owner < 0) {
            break;
        }
        if (bal_reserve(b, owner)) {
            return owner;
        }
        s->cand &= ~BIT(owner);
    }
    return RC_BAL_FULL;
}

/*
 * Power of two choices over peak-EWMA cost (Finagle's idea, our code):
 * draw two distinct candidates at random; cost = latency * (in-flight + 1)
 * / effective weight, latency being the peak EWMA decayed to now; the
 * cheaper wins.  A member without any sample costs 0 while idle and a
 * huge penalty once a request is pending on it, so a new member gets one
 * request, not a flood.
 * Example: a 10 ms EWMA with 2 in flight costs 30, b 100 ms idle costs
 * 100 -> a; with 12 in flight a costs 130 -> b.
 */
static double bal_cost(rc_bal_t *b, int i, const bal_set_t *s,
                       apr_time_t now)
{
    rc_bal_member_sh_t *m = MSH(b, i);
    double lat = bal_ewma_now(b, m, now);
    apr_uint32_t in = RC_LD(&m->inflight);

    if (lat <= 0.0) {
        return in ? 1e15 + in : 0.0;
    }
    return lat * (double)(in + 1) * 100.0 / (double)s->ew[i];
}

static int bal_pick_p2c(rc_bal_t *b, const rc_bal_req_t *rq, bal_set_t *s,
                        apr_time_t now)
{
    int list[RC_BAL_MAX_MEMBERS];
    int i, k, x, y, best;

    while (s->cand) {
        for (i = 0, k = 0; i < b->n; i++) {
            if (s->cand & BIT(i)) {
                list[k++] = i;
            }
        }
        if (k == 1) {
            best = list[0];
        }
        else {
            x = (int)(bal_random(b, rq) % (apr_uint64_t)k);
            y = (int)(bal_random(b, rq) % (apr_uint64_t)(k - 1));
            y += (y >= x);
            best = bal_cost(b, list[y], s, now) < bal_cost(b, list[x], s, now)
                   ? list[y] : list[x];
        }
        if (bal_reserve(b, best)) {
            return best;
        }
        s->cand &= ~BIT(best);
    }
    return RC_BAL_FULL;
}

/* Claim the single half-open trial of one member in the mask. */
static int bal_try_trial(rc_bal_t *b, apr_uint64_t mask, apr_time_t now)
{
    int i;

    for (i = 0; i < b->n; i++) {
        rc_bal_member_sh_t *m = MSH(b, i);
        apr_time_t ta;

        if (!(mask & BIT(i)) || bal_trial_taken(b, m, now, &ta)) {
            continue;
        }
        if (!RC_CAS(&m->trial_at, &ta, nz(now))) {
            continue;               /* another process won the trial */
        }
        if (bal_reserve(b, i)) {
            return i;
        }
        RC_ST(&m->trial_at, (apr_time_t)0);
    }
    return -1;
}

/*
 * This process's slot in the pid table, claimed on first use (so a forked
 * child gets its own).  Threads race benignly: the loser hands its slot
 * back.  -1 when all RC_BAL_SLOTS are taken: no per-process accounting,
 * a kill of this process may then leak its in-flight count.
 */
static int bal_slot(rc_bal_t *b)
{
    apr_uint32_t pid = rc_self_pid(), zero;
    apr_uint64_t w = RC_LD(b->proc), nw;
    int k, s = -1;

    if (w && (apr_uint32_t)(w >> 32) == pid) {
        return (int)(w & 0xffffffffu) - 1;
    }
    for (k = 0; k < RC_BAL_SLOTS; k++) {
        int i = (int)((pid + (apr_uint32_t)k) % RC_BAL_SLOTS);

        zero = 0;
        if (RC_CAS(&b->slots[i], &zero, pid)) {
            s = i;
            break;
        }
    }
    nw = ((apr_uint64_t)pid << 32) | (apr_uint32_t)(s + 1);
    if (RC_CAS(b->proc, &w, nw)) {
        return s;
    }
    if (s >= 0) {
        RC_ST(&b->slots[s], 0u);    /* another thread of ours won */
    }
    return (int)(w & 0xffffffffu) - 1;
}

/* Fill the ticket; for a reservation, count it against our slot (after
 * the reservation: a kill in between leaks one, never under-counts). */
static void bal_ticket(rc_bal_t *b, rc_bal_ticket_t *t, int idx, int trial,
                       apr_time_t now)
{
    t->member = idx;
    t->trial = trial;
    t->epoch = b->epoch;
    t->start = now;
    t->slot = -1;
    if (idx >= 0 && (t->slot = bal_slot(b)) >= 0) {
        RC_ADD(&b->counts[(apr_size_t)t->slot * b->n + idx], 1u);
    }
}

static void bal_dec(apr_uint32_t *p, apr_uint32_t by)
{
    apr_uint32_t cur = RC_LD(p);

    while (cur && !RC_CAS(p, &cur, cur > by ? cur - by : 0))
        ;
}

/*
 * Panic: every member that is not down, drained, disabled or excluded is
 * ejected: a uniformly random one of them, primaries first. A blip that
 * ejected the whole pool then costs one request per member that is still
 * away instead of an outage until the cooldowns end.
 */
static int bal_pick_panic(rc_bal_t *b, const rc_bal_req_t *rq,
                          const apr_uint64_t ejected[2])
{
    int tier, i, n, k;

    for (tier = 0; tier < 2; tier++) {
        for (n = 0, i = 0; i < b->n; i++) {
            n += (ejected[tier] & BIT(i)) != 0;
        }
        if (n == 0) {
            continue;
        }
        k = (int)(bal_random(b, rq) % (apr_uint64_t)n);
        for (i = 0; i < b->n; i++) {
            if ((ejected[tier] & BIT(i)) && k-- == 0) {
                return bal_reserve(b, i) ? i : RC_BAL_FULL;
            }
        }
    }
    return RC_BAL_NONE;
}

int rc_bal_pick(rc_bal_t *b, const rc_bal_req_t *rq, apr_time_t now,
                rc_bal_ticket_t *t)
{
    apr_uint64_t exclude = rq ? rq->exclude : 0, ejected[2];
    int tier, idx, any_full = 0;
    bal_set_t s;

    bal_ticket(b, t, -1, 0, now);
    for (tier = 0; tier < 2; tier++) {
        bal_scan(b, tier, exclude, now, &s);
        ejected[tier] = s.ejected;
        if (s.halfopen && (idx = bal_try_trial(b, s.halfopen, now)) >= 0) {
            bal_ticket(b, t, idx, RC_BAL_TRIAL, now);
            return idx;
        }
        if (s.full) {
            any_full = 1;
        }
        if (!s.cand) {
            continue;               /* this tier unusable: next tier */
        }
        switch (b->method) {
        case RC_BAL_LEASTCONN:
            idx = bal_pick_lc(b, &s);
            break;
        case RC_BAL_HASH:
            idx = bal_pick_hash(b, rq, &s);
            break;
        case RC_BAL_P2C:
            idx = bal_pick_p2c(b, rq, &s, now);
            break;
        default:
            idx = bal_pick_rr(b, &s);
            break;
        }
        if (idx >= 0) {
            bal_ticket(b, t, idx, 0, now);
            return idx;
        }
        any_full = 1;
    }
    if (!any_full && b->eject_panic
        && (idx = bal_pick_panic(b, rq, ejected)) != RC_BAL_NONE) {
        if (idx >= 0) {
            bal_ticket(b, t, idx, RC_BAL_PANIC, now);
            RC_ADD(&MSH(b, idx)->panic_picks, 1);
        }
        return idx;
    }
    return any_full ? RC_BAL_FULL : RC_BAL_NONE;
}

int rc_bal_route_find(const rc_bal_t *b, const char *route, apr_size_t len)
{
    int i;

    if (!route) {
        return -1;
    }
    for (i = 0; i < b->n; i++) {
        if (strlen(b->route[i]) == len && !memcmp(b->route[i], route, len)) {
            return i;
        }
    }
    return -1;
}

int rc_bal_acquire(rc_bal_t *b, int idx, apr_time_t now, rc_bal_ticket_t *t)
{
    rc_bal_member_sh_t *m;
    apr_uint32_t f, h;
    bal_set_t s;

    bal_ticket(b, t, -1, 0, now);
    if (idx < 0 || idx >= b->n) {
        return RC_BAL_NONE;
    }
    m = MSH(b, idx);
    f = RC_LD(&m->flags);
    h = RC_LD(&m->health);
    if ((f & RC_BAL_F_DISABLED) || (h & (RC_BAL_H_DOWN | RC_BAL_H_EJECTED))) {
        return RC_BAL_NONE;
    }
    if (b->backup & BIT(idx)) {
        /* pinned to a backup: only while no primary can serve */
        bal_scan(b, 0, 0, now, &s);
        if (s.cand || s.halfopen) {
            return RC_BAL_NONE;
        }
    }
    if (!bal_reserve(b, idx)) {
        return RC_BAL_FULL;
    }
    bal_ticket(b, t, idx, 0, now);
    return idx;
}

/* ------------------------------------------------------------------ */
/* Passive health.                                                       */

/*
 * Eject for cooldown * 2^level, capped at max-cooldown; level counts the
 * ejections since the last success streak.
 * Example, cooldown 5 s, max 60 s: 5, 10, 20, 40, 60, 60 ... seconds.
 */
static int bal_eject_locked(rc_bal_t *b, rc_bal_member_sh_t *m,
                            apr_time_t now)
{
    apr_uint32_t level = RC_LD(&m->eject_level), l;
    apr_interval_time_t cd = b->eject_cooldown;

    for (l = 0; l < level && cd < b->eject_max_cooldown; l++) {
        cd *= 2;
    }
    if (cd > b->eject_max_cooldown) {
        cd = b->eject_max_cooldown;
    }
    RC_ST(&m->eject_until, now + cd);
    RC_ST(&m->trial_at, (apr_time_t)0);
    RC_OR(&m->health, RC_BAL_H_EJECTED);
    RC_ST(&m->eject_level, level < RC_BAL_LEVEL_MAX ? level + 1 : level);
    RC_ADD(&m->ejections, 1);
    m->fail_pos = 0;
    m->fail_count = 0;
    m->streak = 0;
    return RC_BAL_EV_EJECTED;
}

/*
 * A failure.  The last N failure times sit in a ring; when N of them fall
 * within the window, eject.  Example, fails=3 window=10s: failures at 0 s,
 * 4 s, 11 s -> oldest of the last 3 is 11 s old: no; another at 12 s ->
 * last three 4, 11, 12: 8 s apart -> ejected.  A failed half-open trial
 * ejects again at once with the next (longer) cooldown.
 */
static int bal_failure_locked(rc_bal_t *b, rc_bal_member_sh_t *m, int trial,
                              apr_time_t now)
{
    apr_uint32_t nf = (apr_uint32_t)b->eject_fails;

    if (RC_LD(&m->health) & RC_BAL_H_EJECTED) {
        /* a panic pick's failure says nothing new: no longer cooldown */
        return trial == RC_BAL_TRIAL ? bal_eject_locked(b, m, now) : 0;
    }
    m->streak = 0;
    if (nf == 0) {
        return 0;
    }
    m->fail_ts[m->fail_pos] = now;
    m->fail_pos = (m->fail_pos + 1) % nf;
    if (m->fail_count < nf) {
        m->fail_count++;
    }
    if (m->fail_count >= nf && now - m->fail_ts[m->fail_pos]
                               <= b->eject_window) {
        return bal_eject_locked(b, m, now);
    }
    return 0;
}

/* A success.  A successful trial brings the member back (slow start from
 * now); eject_streak successes in a row then forget the backoff level. */
static int bal_success_locked(rc_bal_t *b, rc_bal_member_sh_t *m, int trial,
                              apr_time_t now)
{
    int ev = 0;

    if (RC_LD(&m->health) & RC_BAL_H_EJECTED) {
        if (!trial) {
            return 0;               /* a late answer from before ejection */
        }
        RC_ST(&m->eject_until, (apr_time_t)0);
        RC_ST(&m->recovered_at, nz(now));
        RC_AND(&m->health, ~RC_BAL_H_EJECTED);
        m->streak = 0;
        ev = RC_BAL_EV_RECOVERED;
    }
    if (RC_LD(&m->eject_level)
        && ++m->streak >= (apr_uint32_t)b->eject_streak) {
        RC_ST(&m->eject_level, 0u);
        m->streak = 0;
    }
    return ev;
}

int rc_bal_end(rc_bal_t *b, rc_bal_ticket_t *t, apr_time_t now,
               rc_bal_outcome_e outcome)
{
    rc_bal_member_sh_t *m;
    int idx, fail, ev = 0;

    if (!t || t->member < 0 || t->member >= b->n) {
        return 0;
    }
    idx = t->member;
    t->member = -1;
    if (t->epoch != RC_LD(&b->seg->epoch)) {
        return 0;                   /* area reinitialised since the pick */
    }
    m = MSH(b, idx);
    /* slot count first: a kill in between leaks one, never under-counts */
    if (t->slot >= 0 && t->slot < RC_BAL_SLOTS) {
        bal_dec(&b->counts[(apr_size_t)t->slot * b->n + idx], 1);
    }
    bal_dec(&m->inflight, 1);
    if (outcome == RC_BAL_ABANDONED) {
        if (t->trial == RC_BAL_TRIAL) {
            RC_ST(&m->trial_at, (apr_time_t)0);
        }
        return 0;
    }
    fail = outcome == RC_BAL_CONNECT_ERROR || outcome == RC_BAL_TIMEOUT
           || (outcome == RC_BAL_HTTP_5XX && b->eject_5xx);
    if (outcome == RC_BAL_CONNECT_ERROR) {
        RC_ADD(&m->connect_errors, 1);
    }
    else if (outcome == RC_BAL_TIMEOUT) {
        RC_ADD(&m->timeouts, 1);
    }
    else if (outcome == RC_BAL_HTTP_5XX) {
        RC_ADD(&m->http_5xx, 1);
    }
    if (fail) {
        RC_ADD(&m->failures, 1);
    }

    if (bal_lock_member(b, m) != 0) {
        if (t->trial == RC_BAL_TRIAL) {
            RC_ST(&m->trial_at, (apr_time_t)0);
        }
        return 0;
    }
    /* latency evidence: answers and timeouts (a connect error is fast and
     * says nothing about how slow the member is) */
    if (outcome != RC_BAL_CONNECT_ERROR) {
        apr_time_t at = m->ewma_at;
        double x = (double)(now > t->start ? now - t->start : 0);
        double v = at ? rc_bal_ewma_next(bits2d(m->ewma_bits), now - at, x,
                                         b->ewma_tau)
                      : x;

        RC_ST(&m->ewma_bits, d2bits(v));
        RC_ST(&m->ewma_at, nz(now > at ? now : at));
    }
    ev = fail ? bal_failure_locked(b, m, t->trial, now)
              : bal_success_locked(b, m, t->trial, now);
    if (t->trial == RC_BAL_TRIAL) {
        RC_ST(&m->trial_at, (apr_time_t)0);
    }
    pthread_mutex_unlock(&m->lock);
    return ev;
}

/* ------------------------------------------------------------------ */
/* Active health.                                                        */

/*
 * Consecutive thresholds.  Example, fails=3 passes=2: up, probes
 * x x . x x x -> down only at the third consecutive failure (the pass
 * resets the run); then . x . . -> up at the second consecutive pass.
 */
int rc_bal_report_probe(rc_bal_t *b, int idx, int ok, apr_time_t now)
{
    rc_bal_member_sh_t *m;
    apr_uint32_t h;
    int ev = 0;

    if (idx < 0 || idx >= b->n) {
        return 0;
    }
    m = MSH(b, idx);
    if (bal_lock_member(b, m) != 0) {
        return 0;
    }
    h = RC_LD(&m->health);
    if (ok) {
        m->probe_fails = 0;
        if (m->probe_passes < 1000) {
            m->probe_passes++;
        }
        if ((h & RC_BAL_H_DOWN)
            && m->probe_passes >= (apr_uint32_t)b->hc_passes) {
            RC_ST(&m->recovered_at, nz(now));
            RC_AND(&m->health, ~RC_BAL_H_DOWN);
            ev = RC_BAL_EV_UP;
        }
    }
    else {
        m->probe_passes = 0;
        if (m->probe_fails < 1000) {
            m->probe_fails++;
        }
        if (!(h & RC_BAL_H_DOWN)
            && m->probe_fails >= (apr_uint32_t)b->hc_fails) {
            RC_OR(&m->health, RC_BAL_H_DOWN);
            ev = RC_BAL_EV_DOWN;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return ev;
}

apr_status_t rc_bal_set_flags(rc_bal_t *b, int idx, int flags)
{
    apr_uint32_t f;

    if (idx < 0 || idx >= b->n) {
        return APR_EINVAL;
    }
    f = (apr_uint32_t)flags & (RC_BAL_F_DISABLED | RC_BAL_F_DRAIN);
    if (b->backup & BIT(idx)) {
        f |= RC_BAL_F_BACKUP;
    }
    RC_ST(&MSH(b, idx)->flags, f);
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Introspection.                                                        */

int rc_bal_count(const rc_bal_t *b)
{
    return b->n;
}

const rc_bal_conf_t *rc_bal_conf(const rc_bal_t *b)
{
    return b->conf;
}

int rc_bal_retries(const rc_bal_t *b)
{
    return b->retries;
}

void rc_bal_info(const rc_bal_t *b, rc_bal_info_t *info)
{
    int i;

    info->lock_recoveries = RC_LD(&b->sh->lock_recoveries);
    info->lock_errors = RC_LD(&b->sh->lock_errors);
    info->reaped = RC_LD(&b->sh->reaped);
    info->generation = RC_LD(&b->seg->generation);
    info->epoch = RC_LD(&b->seg->epoch);
    info->slots_used = 0;
    for (i = 0; i < RC_BAL_SLOTS; i++) {
        info->slots_used += RC_LD(&b->slots[i]) != 0;
    }
}

/* ------------------------------------------------------------------ */
/* Dead processes.                                                       */

static int bal_pid_dead(apr_uint32_t pid)
{
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/*
 * Walk every balancer of the area (from the shared header, validating
 * what it reads) and sum slot @a s's in-flight counts; with @a reclaim,
 * also zero them and subtract them from the members' in-flight.
 */
static apr_uint32_t bal_slot_walk(rc_bal_t *b, apr_uint32_t s, int reclaim)
{
    char *base = (char *)b->seg;
    apr_size_t off, size = (apr_size_t)RC_LD(&b->seg->size);
    apr_uint32_t nbal = RC_LD(&b->seg->nbal), i, j, n = 0, c, total = 0;

    for (i = 0, off = RC_HEAD_BYTES; i < nbal; i++, off += RC_SPAN(n)) {
        rc_bal_sh_t *sh = (rc_bal_sh_t *)(base + off);
        char *mem = base + off + RC_BAL_BYTES;
        apr_uint32_t *cnt;

        if (off + RC_BAL_BYTES > size || sh->magic != RC_BAL_SH_MAGIC
            || (n = sh->nmembers) > RC_BAL_MAX_MEMBERS
            || off + RC_SPAN(n) > size) {
            break;                  /* not a layout we know: stop */
        }
        cnt = (apr_uint32_t *)(mem + n * RC_MEM_BYTES) + (apr_size_t)s * n;
        for (j = 0; j < n; j++) {
            if (!reclaim) {
                total += RC_LD(&cnt[j]);
                continue;
            }
            c = __atomic_exchange_n(&cnt[j], 0u, __ATOMIC_ACQ_REL);
            if (c) {
                bal_dec(&((rc_bal_member_sh_t *)(mem + j * RC_MEM_BYTES))
                        ->inflight, c);
                RC_ADD(&sh->reaped, (apr_uint64_t)c);
                total += c;
            }
        }
    }
    return total;
}

/*
 * Give back what dead processes held.  For each slot whose pid no longer
 * exists: claim it (CAS pid -> REAPING, so two reapers never both do it),
 * subtract its counts from the members' in-flight in every balancer of
 * the area, free the slot.  The dead cannot race us.
 */
int rc_bal_reap(rc_bal_t *b)
{
    apr_uint32_t pid, s;
    int total = 0;

    for (s = 0; s < RC_BAL_SLOTS; s++) {
        pid = RC_LD(&b->slots[s]);
        if (pid == 0 || pid == RC_SLOT_REAPING || !bal_pid_dead(pid)
            || !RC_CAS(&b->slots[s], &pid, RC_SLOT_REAPING)) {
            continue;
        }
        total += (int)bal_slot_walk(b, s, 1);
        RC_ST(&b->slots[s], 0u);
    }
    return total;
}

void rc_bal_child_exit(rc_bal_t *b)
{
    apr_uint64_t w = RC_LD(b->proc);
    int s = (int)(w & 0xffffffffu) - 1;

    if (!w || (apr_uint32_t)(w >> 32) != rc_self_pid() || s < 0
        || bal_slot_walk(b, (apr_uint32_t)s, 0) != 0) {
        return;                     /* nothing of ours, or the reaper's */
    }
    RC_ST(b->proc, (apr_uint64_t)0);
    RC_ST(&b->slots[s], 0u);
}

apr_status_t rc_bal_member_stats(const rc_bal_t *b, int idx, apr_time_t now,
                                 rc_bal_member_stats_t *st)
{
    rc_bal_member_sh_t *m;
    apr_uint32_t f, h;
    int pct;

    if (idx < 0 || idx >= b->n) {
        return APR_EINVAL;
    }
    m = MSH(b, idx);
    memset(st, 0, sizeof(*st));
    f = RC_LD(&m->flags);
    h = RC_LD(&m->health);
    st->url = b->url[idx];
    st->route = b->route[idx];
    st->weight = b->weight[idx];
    st->flags = (int)f;
    if (f & RC_BAL_F_DISABLED) {
        st->state = RC_BAL_ST_DISABLED;
    }
    else if (h & RC_BAL_H_DOWN) {
        st->state = RC_BAL_ST_DOWN;
    }
    else if (h & RC_BAL_H_EJECTED) {
        st->state = RC_BAL_ST_EJECTED;
    }
    else if (f & RC_BAL_F_DRAIN) {
        st->state = RC_BAL_ST_DRAINING;
    }
    else if (f & RC_BAL_F_BACKUP) {
        st->state = RC_BAL_ST_BACKUP;
    }
    else {
        st->state = RC_BAL_ST_UP;
    }
    pct = bal_pct(b, m, now);
    st->eff_weight = (double)b->weight[idx] * pct / 100.0;
    st->inflight = RC_LD(&m->inflight);
    st->max = (int)b->max[idx];
    st->requests = RC_LD(&m->requests);
    st->failures = RC_LD(&m->failures);
    st->timeouts = RC_LD(&m->timeouts);
    st->connect_errors = RC_LD(&m->connect_errors);
    st->http_5xx = RC_LD(&m->http_5xx);
    st->ejections = RC_LD(&m->ejections);
    st->full_skips = RC_LD(&m->full_skips);
    st->panic_picks = RC_LD(&m->panic_picks);
    st->ewma_us = bal_ewma_now(b, m, now);
    st->eject_until = (h & RC_BAL_H_EJECTED) ? RC_LD(&m->eject_until) : 0;
    st->eject_level = RC_LD(&m->eject_level);
    st->probe_up = !(h & RC_BAL_H_DOWN);
    return APR_SUCCESS;
}
