/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/**
 * @file balancer.h
 * @brief mod_revcache load balancer core: member selection, member health
 *        in shared memory, ejection and recovery, stickiness.
 *
 * APR and POSIX only; no httpd header.  The glue (config.c, mod_revcache.c)
 * builds one rc_bal_conf_t per <RevBalancer NAME> in pconf, sizes a shared
 * memory area with rc_bal_shm_size(), attaches it with rc_bal_shm_attach()
 * in post_config (children inherit the anonymous mapping on fork) and then,
 * per request:
 *
 *     rc_bal_req_t rq = { key, key_len, tried_mask, &thread_rng };
 *     idx = rc_bal_pick(bal, &rq, apr_time_now(), &ticket);
 *     if (idx == RC_BAL_FULL)  -> wait a bounded time, retry, else 503
 *     if (idx == RC_BAL_NONE)  -> 503
 *     ... forward to member idx ...
 *     ev = rc_bal_end(bal, &ticket, apr_time_now(), RC_BAL_OK);
 *
 * Every time is an argument (@c now), every random number comes from a
 * caller-owned PRNG state, so the unit tests are exact.
 */

#ifndef RC_BALANCER_H
#define RC_BALANCER_H

#include <apr.h>
#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Most members one balancer can have (exclusion masks are 64 bits). */
#define RC_BAL_MAX_MEMBERS      64
/** Largest member weight. */
#define RC_BAL_MAX_WEIGHT       100
/** Largest RevBalancerEject fails=N. */
#define RC_BAL_MAX_EJECT_FAILS  32
/** Processes that can hold reservations at once (per shared area); a
 *  process beyond this still works, without kill-safe accounting. */
#define RC_BAL_SLOTS            1024
/** Bit for member @a i in rc_bal_req_t.exclude. */
#define RC_BAL_BIT(i)           (APR_UINT64_C(1) << (i))
/** Virtual nodes on the hash ring per unit of weight. */
#define RC_BAL_VNODES_PER_WEIGHT 160

/** rc_bal_pick() / rc_bal_acquire(): no member can take the request. */
#define RC_BAL_NONE  (-1)
/** rc_bal_pick() / rc_bal_acquire(): usable members exist, all at max=N. */
#define RC_BAL_FULL  (-2)

/** Selection methods (RevBalancerMethod). */
typedef enum {
    RC_BAL_RR = 0,              /**< round-robin (smooth, weighted) */
    RC_BAL_LEASTCONN,           /**< least-conn (weighted in-flight) */
    RC_BAL_HASH,                /**< consistent hash, bounded load */
    RC_BAL_P2C                  /**< p2c-ewma (peak EWMA, 2 choices) */
} rc_bal_method_e;

/** Where the hash key comes from (RevBalancerHashKey). */
typedef enum {
    RC_BAL_KEY_URI = 0,         /**< the request URI (path + query) */
    RC_BAL_KEY_HEADER,          /**< a request header's value */
    RC_BAL_KEY_COOKIE,          /**< a cookie's value */
    RC_BAL_KEY_CLIENT_IP        /**< the client address */
} rc_bal_key_kind_e;

/** Static member flags (RevBalancerMember status=...). */
#define RC_BAL_F_BACKUP    0x01 /**< only used while no primary is usable */
#define RC_BAL_F_DISABLED  0x02 /**< never used */
#define RC_BAL_F_DRAIN     0x04 /**< no new sessions; sticky clients ok */

/** Request outcome reported to rc_bal_end(). */
typedef enum {
    RC_BAL_OK = 0,              /**< a response came back (not a 5xx) */
    RC_BAL_CONNECT_ERROR,       /**< could not connect / send */
    RC_BAL_TIMEOUT,             /**< backend timed out */
    RC_BAL_HTTP_5XX,            /**< a 5xx response (fails only if eject 5xx) */
    RC_BAL_ABANDONED            /**< not sent at all (client gone): release */
} rc_bal_outcome_e;

/** Events returned by rc_bal_end() / rc_bal_report_probe(): for the glue's
 *  log (warn on EJECTED/DOWN, info on RECOVERED/UP). */
#define RC_BAL_EV_EJECTED    0x01 /**< passive health ejected the member */
#define RC_BAL_EV_RECOVERED  0x02 /**< half-open trial succeeded */
#define RC_BAL_EV_DOWN       0x04 /**< active checks marked it down */
#define RC_BAL_EV_UP         0x08 /**< active checks marked it up */

