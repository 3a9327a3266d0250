/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * cache_mem_int.h -- private to cache_mem.c and cache_mem_alloc.c.
 *
 * The layout of the shared segment (every *_sh_t lives in shared memory
 * and holds offsets / indices, never pointers), the per-process handle,
 * small inline accessors, and the functions cache_mem_alloc.c offers to
 * cache_mem.c.  Nothing here is part of the glue's interface (that is
 * cache_mem.h).  The design is described at the top of cache_mem.c.
 */

#ifndef RC_CACHE_MEM_INT_H
#define RC_CACHE_MEM_INT_H

#include "cache_mem.h"
#include "procid.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define RC_SEG_MAGIC       0x52435348u    /* "RCSH" */
#define RC_SEG_VERSION     4u   /* 2: stale-served counter; 3: the
                                   compact meta blobs of cache_meta.c;
                                   4: followers (128-byte entries) */
#define RC_ENT_MAGIC       0x52434531u    /* "RCE1" */

#define RC_FILL_PER_STRIPE 8
#define RC_ALLOC_BATCH     64     /* blocks popped per allocator lock */
#define RC_SWEEP           64     /* entry slots swept per eviction pass */
#define RC_LRU_SCAN        16     /* LRU tail entries examined per pass */
#define RC_VICTIMS         8
#define RC_WAIT_SLICE      (200 * 1000)   /* re-check a fill owner (us) */
#define RC_REAP_INTERVAL   APR_USEC_PER_SEC
#define RC_WRITER_GRACE    APR_USEC_PER_SEC   /* sweep spares writers */
#define RC_FOLLOW_WAKE     (16 * 1024)  /* bytes between follower wakes */

enum { RC_ST_FREE = 0, RC_ST_WRITING, RC_ST_LIVE, RC_ST_DEAD };

#define RC_EF_PROTECTED 0x01      /* in the protected LRU segment */
#define RC_EF_META2     0x02      /* meta lives in the meta2 chain */
#define RC_EF_DONE      0x04      /* committed: the body is complete */

#define RC_SEG(f)   ((f) & RC_EF_PROTECTED)

enum {
    C_LOOKUPS, C_HITS, C_MISSES, C_STORES, C_ABORTS, C_TOOBIG,
    C_EVICTIONS, C_EXPIRED, C_PURGED, C_PURGES, C_REPLACED, C_METAUPD,
    C_CWAITS, C_CTIMEOUTS, C_TAKEOVERS, C_PINS_REAPED, C_WRITERS_REAPED,
    C_REPAIRS, C_CORRUPT, C_NOSPACE, C_BUSY, C_OBJECTS, C_BLOCKS,
    C_STALE, C_FOLLOWS,
    C_MAX
};

#define CTR_ADD(c, i, n) \
    __atomic_fetch_add(&(c)->sh->ctr[i], (apr_uint64_t)(n), __ATOMIC_RELAXED)
#define CTR_SUB(c, i, n) \
    __atomic_fetch_sub(&(c)->sh->ctr[i], (apr_uint64_t)(n), __ATOMIC_RELAXED)
/* Orders stores to shared memory against a kill at any instruction: the
 * repair code relies on the order of the stores in the allocator. */
#define RC_BARRIER() __atomic_signal_fence(__ATOMIC_SEQ_CST)

/* -------------------------------------------------------------------- */
/* Shared structures                                                      */

/* One entry slot (128 bytes).  Lock that guards each field in brackets. */
typedef struct rc_entry_sh_t {
    apr_uint32_t magic;
    unsigned char  state;
    unsigned char  flags;           /* RC_EF_* */
    apr_uint16_t vlen;
    apr_uint32_t gen;             /* bumped each time the slot is taken */
    apr_uint32_t pins;            /* stripe lock */
    apr_uint64_t hash;
    apr_uint64_t tag_bloom;       /* 2 bits per tag */
    apr_uint32_t hnext;           /* hash chain (stripe lock) */
    apr_uint32_t lru_prev;        /* alloc lock */
    apr_uint32_t lru_next;        /* also the free-slot link */
    apr_uint32_t head;            /* main chain */
    apr_uint32_t tail;
    apr_uint32_t nblk;
    apr_uint32_t klen;
    apr_uint32_t tlen;
    apr_uint32_t mlen;
    apr_uint32_t meta2_head;
    apr_uint32_t meta2_len;
    apr_uint32_t retired_head;
    apr_uint32_t retired_nblk;
    apr_uint32_t pid;             /* writer's process */
    apr_uint32_t fseq;            /* futex word of followers (atomic) */
    apr_uint32_t fwaiters;        /* followers sleeping on it (atomic) */
    apr_uint64_t body_len;        /* WRITING: published so far (atomic) */
    apr_int64_t  expires;         /* reclaim after */
    apr_int64_t  stored;          /* begin time, then commit time */
    apr_int64_t  last_touch;
} rc_entry_sh_t;

