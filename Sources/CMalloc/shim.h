// glibc's malloc tuning (mallopt, malloc_trim), which the Glibc module does not import.
#pragma once
#if defined(__linux__)
#include <malloc.h>
#endif
