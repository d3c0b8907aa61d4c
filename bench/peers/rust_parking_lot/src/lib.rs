//! Rust parking_lot 0.12 for ft_weave's benchmarks (bench/lockbench.cpp).
//!
//! Two kinds of entry points:
//! - `ftw_pl_*_lock/unlock`: one FFI call per operation on a boxed raw lock,
//!   which the C++ driver runs in the same loops as every other peer. This
//!   costs parking_lot one non-inlined call per operation compared with
//!   header-inline locks; the report says so.
//! - `ftw_pl_native_*`: the same scenarios as Rust-native loops (the lock
//!   calls inline), as a reference without that handicap.
//!
//! The work function is the one of lockbench.cpp (a 32-bit LCG step per
//! unit, kept from being folded by an empty `asm!`, as the C++ side's
//! `asm volatile("" : "+r"(x))`). Nothing here needs a Rust newer than
//! Debian 12's 1.63 (no `std::hint::black_box`, stable only since 1.66), in
//! case cargo comes from Debian instead of rustup.

use lock_api::{RawMutex as _, RawRwLock as _};
use parking_lot::{Condvar, Mutex, RawMutex, RawRwLock};
use parking_lot_core::{ParkToken, UnparkToken};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Hides `x` from the optimiser (it must assume the value changed).
#[inline(always)]
fn opaque(mut x: u32) -> u32 {
    // SAFETY: only a comment in the instruction stream; touches nothing but
    // the register. (The modifier names the 32-bit register, as `x` is a u32.)
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!("/* {0:e} */", inout(reg) x, options(nomem, nostack, preserves_flags))
    };
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!("/* {0:w} */", inout(reg) x, options(nomem, nostack, preserves_flags))
    };
    x
}

#[inline(always)]
fn work(mut x: u32, n: u32) -> u32 {
    for _ in 0..n {
        x = opaque(x.wrapping_mul(1103515245).wrapping_add(12345));
    }
    x
}

// ---- FFI locks ----------------------------------------------------------

#[no_mangle]
pub extern "C" fn ftw_pl_mutex_new() -> *mut RawMutex {
    Box::into_raw(Box::new(RawMutex::INIT))
}

/// # Safety
/// `m` comes from `ftw_pl_mutex_new` and is unlocked and unused.
#[no_mangle]
pub unsafe extern "C" fn ftw_pl_mutex_free(m: *mut RawMutex) {
    drop(Box::from_raw(m));
}

/// # Safety
/// `m` comes from `ftw_pl_mutex_new`.
#[no_mangle]
pub unsafe extern "C" fn ftw_pl_mutex_lock(m: *const RawMutex) {
    (*m).lock();
}

/// # Safety
/// `m` is locked (by anyone: parking_lot's raw mutex records no owner).
#[no_mangle]
pub unsafe extern "C" fn ftw_pl_mutex_unlock(m: *const RawMutex) {
    (*m).unlock();
}

#[no_mangle]
pub extern "C" fn ftw_pl_rwlock_new() -> *mut RawRwLock {
    Box::into_raw(Box::new(RawRwLock::INIT))
}

/// # Safety
/// `rw` comes from `ftw_pl_rwlock_new` and is unlocked and unused.
#[no_mangle]
pub unsafe extern "C" fn ftw_pl_rwlock_free(rw: *mut RawRwLock) {
    drop(Box::from_raw(rw));
}

/// # Safety
/// `rw` comes from `ftw_pl_rwlock_new`.
#[no_mangle]
pub unsafe extern "C" fn ftw_pl_rwlock_read_lock(rw: *const RawRwLock) {
    (*rw).lock_shared();
}

/// # Safety
/// The caller holds a read lock of `rw`.
#[no_mangle]
pub unsafe extern "C" fn ftw_pl_rwlock_read_unlock(rw: *const RawRwLock) {
    (*rw).unlock_shared();
}

/// # Safety
/// `rw` comes from `ftw_pl_rwlock_new`.
#[no_mangle]
pub unsafe extern "C" fn ftw_pl_rwlock_write_lock(rw: *const RawRwLock) {
    (*rw).lock_exclusive();
}

/// # Safety
/// The caller holds the write lock of `rw`.
#[no_mangle]
pub unsafe extern "C" fn ftw_pl_rwlock_write_unlock(rw: *const RawRwLock) {
    (*rw).unlock_exclusive();
}

// ---- Rust-native loops ---------------------------------------------------

/// Nanoseconds for `iters` uncontended lock+unlock pairs of a parking_lot
/// raw mutex, inline.
#[no_mangle]
pub extern "C" fn ftw_pl_native_uncontended(iters: u64) -> u64 {
    // A static, as the C++ side's heap lock: its atomics cannot be elided.
    static M: RawMutex = RawMutex::INIT;
    let m = &M;
    let t0 = Instant::now();
    for _ in 0..iters {
        m.lock();
        // SAFETY: locked just above by this thread.
        unsafe { m.unlock() };
    }
    t0.elapsed().as_nanos() as u64
}

