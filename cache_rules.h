/*
 * cache_rules.h -- the HTTP caching rules of mod_revcache (RFC 9111,
 * RFC 5861), as pure functions over APR tables and times.
 *
 * Everything here is APR-only and does no I/O: the handler glue parses
 * the request and response into apr_table_t headers, asks these functions
 * what to do, and does it.  A typical flow in the glue:
 *
 *   request:   rc_rules_cc_request()        parse Cache-Control / Pragma
 *              rc_rules_lookup_allowed()    GET/HEAD only
 *              rc_rules_url_key() + rc_rules_key()    cache key
 *              (store lookup; a Vary'd entry: rc_rules_vary_variant())
 *   hit:       rc_rules_hit()               FRESH / STALE / SWR / VALIDATE
 *              rc_rules_client_conditional()        304 from cache?
 *              rc_rules_age_seconds()       Age header on the response
 *   validate:  rc_rules_revalidate_headers()        If-None-Match / IMS
 *              304 -> rc_rules_304_applies(), rc_rules_merge_304(),
 *                     then re-run the "store" steps on the merged headers
 *              5xx / no answer -> rc_rules_stale_if_error()
 *   store:     rc_rules_cc_response()       parse Cache-Control
 *              rc_rules_fresh_init()        freshness + age, once
 *              rc_rules_storable()          NULL or a Cache-Status detail
 *              rc_rules_store_headers()     what the entry keeps
 *              rc_rules_vary_spec() / rc_rules_vary_variant()
 *              rc_rules_surrogate_keys()    tags for purge by tag
 *   unsafe:    rc_rules_invalidations()     URL keys to drop
 *
 * What an entry keeps (computed once at store time, so a hit is cheap):
 *   - rc_fresh_t (plain data, may live in shared memory as is)
 *   - the headers from rc_rules_store_headers() (no Age: the glue sets
 *     Age from rc_rules_age_seconds() on every hit; no Set-Cookie ever)
 *   - its URL key (purge of a URL drops every entry with it), full key,
 *     Vary spec and variant string, and Surrogate-Key tags.
 * Lookup with Vary: key -> the spec stored for it -> variant of this
 * request -> entry whose variant is equal (rc_rules_vary_match()).
 *
 * Implemented in cache_rules.c (Cache-Control, freshness, age,
 * storability, hit / stale decisions, validation) and cache_keys.c
 * (Vary, keys, invalidation, Surrogate-Key).
 *
 * Times are apr_time_t (microseconds since the epoch); durations are
 * apr_interval_time_t (microseconds) unless a name says "seconds".
 */

#ifndef RC_CACHE_RULES_H
#define RC_CACHE_RULES_H

#include "apr.h"
#include "apr_network_io.h"   /* apr_port_t */
#include "apr_pools.h"
#include "apr_tables.h"
#include "apr_time.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Cache-Control                                                       */
/* ------------------------------------------------------------------ */

/** The largest delta-seconds value (RFC 9111 section 1.2.2): any larger
 *  value, or one that overflows, is taken as 2^31 seconds. */
#define RC_DELTA_MAX     APR_INT64_C(2147483648)
/** A delta-seconds directive that is not present. */
#define RC_DELTA_ABSENT  (-1)
/** A delta-seconds directive that is present but whose value does not
 *  parse (missing, empty, negative, not digits). */
#define RC_DELTA_BAD     (-2)

/** @defgroup rc_cc_flags Cache-Control flags (rc_cc_t.flags)
 *  @{ */
#define RC_CC_PRESENT          0x0001 /**< some Cache-Control was seen */
#define RC_CC_NO_STORE         0x0002 /**< no-store */
#define RC_CC_NO_CACHE         0x0004 /**< no-cache without field names
                                           (or request Pragma: no-cache) */
#define RC_CC_PRIVATE          0x0008 /**< private without field names */
#define RC_CC_PUBLIC           0x0010 /**< public */
#define RC_CC_MUST_REVALIDATE  0x0020 /**< must-revalidate */
#define RC_CC_PROXY_REVALIDATE 0x0040 /**< proxy-revalidate */
#define RC_CC_NO_TRANSFORM     0x0080 /**< no-transform */
#define RC_CC_ONLY_IF_CACHED   0x0100 /**< only-if-cached (request) */
#define RC_CC_MUST_UNDERSTAND  0x0200 /**< must-understand */
#define RC_CC_IMMUTABLE        0x0400 /**< immutable (RFC 8246) */
#define RC_CC_PRAGMA           0x0800 /**< no-cache came from Pragma */
/** @} */