typedef union rc_stripe_sh_t {
    struct {
        pthread_mutex_t lock;
        apr_uint32_t    fill_seq;      /* futex word */
        apr_uint32_t    fill_waiters;  /* atomic */
    } s;
    char pad[64];
} rc_stripe_sh_t;

typedef struct rc_fill_sh_t {
    apr_uint64_t hash;
    apr_int64_t  deadline;
    apr_uint32_t pid;
    apr_uint32_t token;           /* 0 = free */
    apr_uint32_t widx;            /* the owner's WRITING entry, 0 = none */
    apr_uint32_t wgen;            /* ... and its generation */
    apr_int64_t  length;          /* announced body length, -1 unknown */
} rc_fill_sh_t;

typedef struct rc_cache_sh_t {
    apr_uint32_t magic;
    apr_uint32_t version;
    apr_uint64_t size;
    apr_uint64_t generation;
    /* layout */
    apr_uint32_t block_size;
    apr_uint32_t bytes_per_entry;
    apr_uint32_t nstripes;
    apr_uint32_t npins;
    apr_uint32_t nblocks;
    apr_uint32_t nentries;
    apr_uint32_t nbuckets;
    apr_uint32_t pad0;
    apr_uint64_t off[8];
    /* tunables (may change on reuse) */
    apr_uint64_t max_object;
    apr_int64_t  touch_interval;
    apr_uint32_t protected_pct;
    /* lock-free */
    apr_uint32_t pad3;
    apr_uint32_t fill_token;
    apr_uint32_t pad1;
    apr_int64_t  last_reap;
    /* allocator, under alloc_lock */
    union {
        pthread_mutex_t m;
        char pad[64];
    } alloc_lock __attribute__((aligned(64)));
    apr_uint32_t free_head;
    apr_uint32_t free_count;
    apr_uint32_t efree_head;
    apr_uint32_t efree_count;
    apr_uint32_t lru_head[2];
    apr_uint32_t lru_tail[2];
    apr_uint64_t lru_blocks[2];
    apr_uint32_t sweep;
    apr_uint32_t pad2;
    apr_uint64_t ctr[C_MAX] __attribute__((aligned(64)));
} rc_cache_sh_t;

enum { OFF_STRIPES, OFF_FILLS, OFF_BUCKETS, OFF_ENTS, OFF_PINS, OFF_NEXT,
       OFF_MARK, OFF_DATA };

/* Per-process handle. Layout numbers are copied at attach, so a scribbled
 * header cannot send us out of the segment. */
struct rc_cache_t {
    rc_cache_sh_t  *sh;
    char           *base;
    apr_size_t      size;
    rc_stripe_sh_t *stripes;
    rc_fill_sh_t   *fills;
    apr_uint32_t   *buckets;
    rc_entry_sh_t  *ents;
    apr_uint64_t   *pins;
    apr_uint32_t   *next;
    unsigned char  *mark;
    char           *data;
    apr_uint32_t    bsize, bshift;
    apr_uint32_t    nblocks, nentries, nbuckets, nstripes, npins;
};

/* -------------------------------------------------------------------- */
/* Small helpers                                                          */

static APR_INLINE rc_entry_sh_t *ent(const rc_cache_t *c, apr_uint32_t i)
{
    return &c->ents[i];
}

static APR_INLINE int ent_ok(const rc_cache_t *c, apr_uint32_t i)
{
    return i >= 1 && i <= c->nentries;
}

