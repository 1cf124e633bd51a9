#ifndef CMK_CSYSTEMD_SHIM_H
#define CMK_CSYSTEMD_SHIM_H
// Only what cmk-syncer needs from libsystemd: readiness notification and native journal logging.
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <sys/uio.h>
#endif