/**
 * Parsed Cache-Control of one message (request or response).
 *
 * Delta-seconds members hold seconds (0 .. RC_DELTA_MAX), RC_DELTA_ABSENT
 * or RC_DELTA_BAD.  When a directive appears twice the first occurrence
 * wins (RFC 9111 section 4.2.1).  Unknown directives are ignored.
 * "no-cache" / "private" with a field-name list set no_cache_fields /
 * private_fields (the raw, unquoted list) and NOT the flag; the
 * unqualified form sets the flag, which then dominates any list.
 */
typedef struct rc_cc_t {
    unsigned int flags;              /**< RC_CC_* */
    apr_int64_t max_age;             /**< max-age */
    apr_int64_t s_maxage;            /**< s-maxage */
    apr_int64_t max_stale;           /**< max-stale; RC_DELTA_MAX if no
                                          value (any staleness) */
    apr_int64_t min_fresh;           /**< min-fresh */
    apr_int64_t stale_while_revalidate; /**< RFC 5861 */
    apr_int64_t stale_if_error;      /**< RFC 5861 */
    const char *no_cache_fields;     /**< no-cache="a, b" list or NULL */
    const char *private_fields;      /**< private="a, b" list or NULL */
} rc_cc_t;

/**
 * Parse one Cache-Control field value (several header lines already
 * joined by commas) into @a cc.  @a cc is reset first; @a value may be
 * NULL (nothing present).  Directive names are case-insensitive, values
 * may be tokens or quoted-strings, OWS and empty list elements are
 * skipped.  Example:
 *   max-age="60", no-cache="Set-Cookie, X-A" ,private
 *   -> max_age 60, no_cache_fields "Set-Cookie, X-A", flags PRIVATE
 * @param cc     out
 * @param p      pool for the field lists
 * @param value  the field value, or NULL
 */
void rc_rules_cc_parse(rc_cc_t *cc, apr_pool_t *p, const char *value);

/**
 * Parse a request's Cache-Control (all lines).  A request without any
 * Cache-Control but with "Pragma: no-cache" is treated as no-cache
 * (flags RC_CC_NO_CACHE | RC_CC_PRAGMA).
 */
void rc_rules_cc_request(rc_cc_t *cc, apr_pool_t *p,
                         const apr_table_t *req_hdrs);

/** Parse a response's Cache-Control (all lines).  Pragma is ignored. */
void rc_rules_cc_response(rc_cc_t *cc, apr_pool_t *p,
                          const apr_table_t *resp_hdrs);

/**
 * Is @a field named in the comma-separated field-name @a list
 * (case-insensitive)?  @a list may be NULL.
 */
int rc_rules_field_listed(const char *list, const char *field);

/**
 * All values of header @a name joined with ", " (a new string in @a p),
 * or NULL when the header is absent.
 */
const char *rc_rules_header_join(apr_pool_t *p, const apr_table_t *t,
                                 const char *name);

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

/** What to do with responses carrying Set-Cookie. */
typedef enum {
    /** Never store them (default, like Varnish). */
    RC_SETCOOKIE_NO_STORE = 0,
    /** Store only if the response says public or s-maxage. */
    RC_SETCOOKIE_EXPLICIT,
    /** Store whenever otherwise storable (what RFC 9111 allows). */
    RC_SETCOOKIE_STORE
} rc_setcookie_t;

/**
 * Administrator options.  Initialise with rc_rules_opts_init() and
 * override what the configuration sets.  Stored copies NEVER keep
 * Set-Cookie / Set-Cookie2, whatever the option: only the client whose
 * request caused the fetch receives the cookie.
 */
typedef struct rc_rules_opts_t {
    /** Heuristic freshness = this percent of (Date - Last-Modified).
     *  Default 10. 0 disables heuristic freshness. */
    unsigned int heuristic_percent;
    /** Cap of the heuristic lifetime.  Default 24 hours. */
    apr_interval_time_t heuristic_max;
    /** Lifetime for responses allowed to be stored without any freshness
     *  information and without Last-Modified.  0 (default) = off. */
    apr_interval_time_t default_ttl;
    /** stale-if-error window when neither the response nor the request
     *  gives one.  0 (default) = off. */
    apr_interval_time_t default_sie;
    /** Set-Cookie policy, default RC_SETCOOKIE_NO_STORE. */
    rc_setcookie_t set_cookie;
    /** Non-zero: drop the query string from keys. */
    int ignore_query;
    /** Extra request header names (const char *) to key on, or NULL. */
    const apr_array_header_t *key_headers;
} rc_rules_opts_t;