/** Member state for the status page (most important first). */
typedef enum {
    RC_BAL_ST_UP = 0,
    RC_BAL_ST_BACKUP,           /**< healthy backup (idle while primaries) */
    RC_BAL_ST_DRAINING,
    RC_BAL_ST_EJECTED,          /**< passive ejection (or half-open trial) */
    RC_BAL_ST_DOWN,             /**< active health checks failed */
    RC_BAL_ST_DISABLED
} rc_bal_state_e;

/** One RevBalancerMember, as configured.  Numbers are -1 when unset. */
typedef struct {
    const char *url;            /**< backend URL as written */
    const char *route;          /**< sticky route id; NULL: derived */
    int weight;                 /**< 1..RC_BAL_MAX_WEIGHT, -1: 1 */
    int flags;                  /**< RC_BAL_F_*, -1: 0 */
    int max;                    /**< in-flight cap, 0 unlimited, -1: 0 */
} rc_bal_member_conf_t;

/** A hash key specification: kind plus header/cookie name. */
typedef struct {
    rc_bal_key_kind_e kind;
    const char *name;           /**< header or cookie name, else NULL */
} rc_bal_key_t;

/**
 * One <RevBalancer NAME>, built by the glue in pconf.  Every scalar starts
 * unset (-1); rc_bal_conf_check() validates and applies the defaults.
 */
typedef struct {
    const char *name;
    apr_array_header_t *members;        /**< of rc_bal_member_conf_t */
    int method;                         /**< rc_bal_method_e, -1: rr */
    int key_set;                        /**< key below was configured */
    rc_bal_key_t key;                   /**< default uri */
    int eject_fails;                    /**< 0 off, -1: 3 */
    apr_interval_time_t eject_window;   /**< -1: 10 s */
    apr_interval_time_t eject_cooldown; /**< -1: 5 s */
    apr_interval_time_t eject_max_cooldown; /**< -1: 60 s */
    int eject_5xx;                      /**< 5xx counts as failure, -1: no */
    int eject_streak;                   /**< successes that reset the
                                             backoff, -1: 5 */
    int eject_panic;                    /**< all ejected: use them anyway,
                                             -1: on */
    int hc_fails;                       /**< probe fails to go down, -1: 3 */
    int hc_passes;                      /**< probe passes to go up, -1: 2 */
    apr_interval_time_t slow_start;     /**< 0 off, -1: 0 */
    int retries;                        /**< RevBalancerRetries, -1: 1 */
    double bound_c;                     /**< hash bounded load c, <0: 1.25 */
    apr_interval_time_t ewma_tau;       /**< p2c decay, -1: 10 s */
} rc_bal_conf_t;

/** One balancer's process-local handle (points into shared memory). */
typedef struct rc_bal_t rc_bal_t;

/** Per-request input to rc_bal_pick(). */
typedef struct {
    const void *key;            /**< hash: key bytes; NULL: no key
                                     (that request goes least-conn) */
    apr_size_t key_len;
    apr_uint64_t exclude;       /**< bit i: member i already tried */
    apr_uint64_t *rng;          /**< p2c: caller's PRNG state (per thread);
                                     NULL: a shared atomic sequence */
} rc_bal_req_t;

#define RC_BAL_TRIAL 1
#define RC_BAL_PANIC 2

/** What rc_bal_pick() reserved; hand it back to rc_bal_end() once. */
typedef struct {
    int member;                 /**< member index, -1 when nothing held */
    int trial;                  /**< RC_BAL_TRIAL: the half-open trial;
                                     RC_BAL_PANIC: picked in panic */
    apr_uint32_t epoch;         /**< shm layout epoch at reservation */
    int slot;                   /**< this process's slot, -1: none */
    apr_time_t start;           /**< @c now at reservation (latency base) */
} rc_bal_ticket_t;

/** Balancer-wide counters for the status page. */
typedef struct {
    apr_uint64_t lock_recoveries; /**< locks taken over from dead owners */
    apr_uint64_t lock_errors;     /**< lock failures (served lock-free) */
    apr_uint64_t reaped;          /**< in-flight taken back from the dead */
    apr_uint32_t generation;      /**< httpd generation of last attach */
    apr_uint32_t epoch;           /**< layout epoch */
    int slots_used;               /**< process slots in use (area-wide) */
} rc_bal_info_t;

/** Snapshot of one member for the status page. */
typedef struct {
    const char *url;
    const char *route;
    int weight;                 /**< configured */
    int flags;                  /**< RC_BAL_F_* currently in force */
    rc_bal_state_e state;
    double eff_weight;          /**< weight after slow start */
    apr_uint32_t inflight;
    int max;                    /**< 0: unlimited */
    apr_uint64_t requests;      /**< reservations granted */
    apr_uint64_t failures;      /**< connect errors + timeouts (+5xx) */
    apr_uint64_t timeouts;
    apr_uint64_t connect_errors;
    apr_uint64_t http_5xx;
    apr_uint64_t ejections;
    apr_uint64_t full_skips;    /**< times skipped for being at max */
    apr_uint64_t panic_picks;   /**< used while ejected, in panic */
    double ewma_us;             /**< peak EWMA latency, decayed to now */
    apr_time_t eject_until;     /**< 0 unless ejected */
    apr_uint32_t eject_level;   /**< cooldown doubling level */
    int probe_up;               /**< active health view */
} rc_bal_member_stats_t;

