// glibc's malloc tuning (mallopt, malloc_trim), which the Glibc module does not import, and
// prctl(PR_SET_DUMPABLE), which Swift cannot call because prctl is variadic.
#pragma once
#if defined(__linux__)
#include <malloc.h>
#include <sys/prctl.h>

/// prctl(PR_SET_DUMPABLE, dumpable): 0 makes the process undumpable (no core dump, no ptrace or
/// /proc/PID/mem by other processes of the same user). Returns 0 or -1 with errno.
static inline int cmk_set_dumpable(int dumpable) { return prctl(PR_SET_DUMPABLE, (unsigned long)dumpable, 0UL, 0UL, 0UL); }

/// prctl(PR_GET_DUMPABLE): 1 dumpable, 0 not, 2 only by root.
static inline int cmk_get_dumpable(void) { return prctl(PR_GET_DUMPABLE, 0UL, 0UL, 0UL, 0UL); }
#endif
