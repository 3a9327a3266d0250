/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * cache_mem.c -- the shared-memory object store of mod_revcache.
 *
 * OWNS: one fixed-size segment used by every child process and thread: the
 * index, the entries, their bytes, the allocator, eviction, the pins of
 * readers, the collapsed-forwarding markers, the counters.  It knows nothing
 * of HTTP: a "meta" blob (status, headers, freshness, serialised by the
 * glue) and a body are opaque bytes.  APR, POSIX and Linux headers only.
 *
 * LAYOUT (offsets from the segment base; no pointers inside the segment):
 *
 *   rc_cache_sh_t     header {magic, version, size, generation}, layout,
 *                     allocator lock + free lists + LRU, counters
 *   stripes[S]        robust mutex + futex word per index stripe
 *   fills[S * 8]      fill-in-progress markers, 8 per stripe
 *   buckets[N]        head entry index of each hash chain (0 = empty)
 *   ents[E + 1]       entry descriptors (slot 0 unused), 120 bytes each
 *   pins[P]           pin slots: (pid << 32 | entry index), 0 = free
 *   next[B + 1]       block links (block 0 unused = "none")
 *   mark[B / 8]       bitmap used by repair and rc_cache_check
 *   data[B]           the blocks (block_size bytes each, default 256)
 *
 * An entry's bytes form one chain of blocks:
 *     key | variant | tags | meta | body
 * so the only waste is the tail of the last block: per-object overhead is
 * the 120-byte descriptor + on average half a block + 4 bytes of link per
 * block (1.6% at 256-byte blocks): about 250 bytes + 1.6% of the body.
 * A metadata update (304) writes the new blob into a chain of its own
 * ("meta2"); the chain it replaces is parked on the entry's "retired"
 * chain until no reader pins the entry.
 *
 * ENTRY STATES:  FREE -> WRITING -> LIVE -> DEAD -> FREE
 *   WRITING  owned by one writer (pid recorded), not in the index or LRU
 *   LIVE     in the index (hash chain) and in one of the two LRU lists
 *   DEAD     unlinked, still pinned by readers; freed by the last release
 *
 * LOCKS (robust process-shared pthread mutexes; order: stripe -> alloc):
 *   stripe[s]  the hash chains of the buckets b with (b & (S-1)) == s,
 *              index membership, entry pins, meta swap, the fill markers
 *              of the stripe.  A key's hash picks one stripe: lookups of
 *              different keys run in parallel.  One stripe at a time is
 *              held (rc_cache_check takes them all in ascending order).
 *   alloc      block free list, entry-slot free list, both LRU lists, the
 *              chains of WRITING entries, entry state changes.  Held for a
 *              few list operations only; a hit takes it with trylock (and
 *              at most once per touch_interval) to move the entry in LRU.
 *   Inside any lock: no I/O, no malloc, no logging, no syscall except the
 *   futex/mutex ones.  Liveness checks (kill(pid, 0)) are made outside.
 *   Counters are 64-bit words updated with __atomic builtins, no lock.
 *
 * DEAD LOCK OWNERS: a process killed inside a critical section leaves the
 * mutex "owner dead"; the next locker gets EOWNERDEAD and rebuilds what
 * the lock protects from the state that survives any interruption:
 *   alloc:   entry slots are the truth: chains of non-FREE entries are
 *            walked (bounded by their recorded block counts), every other
 *            block goes back to the free list, LRU lists and counters are
 *            rebuilt.  Store order in the allocator keeps a chain from
 *            reaching into the free list at any instant.
 *   stripe:  the stripe's hash chains are rebuilt from LIVE entries
 *            (duplicates of one key/variant: the newer wins) and the pin
 *            counts recomputed from the pin table.
 *
 * REFERENCES: a hit holds a pin: a pin slot (pid, entry) + entry->pins.
 * A pinned entry is never freed or reused; purge/eviction/replacement of
 * a pinned entry only unlinks it (DEAD), the last release frees it.  Pin
 * slots of processes that are gone (kill(pid, 0) == ESRCH) are released
 * by the reaper (rc_cache_reap, or when pins run out or eviction finds
 * only pinned entries).  A writer (rc_cache_writer_t, per process) owns a
 * WRITING entry; if its process dies, the sweep finds the slot with a
 * dead pid and frees it.  Handles live in the caller's pool; a pool
 * cleanup releases a pin / aborts a write the caller forgot.
 *
 * LIFETIME: the segment outlives configuration reloads (the glue keeps it
 * in the process pool); rc_cache_attach on an existing segment reuses it
 * when magic, version, size and layout parameters match.
 */

#include "cache_mem.h"

#include <apr_shm.h>
#include <apr_strings.h>

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define RC_SEG_MAGIC       0x52435348u    /* "RCSH" */
#define RC_SEG_VERSION     1u
#define RC_ENT_MAGIC       0x52434531u    /* "RCE1" */

#define RC_FILL_PER_STRIPE 8
#define RC_ALLOC_BATCH     64     /* blocks popped per allocator lock */
#define RC_SWEEP           64     /* entry slots swept per eviction pass */
#define RC_LRU_SCAN        16     /* LRU tail entries examined per pass */
#define RC_VICTIMS         8
#define RC_WAIT_SLICE      (200 * 1000)   /* re-check a fill owner (us) */
#define RC_REAP_INTERVAL   APR_USEC_PER_SEC

enum { RC_ST_FREE = 0, RC_ST_WRITING, RC_ST_LIVE, RC_ST_DEAD };

#define RC_EF_PROTECTED 0x01      /* in the protected LRU segment */
#define RC_EF_META2     0x02      /* meta lives in the meta2 chain */

#define RC_SEG(f)   ((f) & RC_EF_PROTECTED)

