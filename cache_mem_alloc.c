/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * cache_mem_alloc.c -- the segment side of the store: layout and
 * attachment, the robust locks and the repair of what they protect, block
 * chains, the block and entry-slot allocators, the segmented LRU,
 * eviction, pin slots and the reaping of dead processes' pins and writes,
 * and the consistency checker.
 *
 * It does not know keys, variants, tags or metadata: cache_mem.c (lookups,
 * writers, purges, fill markers) does.  Who locks what, who holds which
 * reference and how a dead lock owner is recovered from is described at
 * the top of cache_mem.c; functions named *_locked expect the lock their
 * comment names to be held by the caller.
 */

#include "cache_mem_int.h"

#include <apr_shm.h>

/* -------------------------------------------------------------------- */
/* Block chains (readers: entry pinned or a lock held)                    */

/* Position (*blk, *boff) of stream offset @off in the chain at @blk. */
int rc_cm_chain_seek(const rc_cache_t *c, apr_uint32_t blk,
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
int rc_cm_chain_io(const rc_cache_t *c, apr_uint32_t head,
                   apr_uint64_t off, char *dst, const char *src,
                   apr_size_t len)
{
    apr_uint32_t b, bo;
    apr_size_t n;

    if (len == 0) {
        return 1;
    }
    if (!rc_cm_chain_seek(c, head, off, &b, &bo)) {
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

apr_status_t rc_cm_alloc_lock(rc_cache_t *c)
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
int rc_cm_alloc_trylock(rc_cache_t *c)
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

void rc_cm_alloc_unlock(rc_cache_t *c)
{
    pthread_mutex_unlock(&c->sh->alloc_lock.m);
}

apr_status_t rc_cm_stripe_lock(rc_cache_t *c, apr_uint32_t s)
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

void rc_cm_stripe_unlock(rc_cache_t *c, apr_uint32_t s)
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
int rc_cm_blocks_pop_locked(rc_cache_t *c, apr_uint32_t i, apr_uint32_t n)
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
apr_uint32_t rc_cm_chain_last(const rc_cache_t *c, apr_uint32_t head,
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
        t = rc_cm_chain_last(c, e->retired_head, e->retired_nblk);
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
void rc_cm_ent_release_locked(rc_cache_t *c, apr_uint32_t i)
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
        t = n ? rc_cm_chain_last(c, e->meta2_head, n) : 0;
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

apr_uint32_t rc_cm_ent_pop_locked(rc_cache_t *c, apr_uint32_t pid)
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
    e->pid = pid;
    /* a follower killed in its futex wait left its count: nobody can
     * sleep on a free slot */
    e->fwaiters = 0;
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

void rc_cm_lru_push_locked(rc_cache_t *c, apr_uint32_t i, int seg)
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
void rc_cm_lru_touch_locked(rc_cache_t *c, apr_uint32_t i)
{
    rc_cache_sh_t *sh = c->sh;
    apr_uint64_t limit = (apr_uint64_t)c->nblocks * sh->protected_pct / 100;
    apr_uint32_t t;

    lru_unlink_locked(c, i);
    rc_cm_lru_push_locked(c, i, RC_EF_PROTECTED);
    while (sh->lru_blocks[1] > limit && (t = sh->lru_tail[1]) != 0
           && t != i) {
        lru_unlink_locked(c, t);
        rc_cm_lru_push_locked(c, t, 0);
    }
}

/*
 * Remove LIVE entry @i from the index and LRU (stripe lock held); free it
 * unless pinned (then DEAD until the last release).  Counts @ctr.
 */
void rc_cm_unlink_locked(rc_cache_t *c, apr_uint32_t i, int ctr)
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
    if (rc_cm_alloc_lock(c) != APR_SUCCESS) {
        return;
    }
    if (e->state == RC_ST_LIVE) {
        lru_unlink_locked(c, i);
        CTR_SUB(c, C_OBJECTS, 1);
        if (e->pins == 0) {
            rc_cm_ent_release_locked(c, i);
        }
        else {
            e->state = RC_ST_DEAD;
        }
        CTR_ADD(c, ctr, 1);
    }
    rc_cm_alloc_unlock(c);
}

/* Drop a pin on @i (stripe lock held); frees what the pin kept. */
void rc_cm_unpin_locked(rc_cache_t *c, apr_uint32_t i)
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
        if (rc_cm_alloc_lock(c) == APR_SUCCESS) {
            if (e->state == RC_ST_DEAD) {
                rc_cm_ent_release_locked(c, i);
            }
            else {
                retired_free_locked(c, e);
            }
            rc_cm_alloc_unlock(c);
        }
    }
}

/* -------------------------------------------------------------------- */
/* Pin slots (lock-free claim; entry set/cleared under the stripe lock)   */

apr_uint32_t rc_cm_pin_claim(rc_cache_t *c, apr_uint32_t pid,
                             apr_uint64_t hash)
{
    apr_uint32_t start, k, n;
    apr_uint64_t w;

    /* probe from a point spread by key and thread: no shared rotor word */
    start = (apr_uint32_t)((hash >> 32) ^ hash
                           ^ ((apr_uint64_t)(apr_uintptr_t)&start >> 4)
                           ^ pid * 2654435761u);
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
    apr_uint32_t me = rc_self_pid();
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
        if (rc_cm_stripe_lock(c, s) != APR_SUCCESS) {
            continue;
        }
        if (__atomic_compare_exchange_n(&c->pins[k], &w, 0, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            if (stripe_of(c, ent(c, i)->hash) == s) {
                rc_cm_unpin_locked(c, i);
            }
            reaped++;
        }
        rc_cm_stripe_unlock(c, s);
    }
    if (reaped) {
        CTR_ADD(c, C_PINS_REAPED, reaped);
    }
    return reaped;
}

/* Run reap_pins at most once per RC_REAP_INTERVAL over all processes. */
apr_size_t rc_cm_reap_pins_maybe(rc_cache_t *c)
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
        int followed = 0;

        /* the writer is dead, so its hash no longer changes: its stripe
         * lock guards the pins of followers */
        if (pid_alive(v->pid)) {
            return 0;
        }
        s = stripe_of(c, e->hash);
        if (rc_cm_stripe_lock(c, s) != APR_SUCCESS) {
            return 0;
        }
        if (rc_cm_alloc_lock(c) != APR_SUCCESS) {
            rc_cm_stripe_unlock(c, s);
            return 0;
        }
        if (e->state == RC_ST_WRITING && e->gen == v->gen
            && e->pid == v->pid) {
            if (e->pins > 0) {
                /* freed by the last follower (who reads it unlocked) */
                __atomic_store_n(&e->state, RC_ST_DEAD, __ATOMIC_SEQ_CST);
                followed = 1;
            }
            else {
                rc_cm_ent_release_locked(c, v->idx);
            }
            CTR_ADD(c, C_WRITERS_REAPED, 1);
            done = 1;
        }
        rc_cm_alloc_unlock(c);
        rc_cm_stripe_unlock(c, s);
        if (followed) {
            rc_cm_wake_followers(c, e);
        }
        return done;
    }
    s = stripe_of(c, v->hash);
    if (rc_cm_stripe_lock(c, s) != APR_SUCCESS) {
        return 0;
    }
    if (e->state == RC_ST_LIVE && e->gen == v->gen && e->hash == v->hash
        && (v->kind == V_EXPIRED || e->pins == 0)) {
        rc_cm_unlink_locked(c, v->idx,
                            v->kind == V_EXPIRED ? C_EXPIRED : C_EVICTIONS);
        done = 1;
    }
    rc_cm_stripe_unlock(c, s);
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
apr_size_t rc_cm_evict_some(rc_cache_t *c, apr_time_t now)
{
    rc_cache_sh_t *sh = c->sh;
    rc_victim_t v[RC_VICTIMS];
    apr_uint32_t me = rc_self_pid();
    apr_uint32_t k, i, prev, nv = 0, scanned;
    rc_entry_sh_t *e;
    apr_size_t freed = 0;
    int seg;

    if (rc_cm_alloc_lock(c) != APR_SUCCESS) {
        return 0;
    }
    for (k = 0; k < RC_SWEEP && nv < RC_VICTIMS; k++) {
        i = sh->sweep % c->nentries + 1;
        sh->sweep = i;
        e = ent(c, i);
        if ((e->state == RC_ST_LIVE && e->expires <= now)
            || (e->state == RC_ST_WRITING && e->pid != me
                && e->stored + RC_WRITER_GRACE <= now)) {
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
                rc_cm_lru_push_locked(c, i, seg);
            }
            i = prev;
        }
    }
    rc_cm_alloc_unlock(c);
    for (k = 0; k < nv; k++) {
        freed += victim_reclaim(c, &v[k]);
    }
    /* pins of dead processes keep DEAD entries (and LRU tails) alive:
     * look for them at most once a second, whichever process evicts */
    freed += rc_cm_reap_pins_maybe(c);
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
            rc_cm_lru_push_locked(c, i, RC_SEG(e->flags));
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
    if (rc_cm_alloc_lock(c) != APR_SUCCESS) {
        return;
    }
    for (i = 1; i <= c->nentries; i++) {
        e = ent(c, i);
        if (e->magic != RC_ENT_MAGIC || stripe_of(c, e->hash) != s) {
            continue;
        }
        if (e->state == RC_ST_LIVE || e->state == RC_ST_DEAD
            || e->state == RC_ST_WRITING) {
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
                    same = rc_cm_chain_io(c, o->head, off, buf, NULL, m)
                           && rc_cm_chain_io(c, e->head, off, NULL, buf, m);
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
            && ent(c, i)->state != RC_ST_FREE) {
            ent(c, i)->pins++;
        }
    }
    for (i = 1; i <= c->nentries; i++) {
        e = ent(c, i);
        ret = e->magic == RC_ENT_MAGIC && stripe_of(c, e->hash) == s
              && e->state == RC_ST_DEAD && e->pins == 0;
        if (ret) {
            rc_cm_ent_release_locked(c, i);
        }
    }
    rc_cm_alloc_unlock(c);
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

