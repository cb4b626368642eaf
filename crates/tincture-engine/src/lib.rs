//! Tincture's engine: the render pipeline (decode → colorize → encode) and
//! its job plumbing, shared by the GUI and the CLI so both export
//! identically.
//!
//! Start at [`render::render`] and [`render::RenderRequest`]; the GUI
//! exports in the background through [`export::ExportJob`]. Measuring and
//! evaluating films and stills, and plotting the figures, is [`analysis`].

pub mod analysis;
pub mod chunk_state;
pub mod error;
pub mod export;
pub mod farm;
pub mod film;
pub mod live_metrics;
pub mod lock;
pub mod neural;
pub mod output;
pub mod project;
pub mod queue;
pub mod reference;
pub mod render;

pub use error::{Error, KeptPartial, Result};

/// Tincture's version, recorded in every export.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The niceness [`lower_thread_priority`] gives a thread.
pub const BACKGROUND_NICENESS: i32 = 10;

/// Allocations at least this large get pages of their own from the system
/// and give them back when freed (see [`keep_heap_bounded`]).
pub const OWN_PAGES_FROM: usize = 4 << 20;

/// Keeps the process's resident memory close to what it uses. By default
/// glibc raises its threshold for giving large blocks pages of their own
/// (up to 32 MiB) after the first is freed, and serves later blocks (an HD
/// frame's planes, carried colour) from heaps that keep freed pages: a
/// 1080p render of a long shot peaked 160 MB higher for it (1.57 GB
/// against 1.41 GB with the threshold fixed; long-shot bench, 100 frames).
/// Call it first thing in `main`. Linux with glibc only; elsewhere it does
/// nothing.
pub fn keep_heap_bounded() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets an allocator parameter; it is called
        // before other threads start.
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, OWN_PAGES_FROM as libc::c_int) };
        if ok != 1 {
            tracing::debug!("could not set the allocator's mmap threshold");
        }
    }
}

/// Hands the allocator's free memory back to the system, the free pages
/// inside its heaps included (glibc's `malloc_trim`). A long backward pass
/// allocates and frees frame-sized arrays below [`OWN_PAGES_FROM`] (an HD
/// frame's half-size planes, flow pyramids) in turn on several threads;
/// the heaps' free pages between them stay resident unless given back.
/// Linux with glibc only; elsewhere it does nothing.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only returns free memory to the system.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Lowers the calling thread's CPU priority to [`BACKGROUND_NICENESS`]
/// (never raising it, if it is lower already), so
/// that background work (an export, building a scrub proxy) yields the CPU
/// to the window on a busy machine instead of making it stutter. Threads
/// started afterwards from this one, FFmpeg's codec threads included,
/// inherit it. Linux only; elsewhere it does nothing.
pub fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        if thread_niceness().is_some_and(|n| n >= BACKGROUND_NICENESS) {
            return;
        }
        // SAFETY: plain system calls on the calling thread's own id; a
        // failure (a sandbox forbidding it) only leaves the priority as it was.
        let result = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, BACKGROUND_NICENESS)
        };
        if result != 0 {
            tracing::debug!(
                "could not lower this thread's priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// The calling thread's niceness (Linux), for tests; `None` elsewhere.
pub fn thread_niceness() -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread's own id. errno
        // is cleared first because -1 is also a valid niceness.
        unsafe {
            *libc::__errno_location() = 0;
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            let nice = libc::getpriority(libc::PRIO_PROCESS, tid);
            (*libc::__errno_location() == 0).then_some(nice)
        }
    }
    #[cfg(not(target_os = "linux"))]
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn background_threads_run_at_a_lower_priority() {
        let before = super::thread_niceness();
        let spawn = |name: &str| std::thread::Builder::new().name(name.to_owned());
        let (own, child) = spawn("lowered")
            .spawn(move || {
                super::lower_thread_priority();
                let own = super::thread_niceness();
                let child = spawn("lowered-child")
                    .spawn(super::thread_niceness)
                    .expect("starts")
                    .join()
                    .expect("the child thread");
                (own, child)
            })
            .expect("starts")
            .join()
            .expect("the thread");
        if cfg!(target_os = "linux") {
            let base = before.expect("niceness is readable on Linux");
            let lowered = base.clamp(super::BACKGROUND_NICENESS, 19);
            assert_eq!(own, Some(lowered), "the thread itself");
            assert_eq!(child, Some(lowered), "threads it starts inherit it");
            assert_eq!(
                super::thread_niceness(),
                before,
                "other threads keep theirs"
            );
        }
    }
}
