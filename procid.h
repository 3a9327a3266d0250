/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * procid.h -- this process's pid without a syscall.
 *
 * The shared-memory cores stamp pins, writers and balancer slots with
 * the pid of their process, on every hit; glibc no longer caches
 * getpid(), so each call is a syscall. rc_self_pid() reads a copy that
 * a fork handler invalidates in the child. POSIX only.
 */

#ifndef RC_PROCID_H
#define RC_PROCID_H

#include <apr.h>

/** The calling process's pid (correct in a forked child too). */
apr_uint32_t rc_self_pid(void);

#endif
