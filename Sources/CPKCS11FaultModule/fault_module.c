// The fault-injecting PKCS#11 module of the tests: include/cmk_pkcs11_fault.h says what it does.
// The types and the function list's layout are the provider's own shim (PKCS #11 3.0, Unix layout).
#include "../CPKCS11/shim.h"
#include "cmk_pkcs11_fault.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_RULES 16

struct rule {
    char function[40];
    CK_RV rv;
    long remaining;  // -1: every call until the next control file
    long delay_ms;
    char gate[512];
    long gate_timeout_ms;
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static CK_FUNCTION_LIST *real;
static CK_FUNCTION_LIST list;
static CK_RV load_rv = 0x05;  // CKR_GENERAL_ERROR until the real module is loaded
static char control[512];
static char log_path[512];
static struct rule rules[MAX_RULES];
static int rule_count;

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

/// Replaces the rules with those of the control file, if there is one (called under `lock`).
static void read_control(void) {
    if (control[0] == 0) return;
    FILE *file = fopen(control, "r");
    if (file == NULL) return;
    unlink(control);
    rule_count = 0;
    char line[1200];
    while (rule_count < MAX_RULES && fgets(line, sizeof line, file) != NULL) {
        struct rule r = {.gate_timeout_ms = 10000};
        char rv[32];
        int fields = sscanf(line, "%39s %31s %ld %ld %511s %ld", r.function, rv, &r.remaining, &r.delay_ms, r.gate, &r.gate_timeout_ms);
        if (fields < 4) continue;
        r.rv = strtoul(rv, NULL, 0);
        if (fields < 5) r.gate[0] = 0;
        rules[rule_count++] = r;
    }
    fclose(file);
}

/// Whether the call `function` is answered here (then `*rv` is its return value); it may wait first.
static int inject(const char *function, CK_RV *rv) {
    struct rule applied;
    int found = 0;
    pthread_mutex_lock(&lock);
    read_control();
    for (int i = 0; i < rule_count; i++) {
        struct rule *r = &rules[i];
        if (r->remaining == 0 || (strcmp(r->function, "*") != 0 && strcmp(r->function, function) != 0)) continue;
        if (r->remaining > 0) r->remaining--;
        applied = *r;
        found = 1;
        break;
    }
    pthread_mutex_unlock(&lock);
    if (!found) return 0;
    if (applied.gate[0] != 0) {
        for (long waited = 0; waited < applied.gate_timeout_ms && access(applied.gate, F_OK) != 0; waited += 2) sleep_ms(2);
    }
    if (applied.delay_ms > 0) sleep_ms(applied.delay_ms);
    if (log_path[0] != 0) {
        int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) {
            char text[80];
            int n = snprintf(text, sizeof text, "%s 0x%lX\n", function, applied.rv);
            if (n > 0) { ssize_t ignored = write(fd, text, (size_t)n); (void)ignored; }
            close(fd);
        }
    }
    if (applied.rv == 0) return 0;
    *rv = applied.rv;
    return 1;
}

