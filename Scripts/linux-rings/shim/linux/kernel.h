/* Kernel shim for Scripts/bench-linux-rings.sh: just enough of the kernel's environment, as
 * user-space C, for drivers/hv/ring_buffer.c to compile unmodified. Written for this harness;
 * only the x86-64 barrier definitions follow the kernel's (the same instructions). */
#ifndef SHIM_LINUX_KERNEL_H
#define SHIM_LINUX_KERNEL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

#define __packed __attribute__((__packed__))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define U64_MAX UINT64_MAX

#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))
#define barrier() __asm__ __volatile__("" ::: "memory")

/* x86-64: a full barrier is a locked add to the stack; read barriers and acquire loads need
 * only keep the compiler from reordering (TSO). */
#define virt_mb() __asm__ __volatile__("lock; addl $0,-4(%%rsp)" ::: "memory", "cc")
#define virt_rmb() barrier()
#define virt_load_acquire(p) ({ __typeof__(*(p)) _v = READ_ONCE(*(p)); barrier(); _v; })

#define min(a, b) ({ __typeof__(a) _a = (a); __typeof__(b) _b = (b); _a < _b ? _a : _b; })

#define BUILD_BUG_ON(c) _Static_assert(!(c), "BUILD_BUG_ON")
#define EXPORT_SYMBOL_GPL(sym) _Static_assert(1, #sym)

#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)
#define HV_HYP_PAGE_SIZE 4096

/* Memory management: plain allocation; vmap is never called by the harness (it maps the
 * ring itself), so it only has to compile. */
#define GFP_KERNEL 0
#define VM_MAP 0
#define PAGE_KERNEL 0
#define pgprot_decrypted(p) (p)
struct page { int unused; };
#define kcalloc(n, size, gfp) calloc((n), (size))
#define kzalloc(size, gfp) calloc(1, (size))
#define kfree(p) free(p)
#define vmap(pages, count, flags, prot) ((void)(pages), (void *)NULL)
#define vunmap(p) ((void)(p))

struct reciprocal_value { u32 m; u8 sh1, sh2; };
static inline struct reciprocal_value reciprocal_value(u32 d)
{
	struct reciprocal_value r = { d, 0, 0 };
	return r;
}

/* An uncontended kernel spin lock is one locked exchange and a releasing store; interrupts
 * do not exist here, so the irqsave flags are unused. */
typedef struct { int locked; } spinlock_t;
static inline void shim_spin_lock(spinlock_t *lock)
{
	int expected = 0;
	while (!__atomic_compare_exchange_n(&lock->locked, &expected, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
		expected = 0;
		__builtin_ia32_pause();
	}
}
#define spin_lock_init(l) ((l)->locked = 0)
#define spin_lock_irqsave(l, flags) do { (flags) = 0; shim_spin_lock(l); } while (0)
#define spin_unlock_irqrestore(l, flags) do { (void)(flags); __atomic_store_n(&(l)->locked, 0, __ATOMIC_RELEASE); } while (0)
#define spin_is_locked(l) (__atomic_load_n(&(l)->locked, __ATOMIC_RELAXED) != 0)

struct mutex { int unused; };
#define mutex_init(m) ((void)(m))
#define mutex_lock(m) ((void)(m))
#define mutex_unlock(m) ((void)(m))

struct kvec {
	void *iov_base;
	size_t iov_len;
};

#endif