int rc_cache_reusable(const void *base, apr_size_t size,
                      const rc_cache_params_t *p)
{
    rc_layout_t l;

    if (base == NULL || ((apr_uintptr_t)base & 63) != 0
        || compute_layout(size, p, &l) != APR_SUCCESS) {
        return 0;
    }
    return layout_matches(base, size, p, &l);
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

void *rc_cache_base(const rc_cache_t *c, apr_size_t *size)
{
    if (size) {
        *size = c->size;
    }
    return c->base;
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
/* Housekeeping, statistics, checks                                       */

apr_size_t rc_cache_reap(rc_cache_t *c, apr_time_t now)
{
    apr_size_t n = reap_pins(c);
    apr_uint32_t i, me = rc_self_pid();
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
        /* any state but FREE may be pinned (followers pin WRITING) */
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
        if (rc_cm_stripe_lock(c, s) != APR_SUCCESS) {
            break;
        }
    }
    if (locked == c->nstripes && rc_cm_alloc_lock(c) == APR_SUCCESS) {
        bad = check_locked(c);
        rc_cm_alloc_unlock(c);
    }
    while (locked > 0) {
        rc_cm_stripe_unlock(c, --locked);
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
        rc_cm_alloc_lock(c);
    }
    else {
        rc_cm_stripe_lock(c, (apr_uint32_t)which & (c->nstripes - 1));
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