/** Fill @a o with the defaults documented on rc_rules_opts_t. */
void rc_rules_opts_init(rc_rules_opts_t *o);

/* ------------------------------------------------------------------ */
/* Dates                                                               */
/* ------------------------------------------------------------------ */

/** Parse an HTTP-date (IMF-fixdate, RFC 850, asctime).  Returns 0 for
 *  NULL, garbage, "0", or the epoch itself: callers treat 0 as invalid
 *  (an invalid Expires means "already expired"). */
apr_time_t rc_rules_parse_date(const char *s);

/** Format @a t as an IMF-fixdate in @a p. */
const char *rc_rules_format_date(apr_pool_t *p, apr_time_t t);

/* ------------------------------------------------------------------ */
/* Request cacheability                                                */
/* ------------------------------------------------------------------ */

/**
 * May this request be answered from the cache?  Returns NULL if so, else
 * a Cache-Status detail ("method").  GET and HEAD may be looked up (HEAD
 * is answered from a stored GET).  Request no-cache / max-age etc. do not
 * prevent the lookup: rc_rules_hit() turns them into a validation, which
 * can still be answered with the stored body after a 304.  A request
 * with no-store may also be answered from a stored response (RFC 9111
 * section 5.2.1.5); it is just not stored (rc_rules_storable()).
 * Authorization does not prevent the lookup: only responses marked
 * shareable (public, s-maxage, must-revalidate) were stored from such
 * requests, and other entries were stored for anyone.
 */
const char *rc_rules_lookup_allowed(const char *method,
                                    const rc_cc_t *req_cc);

/** Is @a method safe (GET HEAD OPTIONS TRACE PROPFIND SEARCH REPORT)?
 *  Unknown methods are unsafe. */
int rc_rules_method_safe(const char *method);

/** Is @a status "heuristically cacheable" (RFC 9110 section 15.1):
 *  200 203 204 206 300 301 308 404 405 410 414 501? */
int rc_rules_status_heuristic(int status);

/** Is @a status an error for stale-if-error (RFC 5861 section 4):
 *  500 502 503 504? */
int rc_rules_is_error_status(int status);

/* ------------------------------------------------------------------ */
/* Freshness and age (computed once when a response is stored)         */
/* ------------------------------------------------------------------ */

/** @defgroup rc_fresh_flags rc_fresh_t.flags
 *  @{ */
#define RC_FRESH_MUST_REVALIDATE  0x0001 /**< must-revalidate */
#define RC_FRESH_PROXY_REVALIDATE 0x0002 /**< proxy-revalidate */
#define RC_FRESH_S_MAXAGE         0x0004 /**< s-maxage present (implies
                                              proxy-revalidate) */
#define RC_FRESH_NO_CACHE         0x0008 /**< no-cache: always validate */
#define RC_FRESH_EXPLICIT         0x0010 /**< lifetime from s-maxage,
                                              max-age or Expires */
#define RC_FRESH_HEURISTIC        0x0020 /**< lifetime from Last-Modified */
#define RC_FRESH_DEFAULT_TTL      0x0040 /**< lifetime from default_ttl */
#define RC_FRESH_INVALID          0x0080 /**< bad freshness info: stale */
#define RC_FRESH_PUBLIC           0x0100 /**< public */
#define RC_FRESH_ETAG             0x0200 /**< has an ETag */
#define RC_FRESH_LAST_MODIFIED    0x0400 /**< has a valid Last-Modified */
#define RC_FRESH_IMMUTABLE        0x0800 /**< immutable */
/** No stale serving of any kind without validation. */
#define RC_FRESH_NO_STALE (RC_FRESH_MUST_REVALIDATE \
                           | RC_FRESH_PROXY_REVALIDATE | RC_FRESH_S_MAXAGE)
/** @} */

/**
 * Freshness information stored with an entry.  Plain data, no pointers:
 * it may be copied into shared memory as is.  A hit only does integer
 * arithmetic on it.
 */