#define FORWARD(name, params, args)                     \
    static CK_RV fault_##name params {                  \
        CK_RV rv;                                       \
        if (inject(#name, &rv)) return rv;              \
        return real->name args;                         \
    }

FORWARD(C_GetSlotList, (CK_BBOOL present, CK_SLOT_ID *slots, CK_ULONG *count), (present, slots, count))
FORWARD(C_GetTokenInfo, (CK_SLOT_ID slot, CK_TOKEN_INFO *info), (slot, info))
FORWARD(C_GetMechanismList, (CK_SLOT_ID slot, CK_MECHANISM_TYPE *types, CK_ULONG *count), (slot, types, count))
FORWARD(C_OpenSession, (CK_SLOT_ID slot, CK_FLAGS flags, void *application, void *notify, CK_SESSION_HANDLE *session),
        (slot, flags, application, notify, session))
FORWARD(C_CloseSession, (CK_SESSION_HANDLE session), (session))
FORWARD(C_Login, (CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR *pin, CK_ULONG length), (session, user, pin, length))
FORWARD(C_Logout, (CK_SESSION_HANDLE session), (session))
FORWARD(C_CreateObject, (CK_SESSION_HANDLE session, CK_ATTRIBUTE *template, CK_ULONG count, CK_OBJECT_HANDLE *object),
        (session, template, count, object))
FORWARD(C_DestroyObject, (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object), (session, object))
FORWARD(C_GetAttributeValue, (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE *template, CK_ULONG count),
        (session, object, template, count))
FORWARD(C_SetAttributeValue, (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE *template, CK_ULONG count),
        (session, object, template, count))
FORWARD(C_FindObjectsInit, (CK_SESSION_HANDLE session, CK_ATTRIBUTE *template, CK_ULONG count), (session, template, count))
FORWARD(C_FindObjects, (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE *objects, CK_ULONG max, CK_ULONG *count),
        (session, objects, max, count))
FORWARD(C_FindObjectsFinal, (CK_SESSION_HANDLE session), (session))
FORWARD(C_DecryptInit, (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key), (session, mechanism, key))
FORWARD(C_Decrypt, (CK_SESSION_HANDLE session, CK_BYTE *input, CK_ULONG length, CK_BYTE *output, CK_ULONG *output_length),
        (session, input, length, output, output_length))
FORWARD(C_GenerateKey, (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_ATTRIBUTE *template, CK_ULONG count, CK_OBJECT_HANDLE *key),
        (session, mechanism, template, count, key))
FORWARD(C_GenerateKeyPair,
        (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_ATTRIBUTE *public_template, CK_ULONG public_count,
         CK_ATTRIBUTE *private_template, CK_ULONG private_count, CK_OBJECT_HANDLE *public_key, CK_OBJECT_HANDLE *private_key),
        (session, mechanism, public_template, public_count, private_template, private_count, public_key, private_key))
FORWARD(C_WrapKey,
        (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE wrapping, CK_OBJECT_HANDLE key, CK_BYTE *wrapped,
         CK_ULONG *length),
        (session, mechanism, wrapping, key, wrapped, length))
FORWARD(C_UnwrapKey,
        (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE unwrapping, CK_BYTE *wrapped, CK_ULONG length,
         CK_ATTRIBUTE *template, CK_ULONG count, CK_OBJECT_HANDLE *key),
        (session, mechanism, unwrapping, wrapped, length, template, count, key))

// C_GetSessionInfo is untyped in the shim (CK_SESSION_INFO: four CK_ULONGs).
typedef CK_RV (*get_session_info)(CK_SESSION_HANDLE, CK_ULONG *);
static CK_RV fault_C_GetSessionInfo(CK_SESSION_HANDLE session, CK_ULONG *info) {
    CK_RV rv;
    if (inject("C_GetSessionInfo", &rv)) return rv;
    return ((get_session_info)real->C_GetSessionInfo)(session, info);
}

static void load(void) {
    const char *path = getenv("CMK_PKCS11_FAULT_MODULE");
    const char *control_path = getenv("CMK_PKCS11_FAULT_CONTROL");
    const char *log = getenv("CMK_PKCS11_FAULT_LOG");
    if (control_path != NULL) snprintf(control, sizeof control, "%s", control_path);
    if (log != NULL) snprintf(log_path, sizeof log_path, "%s", log);
    if (path == NULL) return;
    void *handle;
    const char *error;
    long status = cmk_pkcs11_load(path, &handle, &real, &error);
    if (status != 0) {
        fprintf(stderr, "cmk-pkcs11-fault: cannot load %s: %s\n", path, error != NULL ? error : "C_GetFunctionList failed");
        real = NULL;
        return;
    }
    list = *real;
#define WRAP(name) list.name = fault_##name
    WRAP(C_GetSlotList); WRAP(C_GetTokenInfo); WRAP(C_GetMechanismList); WRAP(C_OpenSession); WRAP(C_CloseSession);
    WRAP(C_Login); WRAP(C_Logout); WRAP(C_CreateObject); WRAP(C_DestroyObject); WRAP(C_GetAttributeValue);
    WRAP(C_SetAttributeValue); WRAP(C_FindObjectsInit); WRAP(C_FindObjects); WRAP(C_FindObjectsFinal); WRAP(C_DecryptInit);
    WRAP(C_Decrypt); WRAP(C_GenerateKey); WRAP(C_GenerateKeyPair); WRAP(C_WrapKey); WRAP(C_UnwrapKey);
#undef WRAP
    list.C_GetSessionInfo = (void *)fault_C_GetSessionInfo;
    load_rv = 0;
}

/// The module's entry point: the real module's function list with the calls above in front of it.
/// CKR_GENERAL_ERROR when CMK_PKCS11_FAULT_MODULE is unset or cannot be loaded (said on stderr).
__attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST **out) {
    pthread_once(&once, load);
    if (load_rv != 0 || out == NULL) return load_rv != 0 ? load_rv : 0x07;
    *out = &list;
    return 0;
}
