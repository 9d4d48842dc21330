// Path rewriting: the sysfs and /dev paths a uio program names are redirected into the
// export directory, so the program finds the stand-in tree where a kernel would keep the
// real one. Only absolute paths under the three prefixes below change; everything else
// goes to libc untouched.
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *vmbus_uio_real(const char *name) {
    void *symbol = dlsym(RTLD_NEXT, name);
    if (!symbol) {
        // No way to forward the call: failing loudly now beats a crash later.
        static const char message[] = "libvmbus-uio-preload: libc has no symbol for an interposed call\n";
        (void)!write(2, message, sizeof message - 1);
        abort();
    }
    return symbol;
}

static const char *export_dir;
static size_t export_len;
static int debug_enabled;

// Read once, before main: the environment may change later, the tree's place must not.
__attribute__((constructor)) static void read_environment(void) {
    const char *dir = getenv("VMBUS_UIO_EXPORT");
    debug_enabled = getenv("VMBUS_UIO_DEBUG") != NULL;
    if (dir && dir[0] == '/') {
        export_len = strlen(dir);
        // A trailing slash would double up when a path is appended.
        while (export_len > 1 && dir[export_len - 1] == '/') export_len--;
        export_dir = dir;
    } else if (dir && dir[0]) {
        vmbus_uio_debug("VMBUS_UIO_EXPORT must be an absolute path; ignoring '%s'", dir);
    }
}

const char *vmbus_uio_export(void) { return export_dir; }

void vmbus_uio_debug(const char *format, ...) {
    if (!debug_enabled) return;
    char line[PATH_MAX + 256];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(line, sizeof line - 1, format, args);
    va_end(args);
    if (n < 0) return;
    if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
    line[n] = '\n';
    // write(2), not stdio: this runs inside interposed stdio calls too.
    (void)!write(2, "vmbus-uio-preload: ", 19);
    (void)!write(2, line, (size_t)n + 1);
}

// Whether `path` starts with directory `prefix` (a whole component: "/sys/class/uio" matches
// "/sys/class/uio/uio0" but not "/sys/class/uiox").
static int under(const char *path, const char *prefix) {
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

// The uio number in "uio<digits>" exactly, else -1.
static int uio_name_number(const char *name) {
    if (strncmp(name, "uio", 3) != 0 || name[3] == '\0') return -1;
    long number = 0;
    for (const char *c = name + 3; *c; c++) {
        if (*c < '0' || *c > '9' || number > 1000000) return -1;
        number = number * 10 + (*c - '0');
    }
    return (int)number;
}

const char *vmbus_uio_rewrite(const char *path, char buffer[PATH_MAX]) {
    if (!export_dir || !path || path[0] != '/') return path;
    int redirected = under(path, "/sys/bus/vmbus") || under(path, "/sys/class/uio")
        || (strncmp(path, "/dev/", 5) == 0 && uio_name_number(path + 5) >= 0);
    if (!redirected) return path;
    size_t length = strlen(path);
    if (export_len + length + 1 > PATH_MAX) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    memcpy(buffer, export_dir, export_len);
    memcpy(buffer + export_len, path, length + 1);
    vmbus_uio_debug("%s -> %s", path, buffer);
    return buffer;
}

int vmbus_uio_node_number(const char *path) {
    if (!export_dir || strncmp(path, export_dir, export_len) != 0) return -1;
    if (strncmp(path + export_len, "/dev/", 5) != 0) return -1;
    return uio_name_number(path + export_len + 5);
}
