//! The threads that run the forward pass's parallel regions.
//!
//! A 7B token is about 160 short regions (each product, the attention), each a few
//! hundred microseconds. Between them rayon's idle workers go to sleep and must be woken
//! by the kernel, so on two cores the second thread joined late and a token lost a tenth
//! of its time to scheduling. A team's workers instead spin for a while after each
//! region, as llama.cpp's do, and take tasks from one atomic counter, so a thread the OS
//! delays only hands its share to the others. After `SPIN` with nothing to do they
//! sleep, so an idle engine does not hold the cores.
//!
//! The thread count is rayon's ([`rayon::current_num_threads`]): `--threads` and the
//! pools of `ropewalk bench -t 1,2` set both. The calling thread works too, so a team of
//! `n` has `n - 1` workers, started on first use and kept for the life of the process.
//! A region started while the team is busy (another thread's, or one nested in a task)
//! runs on the calling thread alone.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long an idle worker spins for the next region before it sleeps: longer than the
/// single-threaded work between two regions of a token (norms, RoPE, sampling).
const SPIN: Duration = Duration::from_millis(2);

/// Runs `f(0)`, …, `f(n_tasks - 1)` on the team of the current thread count, each task
/// once, and returns when all are done. A panic in a task is raised again here, once
/// every task has stopped.
pub fn run(n_tasks: usize, f: &(dyn Fn(usize) + Sync)) {
    if n_tasks <= 1 || IN_REGION.get() {
        return (0..n_tasks).for_each(f);
    }
    let team = Team::of_size(rayon::current_num_threads());
    if team.workers == 0 || team.busy.swap(true, Ordering::Acquire) {
        return (0..n_tasks).for_each(f);
    }
    IN_REGION.set(true);
    let job = Job { f, n_tasks };
    let region = Region { team };
    region.start(&job);
    team.take_tasks(n_tasks, f);
    drop(region);
    if team.panicked.swap(false, Ordering::Relaxed) {
        panic!("a task of a parallel region panicked");
    }
}

/// Calls `f(i, chunk)` for the `i`-th chunk of `chunk` elements of `data` (the last may
/// be shorter), in parallel as [`run`].
pub fn for_each_chunk_mut<T: Send>(
    data: &mut [T],
    chunk: usize,
    f: &(dyn Fn(usize, &mut [T]) + Sync),
) {
    assert!(chunk > 0);
    let len = data.len();
    let base = SendPtr(data.as_mut_ptr());
    run(len.div_ceil(chunk), &|i| {
        let start = i * chunk;
        let n = chunk.min(len - start);
        // SAFETY: task i alone gets elements start..start + n of `data`, which `run` keeps
        // borrowed mutably until every task has returned; chunks never overlap.
        let part = unsafe { std::slice::from_raw_parts_mut(base.at(start), n) };
        f(i, part)
    });
}

thread_local! {
    /// Whether this thread is inside a region (a worker always is).
    static IN_REGION: Cell<bool> = const { Cell::new(false) };
}

/// A pointer that tasks on other threads may use, each to its own elements: chunks here,
/// and the columns of a product's output in matmul.
pub(crate) struct SendPtr<T>(pub(crate) *mut T);
impl<T> Clone for SendPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendPtr<T> {}
impl<T> SendPtr<T> {
    /// The element at `i`; a method, so closures capture the `Send` wrapper, not the raw
    /// field.
    pub(crate) fn at(self, i: usize) -> *mut T {
        self.0.wrapping_add(i)
    }
}
// SAFETY: every user hands each task elements no other task touches, and keeps the
// buffer borrowed until all tasks are done (`for_each_chunk_mut`, matmul's products).
unsafe impl<T: Send> Send for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SendPtr<T> {}

/// The tasks of a region, on the stack of the thread that runs it.
struct Job<'a> {
    f: &'a (dyn Fn(usize) + Sync),
    n_tasks: usize,
}

/// Bit 0 of [`Team::state`]: a job is posted.
const POSTED: u64 = 1;

