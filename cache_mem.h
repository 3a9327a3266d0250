/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/**
 * @file cache_mem.h
 * @brief mod_revcache shared-memory object store (APR only).
 *
 * One fixed-size segment, shared by every httpd child process and thread,
 * holds the cache index, the entries and their bytes.  This header is the
 * whole interface the httpd glue (mod_revcache.c) and the unit tests use;
 * the design (layout, locking, pins, eviction, fill markers) is described
 * at the top of cache_mem.c.
 *
 * Life cycle seen by the glue:
 * @code
 *   post_config (parent):  rc_cache_create() or apr_shm + rc_cache_attach()
 *   child:                 nothing (fork inherits the mapping)
 *   request, lookup:       rc_cache_lookup(key, "")        primary record
 *                          rc_cache_lookup(key, variant)   a Vary variant
 *                          rc_cache_hit_meta(), rc_cache_hit_body_next()...
 *                          rc_cache_hit_release()          (or pool cleanup)
 *   request, store:        rc_cache_write_begin() / _append()* / _commit()
 *                          or _abort() (also run by the pool cleanup)
 *   collapsed forwarding:  rc_cache_fill_begin() -> OWNER: fetch,
 *                          rc_cache_write_begin(), rc_cache_fill_attach(),
 *                          store, rc_cache_fill_end(); BUSY:
 *                          rc_cache_follow() -> stream what the owner
 *                          writes with rc_cache_follow_next(), or
 *                          rc_cache_fill_wait[_head]() then look up again
 *   graceful restart:      rc_cache_attach() on the same base: reused when
 *                          size and layout are unchanged
 * @endcode
 *
 * Variants (Vary): an entry is identified by (key, variant).  The glue
 * stores the response's Vary header names in the "primary record" of a key
 * (variant = empty string, usually an empty body) and each response under
 * (key, variant string built from the request's values of those headers).
 * All variants of one key live in the same hash bucket, so a purge by key
 * removes them all under one stripe lock.
 */

#ifndef RC_CACHE_MEM_H
#define RC_CACHE_MEM_H