#[repr(align(128))]
struct Padded(AtomicU64);

/// Contended throughput as in lockbench.cpp: `threads` threads lock a
/// parking_lot Mutex, do `work_in` units on the shared state, unlock, do
/// `work_out` units on their own, until `duration_ms` elapsed. Writes each
/// thread's acquisitions to `counts[0..threads]` and returns the elapsed
/// nanoseconds.
///
/// # Safety
/// `counts` points to `threads` writable u64.
#[no_mangle]
pub unsafe extern "C" fn ftw_pl_native_contended(
    threads: u32,
    duration_ms: u32,
    work_in: u32,
    work_out: u32,
    counts: *mut u64,
) -> u64 {
    struct Shared {
        lock: Mutex<(u64, u32)>,
        go: AtomicBool,
        stop: AtomicBool,
        ready: AtomicU32,
        counts: Vec<Padded>,
    }
    let shared = Arc::new(Shared {
        lock: Mutex::new((0, 1)),
        go: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        ready: AtomicU32::new(0),
        counts: (0..threads).map(|_| Padded(AtomicU64::new(0))).collect(),
    });
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let s = Arc::clone(&shared);
            std::thread::spawn(move || {
                let mut local = t.wrapping_add(1);
                let mut n = 0u64;
                s.ready.fetch_add(1, Ordering::AcqRel);
                while !s.go.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
                while !s.stop.load(Ordering::Relaxed) {
                    {
                        let mut g = s.lock.lock();
                        g.0 += 1;
                        g.1 = work(g.1, work_in);
                    }
                    local = work(local, work_out);
                    n += 1;
                }
                opaque(local);
                s.counts[t as usize].0.store(n, Ordering::Relaxed);
            })
        })
        .collect();
    while shared.ready.load(Ordering::Acquire) != threads {
        std::thread::yield_now();
    }
    let t0 = Instant::now();
    shared.go.store(true, Ordering::Release);
    std::thread::sleep(Duration::from_millis(duration_ms as u64));
    shared.stop.store(true, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_nanos() as u64;
    for h in handles {
        let _ = h.join();
    }
    for t in 0..threads as usize {
        *counts.add(t) = shared.counts[t].0.load(Ordering::Relaxed);
    }
    elapsed
}

/// Median of the per-round nanoseconds (each round trip timed on its own, as
/// lockbench.cpp does).
fn median_ns(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Condition-variable ping-pong with parking_lot's Mutex + Condvar: two
/// threads pass a turn back and forth `rounds` times (`rounds` > 0).
/// Returns the median nanoseconds of one round trip.
#[no_mangle]
pub extern "C" fn ftw_pl_native_cond_pingpong(rounds: u32) -> u64 {
    let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
    let p2 = Arc::clone(&pair);
    let peer = std::thread::spawn(move || {
        let (m, cv) = &*p2;
        for _ in 0..rounds {
            let mut turn = m.lock();
            while *turn != 1 {
                cv.wait(&mut turn);
            }
            *turn = 0;
            cv.notify_one();
        }
    });
    let (m, cv) = &*pair;
    let mut rt = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds {
        let t0 = Instant::now();
        let mut turn = m.lock();
        *turn = 1;
        cv.notify_one();
        while *turn != 0 {
            cv.wait(&mut turn);
        }
        drop(turn);
        rt.push(t0.elapsed().as_nanos() as u64);
    }
    let _ = peer.join();
    median_ns(rt)
}

/// Park/unpark ping-pong with parking_lot_core, the protocol of
/// lockbench.cpp's weave_park and futex versions (`rounds` > 0). Returns the
/// median nanoseconds of one round trip.
#[no_mangle]
pub extern "C" fn ftw_pl_native_park_pingpong(rounds: u32) -> u64 {
    let turn = Arc::new(AtomicU32::new(0));
    fn park_while(turn: &AtomicU32, value: u32) {
        while turn.load(Ordering::Acquire) == value {
            let key = turn as *const AtomicU32 as usize;
            // SAFETY: the callbacks neither panic nor call into the parking lot.
            unsafe {
                parking_lot_core::park(
                    key,
                    || turn.load(Ordering::Relaxed) == value,
                    || {},
                    |_, _| {},
                    ParkToken(0),
                    None,
                );
            }
        }
    }
    fn wake(turn: &AtomicU32) {
        let key = turn as *const AtomicU32 as usize;
        // SAFETY: the callback neither panics nor calls into the parking lot.
        unsafe {
            parking_lot_core::unpark_one(key, |_| UnparkToken(0));
        }
    }
    let t2 = Arc::clone(&turn);
    let peer = std::thread::spawn(move || {
        for _ in 0..rounds {
            park_while(&t2, 0);
            t2.store(0, Ordering::Release);
            wake(&t2);
        }
    });
    let mut rt = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds {
        let t0 = Instant::now();
        turn.store(1, Ordering::Release);
        wake(&turn);
        park_while(&turn, 1);
        rt.push(t0.elapsed().as_nanos() as u64);
    }
    let _ = peer.join();
    median_ns(rt)
}
