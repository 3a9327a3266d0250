/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * procid.c -- see procid.h. The copy is 0 until first use and again in
 * every child forked since (pthread_atfork), so the next call reloads
 * it there; a race between two threads reloading stores the same value.
 */

#include "procid.h"

#include <pthread.h>
#include <unistd.h>

static apr_uint32_t self_pid;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void forked_child(void)
{
    __atomic_store_n(&self_pid, 0, __ATOMIC_RELAXED);
}

static void register_handler(void)
{
    pthread_atfork(NULL, NULL, forked_child);
}

apr_uint32_t rc_self_pid(void)
{
    apr_uint32_t pid = __atomic_load_n(&self_pid, __ATOMIC_RELAXED);

    if (pid == 0) {
        pthread_once(&once, register_handler);
        pid = (apr_uint32_t)getpid();
        __atomic_store_n(&self_pid, pid, __ATOMIC_RELAXED);
    }
    return pid;
}
