/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * cache_mem.c -- the shared-memory object store of mod_revcache.
 *
 * OWNS: one fixed-size segment used by every child process and thread: the
 * index, the entries, their bytes, the allocator, eviction, the pins of
 * readers, the collapsed-forwarding markers, the counters.  It knows nothing
 * of HTTP: a "meta" blob (status, headers, freshness, serialised by the
 * glue) and a body are opaque bytes.  APR, POSIX and Linux headers only.
 * This file: the index, lookups and hits, writers, metadata updates,
 * purges, fill markers, statistics.  cache_mem_alloc.c: the layout, the
 * locks and their repair, the allocators, the LRU, eviction, pin reaping
 * and the checker.  cache_mem_int.h: what the two share.
 *
 * LAYOUT (offsets from the segment base; no pointers inside the segment):
 *
 *   rc_cache_sh_t     header {magic, version, size, generation}, layout,
 *                     allocator lock + free lists + LRU, counters
 *   stripes[S]        robust mutex + futex word per index stripe
 *   fills[S * 8]      fill-in-progress markers, 8 per stripe
 *   buckets[N]        head entry index of each hash chain (0 = empty)
 *   ents[E + 1]       entry descriptors (slot 0 unused), 128 bytes each
 *   pins[P]           pin slots: (pid << 32 | entry index), 0 = free
 *   next[B + 1]       block links (block 0 unused = "none")
 *   mark[B / 8]       bitmap used by repair and rc_cache_check
 *   data[B]           the blocks (block_size bytes each, default 256)
 *
 * An entry's bytes form one chain of blocks:
 *     key | variant | tags | meta | body
 * so the only waste is the tail of the last block: per-object overhead is
 * the key, variant, tags and meta (the glue's blob, cache_meta.c: ~130
 * bytes for a usual response) + on average half a block, all counted in
 * bytes_used, and, preallocated outside the data area (table_bytes), the
 * 128-byte descriptor + 4 bytes of link per block (1.6% at 256-byte
 * blocks).  Example: a 52-byte key, 129 bytes of meta and a 1 KiB body
 * fill 5 blocks (1,280 bytes), + 128 + 5 x 4 bytes of tables.
 * A metadata update (304) writes the new blob into a chain of its own
 * ("meta2"); the chain it replaces is parked on the entry's "retired"
 * chain until no reader pins the entry.
 *
 * ENTRY STATES:  FREE -> WRITING -> LIVE -> DEAD -> FREE
 *   WRITING  owned by one writer (pid recorded), not in the index or LRU;
 *            may be pinned by followers (below)
 *   LIVE     in the index (hash chain) and in one of the two LRU lists
 *   DEAD     unlinked, still pinned by readers; freed by the last release
 *            (an aborted write that followers pin ends here too; flag
 *            RC_EF_DONE tells a committed body from an aborted one)
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
 * KEYS AND VARIANTS: the index is keyed by a 64-bit hash of the key
 * alone; lookups compare the full stored key and variant, so collisions
 * are harmless.  All variants of a key share one bucket (and stripe):
 * purge by key is one stripe-locked walk.  The glue keeps the Vary header
 * names in the key's primary record (variant "").
 *
 * EVICTION: fixed-size blocks, so any free block fits any need and the
 * allocator never fails for fragmentation: when the free list is short,
 * the writer evicts.  Expired entries and dead writers' entries first (a
 * sweep over the entry slots), then a segmented LRU: new entries enter
 * "probation", a hit promotes to "protected" (capped at protected_pct of
 * the blocks, overflow demoted back), eviction takes the probation tail
 * first.  A scan of one-time keys therefore cannot flush the hot set.
 *
 * TAGS: stored with the entry plus a 64-bit Bloom word; purge by tag walks
 * every bucket stripe by stripe (O(entries)), comparing tags only where
 * the Bloom word says they may match.
 *
 * FILL MARKERS (collapsed forwarding): 8 markers per stripe {key hash,
 * owner pid, deadline, token, writer entry + gen, announced length}, under
 * the stripe lock.  Waiters sleep with FUTEX_WAIT on the stripe's 32-bit
 * sequence word; fill_end (and fill_attach) bump it and FUTEX_WAKE.  A
 * marker whose owner pid is gone or whose deadline passed counts as free.
 *
 * FOLLOWERS (streaming collapsed forwarding): once the owner has opened
 * its writer it attaches it to the marker (fill_attach: entry index and
 * gen).  A waiter then "follows": under the entry's stripe lock it checks
 * that the marker's WRITING entry is still that generation and holds
 * exactly its key and variant, and pins it like a hit (pin slot + pins).
 * The writer publishes its body length in e->body_len after each append
 * (the block links and bytes are stored before: the seq_cst store orders
 * them), and bumps the entry's futex word e->fseq, waking the sleepers
 * counted in e->fwaiters, every RC_FOLLOW_WAKE bytes, on
 * rc_cache_write_flush (the source paused) and always on commit or abort.
 * A follower reads up to the published length; with nothing new it
 * sleeps on e->fseq in slices of RC_WAIT_SLICE, checking the writer's
 * pid.  Commit keeps the pins (the entry goes LIVE with RC_EF_DONE);
 * an abort (writer_drop, under stripe + alloc lock) of a pinned entry
 * makes it DEAD without RC_EF_DONE, freed by the last unpin; the reaper
 * does the same for a dead writer's pinned entry.  Pins of a WRITING
 * entry are under its stripe lock like any pin: stripe repair recounts
 * them and rc_cache_check verifies them.
 * Example: owner O writes "k"; F1 follows after 40 KiB were published:
 * it reads 40 KiB at once, then sleeps; O appends 16 KiB more and wakes
 * F1; O commits (state LIVE + DONE, wake): F1 reads the rest, then EOF.
 *
 * TIME: the glue passes "now" to lookups and writers (apr_time_t), so the
 * store never calls the clock on those paths and tests control expiry;
 * fill markers and pin reaping use apr_time_now().
 *
 * LIFETIME: the segment outlives configuration reloads (the glue keeps it
 * in the process pool); rc_cache_attach on an existing segment reuses it
 * when magic, version, size and layout parameters match.
 */

