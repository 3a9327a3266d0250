/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * cache_rules_int.h - small lexical helpers shared by the two halves of
 * the RFC 9111 core (cache_rules.c and cache_keys.c). Not an API: only
 * those two files include it.
 */
#ifndef RC_CACHE_RULES_INT_H
#define RC_CACHE_RULES_INT_H

#include <string.h>
#include <apr_lib.h>

#define RC_OWS(c) ((c) == ' ' || (c) == '\t')

/* tchar of RFC 9110 section 5.6.2 */
static APR_INLINE int is_tchar(int c)
{
    if (apr_isalnum(c)) {
        return 1;
    }
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static APR_INLINE const char *skip_ows(const char *s)
{
    while (RC_OWS(*s)) {
        s++;
    }
    return s;
}

#endif /* RC_CACHE_RULES_INT_H */