/* ------------------------------------------------------------------ */
/* Configuration helpers (config time, pconf).  Each returns NULL on
 * success or an error message for the glue to print with file:line.     */

/** Create an empty balancer config named @a name; every field unset. */
rc_bal_conf_t *rc_bal_conf_create(apr_pool_t *p, const char *name);

/** Parse a method name ("round-robin", "least-conn", "hash", "p2c-ewma"). */
const char *rc_bal_parse_method(const char *arg, int *method);

/** Parse "uri" | "header:NAME" | "cookie:NAME" | "client-ip". */
const char *rc_bal_parse_hash_key(apr_pool_t *p, const char *arg,
                                  rc_bal_key_t *key);

/** Parse a duration "250ms", "10s", "2m", "1h", or bare seconds. */
const char *rc_bal_parse_interval(const char *arg, apr_interval_time_t *t);

/** Apply one "weight=N" / "status=backup|disabled|drain[,..]" / "max=N" /
 *  "route=ID" to @a m. */
const char *rc_bal_member_param(apr_pool_t *p, rc_bal_member_conf_t *m,
                                const char *kv);

/** Add a member: @a url plus @a argc "key=value" params; rejects a
 *  duplicate URL and more than RC_BAL_MAX_MEMBERS members. */
const char *rc_bal_conf_add_member(apr_pool_t *p, rc_bal_conf_t *c,
                                   const char *url, int argc,
                                   const char *const *argv);

/** Apply one RevBalancerEject param: fails=N window=T cooldown=T
 *  max-cooldown=T 5xx=on|off streak=N. */
const char *rc_bal_eject_param(rc_bal_conf_t *c, const char *kv);

/** Apply the RevHealthCheck params this core uses: fails=N passes=N
 *  (others, e.g. uri=, interval=, are the glue's: returns NULL and sets
 *  *used = 0 for them). */
const char *rc_bal_health_param(rc_bal_conf_t *c, const char *kv, int *used);

/** Validate the whole balancer (members, duplicate routes, ranges), derive
 *  missing routes and apply defaults.  Call once at the end of the block. */
const char *rc_bal_conf_check(apr_pool_t *p, rc_bal_conf_t *c);

/** Method name for logs / status ("round-robin", ...). */
const char *rc_bal_method_name(int method);

/** State name for the status page ("up", "backup", "draining", ...). */
const char *rc_bal_state_name(rc_bal_state_e st);

/* ------------------------------------------------------------------ */
/* Shared memory (post_config, parent).                                  */

/** Bytes of shared memory needed for @a n checked balancer configs. */
apr_size_t rc_bal_shm_size(const rc_bal_conf_t *const *confs, int n);

/**
 * Lay out (or re-attach) the balancers in the caller's shared area @a base
 * of @a size bytes (at least rc_bal_shm_size(); 64-byte aligned; a
 * MAP_SHARED|MAP_ANONYMOUS mapping made before the children fork).
 * When the area already holds a segment with the same magic, version, size
 * and layout fingerprint (same balancers, same member URLs in the same
 * order) it is kept -- health, EWMA, counters, in-flight counts survive a
 * graceful restart -- and *reused is set; weights, flags and max are
 * refreshed from the new config.  Otherwise it is initialised afresh.
 * Fills @a out[i] with a handle for confs[i], allocated from @a p.
 */
apr_status_t rc_bal_shm_attach(apr_pool_t *p, void *base, apr_size_t size,
                               const rc_bal_conf_t *const *confs, int n,
                               apr_uint32_t generation, rc_bal_t **out,
                               int *reused);

/* ------------------------------------------------------------------ */
/* Per request (any process, any thread).                                */

/**
 * Pick a usable member and reserve one in-flight slot on it (never beyond
 * max=N, across all processes).  A half-open member whose cooldown is over
 * gets the one trial request first.  Backups only when no primary is
 * usable (a primary at max=N or excluded counts as not usable).  Panic
 * (RevBalancerEject panic=on, the default): when no member of either tier
 * is usable and that is only because of passive ejection, a random
 * ejected member (primaries first) is used anyway; its success brings it
 * back at once, its failure does not lengthen its cooldown.  Returns
 * the member index, RC_BAL_FULL (some member usable but all such full) or
 * RC_BAL_NONE; on success @a t must later go to rc_bal_end() exactly once
 * (RC_BAL_ABANDONED if the request was never sent).
 */