#include "cache_mem_int.h"

#include <apr_strings.h>

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>

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
    int           follow;        /* pinned while WRITING: follow_next */
    apr_int64_t   length;        /* follow: announced length, -1 unknown */
};

struct rc_cache_writer_t {
    rc_cache_t   *c;
    apr_pool_t   *pool;
    apr_uint64_t  hash;
    apr_uint32_t  idx, gen;
    apr_uint32_t  cur, cur_used, avail;
    apr_uint64_t  body_len, max_body;
    apr_uint64_t  woken;         /* body_len at the last follower wake */
    apr_time_t    now;
    apr_status_t  failed;
    int           done;
};

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

static long futex_op(apr_uint32_t *addr, int op, apr_uint32_t val,
                     const struct timespec *ts)
{
    /* shared mapping across processes: no FUTEX_PRIVATE_FLAG */
    return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

/* Wake the followers of entry @e (no lock held): bump its futex word,
 * FUTEX_WAKE only if someone sleeps on it. */
void rc_cm_wake_followers(rc_cache_t *c, rc_entry_sh_t *e)
{
    (void)c;
    __atomic_fetch_add(&e->fseq, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&e->fwaiters, __ATOMIC_SEQ_CST) != 0) {
        futex_op(&e->fseq, FUTEX_WAKE, INT_MAX, NULL);
    }
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

    if (tlen == 0 || taglen == 0 || !rc_cm_chain_seek(c, head, off, &b, &bo)) {
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
/* Index (stripe lock held)                                               */

static int ent_matches(const rc_cache_t *c, const rc_entry_sh_t *e,
                       apr_uint64_t h, const char *key, apr_size_t klen,
                       const char *var, apr_size_t vlen)
{
    return e->hash == h && e->klen == klen
           && (var == NULL || e->vlen == vlen)
           && rc_cm_chain_io(c, e->head, 0, NULL, key, klen)
           && (var == NULL
               || rc_cm_chain_io(c, e->head, klen, NULL, var, vlen));
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

/* -------------------------------------------------------------------- */
/* Lookups and hits                                                       */

/* Under the entry's stripe lock: pins entry i (key hash @hash) in pin
 * slot @slot and describes it (metadata chain, times) in @h, a handle
 * of @pool; lookups and followers. */
static void pin_locked(rc_cache_t *c, apr_uint32_t slot, apr_uint32_t pid,
                       apr_uint32_t i, apr_uint64_t hash, apr_pool_t *pool,
                       rc_cache_hit_t *h)
{
    rc_entry_sh_t *e = ent(c, i);

    h->c = c;
    h->pool = pool;
    h->hash = hash;
    h->slot = slot;
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
    h->expires = e->expires;
    h->stored = e->stored;
}

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
    if (rc_cm_alloc_trylock(c) != 0) {
        return;
    }
    if (e->state == RC_ST_LIVE && e->gen == h->gen) {
        rc_cm_lru_touch_locked(c, h->idx);
        e->last_touch = now;
    }
    rc_cm_alloc_unlock(c);
}

apr_status_t rc_cache_lookup(rc_cache_t *c, const char *key, apr_size_t klen,
                             const char *variant, apr_size_t vlen,
                             apr_time_t now, apr_pool_t *pool,
                             rc_cache_hit_t **hit)
{
    rc_cache_hit_t *h;
    rc_entry_sh_t *e;
    apr_uint32_t pid = rc_self_pid(), slot, s, i;
    apr_uint64_t hash = key_hash(key, klen);

    *hit = NULL;
    CTR_ADD(c, C_LOOKUPS, 1);
    if (variant == NULL) {
        variant = "";
        vlen = 0;
    }
    slot = rc_cm_pin_claim(c, pid, hash);
    if (slot == 0 && rc_cm_reap_pins_maybe(c) > 0) {
        slot = rc_cm_pin_claim(c, pid, hash);
    }
    if (slot == 0) {
        CTR_ADD(c, C_BUSY, 1);
        CTR_ADD(c, C_MISSES, 1);
        return RC_CACHE_BUSY;
    }
    h = apr_pcalloc(pool, sizeof(*h));
    s = stripe_of(c, hash);
    if (rc_cm_stripe_lock(c, s) != APR_SUCCESS) {
        pin_store(c, slot, 0);
        CTR_ADD(c, C_MISSES, 1);
        return RC_CACHE_CORRUPT;
    }
    i = find_locked(c, hash, key, klen, variant, vlen);
    if (i && ent(c, i)->expires <= now) {
        rc_cm_unlink_locked(c, i, C_EXPIRED);
        i = 0;
    }
    if (i) {
        e = ent(c, i);
        pin_locked(c, slot, pid, i, hash, pool, h);
        h->body_len = e->body_len;
        h->body_blk = e->head;
        h->body_boff = 0;
        /* the chain is immutable now; seek under the lock keeps it simple */
        if (h->body_len > 0
            && !rc_cm_chain_seek(c, e->head, head_len(e), &h->body_blk,
                                 &h->body_boff)) {
            CTR_ADD(c, C_CORRUPT, 1);
            rc_cm_unlink_locked(c, i, C_PURGED);
            rc_cm_unpin_locked(c, i);
            pin_store(c, slot, 0);
            i = 0;
        }
    }
    rc_cm_stripe_unlock(c, s);
    if (i == 0) {
        pin_store(c, slot, 0);
        CTR_ADD(c, C_MISSES, 1);
        return APR_NOTFOUND;
    }
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
    if (!rc_cm_chain_io(h->c, h->meta_head, h->meta_off, buf, NULL,
                        h->meta_len)) {
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
static apr_status_t body_piece(const rc_cache_t *c, rc_cache_iter_t *it,
                               apr_uint64_t end, const char **ptr,
                               apr_size_t *len)
{
    apr_uint64_t rem, n, take;
    apr_uint32_t b, nb;

    rem = end - it->done;
    b = it->blk;
    if (it->boff == c->bsize && blk_ok(c, b)) {
        /* the last piece ended a block: its successor is linked now */
        b = it->blk = c->next[b];
        it->boff = 0;
    }
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

apr_status_t rc_cache_hit_body_next(const rc_cache_hit_t *h,
                                    rc_cache_iter_t *it,
                                    const char **ptr, apr_size_t *len)
{
    *ptr = NULL;
    *len = 0;
    if (h->released || h->follow) {
        return RC_CACHE_STALEHANDLE;
    }
    if (it->done >= h->body_len) {
        return APR_EOF;
    }
    return body_piece(h->c, it, h->body_len, ptr, len);
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
    if (rc_cm_stripe_lock(c, s) != APR_SUCCESS) {
        return;     /* the pin stays until this process exits */
    }
    e = ent(c, h->idx);
    if (e->gen == h->gen
        && (e->state == RC_ST_LIVE || e->state == RC_ST_DEAD
            || (h->follow && e->state == RC_ST_WRITING))) {
        pin_store(c, h->slot, 0);
        rc_cm_unpin_locked(c, h->idx);
    }
    else {
        CTR_ADD(c, C_CORRUPT, 1);
        pin_store(c, h->slot, 0);
    }
    rc_cm_stripe_unlock(c, s);
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
    apr_uint32_t i, idle = 0, pid = rc_self_pid();

    for (;;) {
        if (rc_cm_alloc_lock(c) != APR_SUCCESS) {
            return 0;
        }
        i = rc_cm_ent_pop_locked(c, pid);
        if (i) {
            ent(c, i)->stored = now;
        }
        rc_cm_alloc_unlock(c);
        if (i) {
            return i;
        }
        if (rc_cm_evict_some(c, now) == 0 && ++idle > 4) {
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
        if (rc_cm_alloc_lock(c) != APR_SUCCESS) {
            return RC_CACHE_CORRUPT;
        }
        if (e->state != RC_ST_WRITING || e->gen != w->gen) {
            rc_cm_alloc_unlock(c);
            CTR_ADD(c, C_CORRUPT, 1);
            return RC_CACHE_STALEHANDLE;
        }
        ok = rc_cm_blocks_pop_locked(c, w->idx, n);
        rc_cm_alloc_unlock(c);
        if (ok) {
            w->avail += n;
            return APR_SUCCESS;
        }
        if (rc_cm_evict_some(c, w->now) == 0 && ++idle > 4) {
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

/* Give up the writer's entry (its stripe lock held): freed, or DEAD
 * while followers pin it.  Returns 1 if followers must be woken. */
static int writer_drop_locked(rc_cache_writer_t *w)
{
    rc_cache_t *c = w->c;
    rc_entry_sh_t *e = ent(c, w->idx);
    int followed = 0;

    if (rc_cm_alloc_lock(c) != APR_SUCCESS) {
        return 0;
    }
    if (e->state == RC_ST_WRITING && e->gen == w->gen) {
        if (e->pins > 0) {
            /* followers read the state without the lock */
            __atomic_store_n(&e->state, RC_ST_DEAD, __ATOMIC_SEQ_CST);
            followed = 1;
        }
        else {
            rc_cm_ent_release_locked(c, w->idx);
        }
    }
    rc_cm_alloc_unlock(c);
    return followed;
}

static void writer_drop(rc_cache_writer_t *w)
{
    rc_cache_t *c = w->c;
    apr_uint32_t s = stripe_of(c, w->hash);
    int followed;

    if (rc_cm_stripe_lock(c, s) != APR_SUCCESS) {
        return;     /* reclaimed with the process, like a dead writer */
    }
    followed = writer_drop_locked(w);
    rc_cm_stripe_unlock(c, s);
    if (followed) {
        rc_cm_wake_followers(c, ent(c, w->idx));
    }
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
                                rc_cache_writer_t *w)
{
    memset(w, 0, sizeof(*w));
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
    w = apr_palloc(pool, sizeof(*w));
    rv = writer_open(c, key_hash(key, klen), max_body, now, w);
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

static void writer_finish(rc_cache_writer_t *w);

apr_status_t rc_cache_write_append(rc_cache_writer_t *w, const void *data,
                                   apr_size_t len)
{
    rc_entry_sh_t *e;
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
    e = ent(w->c, w->idx);
    /* links and bytes first, then the length followers read up to */
    __atomic_store_n(&e->body_len, w->body_len, __ATOMIC_SEQ_CST);
    if (w->body_len - w->woken >= RC_FOLLOW_WAKE) {
        w->woken = w->body_len;
        rc_cm_wake_followers(w->c, e);
    }
    return APR_SUCCESS;
}

void rc_cache_write_flush(rc_cache_writer_t *w)
{
    if (!w->failed && !w->done && w->body_len != w->woken) {
        w->woken = w->body_len;
        rc_cm_wake_followers(w->c, ent(w->c, w->idx));
    }
}

apr_uint32_t rc_cache_write_abandon(rc_cache_writer_t *w)
{
    rc_cache_t *c = w->c;
    rc_entry_sh_t *e;
    apr_uint32_t s, n = 0;

    if (w->failed || w->done) {
        return 0;
    }
    e = ent(c, w->idx);
    s = stripe_of(c, w->hash);
    if (rc_cm_stripe_lock(c, s) != APR_SUCCESS) {
        rc_cache_write_abort(w);
        return 0;
    }
    if (e->state == RC_ST_WRITING && e->gen == w->gen) {
        n = e->pins;
    }
    if (n == 0) {
        /* under the same lock: no follower can pin it in between */
        writer_drop_locked(w);
        writer_finish(w);
        w->failed = RC_CACHE_STALEHANDLE;
        CTR_ADD(c, C_ABORTS, 1);
    }
    rc_cm_stripe_unlock(c, s);
    return n;
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
    if (rc_cm_stripe_lock(c, s) != APR_SUCCESS) {
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
                    ok = rc_cm_chain_io(c, e->head, off, kbuf, NULL, m)
                         && rc_cm_chain_io(c, o->head, off, NULL, kbuf, m);
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
        rc_cm_unlink_locked(c, old, C_REPLACED);
    }
    if (rc_cm_alloc_lock(c) != APR_SUCCESS) {
        rc_cm_stripe_unlock(c, s);
        writer_finish(w);
        return writer_fail(w, RC_CACHE_CORRUPT);
    }
    ok = e->state == RC_ST_WRITING && e->gen == w->gen;
    if (ok) {
        e->stored = w->now;
        e->last_touch = w->now;
        e->lru_prev = e->lru_next = 0;
        e->flags |= RC_EF_DONE;
        rc_cm_lru_push_locked(c, w->idx, seg);
        RC_BARRIER();
        __atomic_store_n(&e->state, RC_ST_LIVE, __ATOMIC_SEQ_CST);
        CTR_ADD(c, C_OBJECTS, 1);
    }
    rc_cm_alloc_unlock(c);
    if (ok) {
        b = bucket_of(c, w->hash);
        e->hnext = c->buckets[b];
        RC_BARRIER();
        c->buckets[b] = w->idx;
    }
    rc_cm_stripe_unlock(c, s);
    if (!ok) {
        CTR_ADD(c, C_CORRUPT, 1);
        writer_finish(w);
        return writer_fail(w, RC_CACHE_STALEHANDLE);
    }
    writer_finish(w);
    rc_cm_wake_followers(c, e);
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
    rc_cache_writer_t sw, *w = &sw;
    rc_entry_sh_t *e = ent(c, h->idx), *se;
    apr_uint32_t s = stripe_of(c, h->hash), n, t;
    apr_status_t rv;
    int ok = 0;

    if (h->released) {
        return RC_CACHE_STALEHANDLE;
    }
    if (len > c->sh->max_object) {
        return RC_CACHE_TOOBIG;
    }
    rv = writer_open(c, 0, 0, now, w);
    if (rv == APR_SUCCESS && (rv = writer_put(w, meta, len)) != APR_SUCCESS) {
        writer_fail(w, rv);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    se = ent(c, w->idx);
    if (rc_cm_stripe_lock(c, s) == APR_SUCCESS) {
        if (e->state == RC_ST_LIVE && e->gen == h->gen
            && rc_cm_alloc_lock(c) == APR_SUCCESS) {
            if (se->state == RC_ST_WRITING && se->gen == w->gen
                && se->nblk == blocks_for(c, len)) {
                if (e->flags & RC_EF_META2) {
                    n = blocks_for(c, e->meta2_len);
                    t = n ? rc_cm_chain_last(c, e->meta2_head, n) : 0;
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
                rc_cm_ent_release_locked(c, w->idx);
                ok = 1;
            }
            rc_cm_alloc_unlock(c);
        }
        rc_cm_stripe_unlock(c, s);
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
    if (rc_cm_stripe_lock(c, s) != APR_SUCCESS) {
        return 0;
    }
    while ((i = find_locked(c, hash, key, klen, NULL, 0)) != 0) {
        rc_cm_unlink_locked(c, i, C_PURGED);
        n++;
    }
    rc_cm_stripe_unlock(c, s);
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
        if (rc_cm_stripe_lock(c, s) != APR_SUCCESS) {
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
                    rc_cm_unlink_locked(c, i, C_PURGED);
                    n++;
                }
                i = nx;
            }
        }
        rc_cm_stripe_unlock(c, s);
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
    apr_uint32_t s = stripe_of(c, hash), me = rc_self_pid();
    apr_uint32_t checked = 0, tok, mpid;
    apr_time_t now = apr_time_now();
    rc_fill_sh_t *m, *fr;
    int takeover = 0;

    f->slot = f->token = 0;
    for (;;) {
        if (rc_cm_stripe_lock(c, s) != APR_SUCCESS) {
            return RC_CACHE_FILL_OWNER;
        }
        m = fill_find_locked(c, s, hash, &fr);
        if (m && m->deadline > now && m->token != checked) {
            /* check the owner outside the lock */
            tok = m->token;
            mpid = m->pid;
            rc_cm_stripe_unlock(c, s);
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
            m->widx = m->wgen = 0;
            m->length = -1;
            m->token = fill_new_token(c);
            f->slot = (apr_uint32_t)(m - c->fills) + 1;
            f->token = m->token;
        }
        rc_cm_stripe_unlock(c, s);
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
static apr_status_t fill_wait(rc_cache_t *c, const char *key,
                              apr_size_t klen, apr_interval_time_t timeout,
                              int head)
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
        if (rc_cm_stripe_lock(c, s) != APR_SUCCESS) {
            return APR_SUCCESS;
        }
        m = fill_find_locked(c, s, hash, NULL);
        if (m == NULL || m->deadline <= now || (head && m->widx != 0)) {
            rc_cm_stripe_unlock(c, s);
            return APR_SUCCESS;
        }
        mpid = m->pid;
        mdl = m->deadline;
        seq = __atomic_load_n(&st->s.fill_seq, __ATOMIC_ACQUIRE);
        __atomic_fetch_add(&st->s.fill_waiters, 1, __ATOMIC_ACQ_REL);
        rc_cm_stripe_unlock(c, s);
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

apr_status_t rc_cache_fill_wait(rc_cache_t *c, const char *key,
                                apr_size_t klen, apr_interval_time_t timeout)
{
    return fill_wait(c, key, klen, timeout, 0);
}

apr_status_t rc_cache_fill_wait_head(rc_cache_t *c, const char *key,
                                     apr_size_t klen,
                                     apr_interval_time_t timeout)
{
    return fill_wait(c, key, klen, timeout, 1);
}

/* Bump the stripe's futex word (stripe lock held); 1 if anyone waits. */
static int fill_bump_locked(rc_cache_t *c, apr_uint32_t s)
{
    rc_stripe_sh_t *st = &c->stripes[s];

    __atomic_fetch_add(&st->s.fill_seq, 1, __ATOMIC_ACQ_REL);
    return __atomic_load_n(&st->s.fill_waiters, __ATOMIC_ACQUIRE) != 0;
}

void rc_cache_fill_attach(rc_cache_t *c, const rc_cache_fill_t *f,
                          const rc_cache_writer_t *w, apr_int64_t length)
{
    apr_uint32_t s;
    rc_fill_sh_t *m;
    int wake = 0;

    if (w == NULL || w->failed || w->done || f->slot == 0
        || f->slot > c->nstripes * (apr_uint32_t)RC_FILL_PER_STRIPE) {
        return;
    }
    s = (f->slot - 1) / RC_FILL_PER_STRIPE;
    m = &c->fills[f->slot - 1];
    if (rc_cm_stripe_lock(c, s) != APR_SUCCESS) {
        return;
    }
    if (m->token == f->token) {
        m->widx = w->idx;
        m->wgen = w->gen;
        m->length = length;
        wake = fill_bump_locked(c, s);
    }
    rc_cm_stripe_unlock(c, s);
    if (wake) {
        futex_op(&c->stripes[s].s.fill_seq, FUTEX_WAKE, INT_MAX, NULL);
    }
}

/*
 * Follow the owner's write.  Two stripe locks, one after the other: the
 * marker's (its key is the glue's marker key) to read the writer's entry,
 * then the entry's (its key's hash) to check and pin it.  The generation
 * check makes a reused slot harmless; a WRITING entry only leaves that
 * state under its stripe lock (commit, abort, reaper), so the pin is
 * taken on the live write or not at all.
 */
apr_status_t rc_cache_follow(rc_cache_t *c, const char *mkey,
                             apr_size_t mklen, const char *key,
                             apr_size_t klen, const char *variant,
                             apr_size_t vlen, apr_pool_t *pool,
                             rc_cache_hit_t **hit)
{
    apr_uint64_t mh = key_hash(mkey, mklen), hash = key_hash(key, klen);
    apr_uint32_t ms = stripe_of(c, mh), s = stripe_of(c, hash);
    apr_uint32_t widx, wgen, slot, pid = rc_self_pid();
    apr_int64_t length;
    rc_cache_hit_t *h;
    rc_entry_sh_t *e;
    rc_fill_sh_t *m;
    int ok;

    *hit = NULL;
    if (variant == NULL) {
        variant = "";
        vlen = 0;
    }
    if (rc_cm_stripe_lock(c, ms) != APR_SUCCESS) {
        return RC_CACHE_CORRUPT;
    }
    m = fill_find_locked(c, ms, mh, NULL);
    if (m == NULL || m->deadline <= apr_time_now()) {
        rc_cm_stripe_unlock(c, ms);
        return APR_NOTFOUND;
    }
    widx = m->widx;
    wgen = m->wgen;
    length = m->length;
    rc_cm_stripe_unlock(c, ms);
    if (widx == 0) {
        return APR_EAGAIN;
    }
    if (!ent_ok(c, widx)) {
        CTR_ADD(c, C_CORRUPT, 1);
        return RC_CACHE_STALEHANDLE;
    }
    slot = rc_cm_pin_claim(c, pid, hash);
    if (slot == 0 && rc_cm_reap_pins_maybe(c) > 0) {
        slot = rc_cm_pin_claim(c, pid, hash);
    }
    if (slot == 0) {
        CTR_ADD(c, C_BUSY, 1);
        return RC_CACHE_BUSY;
    }
    h = apr_pcalloc(pool, sizeof(*h));
    if (rc_cm_stripe_lock(c, s) != APR_SUCCESS) {
        pin_store(c, slot, 0);
        return RC_CACHE_CORRUPT;
    }
    e = ent(c, widx);
    ok = e->magic == RC_ENT_MAGIC && e->gen == wgen
         && (e->state == RC_ST_WRITING || e->state == RC_ST_LIVE)
         && ent_matches(c, e, hash, key, klen, variant, vlen);
    if (ok) {
        pin_locked(c, slot, pid, widx, hash, pool, h);
    }
    rc_cm_stripe_unlock(c, s);
    if (!ok) {
        pin_store(c, slot, 0);
        return RC_CACHE_STALEHANDLE;
    }
    h->follow = 1;
    h->length = length;
    if (__atomic_load_n(&e->state, __ATOMIC_SEQ_CST) == RC_ST_WRITING
        && !pid_alive(__atomic_load_n(&e->pid, __ATOMIC_RELAXED))) {
        /* a writer killed before fill_end: nothing to stream */
        rc_cache_hit_release(h);
        return RC_CACHE_STALEHANDLE;
    }
    CTR_ADD(c, C_FOLLOWS, 1);
    apr_pool_cleanup_register(pool, h, hit_cleanup, apr_pool_cleanup_null);
    *hit = h;
    return APR_SUCCESS;
}

apr_int64_t rc_cache_follow_length(const rc_cache_hit_t *h)
{
    return h->follow ? h->length : (apr_int64_t)h->body_len;
}

/*
 * Example: 256-byte blocks, head of 300 bytes, 1000 bytes published: the
 * first call seeks to block 2 @44 and returns what is published from
 * there (merged over adjacent blocks); with nothing new it sleeps until
 * the writer wakes it (or a slice passes, to check the writer's pid);
 * after the commit, LIVE or DONE with everything read is APR_EOF.
 */
apr_status_t rc_cache_follow_next(rc_cache_hit_t *h, rc_cache_iter_t *it,
                                  apr_interval_time_t timeout,
                                  const char **ptr, apr_size_t *len)
{
    rc_cache_t *c = h->c;
    rc_entry_sh_t *e;
    apr_uint64_t pub;
    apr_uint32_t seq;
    apr_time_t now, end = 0, slice;
    struct timespec ts;
    unsigned char st, fl;

    *ptr = NULL;
    *len = 0;
    if (h->released || !h->follow) {
        return RC_CACHE_STALEHANDLE;
    }
    e = ent(c, h->idx);
    for (;;) {
        st = __atomic_load_n(&e->state, __ATOMIC_SEQ_CST);
        fl = __atomic_load_n(&e->flags, __ATOMIC_SEQ_CST);
        pub = __atomic_load_n(&e->body_len, __ATOMIC_SEQ_CST);
        if (it->done < pub) {
            if (it->done == 0 && it->blk == 0
                && !rc_cm_chain_seek(c, e->head, head_len(e), &it->blk,
                                     &it->boff)) {
                CTR_ADD(c, C_CORRUPT, 1);
                return RC_CACHE_CORRUPT;
            }
            return body_piece(c, it, pub, ptr, len);
        }
        if (st == RC_ST_LIVE || (fl & RC_EF_DONE)) {
            return APR_EOF;
        }
        if (st != RC_ST_WRITING) {
            return RC_CACHE_STALEHANDLE;       /* aborted */
        }
        if (timeout <= 0) {
            return APR_EAGAIN;
        }
        if (!pid_alive(__atomic_load_n(&e->pid, __ATOMIC_RELAXED))) {
            return RC_CACHE_STALEHANDLE;       /* the writer died */
        }
        now = apr_time_now();
        if (end == 0) {
            end = now + timeout;
        }
        if (now >= end) {
            return APR_TIMEUP;
        }
        seq = __atomic_load_n(&e->fseq, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&e->fwaiters, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&e->body_len, __ATOMIC_SEQ_CST) == pub
            && __atomic_load_n(&e->state, __ATOMIC_SEQ_CST) == st) {
            slice = end - now < RC_WAIT_SLICE ? end - now : RC_WAIT_SLICE;
            ts.tv_sec = (time_t)apr_time_sec(slice);
            ts.tv_nsec = (long)apr_time_usec(slice) * 1000;
            futex_op(&e->fseq, FUTEX_WAIT, seq, &ts);
        }
        __atomic_fetch_sub(&e->fwaiters, 1, __ATOMIC_SEQ_CST);
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
    if (rc_cm_stripe_lock(c, s) == APR_SUCCESS) {
        if (m->token == f->token) {
            m->token = 0;
            m->hash = 0;
            m->pid = 0;
            m->widx = m->wgen = 0;
        }
        /* always bump: waiters re-check their marker after a wake */
        __atomic_fetch_add(&st->s.fill_seq, 1, __ATOMIC_ACQ_REL);
        wake = __atomic_load_n(&st->s.fill_waiters, __ATOMIC_ACQUIRE) != 0;
        rc_cm_stripe_unlock(c, s);
    }
    if (wake) {
        futex_op(&st->s.fill_seq, FUTEX_WAKE, INT_MAX, NULL);
    }
    f->slot = 0;
    f->token = 0;
}

void rc_cache_count_stale(rc_cache_t *c)
{
    CTR_ADD(c, C_STALE, 1);
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
    st->stale_served = v[C_STALE];
    st->collapsed_streams = v[C_FOLLOWS];
    st->objects = v[C_OBJECTS];
    st->bytes_used = v[C_BLOCKS] * c->bsize;
    st->bytes_total = (apr_uint64_t)c->nblocks * c->bsize;
    st->entries_total = c->nentries;
    st->block_size = c->bsize;
    st->entry_bytes = sizeof(rc_entry_sh_t);
    st->table_bytes = (apr_uint64_t)c->size - st->bytes_total;
    st->generation = rc_cache_generation(c);
}

int rc_cache_debug_stripe(rc_cache_t *c, const char *key, apr_size_t klen)
{
    return (int)stripe_of(c, key_hash(key, klen));
}

