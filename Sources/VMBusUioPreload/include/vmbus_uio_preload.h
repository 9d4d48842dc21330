// libvmbus-uio-preload.so: run an unmodified uio_hv_generic program against the stand-in
// tree that `vmbus host --uio-export DIR` writes.
//
//     LD_PRELOAD=/path/to/libvmbus-uio-preload.so VMBUS_UIO_EXPORT=DIR program
//
// VMBUS_UIO_EXPORT  the export directory; without it the library changes nothing.
// VMBUS_UIO_DEBUG   when set (to anything), one line on standard error for every path it
//                   rewrites, node it connects to, map it serves, and call it refuses.
//
// The library exports no API of its own: it interposes libc functions (docs/UIO-EXPORT.md
// lists them). This header exists so the target has a documented public face.
#ifndef VMBUS_UIO_PRELOAD_H
#define VMBUS_UIO_PRELOAD_H
#endif