typedef struct rc_fresh_t {
    apr_time_t response_time;   /**< when the response was received */
    apr_time_t date;            /**< its Date, or response_time if none */
    apr_interval_time_t corrected_initial_age; /**< RFC 9111 4.2.3 */
    apr_interval_time_t lifetime;  /**< freshness lifetime, >= 0 */
    apr_interval_time_t swr;    /**< stale-while-revalidate window, 0 none */
    apr_interval_time_t sie;    /**< stale-if-error window, -1 if the
                                     response gives none */
    unsigned int flags;         /**< RC_FRESH_* */
} rc_fresh_t;

/**
 * corrected_initial_age of RFC 9111 section 4.2.3.  Worked example:
 * request sent at 100 s, response received at 103 s, Date 99 s, Age 10:
 *   apparent_age          = max(0, 103 - 99)        = 4
 *   response_delay        = 103 - 100               = 3
 *   corrected_age_value   = 10 + 3                  = 13
 *   corrected_initial_age = max(4, 13)              = 13 s
 * @param date          Date header value, 0 if none (then apparent_age 0)
 * @param age_value     Age header in seconds, 0 if none
 */
apr_interval_time_t rc_rules_initial_age(apr_time_t date,
                                         apr_int64_t age_value,
                                         apr_time_t request_time,
                                         apr_time_t response_time);

/**
 * Compute everything rc_fresh_t holds from a response, once, at store
 * time (also after a 304 on the merged headers with the new times).
 *
 * Lifetime (shared cache, RFC 9111 section 4.2.1), first that applies:
 *   s-maxage > max-age > Expires - Date   (bad value or bad Expires: 0,
 *   flag INVALID) > heuristic (when allowed: heuristically cacheable
 *   status or public; percent of Date - Last-Modified, capped) >
 *   default_ttl (when allowed and no Last-Modified) > 0.
 * Example (10%, cap 24 h): 200 with Date = Last-Modified + 5000 s and no
 * explicit freshness -> 500 s; Last-Modified 20 days before Date ->
 * 2 days -> capped to 24 h.  "max-age=60, s-maxage=5" -> 5 s.
 * @param resp_cc parsed response Cache-Control (rc_rules_cc_response())
 */
void rc_rules_fresh_init(rc_fresh_t *f, const rc_rules_opts_t *o,
                         int status, const apr_table_t *resp_hdrs,
                         const rc_cc_t *resp_cc, apr_time_t request_time,
                         apr_time_t response_time);

/** current_age = corrected_initial_age + (now - response_time). */
apr_interval_time_t rc_rules_current_age(const rc_fresh_t *f,
                                         apr_time_t now);

/** The Age header value to send: current_age in whole seconds (floor),
 *  at most RC_DELTA_MAX. */
apr_int64_t rc_rules_age_seconds(const rc_fresh_t *f, apr_time_t now);

/** Remaining freshness in whole seconds (floor; negative when stale),
 *  for Cache-Status "ttl=". */
apr_int64_t rc_rules_ttl_seconds(const rc_fresh_t *f, apr_time_t now);

/** The instant the entry becomes stale:
 *  response_time + lifetime - corrected_initial_age. */
apr_time_t rc_rules_stale_at(const rc_fresh_t *f);

/**
 * The instant after which the entry can no longer be served without
 * validation, even stale: stale_at + the larger of the SWR and SIE
 * windows (the response's sie, or opts default_sie).  An entry with a
 * validator (ETag / Last-Modified) remains useful for revalidation after
 * this time; the store may keep it while memory allows.
 */
apr_time_t rc_rules_serve_until(const rc_fresh_t *f,
                                const rc_rules_opts_t *o);

/* ------------------------------------------------------------------ */
/* Response storability                                                */
/* ------------------------------------------------------------------ */

/**
 * May a shared cache store this response?  Call after rc_rules_fresh_init.
 * Returns NULL if yes, else a Cache-Status detail:
 *   "method"       request method is not GET
 *   "status"       not a final status, 206, 304, or must-understand with
 *                  a status this cache does not understand
 *   "no-store"     request or response no-store
 *   "private"      response private (unqualified)
 *   "auth"         request had Authorization, response lacks public,
 *                  s-maxage and must-revalidate
 *   "vary-star"    Vary: *
 *   "set-cookie"   Set-Cookie refused by opts->set_cookie
 *   "no-freshness" status needs explicit freshness or public and has
 *                  none, or the entry would be useless (stale on arrival,
 *                  no validator, no stale-if-error)
 * Order of the checks is the order above.
 */