int rc_bal_pick(rc_bal_t *b, const rc_bal_req_t *rq, apr_time_t now,
                rc_bal_ticket_t *t);

/** Member index whose route id is @a route (length @a len), or -1. */
int rc_bal_route_find(const rc_bal_t *b, const char *route, apr_size_t len);

/**
 * Sticky: reserve member @a idx if it may take this client's request
 * (usable, draining allowed; ejected/down/disabled not).  Returns @a idx,
 * RC_BAL_FULL (usable but at max) or RC_BAL_NONE (pick another).
 */
int rc_bal_acquire(rc_bal_t *b, int idx, apr_time_t now,
                   rc_bal_ticket_t *t);

/**
 * End a reservation: in-flight--, latency sample (OK/5XX), passive health.
 * Returns RC_BAL_EV_* bits (0 mostly).  A ticket from an older layout
 * (reinitialised segment) is ignored.  Idempotent: clears t->member.
 */
int rc_bal_end(rc_bal_t *b, rc_bal_ticket_t *t, apr_time_t now,
               rc_bal_outcome_e outcome);

/** Active health: one probe result for member @a idx; returns
 *  RC_BAL_EV_DOWN / RC_BAL_EV_UP on a transition. */
int rc_bal_report_probe(rc_bal_t *b, int idx, int ok, apr_time_t now);

/** Runtime admin change (status page): set the member's RC_BAL_F_DISABLED
 *  and RC_BAL_F_DRAIN flags to those in @a flags (backup is static). */
apr_status_t rc_bal_set_flags(rc_bal_t *b, int idx, int flags);

/* ------------------------------------------------------------------ */
/* Introspection.                                                        */

/** Number of members. */
int rc_bal_count(const rc_bal_t *b);

/** The config this handle was attached with. */
const rc_bal_conf_t *rc_bal_conf(const rc_bal_t *b);

/** Retries allowed for an idempotent request (RevBalancerRetries). */
int rc_bal_retries(const rc_bal_t *b);

/** Snapshot member @a idx at @a now (lock-free reads; may be torn
 *  between fields but every field is itself consistent). */
apr_status_t rc_bal_member_stats(const rc_bal_t *b, int idx, apr_time_t now,
                                 rc_bal_member_stats_t *st);

/** Balancer-wide counters. */
void rc_bal_info(const rc_bal_t *b, rc_bal_info_t *info);

/**
 * Give back the in-flight reservations of processes that died holding
 * them (SIGKILL, crash), for every balancer in @a b's area; frees their
 * process slots.  Without it a killed child could leave a max=N member
 * "full" for ever.  Cheap (RC_BAL_SLOTS kill(pid, 0) probes); call it
 * periodically from one place, e.g. the parent's monitor hook or the
 * health-check watchdog.  A zombie counts as alive until waited for.
 * Returns the number of reservations given back.
 */
int rc_bal_reap(rc_bal_t *b);

/** A child is exiting cleanly (child pool cleanup): free its process slot
 *  if it holds nothing; any balancer of the area will do. */
void rc_bal_child_exit(rc_bal_t *b);

/** Effective weight in percent of the configured weight (10..100 during
 *  slow start, else 100) of member @a idx at @a now. */
int rc_bal_slow_start_pct(const rc_bal_t *b, int idx, apr_time_t now);

/**
 * Peak-EWMA update, exposed for tests and the status page: from average
 * @a avg last updated @a dt ago, take sample @a x with time constant
 * @a tau: x > avg ? x : avg * w + x * (1 - w), with w = exp(-dt / tau).
 */
double rc_bal_ewma_next(double avg, apr_interval_time_t dt, double x,
                        apr_interval_time_t tau);

/** exp(x) for x <= 0 without libm (relative error < 1e-14). */
double rc_bal_exp_neg(double x);

/** splitmix64 step: thread-safe when each thread owns @a state. */
apr_uint64_t rc_bal_rand(apr_uint64_t *state);

/** 64-bit hash of a key (the one the ring uses). */
apr_uint64_t rc_bal_hash(const void *key, apr_size_t len);

/**
 * Test support: take balancer lock (@a idx < 0) or member @a idx's lock and
 * return without releasing it, so a test can SIGKILL the holder.  Never
 * called by the module.
 */
apr_status_t rc_bal_debug_hold_lock(rc_bal_t *b, int idx);

#ifdef __cplusplus
}
#endif

#endif /* RC_BALANCER_H */