#include <apr.h>
#include <apr_errno.h>
#include <apr_pools.h>
#include <apr_time.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @name Status codes returned besides the APR ones.
 * @{ */
#define RC_CACHE_ERRSPACE    (APR_OS_START_USERERR + 3100)
/** the object grew beyond the maximum object size: stream it uncached */
#define RC_CACHE_TOOBIG      (RC_CACHE_ERRSPACE + 1)
/** nothing could be evicted (everything pinned or being written) */
#define RC_CACHE_NOSPACE     (RC_CACHE_ERRSPACE + 2)
/** shared memory failed validation; the operation was refused */
#define RC_CACHE_CORRUPT     (RC_CACHE_ERRSPACE + 3)
/** a fixed resource (pin slots) is exhausted: treat as a miss */
#define RC_CACHE_BUSY        (RC_CACHE_ERRSPACE + 4)
/** the handle is no longer usable (writer failed, entry gone) */
#define RC_CACHE_STALEHANDLE (RC_CACHE_ERRSPACE + 5)
/** @} */

/** Per-process handle on the segment (allocated from a pool). */
typedef struct rc_cache_t rc_cache_t;
/** A pinned entry returned by a lookup. */
typedef struct rc_cache_hit_t rc_cache_hit_t;
/** An entry being written (invisible until committed). */
typedef struct rc_cache_writer_t rc_cache_writer_t;

/** Creation parameters.  Fill with rc_cache_params_default() first. */
typedef struct rc_cache_params_t {
    /** data block size, power of two in [64, 65536]; default 256 */
    apr_uint32_t block_size;
    /** one entry slot is reserved per this many segment bytes; default 4096 */
    apr_uint32_t bytes_per_entry;
    /** number of index lock stripes, power of two; default 256 */
    apr_uint32_t nstripes;
    /** number of pin slots (concurrent hits being served); default 16384 */
    apr_uint32_t npins;
    /** largest body stored; 0 = 1/8 of the data area (and never more) */
    apr_uint64_t max_object_size;
    /** share of the blocks the protected LRU segment may hold; default 80 */
    apr_uint32_t protected_pct;
    /** a hit re-orders the LRU at most this often per entry; default 1s */
    apr_interval_time_t touch_interval;
} rc_cache_params_t;

/** Snapshot of the counters (see rc_cache_stats()). */
typedef struct rc_cache_stats_t {
    apr_uint64_t lookups;          /**< rc_cache_lookup calls */
    apr_uint64_t hits;             /**< lookups that returned an entry */
    apr_uint64_t misses;           /**< lookups that did not */
    apr_uint64_t stores;           /**< commits */
    apr_uint64_t store_aborts;     /**< aborted or failed writes */
    apr_uint64_t store_toobig;     /**< writes refused for size */
    apr_uint64_t evictions;        /**< live entries evicted for space */
    apr_uint64_t expired;          /**< expired entries reclaimed */
    apr_uint64_t purged;           /**< entries removed by purges */
    apr_uint64_t purges;           /**< purge calls */
    apr_uint64_t replaced;         /**< entries replaced by a commit */
    apr_uint64_t meta_updates;     /**< rc_cache_hit_update_meta calls */
    apr_uint64_t collapsed_waits;  /**< rc_cache_fill_wait calls */
    apr_uint64_t collapsed_timeouts; /**< waits that timed out */
    apr_uint64_t fill_takeovers;   /**< markers taken from dead/old owners */
    apr_uint64_t pins_reaped;      /**< pins of dead processes released */
    apr_uint64_t writers_reaped;   /**< writes of dead processes reclaimed */
    apr_uint64_t lock_repairs;     /**< locks recovered from dead owners */
    apr_uint64_t corrupt;          /**< validation failures */
    apr_uint64_t nospace;          /**< allocations that found nothing */
    apr_uint64_t busy;             /**< lookups refused: no pin slot */
    apr_uint64_t stale_served;     /**< stale entries served (counted by
                                        the glue: rc_cache_count_stale) */
    apr_uint64_t collapsed_streams; /**< followers attached to a write
                                         (rc_cache_follow successes) */
    apr_uint64_t objects;          /**< live (visible) entries */
    apr_uint64_t bytes_used;       /**< bytes of blocks in use (any state):
                                        blocks x block_size, i.e. keys,
                                        variants, tags, metadata, bodies
                                        and the unused tail of each
                                        object's last block */
    apr_uint64_t bytes_total;      /**< bytes of the data area */
    apr_uint64_t entries_total;    /**< entry slots */
    apr_uint64_t block_size;       /**< bytes per block */
    apr_uint64_t entry_bytes;      /**< bytes of one entry descriptor (each
                                        object has one, in table_bytes) */
    apr_uint64_t table_bytes;      /**< bytes of the segment outside the
                                        data area, preallocated: header,
                                        index, entry descriptors, pins,
                                        block links (4 bytes + 1 bit each) */
    apr_uint64_t generation;       /**< bumped on every (re)attach */
} rc_cache_stats_t;

/** Cursor for rc_cache_hit_body_next(); zero it (or use _body_first). */
typedef struct rc_cache_iter_t {
    apr_uint64_t done;             /**< body bytes already returned */
    apr_uint32_t blk;              /**< current block */
    apr_uint32_t boff;             /**< offset in the current block */
} rc_cache_iter_t;

/** Collapsed-forwarding marker owned by a filler. */
typedef struct rc_cache_fill_t {
    apr_uint32_t slot;             /**< marker slot + 1; 0 = no marker */
    apr_uint32_t token;            /**< owner token, checked by _fill_end */
} rc_cache_fill_t;

/** rc_cache_fill_begin() results */
#define RC_CACHE_FILL_OWNER 1      /**< go fetch, then rc_cache_fill_end() */
#define RC_CACHE_FILL_BUSY  2      /**< another fill runs: wait, re-lookup */

/** Set every field of @a p to its default. */
void rc_cache_params_default(rc_cache_params_t *p);

/** Smallest segment size accepted with parameters @a p. */
apr_size_t rc_cache_min_size(const rc_cache_params_t *p);

/**
 * Use @a size bytes at @a base (shared memory mapped in every process that
 * will use the cache, at the same address) as the cache.  If the segment
 * already holds a cache with the same magic, layout version, size and
 * parameters, its content is kept, its generation bumped and @a *reused set
 * to 1 (graceful restart).  Otherwise it is initialised (@a *reused = 0):
 * only do that while no other process uses the segment.
 * @param pool  holds the per-process handle (process-lifetime pool)
 */
apr_status_t rc_cache_attach(void *base, apr_size_t size,
                             const rc_cache_params_t *p, apr_pool_t *pool,
                             rc_cache_t **cache, int *reused);

/**
 * Whether rc_cache_attach() would keep the cache at @a base (same magic,
 * layout version, size and parameters) rather than initialise it.  A
 * segment that other processes may still use (children of the previous
 * generation during a graceful restart) must not be initialised in place:
 * when this returns 0, make a new segment instead.
 */
int rc_cache_reusable(const void *base, apr_size_t size,
                      const rc_cache_params_t *p);

/**
 * Create an anonymous shared segment (apr_shm_create, no file) of
 * @a size bytes in @a pool and attach to it.  Children forked later
 * inherit it.  The segment is destroyed with @a pool.
 */
apr_status_t rc_cache_create(apr_pool_t *pool, apr_size_t size,
                             const rc_cache_params_t *p, rc_cache_t **cache);

/**
 * The segment in use (base address and size as given to / chosen by
 * rc_cache_attach or rc_cache_create): what a graceful restart passes to
 * rc_cache_attach again.
 */
void *rc_cache_base(const rc_cache_t *c, apr_size_t *size);

/** Segment generation (1 after creation, +1 per reuse). */
apr_uint64_t rc_cache_generation(const rc_cache_t *c);

/** Largest body a writer may store (from the parameters). */
apr_uint64_t rc_cache_max_object_size(const rc_cache_t *c);

/**
 * Look up (@a key, @a variant).  On a hit, @a *hit is a pinned handle: the
 * entry's bytes stay valid until rc_cache_hit_release() (or the cleanup of
 * @a pool).  An entry whose expiry time is <= @a now is reclaimed and not
 * returned.
 * @return APR_SUCCESS (hit), APR_NOTFOUND (miss), RC_CACHE_BUSY (no pin
 *         slot free: serve as a miss), RC_CACHE_CORRUPT.
 */
apr_status_t rc_cache_lookup(rc_cache_t *c, const char *key, apr_size_t klen,
                             const char *variant, apr_size_t vlen,
                             apr_time_t now, apr_pool_t *pool,
                             rc_cache_hit_t **hit);

/** Copy the entry's metadata blob into @a pool (NUL-terminated copy). */
apr_status_t rc_cache_hit_meta(rc_cache_hit_t *h, apr_pool_t *pool,
                               const void **meta, apr_size_t *len);

/** Body length of the entry. */
apr_uint64_t rc_cache_hit_body_len(const rc_cache_hit_t *h);

/** Reclaim-after time of the entry (as given to write_begin/update_meta). */
apr_time_t rc_cache_hit_expires(const rc_cache_hit_t *h);

/** Commit time of the entry. */
apr_time_t rc_cache_hit_stored(const rc_cache_hit_t *h);

/** Start iterating the body (sets @a it to the beginning). */
void rc_cache_hit_body_first(const rc_cache_hit_t *h, rc_cache_iter_t *it);

/**
 * Next piece of the body, in place in shared memory (no copy): physically
 * adjacent blocks are returned as one piece.
 * @return APR_SUCCESS with (*ptr, *len), APR_EOF at the end,
 *         RC_CACHE_CORRUPT if a link fails validation.
 */
apr_status_t rc_cache_hit_body_next(const rc_cache_hit_t *h,
                                    rc_cache_iter_t *it,
                                    const char **ptr, apr_size_t *len);

/**
 * Replace the metadata blob and the expiry of the pinned entry, keeping the
 * body (after a 304).  Readers holding older pins keep the old blob.
 * @return APR_SUCCESS, RC_CACHE_STALEHANDLE (entry no longer live),
 *         RC_CACHE_NOSPACE, RC_CACHE_TOOBIG.
 */
apr_status_t rc_cache_hit_update_meta(rc_cache_hit_t *h, const void *meta,
                                      apr_size_t len, apr_time_t expires,
                                      apr_time_t now);

/** Drop the pin.  Idempotent; also run by the cleanup of the lookup pool. */
void rc_cache_hit_release(rc_cache_hit_t *h);

/**
 * Start writing (@a key, @a variant) with its metadata and tags
 * (Surrogate-Key value: tags separated by spaces).  The entry is invisible
 * until rc_cache_write_commit().  @a max_body 0 means the cache's maximum.
 * @return APR_SUCCESS, RC_CACHE_TOOBIG (key/meta/tags too large),
 *         RC_CACHE_NOSPACE.
 */
apr_status_t rc_cache_write_begin(rc_cache_t *c,
                                  const char *key, apr_size_t klen,
                                  const char *variant, apr_size_t vlen,
                                  const void *meta, apr_size_t mlen,
                                  const char *tags, apr_size_t tlen,
                                  apr_time_t expires, apr_uint64_t max_body,
                                  apr_time_t now, apr_pool_t *pool,
                                  rc_cache_writer_t **w);

/**
 * Append body bytes.  On any error the writer is aborted (its space
 * returned) and every later call returns the same error.
 * @return APR_SUCCESS, RC_CACHE_TOOBIG, RC_CACHE_NOSPACE.
 */
apr_status_t rc_cache_write_append(rc_cache_writer_t *w, const void *data,
                                   apr_size_t len);

/**
 * Make the entry visible, atomically replacing any entry with the same key
 * and variant.
 * @return APR_SUCCESS or the writer's earlier error.
 */
apr_status_t rc_cache_write_commit(rc_cache_writer_t *w);

/** Abandon the write and return its space.  Idempotent.  Followers
 *  see the body end incomplete (the space is freed when they let go). */
void rc_cache_write_abort(rc_cache_writer_t *w);

/** Wake the followers if bytes were appended since their last wake
 *  (appends wake them every 16 KiB only): call when the source pauses. */
void rc_cache_write_flush(rc_cache_writer_t *w);

/**
 * The reader the writer was storing for went away: keep the write if
 * followers are attached (atomically with respect to rc_cache_follow),
 * abort it otherwise.  @return the number of followers (0: aborted).
 */
apr_uint32_t rc_cache_write_abandon(rc_cache_writer_t *w);

/** Remove every variant of @a key.  @return number of entries removed. */
apr_size_t rc_cache_purge_key(rc_cache_t *c, const char *key,
                              apr_size_t klen);

/** Remove every entry tagged @a tag (O(entries) scan). @return removed. */
apr_size_t rc_cache_purge_tag(rc_cache_t *c, const char *tag,
                              apr_size_t tlen);

/** Remove every entry.  @return number removed. */
apr_size_t rc_cache_purge_all(rc_cache_t *c);

/**
 * Claim the "fill in progress" marker of @a key.  A marker whose owner
 * process is gone or that is older than its @a max_age is taken over.
 * @return RC_CACHE_FILL_OWNER (@a f filled; call rc_cache_fill_end) or
 *         RC_CACHE_FILL_BUSY.
 */
int rc_cache_fill_begin(rc_cache_t *c, const char *key, apr_size_t klen,
                        apr_interval_time_t max_age, rc_cache_fill_t *f);

/**
 * Wait (futex, no polling sleep) until @a key has no live fill marker.
 * Then look the key up again: a hit, or a miss to fetch yourself.
 * @return APR_SUCCESS (marker gone) or APR_TIMEUP.
 */
apr_status_t rc_cache_fill_wait(rc_cache_t *c, const char *key,
                                apr_size_t klen,
                                apr_interval_time_t timeout);

/**
 * Like rc_cache_fill_wait(), but also returns as soon as the fill's owner
 * attached its writer (the response head is stored): then try
 * rc_cache_follow() again.
 */
apr_status_t rc_cache_fill_wait_head(rc_cache_t *c, const char *key,
                                     apr_size_t klen,
                                     apr_interval_time_t timeout);

/**
 * The owner of fill @a f announces the writer that stores its response
 * (after rc_cache_write_begin), so that concurrent requests can follow
 * the body as it is written.  Wakes the fill's waiters.
 * @param length  the body length when known (Content-Length), else -1
 */
void rc_cache_fill_attach(rc_cache_t *c, const rc_cache_fill_t *f,
                          const rc_cache_writer_t *w, apr_int64_t length);

/**
 * Follow the write in progress of the fill @a mkey (the marker's key):
 * pins the owner's entry if it is (@a key, @a variant) exactly.  The
 * handle is a hit (rc_cache_hit_meta(), rc_cache_hit_release(), pool
 * cleanup) whose body is read with rc_cache_follow_next().
 * @return APR_SUCCESS; APR_EAGAIN (the fill has no writer yet: wait with
 *         rc_cache_fill_wait_head); APR_NOTFOUND (no fill: look up
 *         again); RC_CACHE_STALEHANDLE (the writer stores another
 *         variant or is gone: wait for the fill's end); RC_CACHE_BUSY.
 */
apr_status_t rc_cache_follow(rc_cache_t *c, const char *mkey,
                             apr_size_t mklen, const char *key,
                             apr_size_t klen, const char *variant,
                             apr_size_t vlen, apr_pool_t *pool,
                             rc_cache_hit_t **hit);

/** The body length the writer announced to rc_cache_fill_attach (-1:
 *  unknown); for a plain hit, its body length. */
apr_int64_t rc_cache_follow_length(const rc_cache_hit_t *h);

/**
 * Next piece of a followed body, in place (as rc_cache_hit_body_next;
 * start with @a it zeroed).  Waits (futex) at most @a timeout for the
 * writer to append more; @a timeout 0 does not wait.
 * @return APR_SUCCESS with a piece; APR_EOF (committed, all read);
 *         APR_EAGAIN (nothing new, @a timeout 0); APR_TIMEUP;
 *         RC_CACHE_STALEHANDLE (the write was aborted or its process
 *         died: the body is incomplete); RC_CACHE_CORRUPT.
 */
apr_status_t rc_cache_follow_next(rc_cache_hit_t *h, rc_cache_iter_t *it,
                                  apr_interval_time_t timeout,
                                  const char **ptr, apr_size_t *len);

/** End a fill (after commit or not) and wake its waiters.  Idempotent. */
void rc_cache_fill_end(rc_cache_t *c, rc_cache_fill_t *f, int committed);

/**
 * Housekeeping, safe to call any time (e.g. from a watchdog): release pins
 * and reclaim writes of dead processes, reclaim expired entries (expiry
 * <= @a now).  @return number of objects/pins reclaimed.
 */
apr_size_t rc_cache_reap(rc_cache_t *c, apr_time_t now);

/** Lock-free snapshot of the counters. */
void rc_cache_stats(rc_cache_t *c, rc_cache_stats_t *st);

/** Counts one stale entry served (max-stale, stale-while-revalidate,
 *  stale-if-error): only the glue knows when it does that. */
void rc_cache_count_stale(rc_cache_t *c);

/**
 * Full consistency check (takes every lock; for tests and debugging,
 * O(size)).  @a why (may be NULL) receives a static text naming the first
 * inconsistency found.  @return APR_SUCCESS or RC_CACHE_CORRUPT.
 */
apr_status_t rc_cache_check(rc_cache_t *c, const char **why);

/** @name Test hooks: simulate a process dying inside a critical section.
 * @{ */
/** Lock stripe @a which (or the allocator lock when -1) and return
 *  holding it.  Only for tests that then _exit() or are killed. */
void rc_cache_debug_lock(rc_cache_t *c, int which);
/** Scribble over the structure lock @a which protects (must hold it). */
void rc_cache_debug_break(rc_cache_t *c, int which);
/** Stripe index of @a key (to pick a stripe in tests). */
int rc_cache_debug_stripe(rc_cache_t *c, const char *key, apr_size_t klen);
/** @} */

#ifdef __cplusplus
}
#endif

#endif /* RC_CACHE_MEM_H */