const char *rc_rules_storable(const rc_rules_opts_t *o, const char *method,
                              int status, const apr_table_t *req_hdrs,
                              const rc_cc_t *req_cc,
                              const apr_table_t *resp_hdrs,
                              const rc_cc_t *resp_cc, const rc_fresh_t *f);

/**
 * The header table to store with an entry: a copy of @a resp_hdrs
 * without hop-by-hop fields (Connection and the fields it names,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade,
 * Proxy-Authenticate, Proxy-Authentication-Info), Set-Cookie,
 * Set-Cookie2, Age (recomputed on every hit), and the fields named by
 * private="..." and no-cache="..." (never served from cache; dropping
 * them is the conservative reading of RFC 9111 5.2.2.4 / 5.2.2.7).
 * Adds a Date from @a response_time when Date is missing or invalid.
 */
apr_table_t *rc_rules_store_headers(apr_pool_t *p,
                                    const apr_table_t *resp_hdrs,
                                    const rc_cc_t *resp_cc,
                                    apr_time_t response_time);

/* ------------------------------------------------------------------ */
/* Hit decision                                                        */
/* ------------------------------------------------------------------ */

/** What to do with a stored entry that matched the request. */
typedef enum {
    RC_HIT_FRESH = 0,  /**< serve it */
    RC_HIT_STALE,      /**< stale, the client's max-stale accepts it:
                            serve it */
    RC_HIT_SWR,        /**< stale within stale-while-revalidate: serve it
                            and revalidate once in the background */
    RC_HIT_VALIDATE,   /**< send a conditional request to the origin */
    RC_HIT_504         /**< only-if-cached and VALIDATE: answer 504 */
} rc_hit_t;

/**
 * Decide how a stored entry may be used for this request.
 *   1. response no-cache                        -> VALIDATE "no-cache"
 *   2. request no-cache (or Pragma)             -> VALIDATE "req-no-cache"
 *   3. request max-age=N and age > N s          -> VALIDATE "req-max-age"
 *      (a bad request max-age counts as 0)
 *   4. fresh (lifetime > age):
 *        min-fresh=N and lifetime - age < N s   -> VALIDATE "req-min-fresh"
 *        else                                   -> FRESH    "fresh"
 *   5. stale, staleness = age - lifetime:
 *        must-revalidate, proxy-revalidate or s-maxage
 *                                               -> VALIDATE "must-revalidate"
 *        min-fresh present                      -> VALIDATE "req-min-fresh"
 *        max-stale[=N] and staleness <= N s     -> STALE    "max-stale"
 *        staleness <= stale-while-revalidate    -> SWR "stale-while-revalidate"
 *        else                                   -> VALIDATE "stale"
 *   VALIDATE with only-if-cached becomes RC_HIT_504 "only-if-cached".
 * Worked example: lifetime 60 s, stored at 1000 s with
 * corrected_initial_age 10 s, swr 30 s.  At now = 1049 s age is 59
 * (FRESH); at 1050 s age 60 = lifetime, staleness 0 (SWR); at 1080 s
 * staleness 30 (SWR); at 1081 s (VALIDATE "stale").
 * Details starting with "req-" are the request's doing (Cache-Status
 * fwd=request); others mean fwd=stale.  Ages compare in microseconds.
 * @param req_cc  may be NULL
 * @param detail  out, may be NULL; a static string
 */
rc_hit_t rc_rules_hit(const rc_fresh_t *f, const rc_cc_t *req_cc,
                      apr_time_t now, const char **detail);

/**
 * The response to a request with only-if-cached and no usable stored
 * entry is 504: returns 1 if @a req_cc asks only-if-cached.
 */
int rc_rules_only_if_cached(const rc_cc_t *req_cc);

/**
 * May this stale entry be served because the origin failed (no answer,
 * timeout, or rc_rules_is_error_status())?  RFC 5861 section 4.
 * Never with must-revalidate, proxy-revalidate, s-maxage or response
 * no-cache, nor for a request with no-cache unless that request itself
 * carries stale-if-error.  The window is the request's stale-if-error
 * if present, else the response's, else opts->default_sie; the entry
 * qualifies when 0 < staleness <= window, or when the request's
 * max-stale accepts the staleness.  A fresh entry always qualifies.
 * Example: lifetime 60 s, age 100 s (staleness 40 s), response
 * stale-if-error=30 -> 0; request stale-if-error=60 -> 1.
 */