static APR_INLINE int blk_ok(const rc_cache_t *c, apr_uint32_t b)
{
    return b >= 1 && b <= c->nblocks;
}

static APR_INLINE char *blk_ptr(const rc_cache_t *c, apr_uint32_t b)
{
    return c->data + ((apr_size_t)(b - 1) << c->bshift);
}

static APR_INLINE apr_uint32_t stripe_of(const rc_cache_t *c, apr_uint64_t h)
{
    return (apr_uint32_t)(h & (c->nstripes - 1));
}

static APR_INLINE apr_uint32_t bucket_of(const rc_cache_t *c, apr_uint64_t h)
{
    return (apr_uint32_t)(h & (c->nbuckets - 1));
}

static APR_INLINE apr_uint32_t blocks_for(const rc_cache_t *c,
                                          apr_uint64_t len)
{
    return (apr_uint32_t)((len + c->bsize - 1) >> c->bshift);
}

static APR_INLINE apr_uint64_t head_len(const rc_entry_sh_t *e)
{
    return (apr_uint64_t)e->klen + e->vlen + e->tlen + e->mlen;
}

static APR_INLINE int pid_alive(apr_uint32_t pid)
{
    if (pid == 0) {
        return 0;
    }
    if ((pid_t)pid == getpid()) {
        return 1;
    }
    return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

static APR_INLINE void pin_store(rc_cache_t *c, apr_uint32_t slot,
                                 apr_uint64_t w)
{
    __atomic_store_n(&c->pins[slot - 1], w, __ATOMIC_RELEASE);
}

/* -------------------------------------------------------------------- */
/* Offered by cache_mem_alloc.c                                           */

/* Block chains: seek to a stream offset; copy out (dst) or compare (src). */
int rc_cm_chain_seek(const rc_cache_t *c, apr_uint32_t blk,
                     apr_uint64_t off, apr_uint32_t *oblk,
                     apr_uint32_t *oboff);
int rc_cm_chain_io(const rc_cache_t *c, apr_uint32_t head, apr_uint64_t off,
                   char *dst, const char *src, apr_size_t len);

/* Robust locks; a dead owner's structure is repaired before returning.
 * Order: at most one stripe, then alloc. */
apr_status_t rc_cm_alloc_lock(rc_cache_t *c);
int rc_cm_alloc_trylock(rc_cache_t *c);
void rc_cm_alloc_unlock(rc_cache_t *c);
apr_status_t rc_cm_stripe_lock(rc_cache_t *c, apr_uint32_t s);
void rc_cm_stripe_unlock(rc_cache_t *c, apr_uint32_t s);

/* Allocator and LRU (alloc lock held). */
int rc_cm_blocks_pop_locked(rc_cache_t *c, apr_uint32_t i, apr_uint32_t n);
apr_uint32_t rc_cm_chain_last(const rc_cache_t *c, apr_uint32_t head,
                              apr_uint32_t n);
void rc_cm_ent_release_locked(rc_cache_t *c, apr_uint32_t i);
apr_uint32_t rc_cm_ent_pop_locked(rc_cache_t *c, apr_uint32_t pid);
void rc_cm_lru_push_locked(rc_cache_t *c, apr_uint32_t i, int seg);
void rc_cm_lru_touch_locked(rc_cache_t *c, apr_uint32_t i);

/* Followers of a WRITING entry: wake them (no lock held). */
void rc_cm_wake_followers(rc_cache_t *c, rc_entry_sh_t *e);

/* Index membership and pins (stripe lock held; take alloc inside). */
void rc_cm_unlink_locked(rc_cache_t *c, apr_uint32_t i, int ctr);
void rc_cm_unpin_locked(rc_cache_t *c, apr_uint32_t i);

/* Pin slots, reaping, eviction (no lock held). */
apr_uint32_t rc_cm_pin_claim(rc_cache_t *c, apr_uint32_t pid,
                             apr_uint64_t hash);
apr_size_t rc_cm_reap_pins_maybe(rc_cache_t *c);
apr_size_t rc_cm_evict_some(rc_cache_t *c, apr_time_t now);

#endif /* RC_CACHE_MEM_INT_H */