struct Team {
    workers: usize,
    /// Twice the number of the current region, plus [`POSTED`] while its job may be
    /// taken. Workers spin on it; the region's number tells a new job from an old one.
    state: AtomicU64,
    /// The posted [`Job`], its lifetime erased: valid while `state` says it is posted
    /// and for as long as a worker counted in `active` uses it (see [`Region`]).
    job: AtomicPtr<Job<'static>>,
    /// The next task to hand out.
    next: AtomicUsize,
    /// Workers inside a region's job, or about to check whether they may enter it.
    active: AtomicUsize,
    busy: AtomicBool,
    panicked: AtomicBool,
    /// Workers asleep, and what wakes them: only ever touched after [`SPIN`] idle, so a
    /// busy team takes no lock.
    sleeping: AtomicUsize,
    sleep_lock: Mutex<()>,
    wake: Condvar,
}

impl Team {
    /// The team of `threads` threads, started the first time it is asked for.
    fn of_size(threads: usize) -> &'static Team {
        thread_local! {
            static LAST: Cell<Option<&'static Team>> = const { Cell::new(None) };
        }
        let workers = threads.max(1) - 1;
        if let Some(t) = LAST.get().filter(|t| t.workers == workers) {
            return t;
        }
        static TEAMS: Mutex<Vec<&'static Team>> = Mutex::new(Vec::new());
        let mut teams = TEAMS.lock().unwrap_or_else(PoisonError::into_inner);
        let team = match teams.iter().find(|t| t.workers == workers) {
            Some(t) => t,
            None => {
                let team = Team::start(workers);
                teams.push(team);
                team
            }
        };
        LAST.set(Some(team));
        team
    }

    fn start(workers: usize) -> &'static Team {
        let team: &'static Team = Box::leak(Box::new(Team {
            workers,
            state: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            next: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            busy: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            sleeping: AtomicUsize::new(0),
            sleep_lock: Mutex::new(()),
            wake: Condvar::new(),
        }));
        for i in 0..workers {
            let spawned = std::thread::Builder::new()
                .name(format!("ropewalk-team{}-{i}", workers + 1))
                .spawn(move || team.work());
            if spawned.is_err() {
                // Fewer threads than asked for still run every task: the caller takes
                // whatever the workers do not.
                break;
            }
        }
        team
    }

    /// Takes tasks until none are left.
    fn take_tasks(&self, n_tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= n_tasks {
                return;
            }
            f(i);
        }
    }

    /// A worker's life: wait for a region, take its tasks, repeat.
    fn work(&self) {
        IN_REGION.set(true);
        let mut seen = 0;
        loop {
            let state = self.wait_for_region(seen);
            seen = state;
            // Counted first, then checked: either `Region::drop` sees this worker in
            // `active` and waits for it, or this worker sees the job withdrawn.
            self.active.fetch_add(1, Ordering::SeqCst);
            if self.state.load(Ordering::SeqCst) == state {
                // SAFETY: the job of `state` is posted and, with this worker counted in
                // `active`, stays alive until the decrement below (`Region::drop`).
                let job = unsafe { &*self.job.load(Ordering::Acquire) };
                let ran =
                    panic::catch_unwind(AssertUnwindSafe(|| self.take_tasks(job.n_tasks, job.f)));
                if ran.is_err() {
                    // What is left is finished by the others; the caller raises the panic.
                    self.panicked.store(true, Ordering::Relaxed);
                }
            }
            self.active.fetch_sub(1, Ordering::Release);
        }
    }

    /// Spins, then sleeps, until a job other than `seen`'s is posted; returns its state.
    fn wait_for_region(&self, seen: u64) -> u64 {
        let mut start = Instant::now();
        let mut spins = 0u32;
        loop {
            let state = self.state.load(Ordering::Acquire);
            if state != seen && state & POSTED != 0 {
                return state;
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(1024) || start.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            let mut guard = self
                .sleep_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Counted, then checked, against the poster's store-then-check: one of the two
            // sees the other, so no wake-up is lost.
            self.sleeping.fetch_add(1, Ordering::SeqCst);
            while self.state.load(Ordering::SeqCst) & POSTED == 0
                || self.state.load(Ordering::SeqCst) == seen
            {
                guard = self
                    .wake
                    .wait(guard)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            self.sleeping.fetch_sub(1, Ordering::SeqCst);
            start = Instant::now();
        }
    }
}

/// A region in progress; dropping it (also when the caller's tasks panic) withdraws the
/// job and waits for the workers that took it.
struct Region {
    team: &'static Team,
}

impl Region {
    /// Posts `job`, which must outlive the region.
    fn start(&self, job: &Job) {
        let team = self.team;
        team.next.store(0, Ordering::Relaxed);
        // Only the lifetime is erased; `Region::drop` ends every use of the pointer
        // before the caller's `job` goes.
        let ptr: *const Job = job;
        team.job.store(ptr as *mut Job<'static>, Ordering::Relaxed);
        let state = ((team.state.load(Ordering::Relaxed) & !POSTED) + 2) | POSTED;
        team.state.store(state, Ordering::SeqCst);
        if team.sleeping.load(Ordering::SeqCst) > 0 {
            let _guard = team
                .sleep_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            team.wake.notify_all();
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        let team = self.team;
        team.state.fetch_and(!POSTED, Ordering::SeqCst);
        while team.active.load(Ordering::SeqCst) > 0 {
            std::hint::spin_loop();
        }
        if std::thread::panicking() {
            // The caller's own task panicked: that panic goes on, and a worker's must not
            // be left for the next region to raise.
            team.panicked.store(false, Ordering::Relaxed);
        }
        team.busy.store(false, Ordering::Release);
        IN_REGION.set(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` where the team has `threads` threads, whatever the machine has.
    fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(f)
    }

    #[test]
    fn every_task_runs_once() {
        for threads in [1, 2, 4] {
            with_threads(threads, || {
                for n in [0, 1, 2, 3, 7, 64, 1000] {
                    let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                    for _ in 0..50 {
                        run(n, &|i| {
                            hits[i].fetch_add(1, Ordering::Relaxed);
                        });
                    }
                    assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 50), "{n}");
                }
            });
        }
    }

    #[test]
    fn chunks_cover_the_slice_once() {
        with_threads(3, || {
            for (len, chunk) in [(10, 3), (12, 4), (1, 5), (0, 2), (1000, 7)] {
                let mut data = vec![0usize; len];
                for_each_chunk_mut(&mut data, chunk, &|i, part| {
                    assert!(part.len() <= chunk);
                    for (j, x) in part.iter_mut().enumerate() {
                        *x += i * chunk + j + 1;
                    }
                });
                assert!(data.iter().enumerate().all(|(j, &x)| x == j + 1));
            }
        });
    }

    #[test]
    fn a_panicking_task_panics_the_caller_and_the_team_goes_on() {
        with_threads(4, || {
            for bad in [0, 5, 99] {
                let caught = panic::catch_unwind(|| {
                    run(100, &|i| assert_ne!(i, bad, "task {i} fails"));
                });
                assert!(caught.is_err(), "task {bad}");
                let done = AtomicUsize::new(0);
                run(100, &|_| {
                    done.fetch_add(1, Ordering::Relaxed);
                });
                assert_eq!(done.load(Ordering::Relaxed), 100);
            }
            // Every task fails, the caller's and the workers': the region after is clean.
            for _ in 0..20 {
                let caught = panic::catch_unwind(|| run(64, &|_| panic!("all fail")));
                assert!(caught.is_err());
                run(64, &|_| ());
            }
        });
    }

    #[test]
    fn nested_and_concurrent_regions_run_every_task() {
        with_threads(3, || {
            let done = AtomicUsize::new(0);
            run(8, &|_| {
                run(8, &|_| {
                    done.fetch_add(1, Ordering::Relaxed);
                })
            });
            assert_eq!(done.load(Ordering::Relaxed), 64);
        });
        // Several threads share the team of 3: whoever finds it busy runs alone.
        let done = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    with_threads(3, || {
                        for _ in 0..200 {
                            run(16, &|_| {
                                done.fetch_add(1, Ordering::Relaxed);
                            });
                        }
                    })
                });
            }
        });
        assert_eq!(done.load(Ordering::Relaxed), 4 * 200 * 16);
    }

    #[test]
    fn idle_workers_sleep_and_wake() {
        with_threads(2, || {
            let done = AtomicUsize::new(0);
            for _ in 0..3 {
                run(4, &|_| {
                    done.fetch_add(1, Ordering::Relaxed);
                });
                std::thread::sleep(SPIN * 3);
            }
            assert_eq!(done.load(Ordering::Relaxed), 12);
        });
    }
}