int rc_rules_stale_if_error(const rc_fresh_t *f, const rc_cc_t *req_cc,
                            const rc_rules_opts_t *o, apr_time_t now);

/* ------------------------------------------------------------------ */
/* Validation                                                          */
/* ------------------------------------------------------------------ */

/**
 * Does entity-tag @a etag match a member of @a list (an If-None-Match /
 * If-Match value: "*" or comma-separated entity-tags)?  @a weak selects
 * the weak comparison (W/ ignored) else strong (neither may be weak).
 * "*" matches any tag.  Commas inside quotes belong to the tag.
 */
int rc_rules_etag_match(const char *list, const char *etag, int weak);

/**
 * Prepare the outgoing headers @a out of a revalidation request for
 * @a stored: remove the client's own conditionals and Range (If-Match,
 * If-None-Match, If-Modified-Since, If-Unmodified-Since, If-Range,
 * Range), then set If-None-Match from the stored ETag and
 * If-Modified-Since from the stored Last-Modified.  Returns the number
 * of validators set (0: the glue sends an unconditional request).
 */
int rc_rules_revalidate_headers(apr_table_t *out, const apr_table_t *stored);

/** For a fetch meant to fill the cache (miss): drop the client's
 *  conditionals and Range so the origin answers with a full 200. */
void rc_rules_strip_conditionals(apr_table_t *out);

/**
 * Does a 304 from the origin apply to the stored response (RFC 9111
 * section 4.3.4)?  If the 304 carries an ETag it must equal the stored
 * one (a strong one strongly); else if it carries Last-Modified and the
 * stored has one, they must be equal; else yes.  On 0 the glue refetches
 * unconditionally.
 */
int rc_rules_304_applies(const apr_table_t *stored,
                         const apr_table_t *resp304);

/**
 * Merge the header fields of a 304 into a copy of the stored ones (RFC
 * 9111 sections 3.2 / 4.3.4): every field in the 304 replaces all stored
 * lines of that name, except Content-Length, Content-Encoding,
 * Content-Range, hop-by-hop fields, fields named by the 304's
 * Connection, Set-Cookie, Set-Cookie2 and Age.  Example: stored
 * {ETag "a", Cache-Control max-age=10, Content-Length 5} + 304
 * {Cache-Control max-age=60, Content-Length 0, X-New 1} ->
 * {ETag "a", Cache-Control max-age=60, Content-Length 5, X-New 1}.
 * Afterwards the glue re-parses Cache-Control and re-runs
 * rc_rules_fresh_init() / rc_rules_store_headers() on the result.
 */
apr_table_t *rc_rules_merge_304(apr_pool_t *p, const apr_table_t *stored,
                                const apr_table_t *resp304);

/** Result of rc_rules_client_conditional(). */
typedef enum {
    RC_COND_NONE = 0,      /**< no applicable conditional: serve full */
    RC_COND_NOT_MODIFIED,  /**< answer 304 from the stored response */
    RC_COND_PASS           /**< If-Match / If-Unmodified-Since: not for a
                                cache to evaluate, forward to origin */
} rc_cond_t;

/**
 * Evaluate a client's conditional GET/HEAD against a usable stored
 * response (RFC 9110 section 13.2.2, RFC 9111 section 4.3.2):
 * If-None-Match (weak comparison, "*", lists) decides alone when
 * present; otherwise If-Modified-Since (ignored if invalid) is compared
 * with the stored Last-Modified, or its Date, or @a f->response_time.
 * Example: stored Last-Modified 1000 s; IMS 1000 s -> NOT_MODIFIED;
 * IMS 999 s -> NONE.  If-Range is left to httpd's byterange filter.
 */
rc_cond_t rc_rules_client_conditional(const char *method,
                                      const apr_table_t *req_hdrs,
                                      const apr_table_t *stored,
                                      const rc_fresh_t *f);

/* ------------------------------------------------------------------ */
/* Vary                                                                */
/* ------------------------------------------------------------------ */

