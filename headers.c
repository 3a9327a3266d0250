/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * headers.c - which header fields a proxy forwards, and URL rewriting in
 * response headers (RevProxyPassReverse).
 *
 * Owns: the hop-by-hop rules of RFC 9110 section 7.6.1 and the prefix
 * rewriting of Location / Content-Location / URI. Does not own: building
 * the outgoing request (proxy.c) or parsing (http_parse.c). Stateless;
 * allocates only in the caller's pool.
 */

#include <apr_strings.h>
#include <apr_lib.h>

#include "headers.h"

static const char *const hop_by_hop[] = {
    "Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding",
    "Upgrade", "Proxy-Connection", "Proxy-Authorization",
    "Proxy-Authenticate", NULL
};

/* By length first: most fields are ruled out without a comparison. */
int rc_hdr_is_hop_by_hop(const char *name)
{
    switch (strlen(name)) {
    case 2:
        return !strcasecmp(name, "TE");
    case 7:
        return !strcasecmp(name, "Trailer") || !strcasecmp(name, "Upgrade");
    case 10:
        return !strcasecmp(name, "Connection")
               || !strcasecmp(name, "Keep-Alive");
    case 16:
        return !strcasecmp(name, "Proxy-Connection");
    case 17:
        return !strcasecmp(name, "Transfer-Encoding");
    case 18:
        return !strcasecmp(name, "Proxy-Authenticate");
    case 19:
        return !strcasecmp(name, "Proxy-Authorization");
    }
    return 0;
}

apr_array_header_t *rc_hdr_connection_tokens(apr_pool_t *p,
                                             const apr_table_t *headers)
{
    const apr_array_header_t *a = apr_table_elts(headers);
    const apr_table_entry_t *e = (const apr_table_entry_t *)a->elts;
    apr_array_header_t *tokens = NULL;
    int i;

    for (i = 0; i < a->nelts; i++) {
        char *list, *state, *tok;

        if (!e[i].key || strlen(e[i].key) != 10
            || strcasecmp(e[i].key, "Connection") != 0) {
            continue;
        }
        list = apr_pstrdup(p, e[i].val);
        for (tok = apr_strtok(list, ", \t", &state); tok;
             tok = apr_strtok(NULL, ", \t", &state)) {
            if (!tokens) {
                tokens = apr_array_make(p, 2, sizeof(const char *));
            }
            APR_ARRAY_PUSH(tokens, const char *) = tok;
        }
    }
    return tokens;
}

int rc_hdr_forwardable(const char *name, const apr_array_header_t *tokens)
{
    int i;

    if (rc_hdr_is_hop_by_hop(name)) {
        return 0;
    }
    for (i = 0; tokens && i < tokens->nelts; i++) {
        if (!strcasecmp(name, APR_ARRAY_IDX(tokens, i, const char *))) {
            return 0;
        }
    }
    return 1;
}

void rc_hdr_strip_hop_by_hop(apr_table_t *headers)
{
    apr_pool_t *p = apr_table_elts(headers)->pool;
    apr_array_header_t *tokens = rc_hdr_connection_tokens(p, headers);
    int i;

    for (i = 0; tokens && i < tokens->nelts; i++) {
        apr_table_unset(headers, APR_ARRAY_IDX(tokens, i, const char *));
    }
    for (i = 0; hop_by_hop[i]; i++) {
        apr_table_unset(headers, hop_by_hop[i]);
    }
}

/* Length of "scheme://authority" at the start of url, 0 if none. */
static apr_size_t origin_len(const char *url)
{
    const char *s = strstr(url, "://");

    if (!s) {
        return 0;
    }
    s += 3;
    while (*s && *s != '/' && *s != '?' && *s != '#') {
        s++;
    }
    return (apr_size_t)(s - url);
}

/* What goes between the front prefix and the rest of the path so that
 * exactly one "/" separates them, whichever side ended with one. */
static const char *join_slash(const char *front, const char *be,
                              apr_size_t blen, const char **rest)
{
    apr_size_t flen = strlen(front);
    int front_slash = flen && front[flen - 1] == '/';

    if (be[blen - 1] == '/') {
        return front_slash ? "" : "/";
    }
    if (front_slash && **rest == '/') {
        (*rest)++;
    }
    return "";
}

const char *rc_hdr_reverse_map(apr_pool_t *p, const char *value,
                               const rc_reverse_map_t *maps, int nmaps,
                               const char *front_base)
{
    int i;

    for (i = 0; i < nmaps; i++) {
        const char *be = maps[i].backend;
        apr_size_t olen = origin_len(be), blen = strlen(be);
        const char *rest, *sep;

        /* Origin case-insensitive, path case-sensitive. */
        if (!olen || strncasecmp(value, be, olen) != 0
            || strncmp(value + olen, be + olen, blen - olen) != 0) {
            continue;
        }
        rest = value + blen;
        if (be[blen - 1] != '/' && *rest && *rest != '/' && *rest != '?'
            && *rest != '#') {
            continue;    /* "/b" must not match "/bc" */
        }
        /* join_slash() may advance rest: call it before rest is read
         * (argument evaluation order is unspecified). */
        sep = join_slash(maps[i].front, be, blen, &rest);
        return apr_pstrcat(p, front_base, maps[i].front, sep, rest, NULL);
    }
    return value;
}