enum {
    C_LOOKUPS, C_HITS, C_MISSES, C_STORES, C_ABORTS, C_TOOBIG,
    C_EVICTIONS, C_EXPIRED, C_PURGED, C_PURGES, C_REPLACED, C_METAUPD,
    C_CWAITS, C_CTIMEOUTS, C_TAKEOVERS, C_PINS_REAPED, C_WRITERS_REAPED,
    C_REPAIRS, C_CORRUPT, C_NOSPACE, C_BUSY, C_OBJECTS, C_BLOCKS,
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
    apr_uint64_t body_len;
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
    apr_uint32_t pin_rotor;
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

struct rc_cache_hit_t {
    rc_cache_t   *c;
    apr_pool_t   *pool;
    apr_uint64_t  hash;
    apr_uint32_t  idx, gen, slot;
    int           released;
    apr_uint32_t  meta_head, meta_len;
    apr_uint64_t  meta_off;
    apr_uint32_t  body_blk, body_boff;
    apr_uint64_t  body_len;
    apr_time_t    expires, stored;
};

struct rc_cache_writer_t {
    rc_cache_t   *c;
    apr_pool_t   *pool;
    apr_uint64_t  hash;
    apr_uint32_t  idx, gen;
    apr_uint32_t  cur, cur_used, avail;
    apr_uint64_t  body_len, max_body;
    apr_time_t    now;
    apr_status_t  failed;
    int           done;
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

static int pid_alive(apr_uint32_t pid)
{
    if (pid == 0) {
        return 0;
    }
    if ((pid_t)pid == getpid()) {
        return 1;
    }
    return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

/*
 * 64-bit hash of a key: 8 bytes at a time, multiply/rotate mixing and a
 * final avalanche (the shape of MurmurHash3's 64-bit steps, own code).
 * Example: "GET http://a/x" -> 14 bytes: one 8-byte word, 6 tail bytes,
 * then fmix; the low bits pick the bucket, the low log2(S) the stripe.
 */
static apr_uint64_t rc_hash(const void *p, apr_size_t n, apr_uint64_t seed)
{
    const unsigned char *s = p;
    apr_uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
    apr_uint64_t k;

    while (n >= 8) {
        memcpy(&k, s, 8);
        k *= 0x87c37b91114253d5ULL;
        k = (k << 31) | (k >> 33);
        k *= 0x4cf5ad432745937fULL;
        h ^= k;
        h = ((h << 27) | (h >> 37)) * 5 + 0x52dce729;
        s += 8;
        n -= 8;
    }
    k = 0;
    while (n > 0) {
        k = (k << 8) | s[--n];
    }
    h ^= k * 0x87c37b91114253d5ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static apr_uint64_t key_hash(const char *key, apr_size_t klen)
{
    return rc_hash(key, klen, 0x7263636163686531ULL);
}

/* Surrogate-Key tokens are separated by spaces, tabs or commas. */
static APR_INLINE int tag_sep(char ch)
{
    return ch == ' ' || ch == '\t' || ch == ',';
}

static apr_uint64_t tag_bit(const char *t, apr_size_t n)
{
    apr_uint64_t h = rc_hash(t, n, 0x74616773ULL);
    return (1ULL << (h & 63)) | (1ULL << ((h >> 6) & 63));
}

static apr_uint64_t tags_bloom(const char *tags, apr_size_t tlen)
{
    apr_uint64_t bloom = 0;
    apr_size_t i = 0, start;

    while (i < tlen) {
        while (i < tlen && tag_sep(tags[i])) {
            i++;
        }
        start = i;
        while (i < tlen && !tag_sep(tags[i])) {
            i++;
        }
        if (i > start) {
            bloom |= tag_bit(tags + start, i - start);
        }
    }
    return bloom;
}

/* -------------------------------------------------------------------- */
/* Block chains (readers: entry pinned or a lock held)                    */

/* Position (*blk, *boff) of stream offset @off in the chain at @blk. */
static int chain_seek(const rc_cache_t *c, apr_uint32_t blk,
                      apr_uint64_t off, apr_uint32_t *oblk,
                      apr_uint32_t *oboff)
{
    while (off >= c->bsize) {
        if (!blk_ok(c, blk)) {
            return 0;
        }
        blk = c->next[blk];
        off -= c->bsize;
    }
    if (!blk_ok(c, blk)) {
        return 0;
    }
    *oblk = blk;
    *oboff = (apr_uint32_t)off;
    return 1;
}

/* Copy (@dst != NULL) or compare with @src (@dst == NULL) @len bytes at
 * stream offset @off. Returns 1 when copied / equal, 0 otherwise. */
static int chain_io(const rc_cache_t *c, apr_uint32_t head, apr_uint64_t off,
                    char *dst, const char *src, apr_size_t len)
{
    apr_uint32_t b, bo;
    apr_size_t n;

    if (len == 0) {
        return 1;
    }
    if (!chain_seek(c, head, off, &b, &bo)) {
        return 0;
    }
    for (;;) {
        n = c->bsize - bo;
        if (n > len) {
            n = len;
        }
        if (dst) {
            memcpy(dst, blk_ptr(c, b) + bo, n);
            dst += n;
        }
        else {
            if (memcmp(src, blk_ptr(c, b) + bo, n) != 0) {
                return 0;
            }
            src += n;
        }
        len -= n;
        if (len == 0) {
            return 1;
        }
        b = c->next[b];
        bo = 0;
        if (!blk_ok(c, b)) {
            return 0;
        }
    }
}

/*
 * Does the tag list stored at @off (@tlen bytes) contain the token @tag?
 * Streams over the blocks, no copy.  Example: tags "a  bb,c", tag "bb":
 * 'a' starts a token that fails at pos 0; the separators reset; "bb"
 * matches 2 chars and ends at ',' with pos == 2 -> found.
 */
static int chain_has_tag(const rc_cache_t *c, apr_uint32_t head,
                         apr_uint64_t off, apr_uint32_t tlen,
                         const char *tag, apr_size_t taglen)
{
    apr_uint32_t b, bo;
    apr_size_t pos = 0;
    int matching = 1;
    char ch;

    if (tlen == 0 || taglen == 0 || !chain_seek(c, head, off, &b, &bo)) {
        return 0;
    }
    while (tlen > 0) {
        ch = blk_ptr(c, b)[bo];
        if (tag_sep(ch)) {
            if (matching && pos == taglen) {
                return 1;
            }
            pos = 0;
            matching = 1;
        }
        else if (matching && pos < taglen && ch == tag[pos]) {
            pos++;
        }
        else {
            matching = 0;
        }
        tlen--;
        if (++bo == c->bsize && tlen > 0) {
            b = c->next[b];
            bo = 0;
            if (!blk_ok(c, b)) {
                return 0;
            }
        }
    }
    return matching && pos == taglen;
}

/* -------------------------------------------------------------------- */
/* Locks                                                                  */

static void repair_alloc_locked(rc_cache_t *c);
static void repair_stripe_locked(rc_cache_t *c, apr_uint32_t s);

static int mutex_init_shared(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int rv;

    if ((rv = pthread_mutexattr_init(&a)) != 0) {
        return rv;
    }
    rv = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (rv == 0) {
        rv = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    }
    if (rv == 0) {
        rv = pthread_mutex_init(m, &a);
    }
    pthread_mutexattr_destroy(&a);
    return rv;
}

static apr_status_t alloc_lock(rc_cache_t *c)
{
    int rv = pthread_mutex_lock(&c->sh->alloc_lock.m);

    if (rv == EOWNERDEAD) {
        repair_alloc_locked(c);
        CTR_ADD(c, C_REPAIRS, 1);
        pthread_mutex_consistent(&c->sh->alloc_lock.m);
        rv = 0;
    }
    if (rv != 0) {
        CTR_ADD(c, C_CORRUPT, 1);
    }
    return rv;
}

/* 0 when locked, non-zero (busy or broken) otherwise. */
static int alloc_trylock(rc_cache_t *c)
{
    int rv = pthread_mutex_trylock(&c->sh->alloc_lock.m);

    if (rv == EOWNERDEAD) {
        repair_alloc_locked(c);
        CTR_ADD(c, C_REPAIRS, 1);
        pthread_mutex_consistent(&c->sh->alloc_lock.m);
        rv = 0;
    }
    return rv;
}

static void alloc_unlock(rc_cache_t *c)
{
    pthread_mutex_unlock(&c->sh->alloc_lock.m);
}

static apr_status_t stripe_lock(rc_cache_t *c, apr_uint32_t s)
{
    int rv = pthread_mutex_lock(&c->stripes[s].s.lock);

    if (rv == EOWNERDEAD) {
        repair_stripe_locked(c, s);
        CTR_ADD(c, C_REPAIRS, 1);
        pthread_mutex_consistent(&c->stripes[s].s.lock);
        rv = 0;
    }
    if (rv != 0) {
        CTR_ADD(c, C_CORRUPT, 1);
    }
    return rv;
}

static void stripe_unlock(rc_cache_t *c, apr_uint32_t s)
{
    pthread_mutex_unlock(&c->stripes[s].s.lock);
}

/* -------------------------------------------------------------------- */
/* Allocator (alloc lock held)                                            */

/*
 * Pop @n blocks off the free list and append them to entry @i's chain.
 * Example, free list 7 -> 8 -> 9 -> 3, entry chain 4 -> 5, n = 2:
 *   cut:  free list 9 -> 3, popped 7 -> 8 -> 0
 *   link: next[5] = 7, tail = 8, nblk += 2: chain 4 -> 5 -> 7 -> 8
 * Cut before link: a kill between the two leaves 7, 8 owned by nobody
 * (repair frees them), never a chain running into the free list.
 */
static int blocks_pop_locked(rc_cache_t *c, apr_uint32_t i, apr_uint32_t n)
{
    rc_cache_sh_t *sh = c->sh;
    rc_entry_sh_t *e = ent(c, i);
    apr_uint32_t first, last, k;

    if (sh->free_count < n || n == 0) {
        return 0;
    }
    first = last = sh->free_head;
    for (k = 0; k < n; k++) {
        if (!blk_ok(c, last)) {
            /* the free list is damaged: rebuild it and let caller retry */
            CTR_ADD(c, C_CORRUPT, 1);
            repair_alloc_locked(c);
            return 0;
        }
        if (k + 1 < n) {
            last = c->next[last];
        }
    }
    sh->free_head = c->next[last];
    sh->free_count -= n;
    c->next[last] = 0;
    RC_BARRIER();
    if (e->nblk == 0) {
        e->head = first;
    }
    else {
        c->next[e->tail] = first;
    }
    RC_BARRIER();
    e->tail = last;
    e->nblk += n;
    CTR_ADD(c, C_BLOCKS, n);
    return 1;
}

/* Give the chain head..tail (n blocks) back; the caller then clears the
 * owner's reference. */
static void chain_free_locked(rc_cache_t *c, apr_uint32_t head,
                              apr_uint32_t tail, apr_uint32_t n)
{
    if (n == 0 || !blk_ok(c, head) || !blk_ok(c, tail)) {
        return;
    }
    c->next[tail] = c->sh->free_head;
    RC_BARRIER();
    c->sh->free_head = head;
    c->sh->free_count += n;
    CTR_SUB(c, C_BLOCKS, n);
}

/* Walk @n blocks from @head; returns the last one or 0 if broken. */
static apr_uint32_t chain_last(const rc_cache_t *c, apr_uint32_t head,
                               apr_uint32_t n)
{
    apr_uint32_t b = head;

    while (n-- > 1) {
        if (!blk_ok(c, b)) {
            return 0;
        }
        b = c->next[b];
    }
    return blk_ok(c, b) ? b : 0;
}

static void retired_free_locked(rc_cache_t *c, rc_entry_sh_t *e)
{
    apr_uint32_t t;

    if (e->retired_nblk) {
        t = chain_last(c, e->retired_head, e->retired_nblk);
        if (t) {
            chain_free_locked(c, e->retired_head, t, e->retired_nblk);
        }
        else {
            CTR_ADD(c, C_CORRUPT, 1);
        }
    }
    RC_BARRIER();
    e->retired_head = 0;
    e->retired_nblk = 0;
}

/* Free every chain of entry @i and put the slot on the free-slot list. */
static void ent_release_locked(rc_cache_t *c, apr_uint32_t i)
{
    rc_entry_sh_t *e = ent(c, i);
    apr_uint32_t n, t;

    if (e->nblk) {
        chain_free_locked(c, e->head, e->tail, e->nblk);
    }
    RC_BARRIER();
    e->nblk = 0;
    e->head = e->tail = 0;
    if (e->flags & RC_EF_META2) {
        n = blocks_for(c, e->meta2_len);
        t = n ? chain_last(c, e->meta2_head, n) : 0;
        if (t) {
            chain_free_locked(c, e->meta2_head, t, n);
        }
        RC_BARRIER();
        e->flags &= ~RC_EF_META2;
        e->meta2_head = e->meta2_len = 0;
    }
    retired_free_locked(c, e);
    e->state = RC_ST_FREE;
    e->pins = 0;
    e->pid = 0;
    e->hash = 0;
    e->flags = 0;
    e->hnext = 0;
    e->lru_prev = 0;
    e->lru_next = c->sh->efree_head;
    c->sh->efree_head = i;
    c->sh->efree_count++;
}

static apr_uint32_t ent_pop_locked(rc_cache_t *c)
{
    rc_cache_sh_t *sh = c->sh;
    apr_uint32_t i = sh->efree_head;
    rc_entry_sh_t *e;

    if (i == 0) {
        return 0;
    }
    if (!ent_ok(c, i) || ent(c, i)->state != RC_ST_FREE) {
        CTR_ADD(c, C_CORRUPT, 1);
        repair_alloc_locked(c);
        return 0;
    }
    e = ent(c, i);
    sh->efree_head = e->lru_next;
    sh->efree_count--;
    RC_BARRIER();
    e->magic = RC_ENT_MAGIC;
    e->gen++;
    e->lru_next = e->lru_prev = e->hnext = 0;
    e->head = e->tail = e->nblk = 0;
    e->meta2_head = e->meta2_len = 0;
    e->retired_head = e->retired_nblk = 0;
    e->flags = 0;
    e->pins = 0;
    e->pid = (apr_uint32_t)getpid();
    RC_BARRIER();
    e->state = RC_ST_WRITING;
    return i;
}

/* LRU: two doubly linked lists (probation, protected), head = recent. */
static void lru_unlink_locked(rc_cache_t *c, apr_uint32_t i)
{
    rc_cache_sh_t *sh = c->sh;
    rc_entry_sh_t *e = ent(c, i);
    int seg = RC_SEG(e->flags);

    if (e->lru_prev) {
        ent(c, e->lru_prev)->lru_next = e->lru_next;
    }
    else if (sh->lru_head[seg] == i) {
        sh->lru_head[seg] = e->lru_next;
    }
    if (e->lru_next) {
        ent(c, e->lru_next)->lru_prev = e->lru_prev;
    }
    else if (sh->lru_tail[seg] == i) {
        sh->lru_tail[seg] = e->lru_prev;
    }
    e->lru_prev = e->lru_next = 0;
    sh->lru_blocks[seg] -= e->nblk;
}

static void lru_push_locked(rc_cache_t *c, apr_uint32_t i, int seg)
{
    rc_cache_sh_t *sh = c->sh;
    rc_entry_sh_t *e = ent(c, i);

    e->flags = (unsigned char)((e->flags & ~RC_EF_PROTECTED) | seg);
    e->lru_prev = 0;
    e->lru_next = sh->lru_head[seg];
    if (e->lru_next) {
        ent(c, e->lru_next)->lru_prev = i;
    }
    else {
        sh->lru_tail[seg] = i;
    }
    sh->lru_head[seg] = i;
    sh->lru_blocks[seg] += e->nblk;
}

/*
 * Segmented LRU touch (alloc lock held).  Example with a protected limit
 * of 80% of the blocks: a new entry enters probation; its first hit moves
 * it to the protected head; when protected holds more than its share its
 * tail is demoted to the probation head, and eviction always starts at the
 * probation tail.  A scan of cold keys (stored once, never hit) only
 * cycles through probation and cannot flush the protected (hot) set.
 */
static void lru_touch_locked(rc_cache_t *c, apr_uint32_t i)
{
    rc_cache_sh_t *sh = c->sh;
    apr_uint64_t limit = (apr_uint64_t)c->nblocks * sh->protected_pct / 100;
    apr_uint32_t t;

    lru_unlink_locked(c, i);
    lru_push_locked(c, i, RC_EF_PROTECTED);
    while (sh->lru_blocks[1] > limit && (t = sh->lru_tail[1]) != 0
           && t != i) {
        lru_unlink_locked(c, t);
        lru_push_locked(c, t, 0);
    }
}

/* -------------------------------------------------------------------- */
/* Index (stripe lock held)                                               */

static int ent_matches(const rc_cache_t *c, const rc_entry_sh_t *e,
                       apr_uint64_t h, const char *key, apr_size_t klen,
                       const char *var, apr_size_t vlen)
{
    return e->hash == h && e->klen == klen
           && (var == NULL || e->vlen == vlen)
           && chain_io(c, e->head, 0, NULL, key, klen)
           && (var == NULL || chain_io(c, e->head, klen, NULL, var, vlen));
}

/* Find the LIVE entry (key, variant); variant NULL = any variant. */
static apr_uint32_t find_locked(rc_cache_t *c, apr_uint64_t h,
                                const char *key, apr_size_t klen,
                                const char *var, apr_size_t vlen)
{
    apr_uint32_t i = c->buckets[bucket_of(c, h)];
    apr_uint32_t steps = 0;
    rc_entry_sh_t *e;

    while (i != 0) {
        if (!ent_ok(c, i) || ++steps > c->nentries) {
            CTR_ADD(c, C_CORRUPT, 1);
            return 0;
        }
        e = ent(c, i);
        if (e->magic != RC_ENT_MAGIC) {
            CTR_ADD(c, C_CORRUPT, 1);
            return 0;
        }
        if (e->state == RC_ST_LIVE
            && ent_matches(c, e, h, key, klen, var, vlen)) {
            return i;
        }
        i = e->hnext;
    }
    return 0;
}

/*
 * Remove LIVE entry @i from the index and LRU (stripe lock held); free it
 * unless pinned (then DEAD until the last release).  Counts @ctr.
 */
static void unlink_locked(rc_cache_t *c, apr_uint32_t i, int ctr)
{
    rc_entry_sh_t *e = ent(c, i);
    apr_uint32_t *p = &c->buckets[bucket_of(c, e->hash)];
    apr_uint32_t steps = 0;

    while (*p != 0 && ent_ok(c, *p) && steps++ <= c->nentries) {
        if (*p == i) {
            *p = e->hnext;
            break;
        }
        p = &ent(c, *p)->hnext;
    }
    e->hnext = 0;
    if (alloc_lock(c) != APR_SUCCESS) {
        return;
    }
    if (e->state == RC_ST_LIVE) {
        lru_unlink_locked(c, i);
        CTR_SUB(c, C_OBJECTS, 1);
        if (e->pins == 0) {
            ent_release_locked(c, i);
        }
        else {
            e->state = RC_ST_DEAD;
        }
        CTR_ADD(c, ctr, 1);
    }
    alloc_unlock(c);
}

/* Drop a pin on @i (stripe lock held); frees what the pin kept. */
static void unpin_locked(rc_cache_t *c, apr_uint32_t i)
{
    rc_entry_sh_t *e = ent(c, i);

    if (e->pins > 0) {
        e->pins--;
    }
    else {
        CTR_ADD(c, C_CORRUPT, 1);
    }
    if (e->pins == 0
        && (e->state == RC_ST_DEAD
            || (e->state == RC_ST_LIVE && e->retired_nblk))) {
        if (alloc_lock(c) == APR_SUCCESS) {
            if (e->state == RC_ST_DEAD) {
                ent_release_locked(c, i);
            }
            else {
                retired_free_locked(c, e);
            }
            alloc_unlock(c);
        }
    }
}

/* -------------------------------------------------------------------- */
/* Pin slots (lock-free claim; entry set/cleared under the stripe lock)   */

static apr_uint32_t pin_claim(rc_cache_t *c, apr_uint32_t pid)
{
    apr_uint32_t start, k, n;
    apr_uint64_t w;

    start = __atomic_fetch_add(&c->sh->pin_rotor, 1, __ATOMIC_RELAXED);
    for (n = 0; n < c->npins; n++) {
        k = (start + n) % c->npins;
        w = __atomic_load_n(&c->pins[k], __ATOMIC_RELAXED);
        if (w == 0
            && __atomic_compare_exchange_n(&c->pins[k], &w,
                                           (apr_uint64_t)pid << 32, 0,
                                           __ATOMIC_ACQ_REL,
                                           __ATOMIC_RELAXED)) {
            return k + 1;
        }
    }
    return 0;
}

static void pin_store(rc_cache_t *c, apr_uint32_t slot, apr_uint64_t w)
{
    __atomic_store_n(&c->pins[slot - 1], w, __ATOMIC_RELEASE);
}

/*
 * Release the pins of processes that are gone.  Example: slot 12 holds
 * (pid 4242 << 32 | entry 7), kill(4242, 0) fails with ESRCH: lock the
 * stripe of entry 7, clear the slot with a compare-and-swap (so a
 * concurrent reaper counts it once), drop the pin (freeing entry 7 if it
 * was DEAD).  Liveness is checked outside any lock.
 */
static apr_size_t reap_pins(rc_cache_t *c)
{
    apr_uint32_t k, pid, i, s, last_dead = 0, last_alive = 0;
    apr_uint32_t me = (apr_uint32_t)getpid();
    apr_uint64_t w;
    apr_size_t reaped = 0;

    for (k = 0; k < c->npins; k++) {
        w = __atomic_load_n(&c->pins[k], __ATOMIC_ACQUIRE);
        if (w == 0) {
            continue;
        }
        pid = (apr_uint32_t)(w >> 32);
        i = (apr_uint32_t)w;
        if (pid == me || pid == last_alive) {
            continue;
        }
        if (pid != last_dead) {
            if (pid_alive(pid)) {
                last_alive = pid;
                continue;
            }
            last_dead = pid;
        }
        if (!ent_ok(c, i)) {
            if (__atomic_compare_exchange_n(&c->pins[k], &w, 0, 0,
                                            __ATOMIC_ACQ_REL,
                                            __ATOMIC_RELAXED)) {
                reaped += (i == 0) ? 0 : 1;
            }
            continue;
        }
        s = stripe_of(c, ent(c, i)->hash);
        if (stripe_lock(c, s) != APR_SUCCESS) {
            continue;
        }
        if (__atomic_compare_exchange_n(&c->pins[k], &w, 0, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            if (stripe_of(c, ent(c, i)->hash) == s) {
                unpin_locked(c, i);
            }
            reaped++;
        }
        stripe_unlock(c, s);
    }
    if (reaped) {
        CTR_ADD(c, C_PINS_REAPED, reaped);
    }
    return reaped;
}

/* Run reap_pins at most once per RC_REAP_INTERVAL over all processes. */
static apr_size_t reap_pins_maybe(rc_cache_t *c)
{
    apr_int64_t now = apr_time_now();
    apr_int64_t last = __atomic_load_n(&c->sh->last_reap, __ATOMIC_RELAXED);

    if (now - last < RC_REAP_INTERVAL
        || !__atomic_compare_exchange_n(&c->sh->last_reap, &last, now, 0,
                                        __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED)) {
        return 0;
    }
    return reap_pins(c);
}

/* -------------------------------------------------------------------- */
/* Eviction                                                               */

typedef struct {
    apr_uint32_t idx, gen, pid, kind;
    apr_uint64_t hash;
} rc_victim_t;

enum { V_EXPIRED, V_LRU, V_WRITER };

/* Free a victim picked under the alloc lock, after re-validating it under
 * its own locks.  Returns 1 if something was reclaimed. */
static int victim_reclaim(rc_cache_t *c, const rc_victim_t *v)
{
    rc_entry_sh_t *e = ent(c, v->idx);
    apr_uint32_t s;
    int done = 0;

    if (v->kind == V_WRITER) {
        if (pid_alive(v->pid) || alloc_lock(c) != APR_SUCCESS) {
            return 0;
        }
        if (e->state == RC_ST_WRITING && e->gen == v->gen
            && e->pid == v->pid) {
            ent_release_locked(c, v->idx);
            CTR_ADD(c, C_WRITERS_REAPED, 1);
            done = 1;
        }
        alloc_unlock(c);
        return done;
    }
    s = stripe_of(c, v->hash);
    if (stripe_lock(c, s) != APR_SUCCESS) {
        return 0;
    }
    if (e->state == RC_ST_LIVE && e->gen == v->gen && e->hash == v->hash
        && (v->kind == V_EXPIRED || e->pins == 0)) {
        unlink_locked(c, v->idx, v->kind == V_EXPIRED ? C_EXPIRED
                                                      : C_EVICTIONS);
        done = 1;
    }
    stripe_unlock(c, s);
    return done;
}

/*
 * Reclaim some space.  Pass 1 sweeps RC_SWEEP entry slots from a rotating
 * cursor for expired entries and writes abandoned by dead processes
 * (expired first, as asked); pass 2, only if pass 1 found nothing, takes
 * unpinned entries from the probation tail, then from the protected tail.
 * Pinned entries met at a tail are rotated to their list's head.
 * Example: slots 1..8, cursor at 6, slot 7 LIVE with expires <= now ->
 * victim 7 (counted as expired, not as an eviction).
 * Returns the number of entries reclaimed (0: nothing evictable now).
 */
static apr_size_t evict_some(rc_cache_t *c, apr_time_t now)
{
    rc_cache_sh_t *sh = c->sh;
    rc_victim_t v[RC_VICTIMS];
    apr_uint32_t me = (apr_uint32_t)getpid();
    apr_uint32_t k, i, prev, nv = 0, scanned;
    rc_entry_sh_t *e;
    apr_size_t freed = 0;
    int seg;

    if (alloc_lock(c) != APR_SUCCESS) {
        return 0;
    }
    for (k = 0; k < RC_SWEEP && nv < RC_VICTIMS; k++) {
        i = sh->sweep % c->nentries + 1;
        sh->sweep = i;
        e = ent(c, i);
        if ((e->state == RC_ST_LIVE && e->expires <= now)
            || (e->state == RC_ST_WRITING && e->pid != me)) {
            v[nv].idx = i;
            v[nv].gen = e->gen;
            v[nv].pid = e->pid;
            v[nv].hash = e->hash;
            v[nv].kind = e->state == RC_ST_LIVE ? V_EXPIRED : V_WRITER;
            nv++;
        }
    }
    for (seg = 0; seg < 2 && nv < 2; seg++) {
        i = sh->lru_tail[seg];
        scanned = 0;
        while (i != 0 && nv < RC_VICTIMS && scanned++ < RC_LRU_SCAN) {
            if (!ent_ok(c, i)) {
                CTR_ADD(c, C_CORRUPT, 1);
                repair_alloc_locked(c);
                break;
            }
            e = ent(c, i);
            prev = e->lru_prev;
            if (__atomic_load_n(&e->pins, __ATOMIC_RELAXED) == 0) {
                v[nv].idx = i;
                v[nv].gen = e->gen;
                v[nv].pid = e->pid;
                v[nv].hash = e->hash;
                v[nv].kind = V_LRU;
                nv++;
                if (nv >= 2) {
                    break;
                }
            }
            else if (sh->lru_head[seg] != i) {
                lru_unlink_locked(c, i);
                lru_push_locked(c, i, seg);
            }
            i = prev;
        }
    }
    alloc_unlock(c);
    for (k = 0; k < nv; k++) {
        freed += victim_reclaim(c, &v[k]);
    }
    if (freed == 0) {
        freed = reap_pins_maybe(c);
    }
    return freed;
}

/* -------------------------------------------------------------------- */
/* Repair (EOWNERDEAD)                                                    */

static APR_INLINE int mark_test_set(rc_cache_t *c, apr_uint32_t b)
{
    unsigned char bit = (unsigned char)(1u << (b & 7));
    int was = (c->mark[b >> 3] & bit) != 0;

    c->mark[b >> 3] |= bit;
    return was;
}

/* Mark up to @max blocks of the chain *@headp; cut it where it leaves the
 * segment or meets a block already owned.  Returns blocks kept. */
static apr_uint32_t mark_chain(rc_cache_t *c, apr_uint32_t *headp,
                               apr_uint32_t max, apr_uint32_t *tailp)
{
    apr_uint32_t b = *headp, prev = 0, n = 0;

    while (n < max) {
        if (!blk_ok(c, b) || mark_test_set(c, b)) {
            break;
        }
        prev = b;
        b = c->next[b];
        n++;
    }
    if (prev) {
        c->next[prev] = 0;
    }
    else {
        *headp = 0;
    }
    if (tailp) {
        *tailp = prev;
    }
    return n;
}

/*
 * Rebuild what the alloc lock protects from the entry slots.  Example: a
 * writer was killed after cutting blocks 7, 8 off the free list but before
 * linking them to its entry: no entry chain reaches 7 or 8, so they are
 * unmarked and go back to the free list; the writer's entry keeps the
 * blocks its nblk counts, and the sweep reclaims it (dead pid).  A LIVE
 * entry found broken gets expires = 0: the next lookup or sweep drops it.
 */
static void repair_alloc_locked(rc_cache_t *c)
{
    rc_cache_sh_t *sh = c->sh;
    apr_uint64_t used = 0, objects = 0;
    apr_uint32_t i, b, n, need, tail;
    rc_entry_sh_t *e;

    memset(c->mark, 0, ((apr_size_t)c->nblocks >> 3) + 1);
    sh->efree_head = 0;
    sh->efree_count = 0;
    sh->lru_head[0] = sh->lru_head[1] = 0;
    sh->lru_tail[0] = sh->lru_tail[1] = 0;
    sh->lru_blocks[0] = sh->lru_blocks[1] = 0;
    for (i = c->nentries; i >= 1; i--) {
        e = ent(c, i);
        if (e->magic != RC_ENT_MAGIC || e->state == RC_ST_FREE
            || e->state > RC_ST_DEAD) {
            apr_uint32_t gen = e->gen;

            memset(e, 0, sizeof(*e));
            e->magic = RC_ENT_MAGIC;
            e->gen = gen;
            e->lru_next = sh->efree_head;
            sh->efree_head = i;
            sh->efree_count++;
            continue;
        }
        n = mark_chain(c, &e->head, e->nblk, &tail);
        if (n != e->nblk) {
            e->expires = 0;
        }
        e->nblk = n;
        e->tail = tail;
        used += n;
        if (e->flags & RC_EF_META2) {
            need = blocks_for(c, e->meta2_len);
            n = mark_chain(c, &e->meta2_head, need, NULL);
            used += n;
            if (n != need) {
                e->expires = 0;
            }
        }
        n = mark_chain(c, &e->retired_head, e->retired_nblk, NULL);
        e->retired_nblk = n;
        used += n;
        if (e->state == RC_ST_LIVE) {
            objects++;
            e->lru_prev = e->lru_next = 0;
            lru_push_locked(c, i, RC_SEG(e->flags));
        }
    }
    sh->free_head = 0;
    sh->free_count = 0;
    for (b = c->nblocks; b >= 1; b--) {
        if (!(c->mark[b >> 3] & (1u << (b & 7)))) {
            c->next[b] = sh->free_head;
            sh->free_head = b;
            sh->free_count++;
        }
    }
    __atomic_store_n(&sh->ctr[C_BLOCKS], used, __ATOMIC_RELAXED);
    __atomic_store_n(&sh->ctr[C_OBJECTS], objects, __ATOMIC_RELAXED);
}

/*
 * Rebuild stripe @s (its lock held, owner died): empty its buckets, relink
 * every LIVE entry hashing to it (two LIVE entries for one key/variant --
 * a commit killed half-way -- keep the newer), recount pins from the pin
 * table, free DEAD entries nobody pins.
 */
static void repair_stripe_locked(rc_cache_t *c, apr_uint32_t s)
{
    apr_uint32_t b, i, d, k, *p;
    rc_entry_sh_t *e, *o;
    apr_uint64_t w;
    int ret;

    for (b = s; b < c->nbuckets; b += c->nstripes) {
        c->buckets[b] = 0;
    }
    if (alloc_lock(c) != APR_SUCCESS) {
        return;
    }
    for (i = 1; i <= c->nentries; i++) {
        e = ent(c, i);
        if (e->magic != RC_ENT_MAGIC || stripe_of(c, e->hash) != s) {
            continue;
        }
        if (e->state == RC_ST_LIVE || e->state == RC_ST_DEAD) {
            e->pins = 0;
        }
        if (e->state != RC_ST_LIVE) {
            continue;
        }
        p = &c->buckets[bucket_of(c, e->hash)];
        while ((d = *p) != 0) {
            o = ent(c, d);
            if (o->hash == e->hash && o->klen == e->klen
                && o->vlen == e->vlen) {
                /* compare the two stored keys + variants byte by byte */
                apr_uint64_t n = (apr_uint64_t)e->klen + e->vlen, off = 0;
                char buf[256];
                int same = 1;

                while (same && off < n) {
                    apr_size_t m = n - off > sizeof(buf) ? sizeof(buf)
                                                         : n - off;
                    same = chain_io(c, o->head, off, buf, NULL, m)
                           && chain_io(c, e->head, off, NULL, buf, m);
                    off += m;
                }
                if (same) {
                    break;
                }
            }
            p = &o->hnext;
        }
        if (d != 0) {
            o = ent(c, d);
            if (o->stored > e->stored
                || (o->stored == e->stored && d > i)) {
                lru_unlink_locked(c, i);
                e->state = RC_ST_DEAD;
                CTR_SUB(c, C_OBJECTS, 1);
                continue;
            }
            *p = o->hnext;
            lru_unlink_locked(c, d);
            o->state = RC_ST_DEAD;
            CTR_SUB(c, C_OBJECTS, 1);
        }
        b = bucket_of(c, e->hash);
        e->hnext = c->buckets[b];
        c->buckets[b] = i;
    }
    for (k = 0; k < c->npins; k++) {
        w = __atomic_load_n(&c->pins[k], __ATOMIC_ACQUIRE);
        i = (apr_uint32_t)w;
        if (ent_ok(c, i) && stripe_of(c, ent(c, i)->hash) == s
            && (ent(c, i)->state == RC_ST_LIVE
                || ent(c, i)->state == RC_ST_DEAD)) {
            ent(c, i)->pins++;
        }
    }
    for (i = 1; i <= c->nentries; i++) {
        e = ent(c, i);
        ret = e->magic == RC_ENT_MAGIC && stripe_of(c, e->hash) == s
              && e->state == RC_ST_DEAD && e->pins == 0;
        if (ret) {
            ent_release_locked(c, i);
        }
    }
    alloc_unlock(c);
}

/* -------------------------------------------------------------------- */
/* Creation and attachment                                                */

void rc_cache_params_default(rc_cache_params_t *p)
{
    memset(p, 0, sizeof(*p));
    p->block_size = 256;
    p->bytes_per_entry = 4096;
    p->nstripes = 256;
    p->npins = 16384;
    p->max_object_size = 0;
    p->protected_pct = 80;
    p->touch_interval = apr_time_from_sec(1);
}

typedef struct {
    apr_uint32_t nblocks, nentries, nbuckets;
    apr_uint64_t off[8];
    apr_uint64_t end;
} rc_layout_t;

#define RC_ALIGN(x, a) (((x) + (a) - 1) & ~((apr_uint64_t)(a) - 1))

static int is_pow2(apr_uint64_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

static void layout_place(rc_layout_t *l, apr_uint32_t nstripes,
                         apr_uint32_t npins, apr_uint32_t bsize)
{
    apr_uint64_t o = RC_ALIGN(sizeof(rc_cache_sh_t), 64);

    l->off[OFF_STRIPES] = o;
    o += (apr_uint64_t)nstripes * sizeof(rc_stripe_sh_t);
    l->off[OFF_FILLS] = o = RC_ALIGN(o, 64);
    o += (apr_uint64_t)nstripes * RC_FILL_PER_STRIPE * sizeof(rc_fill_sh_t);
    l->off[OFF_BUCKETS] = o = RC_ALIGN(o, 64);
    o += (apr_uint64_t)l->nbuckets * 4;
    l->off[OFF_ENTS] = o = RC_ALIGN(o, 64);
    o += ((apr_uint64_t)l->nentries + 1) * sizeof(rc_entry_sh_t);
    l->off[OFF_PINS] = o = RC_ALIGN(o, 64);
    o += (apr_uint64_t)npins * 8;
    l->off[OFF_NEXT] = o = RC_ALIGN(o, 64);
    o += ((apr_uint64_t)l->nblocks + 1) * 4;
    l->off[OFF_MARK] = o = RC_ALIGN(o, 64);
    o += ((apr_uint64_t)l->nblocks >> 3) + 1;
    l->off[OFF_DATA] = o = RC_ALIGN(o, 64);
    o += (apr_uint64_t)l->nblocks * bsize;
    l->end = o;
}

/*
 * Split @size between the tables and the blocks.  Example, 1 MiB with the
 * defaults: 256 entries (1 MiB / 4096), 256 buckets, and then as many
 * 256-byte blocks (+4 bytes of link, +1 bit of mark) as fit: ~3,200.
 */
static apr_status_t compute_layout(apr_size_t size, const rc_cache_params_t *p,
                                   rc_layout_t *l)
{
    apr_uint64_t fixed, per_blk, avail;

    if (!is_pow2(p->block_size) || p->block_size < 64
        || p->block_size > 65536 || !is_pow2(p->nstripes)
        || p->nstripes > 65536 || p->npins < 16 || p->npins > (1u << 24)
        || p->bytes_per_entry < 256 || p->protected_pct > 95
        || p->touch_interval < 0) {
        return APR_EINVAL;
    }
    memset(l, 0, sizeof(*l));
    l->nentries = (apr_uint32_t)((apr_uint64_t)size / p->bytes_per_entry);
    if ((apr_uint64_t)size / p->bytes_per_entry > 0x7fffffffu) {
        return APR_EINVAL;
    }
    if (l->nentries < 16) {
        l->nentries = 16;
    }
    l->nbuckets = p->nstripes;
    while (l->nbuckets < l->nentries) {
        l->nbuckets <<= 1;
    }
    l->nblocks = 0;
    layout_place(l, p->nstripes, p->npins, p->block_size);
    fixed = l->end + 64 * 8;
    if (fixed >= size) {
        return APR_EINVAL;
    }
    per_blk = (apr_uint64_t)p->block_size + 5;
    avail = (size - fixed) / per_blk;
    if (avail > 0xfffffff0u) {
        return APR_EINVAL;
    }
    l->nblocks = (apr_uint32_t)avail;
    for (;;) {
        layout_place(l, p->nstripes, p->npins, p->block_size);
        if (l->end <= size || l->nblocks == 0) {
            break;
        }
        l->nblocks--;
    }
    if (l->nblocks < 64) {
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

apr_size_t rc_cache_min_size(const rc_cache_params_t *p)
{
    rc_layout_t l;
    apr_size_t sz = 4096;

    while (sz < ((apr_size_t)1 << 40) && compute_layout(sz, p, &l)) {
        sz += sz / 8;
    }
    return sz;
}

static void map_handle(rc_cache_t *c, void *base, apr_size_t size,
                       const rc_cache_params_t *p, const rc_layout_t *l)
{
    c->base = base;
    c->size = size;
    c->sh = base;
    c->stripes = (rc_stripe_sh_t *)(c->base + l->off[OFF_STRIPES]);
    c->fills = (rc_fill_sh_t *)(c->base + l->off[OFF_FILLS]);
    c->buckets = (apr_uint32_t *)(c->base + l->off[OFF_BUCKETS]);
    c->ents = (rc_entry_sh_t *)(c->base + l->off[OFF_ENTS]);
    c->pins = (apr_uint64_t *)(c->base + l->off[OFF_PINS]);
    c->next = (apr_uint32_t *)(c->base + l->off[OFF_NEXT]);
    c->mark = (unsigned char *)(c->base + l->off[OFF_MARK]);
    c->data = c->base + l->off[OFF_DATA];
    c->bsize = p->block_size;
    for (c->bshift = 0; (1u << c->bshift) < c->bsize; c->bshift++) {
    }
    c->nblocks = l->nblocks;
    c->nentries = l->nentries;
    c->nbuckets = l->nbuckets;
    c->nstripes = p->nstripes;
    c->npins = p->npins;
}

static int layout_matches(const rc_cache_sh_t *sh, apr_size_t size,
                          const rc_cache_params_t *p, const rc_layout_t *l)
{
    return sh->magic == RC_SEG_MAGIC && sh->version == RC_SEG_VERSION
           && sh->size == size && sh->block_size == p->block_size
           && sh->bytes_per_entry == p->bytes_per_entry
           && sh->nstripes == p->nstripes && sh->npins == p->npins
           && sh->nblocks == l->nblocks && sh->nentries == l->nentries
           && sh->nbuckets == l->nbuckets
           && memcmp(sh->off, l->off, sizeof(l->off)) == 0;
}

static void set_tunables(rc_cache_t *c, const rc_cache_params_t *p)
{
    apr_uint64_t data = (apr_uint64_t)c->nblocks * c->bsize;
    apr_uint64_t mx = p->max_object_size;

    if (mx == 0 || mx > data / 8) {
        mx = data / 8;
    }
    c->sh->max_object = mx;
    c->sh->protected_pct = p->protected_pct;
    c->sh->touch_interval = p->touch_interval;
}

static apr_status_t init_segment(rc_cache_t *c, apr_size_t size,
                                 const rc_cache_params_t *p,
                                 const rc_layout_t *l)
{
    rc_cache_sh_t *sh = c->sh;
    apr_uint32_t i;
    int rv;

    sh->magic = 0;
    RC_BARRIER();
    memset(c->base, 0, l->off[OFF_DATA]);
    sh->version = RC_SEG_VERSION;
    sh->size = size;
    sh->generation = 1;
    sh->block_size = p->block_size;
    sh->bytes_per_entry = p->bytes_per_entry;
    sh->nstripes = p->nstripes;
    sh->npins = p->npins;
    sh->nblocks = l->nblocks;
    sh->nentries = l->nentries;
    sh->nbuckets = l->nbuckets;
    memcpy(sh->off, l->off, sizeof(l->off));
    set_tunables(c, p);
    if ((rv = mutex_init_shared(&sh->alloc_lock.m)) != 0) {
        return rv;
    }
    for (i = 0; i < c->nstripes; i++) {
        if ((rv = mutex_init_shared(&c->stripes[i].s.lock)) != 0) {
            return rv;
        }
    }
    for (i = c->nentries; i >= 1; i--) {
        c->ents[i].magic = RC_ENT_MAGIC;
        c->ents[i].lru_next = sh->efree_head;
        sh->efree_head = i;
    }
    sh->efree_count = c->nentries;
    for (i = 1; i <= c->nblocks; i++) {
        c->next[i] = i < c->nblocks ? i + 1 : 0;
    }
    sh->free_head = 1;
    sh->free_count = c->nblocks;
    RC_BARRIER();
    sh->magic = RC_SEG_MAGIC;
    return APR_SUCCESS;
}

apr_status_t rc_cache_attach(void *base, apr_size_t size,
                             const rc_cache_params_t *p, apr_pool_t *pool,
                             rc_cache_t **cache, int *reused)
{
    rc_layout_t l;
    rc_cache_t *c;
    apr_status_t rv;

    *cache = NULL;
    if (reused) {
        *reused = 0;
    }
    if (base == NULL || ((apr_uintptr_t)base & 63) != 0) {
        return APR_EINVAL;
    }
    if ((rv = compute_layout(size, p, &l)) != APR_SUCCESS) {
        return rv;
    }
    c = apr_pcalloc(pool, sizeof(*c));
    map_handle(c, base, size, p, &l);
    if (layout_matches(c->sh, size, p, &l)) {
        __atomic_fetch_add(&c->sh->generation, 1, __ATOMIC_RELAXED);
        set_tunables(c, p);
        if (reused) {
            *reused = 1;
        }
    }
    else if ((rv = init_segment(c, size, p, &l)) != APR_SUCCESS) {
        return rv;
    }
    *cache = c;
    return APR_SUCCESS;
}

apr_status_t rc_cache_create(apr_pool_t *pool, apr_size_t size,
                             const rc_cache_params_t *p, rc_cache_t **cache)
{
    apr_shm_t *shm;
    apr_status_t rv;
    char *base;
    apr_size_t avail;

    /* over-allocate so the cache can start on a 64-byte boundary */
    if ((rv = apr_shm_create(&shm, size + 64, NULL, pool)) != APR_SUCCESS) {
        return rv;
    }
    base = apr_shm_baseaddr_get(shm);
    avail = apr_shm_size_get(shm);
    base = (char *)RC_ALIGN((apr_uintptr_t)base, 64);
    if (avail < size) {
        return APR_ENOMEM;
    }
    return rc_cache_attach(base, size, p, pool, cache, NULL);
}

apr_uint64_t rc_cache_generation(const rc_cache_t *c)
{
    return __atomic_load_n(&c->sh->generation, __ATOMIC_RELAXED);
}

apr_uint64_t rc_cache_max_object_size(const rc_cache_t *c)
{
    return c->sh->max_object;
}

/* -------------------------------------------------------------------- */
/* Lookups and hits                                                       */

static apr_status_t hit_cleanup(void *data)
{
    rc_cache_hit_t *h = data;

    if (!h->released) {
        h->pool = NULL;
        rc_cache_hit_release(h);
    }
    return APR_SUCCESS;
}

/*
 * Move a hit entry in the LRU.  Takes the alloc lock with trylock only and
 * at most once per touch_interval for protected entries, so hits on
 * different keys do not queue on one lock.
 */
static void hit_touch(rc_cache_t *c, rc_cache_hit_t *h, apr_time_t now)
{
    rc_entry_sh_t *e = ent(c, h->idx);

    if ((__atomic_load_n(&e->flags, __ATOMIC_RELAXED) & RC_EF_PROTECTED)
        && now - __atomic_load_n(&e->last_touch, __ATOMIC_RELAXED)
           < c->sh->touch_interval) {
        return;
    }
    if (alloc_trylock(c) != 0) {
        return;
    }
    if (e->state == RC_ST_LIVE && e->gen == h->gen) {
        lru_touch_locked(c, h->idx);
        e->last_touch = now;
    }
    alloc_unlock(c);
}

apr_status_t rc_cache_lookup(rc_cache_t *c, const char *key, apr_size_t klen,
                             const char *variant, apr_size_t vlen,
                             apr_time_t now, apr_pool_t *pool,
                             rc_cache_hit_t **hit)
{
    rc_cache_hit_t *h;
    rc_entry_sh_t *e;
    apr_uint32_t pid = (apr_uint32_t)getpid(), slot, s, i;
    apr_uint64_t hash = key_hash(key, klen);

    *hit = NULL;
    CTR_ADD(c, C_LOOKUPS, 1);
    if (variant == NULL) {
        variant = "";
        vlen = 0;
    }
    slot = pin_claim(c, pid);
    if (slot == 0 && reap_pins_maybe(c) > 0) {
        slot = pin_claim(c, pid);
    }
    if (slot == 0) {
        CTR_ADD(c, C_BUSY, 1);
        CTR_ADD(c, C_MISSES, 1);
        return RC_CACHE_BUSY;
    }
    h = apr_pcalloc(pool, sizeof(*h));
    s = stripe_of(c, hash);
    if (stripe_lock(c, s) != APR_SUCCESS) {
        pin_store(c, slot, 0);
        CTR_ADD(c, C_MISSES, 1);
        return RC_CACHE_CORRUPT;
    }
    i = find_locked(c, hash, key, klen, variant, vlen);
    if (i && ent(c, i)->expires <= now) {
        unlink_locked(c, i, C_EXPIRED);
        i = 0;
    }
    if (i) {
        e = ent(c, i);
        pin_store(c, slot, ((apr_uint64_t)pid << 32) | i);
        e->pins++;
        h->idx = i;
        h->gen = e->gen;
        if (e->flags & RC_EF_META2) {
            h->meta_head = e->meta2_head;
            h->meta_off = 0;
            h->meta_len = e->meta2_len;
        }
        else {
            h->meta_head = e->head;
            h->meta_off = (apr_uint64_t)e->klen + e->vlen + e->tlen;
            h->meta_len = e->mlen;
        }
        h->body_len = e->body_len;
        h->expires = e->expires;
        h->stored = e->stored;
        h->body_blk = e->head;
        h->body_boff = 0;
        /* the chain is immutable now; seek under the lock keeps it simple */
        if (h->body_len > 0
            && !chain_seek(c, e->head, head_len(e), &h->body_blk,
                           &h->body_boff)) {
            CTR_ADD(c, C_CORRUPT, 1);
            unlink_locked(c, i, C_PURGED);
            unpin_locked(c, i);
            pin_store(c, slot, 0);
            i = 0;
        }
    }
    stripe_unlock(c, s);
    if (i == 0) {
        pin_store(c, slot, 0);
        CTR_ADD(c, C_MISSES, 1);
        return APR_NOTFOUND;
    }
    h->c = c;
    h->pool = pool;
    h->hash = hash;
    h->slot = slot;
    CTR_ADD(c, C_HITS, 1);
    hit_touch(c, h, now);
    apr_pool_cleanup_register(pool, h, hit_cleanup, apr_pool_cleanup_null);
    *hit = h;
    return APR_SUCCESS;
}

apr_status_t rc_cache_hit_meta(rc_cache_hit_t *h, apr_pool_t *pool,
                               const void **meta, apr_size_t *len)
{
    char *buf;

    *meta = NULL;
    *len = 0;
    if (h->released) {
        return RC_CACHE_STALEHANDLE;
    }
    buf = apr_palloc(pool, (apr_size_t)h->meta_len + 1);
    if (!chain_io(h->c, h->meta_head, h->meta_off, buf, NULL, h->meta_len)) {
        CTR_ADD(h->c, C_CORRUPT, 1);
        return RC_CACHE_CORRUPT;
    }
    buf[h->meta_len] = '\0';
    *meta = buf;
    *len = h->meta_len;
    return APR_SUCCESS;
}

apr_uint64_t rc_cache_hit_body_len(const rc_cache_hit_t *h)
{
    return h->body_len;
}

apr_time_t rc_cache_hit_expires(const rc_cache_hit_t *h)
{
    return h->expires;
}

apr_time_t rc_cache_hit_stored(const rc_cache_hit_t *h)
{
    return h->stored;
}

void rc_cache_hit_body_first(const rc_cache_hit_t *h, rc_cache_iter_t *it)
{
    it->done = 0;
    it->blk = h->body_blk;
    it->boff = h->body_boff;
}

/*
 * Next in-place piece of the body; physically consecutive blocks are
 * merged.  Example, 256-byte blocks, body of 600 bytes starting at offset
 * 100 of block 9, chain 9 -> 10 -> 11 -> 40:
 *   piece 1: block 9 @100 .. block 11 end  (156 + 256 + 188 = 600 bytes)
 * and with chain 9 -> 10 -> 40: piece 1 = 9 @100 .. 10 end (412 bytes),
 * piece 2 = block 40, 188 bytes.
 */
apr_status_t rc_cache_hit_body_next(const rc_cache_hit_t *h,
                                    rc_cache_iter_t *it,
                                    const char **ptr, apr_size_t *len)
{
    const rc_cache_t *c = h->c;
    apr_uint64_t rem, n, take;
    apr_uint32_t b, nb;

    *ptr = NULL;
    *len = 0;
    if (h->released) {
        return RC_CACHE_STALEHANDLE;
    }
    if (it->done >= h->body_len) {
        return APR_EOF;
    }
    rem = h->body_len - it->done;
    b = it->blk;
    if (!blk_ok(c, b) || it->boff >= c->bsize) {
        return RC_CACHE_CORRUPT;
    }
    *ptr = blk_ptr(c, b) + it->boff;
    n = c->bsize - it->boff;
    if (n >= rem) {
        it->boff += (apr_uint32_t)rem;
        it->done += rem;
        *len = (apr_size_t)rem;
        return APR_SUCCESS;
    }
    for (;;) {
        nb = c->next[b];
        if (nb != b + 1 || !blk_ok(c, nb) || n >= (1u << 30)) {
            it->blk = nb;
            it->boff = 0;
            break;
        }
        take = rem - n < c->bsize ? rem - n : c->bsize;
        n += take;
        b = nb;
        if (n == rem) {
            it->blk = b;
            it->boff = (apr_uint32_t)take;
            break;
        }
    }
    it->done += n;
    *len = (apr_size_t)n;
    return APR_SUCCESS;
}

void rc_cache_hit_release(rc_cache_hit_t *h)
{
    rc_cache_t *c = h->c;
    apr_uint32_t s;
    rc_entry_sh_t *e;

    if (h->released) {
        return;
    }
    h->released = 1;
    if (h->pool) {
        apr_pool_cleanup_kill(h->pool, h, hit_cleanup);
    }
    s = stripe_of(c, h->hash);
    if (stripe_lock(c, s) != APR_SUCCESS) {
        return;     /* the pin stays until this process exits */
    }
    e = ent(c, h->idx);
    if (e->gen == h->gen
        && (e->state == RC_ST_LIVE || e->state == RC_ST_DEAD)) {
        pin_store(c, h->slot, 0);
        unpin_locked(c, h->idx);
    }
    else {
        CTR_ADD(c, C_CORRUPT, 1);
        pin_store(c, h->slot, 0);
    }
    stripe_unlock(c, s);
}

/* -------------------------------------------------------------------- */
/* Writers                                                                */

static apr_status_t writer_cleanup(void *data)
{
    rc_cache_writer_t *w = data;

    if (!w->done) {
        w->pool = NULL;
        rc_cache_write_abort(w);
    }
    return APR_SUCCESS;
}

/* Take a free entry slot for a writer, evicting if none is free. */
static apr_uint32_t ent_claim(rc_cache_t *c, apr_time_t now)
{
    apr_uint32_t i, idle = 0;

    for (;;) {
        if (alloc_lock(c) != APR_SUCCESS) {
            return 0;
        }
        i = ent_pop_locked(c);
        if (i) {
            ent(c, i)->stored = now;
        }
        alloc_unlock(c);
        if (i) {
            return i;
        }
        if (evict_some(c, now) == 0 && ++idle > 4) {
            CTR_ADD(c, C_NOSPACE, 1);
            return 0;
        }
    }
}

/* Add up to RC_ALLOC_BATCH blocks to the writer's entry, evicting when
 * the free list is short. */
static apr_status_t writer_grow(rc_cache_writer_t *w, apr_uint64_t want)
{
    rc_cache_t *c = w->c;
    rc_entry_sh_t *e = ent(c, w->idx);
    apr_uint32_t n, idle = 0;
    int ok;

    n = want > RC_ALLOC_BATCH ? RC_ALLOC_BATCH : (apr_uint32_t)want;
    for (;;) {
        if (alloc_lock(c) != APR_SUCCESS) {
            return RC_CACHE_CORRUPT;
        }
        if (e->state != RC_ST_WRITING || e->gen != w->gen) {
            alloc_unlock(c);
            CTR_ADD(c, C_CORRUPT, 1);
            return RC_CACHE_STALEHANDLE;
        }
        ok = blocks_pop_locked(c, w->idx, n);
        alloc_unlock(c);
        if (ok) {
            w->avail += n;
            return APR_SUCCESS;
        }
        if (evict_some(c, w->now) == 0 && ++idle > 4) {
            CTR_ADD(c, C_NOSPACE, 1);
            return RC_CACHE_NOSPACE;
        }
    }
}

/* Append bytes to the writer's chain (no lock: the entry is private). */
static apr_status_t writer_put(rc_cache_writer_t *w, const char *data,
                               apr_size_t len)
{
    rc_cache_t *c = w->c;
    apr_status_t rv;
    apr_size_t n;
    apr_uint32_t nb;

    while (len > 0) {
        if (w->cur == 0 || w->cur_used == c->bsize) {
            if (w->avail == 0
                && (rv = writer_grow(w, blocks_for(c, len))) != APR_SUCCESS) {
                return rv;
            }
            nb = w->cur ? c->next[w->cur] : ent(c, w->idx)->head;
            if (!blk_ok(c, nb)) {
                CTR_ADD(c, C_CORRUPT, 1);
                return RC_CACHE_CORRUPT;
            }
            w->cur = nb;
            w->cur_used = 0;
            w->avail--;
        }
        n = c->bsize - w->cur_used;
        if (n > len) {
            n = len;
        }
        memcpy(blk_ptr(c, w->cur) + w->cur_used, data, n);
        w->cur_used += (apr_uint32_t)n;
        data += n;
        len -= n;
    }
    return APR_SUCCESS;
}

static void writer_drop(rc_cache_writer_t *w)
{
    rc_cache_t *c = w->c;
    rc_entry_sh_t *e = ent(c, w->idx);

    if (alloc_lock(c) != APR_SUCCESS) {
        return;
    }
    if (e->state == RC_ST_WRITING && e->gen == w->gen) {
        ent_release_locked(c, w->idx);
    }
    alloc_unlock(c);
}

static apr_status_t writer_fail(rc_cache_writer_t *w, apr_status_t rv)
{
    if (!w->failed) {
        w->failed = rv;
        writer_drop(w);
        CTR_ADD(w->c, C_ABORTS, 1);
        if (rv == RC_CACHE_TOOBIG) {
            CTR_ADD(w->c, C_TOOBIG, 1);
        }
    }
    return w->failed;
}

static apr_status_t writer_open(rc_cache_t *c, apr_uint64_t hash,
                                apr_uint64_t max_body, apr_time_t now,
                                apr_pool_t *pool, rc_cache_writer_t **wp)
{
    rc_cache_writer_t *w = apr_pcalloc(pool, sizeof(*w));

    w->c = c;
    w->hash = hash;
    w->now = now;
    w->max_body = max_body;
    w->idx = ent_claim(c, now);
    if (w->idx == 0) {
        CTR_ADD(c, C_ABORTS, 1);
        return RC_CACHE_NOSPACE;
    }
    w->gen = ent(c, w->idx)->gen;
    *wp = w;
    return APR_SUCCESS;
}

apr_status_t rc_cache_write_begin(rc_cache_t *c,
                                  const char *key, apr_size_t klen,
                                  const char *variant, apr_size_t vlen,
                                  const void *meta, apr_size_t mlen,
                                  const char *tags, apr_size_t tlen,
                                  apr_time_t expires, apr_uint64_t max_body,
                                  apr_time_t now, apr_pool_t *pool,
                                  rc_cache_writer_t **wp)
{
    rc_cache_writer_t *w;
    rc_entry_sh_t *e;
    apr_status_t rv;
    apr_uint64_t mx = c->sh->max_object;

    *wp = NULL;
    if (variant == NULL) {
        variant = "";
        vlen = 0;
    }
    if (tags == NULL) {
        tags = "";
        tlen = 0;
    }
    if (max_body == 0 || max_body > mx) {
        max_body = mx;
    }
    if (vlen > 0xffff || klen > 0xffffffffu || tlen > 0xffffffffu
        || mlen > 0xffffffffu
        || (apr_uint64_t)klen + vlen + tlen + mlen > mx) {
        CTR_ADD(c, C_TOOBIG, 1);
        CTR_ADD(c, C_ABORTS, 1);
        return RC_CACHE_TOOBIG;
    }
    rv = writer_open(c, key_hash(key, klen), max_body, now, pool, &w);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    e = ent(c, w->idx);
    e->hash = w->hash;
    e->klen = (apr_uint32_t)klen;
    e->vlen = (apr_uint16_t)vlen;
    e->tlen = (apr_uint32_t)tlen;
    e->mlen = (apr_uint32_t)mlen;
    e->tag_bloom = tags_bloom(tags, tlen);
    e->expires = expires;
    e->body_len = 0;
    if ((rv = writer_put(w, key, klen)) != APR_SUCCESS
        || (rv = writer_put(w, variant, vlen)) != APR_SUCCESS
        || (rv = writer_put(w, tags, tlen)) != APR_SUCCESS
        || (rv = writer_put(w, meta, mlen)) != APR_SUCCESS) {
        writer_fail(w, rv);
        return rv;
    }
    w->pool = pool;
    apr_pool_cleanup_register(pool, w, writer_cleanup,
                              apr_pool_cleanup_null);
    *wp = w;
    return APR_SUCCESS;
}

apr_status_t rc_cache_write_append(rc_cache_writer_t *w, const void *data,
                                   apr_size_t len)
{
    apr_status_t rv;

    if (w->failed) {
        return w->failed;
    }
    if (w->done) {
        return RC_CACHE_STALEHANDLE;
    }
    if (w->body_len + len > w->max_body) {
        return writer_fail(w, RC_CACHE_TOOBIG);
    }
    if ((rv = writer_put(w, data, len)) != APR_SUCCESS) {
        return writer_fail(w, rv);
    }
    w->body_len += len;
    return APR_SUCCESS;
}

static void writer_finish(rc_cache_writer_t *w)
{
    w->done = 1;
    if (w->pool) {
        apr_pool_cleanup_kill(w->pool, w, writer_cleanup);
        w->pool = NULL;
    }
}

/*
 * Make the entry visible: under its stripe lock, unlink every LIVE entry
 * with the same key and variant (pinned ones become DEAD and keep serving
 * their readers), then link the new one at the head of the bucket chain
 * and of the LRU segment of the entry it replaces (probation if none).
 */
apr_status_t rc_cache_write_commit(rc_cache_writer_t *w)
{
    rc_cache_t *c = w->c;
    rc_entry_sh_t *e = ent(c, w->idx);
    apr_uint32_t s = stripe_of(c, w->hash), b, old;
    char kbuf[512];
    int seg = 0, ok;

    if (w->failed) {
        return w->failed;
    }
    if (w->done) {
        return RC_CACHE_STALEHANDLE;
    }
    if (stripe_lock(c, s) != APR_SUCCESS) {
        writer_finish(w);
        return writer_fail(w, RC_CACHE_CORRUPT);
    }
    e->body_len = w->body_len;
    /* the old versions: compare via our own stored key and variant */
    for (;;) {
        apr_uint32_t i = c->buckets[bucket_of(c, w->hash)], steps = 0;

        old = 0;
        while (i != 0 && ent_ok(c, i) && steps++ < c->nentries) {
            rc_entry_sh_t *o = ent(c, i);

            if (o->state == RC_ST_LIVE && o->hash == e->hash
                && o->klen == e->klen && o->vlen == e->vlen) {
                apr_uint64_t n = (apr_uint64_t)e->klen + e->vlen, off = 0;

                ok = 1;
                while (ok && off < n) {
                    apr_size_t m = n - off > sizeof(kbuf) ? sizeof(kbuf)
                                                          : n - off;
                    ok = chain_io(c, e->head, off, kbuf, NULL, m)
                         && chain_io(c, o->head, off, NULL, kbuf, m);
                    off += m;
                }
                if (ok) {
                    old = i;
                    break;
                }
            }
            i = o->hnext;
        }
        if (old == 0) {
            break;
        }
        seg |= RC_SEG(ent(c, old)->flags);
        unlink_locked(c, old, C_REPLACED);
    }
    if (alloc_lock(c) != APR_SUCCESS) {
        stripe_unlock(c, s);
        writer_finish(w);
        return writer_fail(w, RC_CACHE_CORRUPT);
    }
    ok = e->state == RC_ST_WRITING && e->gen == w->gen;
    if (ok) {
        e->stored = w->now;
        e->last_touch = w->now;
        e->pins = 0;
        e->lru_prev = e->lru_next = 0;
        lru_push_locked(c, w->idx, seg);
        RC_BARRIER();
        e->state = RC_ST_LIVE;
        CTR_ADD(c, C_OBJECTS, 1);
    }
    alloc_unlock(c);
    if (ok) {
        b = bucket_of(c, w->hash);
        e->hnext = c->buckets[b];
        RC_BARRIER();
        c->buckets[b] = w->idx;
    }
    stripe_unlock(c, s);
    if (!ok) {
        CTR_ADD(c, C_CORRUPT, 1);
        writer_finish(w);
        return writer_fail(w, RC_CACHE_STALEHANDLE);
    }
    writer_finish(w);
    CTR_ADD(c, C_STORES, 1);
    return APR_SUCCESS;
}

void rc_cache_write_abort(rc_cache_writer_t *w)
{
    if (w->done) {
        return;
    }
    writer_finish(w);
    writer_fail(w, RC_CACHE_STALEHANDLE);
}

/*
 * Swap the metadata of a pinned entry.  The new blob is written into a
 * scratch WRITING entry first (no lock held; if we die, the sweep reclaims
 * it), then its chain is moved into the entry as "meta2" under the stripe
 * and alloc locks; the previous meta2 chain goes to "retired", freed by
 * the last unpin (a reader may be copying it right now).
 */
apr_status_t rc_cache_hit_update_meta(rc_cache_hit_t *h, const void *meta,
                                      apr_size_t len, apr_time_t expires,
                                      apr_time_t now)
{
    rc_cache_t *c = h->c;
    rc_cache_writer_t *w;
    rc_entry_sh_t *e = ent(c, h->idx), *se;
    apr_uint32_t s = stripe_of(c, h->hash), n, t;
    apr_status_t rv;
    apr_pool_t *tmp;
    int ok = 0;

    if (h->released) {
        return RC_CACHE_STALEHANDLE;
    }
    if (len > c->sh->max_object) {
        return RC_CACHE_TOOBIG;
    }
    if ((rv = apr_pool_create(&tmp, NULL)) != APR_SUCCESS) {
        return rv;
    }
    rv = writer_open(c, 0, 0, now, tmp, &w);
    if (rv == APR_SUCCESS && (rv = writer_put(w, meta, len)) != APR_SUCCESS) {
        writer_fail(w, rv);
    }
    if (rv != APR_SUCCESS) {
        apr_pool_destroy(tmp);
        return rv;
    }
    se = ent(c, w->idx);
    if (stripe_lock(c, s) == APR_SUCCESS) {
        if (e->state == RC_ST_LIVE && e->gen == h->gen
            && alloc_lock(c) == APR_SUCCESS) {
            if (se->state == RC_ST_WRITING && se->gen == w->gen
                && se->nblk == blocks_for(c, len)) {
                if (e->flags & RC_EF_META2) {
                    n = blocks_for(c, e->meta2_len);
                    t = n ? chain_last(c, e->meta2_head, n) : 0;
                    if (t) {
                        c->next[t] = e->retired_head;
                        RC_BARRIER();
                        e->retired_head = e->meta2_head;
                        e->retired_nblk += n;
                    }
                }
                RC_BARRIER();
                e->meta2_head = se->head;
                e->meta2_len = (apr_uint32_t)len;
                e->flags |= RC_EF_META2;
                e->expires = expires;
                RC_BARRIER();
                se->head = se->tail = se->nblk = 0;
                ent_release_locked(c, w->idx);
                ok = 1;
            }
            alloc_unlock(c);
        }
        stripe_unlock(c, s);
    }
    if (ok) {
        h->meta_head = e->meta2_head;
        h->meta_off = 0;
        h->meta_len = (apr_uint32_t)len;
        h->expires = expires;
        CTR_ADD(c, C_METAUPD, 1);
    }
    else {
        writer_drop(w);
    }
    apr_pool_destroy(tmp);
    return ok ? APR_SUCCESS : RC_CACHE_STALEHANDLE;
}

/* -------------------------------------------------------------------- */
/* Purge                                                                  */

apr_size_t rc_cache_purge_key(rc_cache_t *c, const char *key,
                              apr_size_t klen)
{
    apr_uint64_t hash = key_hash(key, klen);
    apr_uint32_t s = stripe_of(c, hash), i;
    apr_size_t n = 0;

    CTR_ADD(c, C_PURGES, 1);
    if (stripe_lock(c, s) != APR_SUCCESS) {
        return 0;
    }
    while ((i = find_locked(c, hash, key, klen, NULL, 0)) != 0) {
        unlink_locked(c, i, C_PURGED);
        n++;
    }
    stripe_unlock(c, s);
    return n;
}

/* Visit every LIVE entry stripe by stripe; drop those @tag selects
 * (@tag NULL: all). */
static apr_size_t purge_scan(rc_cache_t *c, const char *tag, apr_size_t tlen)
{
    apr_uint64_t need = tag ? tag_bit(tag, tlen) : 0;
    apr_uint32_t s, b, i, nx, steps;
    rc_entry_sh_t *e;
    apr_size_t n = 0;

    CTR_ADD(c, C_PURGES, 1);
    for (s = 0; s < c->nstripes; s++) {
        if (stripe_lock(c, s) != APR_SUCCESS) {
            continue;
        }
        for (b = s; b < c->nbuckets; b += c->nstripes) {
            i = c->buckets[b];
            steps = 0;
            while (i != 0 && ent_ok(c, i) && steps++ < c->nentries) {
                e = ent(c, i);
                nx = e->hnext;
                if (e->state == RC_ST_LIVE
                    && (tag == NULL
                        || ((e->tag_bloom & need) == need
                            && chain_has_tag(c, e->head,
                                             (apr_uint64_t)e->klen + e->vlen,
                                             e->tlen, tag, tlen)))) {
                    unlink_locked(c, i, C_PURGED);
                    n++;
                }
                i = nx;
            }
        }
        stripe_unlock(c, s);
    }
    return n;
}

apr_size_t rc_cache_purge_tag(rc_cache_t *c, const char *tag,
                              apr_size_t tlen)
{
    if (tag == NULL || tlen == 0) {
        return 0;
    }
    return purge_scan(c, tag, tlen);
}

apr_size_t rc_cache_purge_all(rc_cache_t *c)
{
    return purge_scan(c, NULL, 0);
}

/* -------------------------------------------------------------------- */
/* Collapsed forwarding                                                   */

static long futex_op(apr_uint32_t *addr, int op, apr_uint32_t val,
                     const struct timespec *ts)
{
    /* shared mapping across processes: no FUTEX_PRIVATE_FLAG */
    return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

static rc_fill_sh_t *fill_find_locked(rc_cache_t *c, apr_uint32_t s,
                                      apr_uint64_t hash, rc_fill_sh_t **freep)
{
    rc_fill_sh_t *m = &c->fills[(apr_size_t)s * RC_FILL_PER_STRIPE];
    int k;

    if (freep) {
        *freep = NULL;
    }
    for (k = 0; k < RC_FILL_PER_STRIPE; k++, m++) {
        if (m->token != 0 && m->hash == hash) {
            return m;
        }
        if (m->token == 0 && freep && *freep == NULL) {
            *freep = m;
        }
    }
    return NULL;
}

static apr_uint32_t fill_new_token(rc_cache_t *c)
{
    apr_uint32_t t;

    do {
        t = __atomic_add_fetch(&c->sh->fill_token, 1, __ATOMIC_RELAXED);
    } while (t == 0);
    return t;
}

/*
 * Markers are matched by the 64-bit key hash only: two keys colliding
 * merely make one request wait for the other's fill and then look up
 * again (a miss -> it fetches itself); correctness does not depend on it.
 * Example: A calls fill_begin(k) -> OWNER; B calls fill_begin(k) -> BUSY
 * (A's pid alive, deadline ahead), B calls fill_wait(k); A commits and
 * calls fill_end -> marker cleared, stripe futex word bumped, B woken;
 * B looks k up again -> hit.
 */
int rc_cache_fill_begin(rc_cache_t *c, const char *key, apr_size_t klen,
                        apr_interval_time_t max_age, rc_cache_fill_t *f)
{
    apr_uint64_t hash = key_hash(key, klen);
    apr_uint32_t s = stripe_of(c, hash), me = (apr_uint32_t)getpid();
    apr_uint32_t checked = 0, tok, mpid;
    apr_time_t now = apr_time_now();
    rc_fill_sh_t *m, *fr;
    int takeover = 0;

    f->slot = f->token = 0;
    for (;;) {
        if (stripe_lock(c, s) != APR_SUCCESS) {
            return RC_CACHE_FILL_OWNER;
        }
        m = fill_find_locked(c, s, hash, &fr);
        if (m && m->deadline > now && m->token != checked) {
            /* check the owner outside the lock */
            tok = m->token;
            mpid = m->pid;
            stripe_unlock(c, s);
            if (pid_alive(mpid)) {
                return RC_CACHE_FILL_BUSY;
            }
            checked = tok;
            continue;
        }
        if (m) {
            takeover = 1;       /* stale or dead owner */
        }
        else {
            m = fr;
        }
        if (m) {
            m->hash = hash;
            m->pid = me;
            m->deadline = now + max_age;
            m->token = fill_new_token(c);
            f->slot = (apr_uint32_t)(m - c->fills) + 1;
            f->token = m->token;
        }
        stripe_unlock(c, s);
        if (takeover) {
            CTR_ADD(c, C_TAKEOVERS, 1);
        }
        return RC_CACHE_FILL_OWNER;
    }
}

/*
 * Wait for the end of a fill without polling: read the stripe's futex word
 * under the lock, then FUTEX_WAIT on it; fill_end bumps the word and
 * wakes.  The wait is cut in slices of RC_WAIT_SLICE only to notice an
 * owner that died without calling fill_end.
 */
apr_status_t rc_cache_fill_wait(rc_cache_t *c, const char *key,
                                apr_size_t klen, apr_interval_time_t timeout)
{
    apr_uint64_t hash = key_hash(key, klen);
    apr_uint32_t s = stripe_of(c, hash), seq, mpid;
    rc_stripe_sh_t *st = &c->stripes[s];
    apr_time_t end = apr_time_now() + timeout, now, mdl, slice;
    rc_fill_sh_t *m;
    struct timespec ts;

    CTR_ADD(c, C_CWAITS, 1);
    for (;;) {
        now = apr_time_now();
        if (stripe_lock(c, s) != APR_SUCCESS) {
            return APR_SUCCESS;
        }
        m = fill_find_locked(c, s, hash, NULL);
        if (m == NULL || m->deadline <= now) {
            stripe_unlock(c, s);
            return APR_SUCCESS;
        }
        mpid = m->pid;
        mdl = m->deadline;
        seq = __atomic_load_n(&st->s.fill_seq, __ATOMIC_ACQUIRE);
        __atomic_fetch_add(&st->s.fill_waiters, 1, __ATOMIC_ACQ_REL);
        stripe_unlock(c, s);
        if (!pid_alive(mpid)) {
            __atomic_fetch_sub(&st->s.fill_waiters, 1, __ATOMIC_ACQ_REL);
            return APR_SUCCESS;
        }
        if (now >= end) {
            __atomic_fetch_sub(&st->s.fill_waiters, 1, __ATOMIC_ACQ_REL);
            CTR_ADD(c, C_CTIMEOUTS, 1);
            return APR_TIMEUP;
        }
        slice = end - now;
        if (slice > RC_WAIT_SLICE) {
            slice = RC_WAIT_SLICE;
        }
        if (slice > mdl - now) {
            slice = mdl - now;
        }
        ts.tv_sec = (time_t)apr_time_sec(slice);
        ts.tv_nsec = (long)apr_time_usec(slice) * 1000;
        futex_op(&st->s.fill_seq, FUTEX_WAIT, seq, &ts);
        __atomic_fetch_sub(&st->s.fill_waiters, 1, __ATOMIC_ACQ_REL);
    }
}

void rc_cache_fill_end(rc_cache_t *c, rc_cache_fill_t *f, int committed)
{
    apr_uint32_t s;
    rc_fill_sh_t *m;
    rc_stripe_sh_t *st;
    int wake = 0;

    (void)committed;
    if (f->slot == 0
        || f->slot > c->nstripes * (apr_uint32_t)RC_FILL_PER_STRIPE) {
        f->slot = 0;
        return;
    }
    s = (f->slot - 1) / RC_FILL_PER_STRIPE;
    m = &c->fills[f->slot - 1];
    st = &c->stripes[s];
    if (stripe_lock(c, s) == APR_SUCCESS) {
        if (m->token == f->token) {
            m->token = 0;
            m->hash = 0;
            m->pid = 0;
        }
        /* always bump: waiters re-check their marker after a wake */
        __atomic_fetch_add(&st->s.fill_seq, 1, __ATOMIC_ACQ_REL);
        wake = __atomic_load_n(&st->s.fill_waiters, __ATOMIC_ACQUIRE) != 0;
        stripe_unlock(c, s);
    }
    if (wake) {
        futex_op(&st->s.fill_seq, FUTEX_WAKE, INT_MAX, NULL);
    }
    f->slot = 0;
    f->token = 0;
}

/* -------------------------------------------------------------------- */
/* Housekeeping, statistics, checks                                       */

apr_size_t rc_cache_reap(rc_cache_t *c, apr_time_t now)
{
    apr_size_t n = reap_pins(c);
    apr_uint32_t i, me = (apr_uint32_t)getpid();
    rc_victim_t v;
    rc_entry_sh_t *e;

    for (i = 1; i <= c->nentries; i++) {
        e = ent(c, i);
        v.idx = i;
        v.gen = e->gen;
        v.pid = e->pid;
        v.hash = e->hash;
        if (e->state == RC_ST_LIVE && e->expires <= now) {
            v.kind = V_EXPIRED;
        }
        else if (e->state == RC_ST_WRITING && e->pid != me) {
            v.kind = V_WRITER;
        }
        else {
            continue;
        }
        n += victim_reclaim(c, &v);
    }
    return n;
}

void rc_cache_stats(rc_cache_t *c, rc_cache_stats_t *st)
{
    apr_uint64_t v[C_MAX];
    int k;

    for (k = 0; k < C_MAX; k++) {
        v[k] = __atomic_load_n(&c->sh->ctr[k], __ATOMIC_RELAXED);
    }
    st->lookups = v[C_LOOKUPS];
    st->hits = v[C_HITS];
    st->misses = v[C_MISSES];
    st->stores = v[C_STORES];
    st->store_aborts = v[C_ABORTS];
    st->store_toobig = v[C_TOOBIG];
    st->evictions = v[C_EVICTIONS];
    st->expired = v[C_EXPIRED];
    st->purged = v[C_PURGED];
    st->purges = v[C_PURGES];
    st->replaced = v[C_REPLACED];
    st->meta_updates = v[C_METAUPD];
    st->collapsed_waits = v[C_CWAITS];
    st->collapsed_timeouts = v[C_CTIMEOUTS];
    st->fill_takeovers = v[C_TAKEOVERS];
    st->pins_reaped = v[C_PINS_REAPED];
    st->writers_reaped = v[C_WRITERS_REAPED];
    st->lock_repairs = v[C_REPAIRS];
    st->corrupt = v[C_CORRUPT];
    st->nospace = v[C_NOSPACE];
    st->busy = v[C_BUSY];
    st->objects = v[C_OBJECTS];
    st->bytes_used = v[C_BLOCKS] * c->bsize;
    st->bytes_total = (apr_uint64_t)c->nblocks * c->bsize;
    st->entries_total = c->nentries;
    st->block_size = c->bsize;
    st->generation = rc_cache_generation(c);
}

/* The checker: every block owned exactly once (free list or one chain),
 * counters equal to what is found, index == LIVE == LRU, pins == pin
 * slots.  Holds every stripe lock (ascending) and the alloc lock. */
static const char *check_locked(rc_cache_t *c)
{
    rc_cache_sh_t *sh = c->sh;
    apr_uint64_t used = 0, live = 0, nfree_e = 0, n, k;
    apr_uint32_t i, b, t, cnt;
    rc_entry_sh_t *e;
    int seg;

    memset(c->mark, 0, ((apr_size_t)c->nblocks >> 3) + 1);
    for (b = sh->free_head, n = 0; b != 0; b = c->next[b], n++) {
        if (!blk_ok(c, b) || n >= c->nblocks || mark_test_set(c, b)) {
            return "free list broken";
        }
    }
    if (n != sh->free_count) {
        return "free count";
    }
    for (i = 1; i <= c->nentries; i++) {
        e = ent(c, i);
        if (e->magic != RC_ENT_MAGIC || e->state > RC_ST_DEAD) {
            return "entry magic/state";
        }
        if (e->state == RC_ST_FREE) {
            nfree_e++;
            continue;
        }
        for (b = e->head, t = 0, cnt = 0; cnt < e->nblk; cnt++) {
            if (!blk_ok(c, b) || mark_test_set(c, b)) {
                return "entry chain broken or shared";
            }
            t = b;
            b = c->next[b];
        }
        if (e->nblk && (t != e->tail || c->next[t] != 0)) {
            return "entry tail";
        }
        used += e->nblk;
        if (e->state != RC_ST_WRITING
            && (apr_uint64_t)e->nblk * c->bsize < head_len(e) + e->body_len) {
            return "entry shorter than its bytes";
        }
        cnt = (e->flags & RC_EF_META2) ? blocks_for(c, e->meta2_len) : 0;
        for (b = e->meta2_head; cnt > 0; cnt--, b = c->next[b]) {
            if (!blk_ok(c, b) || mark_test_set(c, b)) {
                return "meta2 chain";
            }
            used++;
        }
        for (b = e->retired_head, cnt = e->retired_nblk; cnt > 0;
             cnt--, b = c->next[b]) {
            if (!blk_ok(c, b) || mark_test_set(c, b)) {
                return "retired chain";
            }
            used++;
        }
        if (e->state == RC_ST_LIVE) {
            live++;
        }
        if (e->state == RC_ST_LIVE || e->state == RC_ST_DEAD) {
            for (k = 0, cnt = 0; k < c->npins; k++) {
                if ((apr_uint32_t)c->pins[k] == i) {
                    cnt++;
                }
            }
            if (cnt != e->pins) {
                return "pin count";
            }
            if (e->state == RC_ST_DEAD && e->pins == 0) {
                return "unpinned DEAD entry";
            }
        }
    }
    if (used + sh->free_count != c->nblocks) {
        return "blocks lost";
    }
    if (used != sh->ctr[C_BLOCKS]) {
        return "blocks counter";
    }
    if (live != sh->ctr[C_OBJECTS]) {
        return "objects counter";
    }
    for (i = sh->efree_head, n = 0; i != 0; i = ent(c, i)->lru_next, n++) {
        if (!ent_ok(c, i) || n > c->nentries
            || ent(c, i)->state != RC_ST_FREE) {
            return "entry free list";
        }
    }
    if (n != nfree_e || n != sh->efree_count) {
        return "entry free count";
    }
    for (b = 0, n = 0; b < c->nbuckets; b++) {
        for (i = c->buckets[b], cnt = 0; i != 0; i = ent(c, i)->hnext) {
            if (!ent_ok(c, i) || cnt++ > c->nentries
                || ent(c, i)->state != RC_ST_LIVE
                || bucket_of(c, ent(c, i)->hash) != b) {
                return "hash chain";
            }
            n++;
        }
    }
    if (n != live) {
        return "index != live entries";
    }
    for (seg = 0, n = 0; seg < 2; seg++) {
        apr_uint64_t blocks = 0;

        for (i = sh->lru_head[seg], t = 0, cnt = 0; i != 0;
             t = i, i = ent(c, i)->lru_next) {
            if (!ent_ok(c, i) || cnt++ > c->nentries
                || ent(c, i)->state != RC_ST_LIVE
                || ent(c, i)->lru_prev != t
                || RC_SEG(ent(c, i)->flags) != seg) {
                return "lru list";
            }
            blocks += ent(c, i)->nblk;
            n++;
        }
        if (t != sh->lru_tail[seg] || blocks != sh->lru_blocks[seg]) {
            return "lru tail/blocks";
        }
    }
    if (n != live) {
        return "lru != live entries";
    }
    return NULL;
}

apr_status_t rc_cache_check(rc_cache_t *c, const char **why)
{
    const char *bad = "lock";
    apr_uint32_t s, locked = 0;

    for (s = 0; s < c->nstripes; s++, locked++) {
        if (stripe_lock(c, s) != APR_SUCCESS) {
            break;
        }
    }
    if (locked == c->nstripes && alloc_lock(c) == APR_SUCCESS) {
        bad = check_locked(c);
        alloc_unlock(c);
    }
    while (locked > 0) {
        stripe_unlock(c, --locked);
    }
    if (why) {
        *why = bad ? bad : "ok";
    }
    return bad ? RC_CACHE_CORRUPT : APR_SUCCESS;
}

/* -------------------------------------------------------------------- */
/* Test hooks                                                             */

void rc_cache_debug_lock(rc_cache_t *c, int which)
{
    if (which < 0) {
        alloc_lock(c);
    }
    else {
        stripe_lock(c, (apr_uint32_t)which & (c->nstripes - 1));
    }
}

void rc_cache_debug_break(rc_cache_t *c, int which)
{
    apr_uint32_t b, s;

    if (which < 0) {
        c->sh->free_head = c->nblocks + 7;
        c->sh->free_count = 3;
        c->sh->efree_head = 0;
        c->sh->lru_head[0] = c->sh->lru_tail[1] = 0;
        __atomic_store_n(&c->sh->ctr[C_OBJECTS], 999, __ATOMIC_RELAXED);
    }
    else {
        s = (apr_uint32_t)which & (c->nstripes - 1);
        for (b = s; b < c->nbuckets; b += c->nstripes) {
            c->buckets[b] = 0;
        }
    }
}

int rc_cache_debug_stripe(rc_cache_t *c, const char *key, apr_size_t klen)
{
    return (int)stripe_of(c, key_hash(key, klen));
}