/**
 * The normalised Vary specification of a response: field names from all
 * Vary lines, lowercased, deduplicated, sorted, joined by ",".
 * Returns "" when there is no Vary, NULL for "Vary: *" (never matches,
 * not storable).  Example: "Accept-Encoding, cookie" + "ACCEPT-encoding"
 * -> "accept-encoding,cookie".
 */
const char *rc_rules_vary_spec(apr_pool_t *p, const apr_table_t *resp_hdrs);

/**
 * The variant string of a request for a Vary @a spec: one line per name,
 * "name=value" or just "name" when the request lacks the header, joined
 * with "\n".  Values: all lines joined; whitespace around ',' and ';'
 * removed, other whitespace runs collapsed to one space, empty list
 * members dropped (quoted strings untouched).  Accept-Encoding further:
 * codings lowercased, x-gzip -> gzip, x-compress -> compress, q=0 ones
 * dropped, q-values removed, deduplicated and sorted.
 * Example: spec "accept-encoding,x-a", request "Accept-Encoding: br;q=0.5,
 * GZIP , deflate;q=0" and no X-A -> "accept-encoding=br,gzip\nx-a".
 * Returns "" for spec "", NULL for a NULL spec.
 */
const char *rc_rules_vary_variant(apr_pool_t *p, const char *spec,
                                  const apr_table_t *req_hdrs);

/** Does the request produce @a stored_variant under @a spec?  A NULL
 *  spec (Vary: *) never matches. */
int rc_rules_vary_match(apr_pool_t *p, const char *spec,
                        const char *stored_variant,
                        const apr_table_t *req_hdrs);

/* ------------------------------------------------------------------ */
/* Keys, invalidation, tags                                            */
/* ------------------------------------------------------------------ */

/**
 * The URL part of a cache key: "scheme://host[:port]/path[?query]".
 * Scheme and host lowercased; the port comes from @a port, else from a
 * ":port" in @a host, and is omitted when default (80 http, 443 https);
 * empty path -> "/"; in the path, %xx escapes get uppercase hex and
 * escapes of unreserved characters are decoded; an empty query is
 * dropped, and the query is dropped entirely with opts->ignore_query.
 * Example: ("HTTP", "Example.COM:80", 0, "/a%7eb", "x=1")
 *   -> "http://example.com/a~b?x=1".
 * Returns NULL if scheme or host is missing or the port is invalid.
 */
const char *rc_rules_url_key(apr_pool_t *p, const rc_rules_opts_t *o,
                             const char *scheme, const char *host,
                             apr_port_t port, const char *path,
                             const char *query);

/**
 * The full primary key: @a url_key followed, for each of
 * opts->key_headers in configured order, by "\n" name "=" value (the
 * value normalised as for Vary) or "\n" name when absent.  With no key
 * headers the key is @a url_key.  Purge of a URL drops every entry whose
 * URL key is @a url_key (all header and Vary variants): the store should
 * index the URL key too.
 */
const char *rc_rules_key(apr_pool_t *p, const rc_rules_opts_t *o,
                         const char *url_key, const apr_table_t *req_hdrs);

/**
 * URL keys to invalidate after an unsafe request (RFC 9111 section 4.4):
 * if @a method is not safe and @a status is 2xx or 3xx, the target URI
 * plus the Location and Content-Location of @a resp_hdrs (resolved
 * against the target, dot segments removed) that have the same scheme,
 * host and port as the target.  Deduplicated; empty array if nothing.
 * Example: POST http://a.example/x/y -> 201, Location: ../z,
 * Content-Location: http://b.example/q  -> ["http://a.example/x/y",
 * "http://a.example/z"].
 */
apr_array_header_t *rc_rules_invalidations(apr_pool_t *p,
                                           const rc_rules_opts_t *o,
                                           const char *method, int status,
                                           const char *scheme,
                                           const char *host,
                                           apr_port_t port,
                                           const char *path,
                                           const char *query,
                                           const apr_table_t *resp_hdrs);

/**
 * Split a Surrogate-Key value into tags (const char *): separated by
 * spaces, tabs or commas, duplicates dropped, order kept.  NULL value ->
 * empty array.  Example: " a  b,a c" -> ["a", "b", "c"].
 */
apr_array_header_t *rc_rules_surrogate_keys(apr_pool_t *p,
                                            const char *value);

#ifdef __cplusplus
}
#endif

#endif /* RC_CACHE_RULES_H */
