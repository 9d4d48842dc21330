import CLinux
import Glibc

/// The CPU's spin-wait hint, for loops that poll shared memory (a ring's index) for a
/// change another thread makes: it frees the core for a sibling hardware thread and slows the
/// loop's hammering of the watched cache line, which the other side needs to write.
public func spinLoopPause() {
    clinux_spin_pause()
}

/// Gives the CPU to another runnable thread, if any (`sched_yield`). A poll that outlasts a
/// few microseconds yields on each turn: when the thread it waits for shares its core, the
/// poll would otherwise spin out its time slice while that thread cannot run; on a core of
/// its own it returns at once.
public func yieldProcessor() {
    _ = sched_yield()
}
