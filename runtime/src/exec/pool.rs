//! A persistent thread pool that runs the plan's kernels split by index range.
//!
//! Kernels are run thousands of times per training epoch, so starting threads
//! per kernel would cost more than many kernels themselves. [`ThreadPool`]
//! starts its workers once; between calls they sleep on a condition variable.
//! [`ThreadPool::run`] hands out task indices `0..tasks` to the workers and the
//! calling thread, and returns when every task has finished.
//!
//! # Determinism
//!
//! Which thread runs which task is decided at run time and varies from call
//! to call; results must therefore never depend on it. The discipline is:
//!
//! 1. the work is cut by [`split`], which depends only on the length and the
//!    number of parts (fixed by the plan from the thread count), never on
//!    timing;
//! 2. every task writes only its own outputs, addressed by its task index
//!    (disjoint output ranges, or one partial result per task, see
//!    [`ThreadPool::map`]);
//! 3. partial results are combined by [`reduce_ordered`] in task-index order.
//!
//! Floating-point addition is not associative, but the sequence of operations
//! is now a function of the split alone: the same seed and thread count give
//! the same split, hence the same combination order, hence bit-identical
//! results however the tasks were scheduled.
//!
//! # Synchronisation
//!
//! One mutex guards the pool's [`State`]: the current job (a pointer to the
//! task function and the task count), a generation number, the number of
//! workers still busy with the current generation, and the first panic seen.
//! A call of `run`:
//!
//! 1. under the lock, resets the shared task counter, publishes the job,
//!    bumps the generation, sets `active` to the number of workers, and wakes
//!    the workers asleep on the `work` condition variable, if any (the
//!    others are spinning, see [`SPIN`], and check the generation under the
//!    lock before they would sleep);
//! 2. takes tasks itself from the counter until it is exhausted;
//! 3. waits until `active` is zero (spinning first, then on the `done`
//!    condition variable, recording that it sleeps so that the last worker
//!    knows to signal it), then clears the job under the lock.
//!
//! Each worker waits for a generation it has not seen, copies the job under
//! the lock, takes tasks from the counter until it is exhausted, then under
//! the lock decrements `active` and signals `done` when it reaches zero and
//! the caller sleeps.
//!
//! Memory ordering: the mutex gives every edge that matters. The job and the
//! counter reset are written before the caller releases the lock in step 1; a
//! worker reads them after acquiring it, so it sees them. Everything a worker
//! wrote while running tasks precedes its release of the lock when it
//! decrements `active`; the caller acquires the lock to observe `active == 0`,
//! so when `run` returns all task effects are visible to the caller. The task
//! counter itself is a relaxed `fetch_add`: atomic read-modify-writes on one
//! location form a single total order, so each index is handed out exactly
//! once whatever the ordering, and the counter carries no other data. Because
//! the caller waits for *every* worker (not only those that got a task), no
//! worker can still touch the counter or the task function of one call when
//! the next call resets them.
//!
//! Panics: every task runs under `catch_unwind`, so a panicking task neither
//! kills a worker nor leaves `active` unbalanced; nothing panics while holding
//! the lock, so it is never poisoned (and a poisoned lock would be recovered
//! anyway). `run` reports the panic of the lowest task index as `Err`.

use std::any::Any;
use std::io;
use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

/// The task function of one call of [`ThreadPool::run`], with its borrow
/// lifetime erased so that workers can hold it.
type TaskFn = dyn Fn(usize) + Sync;

/// A borrowed task function of any lifetime.
type TaskFnRef<'a> = dyn Fn(usize) + Sync + 'a;

/// A job published to the workers: what to run and how many tasks there are.
#[derive(Clone, Copy)]
struct Job {
    /// The caller's task function. Valid while the publishing `run` has not
    /// returned, which it does only after every worker has checked out of the
    /// job (see [`ThreadPool::run`]).
    f: *const TaskFn,
    /// Number of tasks; indices are `0..tasks`.
    tasks: usize,
}

// SAFETY: `Job` is only a pointer to a `Sync` closure (`dyn Fn + Sync`), so
// calling it from another thread is allowed; the pointer is dereferenced only
// while the owning `run` call keeps the closure alive (it waits for every
// worker to check out before returning).
unsafe impl Send for Job {}

/// Everything guarded by the pool's mutex.
struct State {
    /// Incremented once per published job; workers run each generation once.
    generation: u64,
    /// The current job, `Some` between publication and completion.
    job: Option<Job>,
    /// Workers that have not yet finished the current generation.
    active: usize,
    /// True while a `run` call owns the workers; a concurrent or nested call
    /// then runs its tasks inline instead of waiting.
    busy: bool,
    /// The lowest-index panic of the current job: (task, message).
    panic: Option<(usize, String)>,
    /// Workers asleep on the `work` condition variable (the others are
    /// spinning or running tasks and see a new job without a wake-up).
    sleeping: usize,
    /// True while the caller of `run` sleeps on the `done` condition
    /// variable.
    caller_waiting: bool,
    /// Set by `Drop`: workers exit.
    shutdown: bool,
}

/// State shared by the caller and the workers.
struct Shared {
    state: Mutex<State>,
    /// Signalled when a job is published or the pool shuts down.
    work: Condvar,
    /// Signalled when the last worker finishes a job.
    done: Condvar,
    /// The next task index to hand out for the current job.
    next: AtomicUsize,
    /// Mirrors of `State::generation` and `State::active`, read without the
    /// lock while spinning (see [`SPIN`]); the locked fields stay the truth.
    published: AtomicU64,
    running: AtomicUsize,
}

/// How long a worker keeps polling for the next job, and the caller for the
/// workers to finish, before sleeping on a condition variable. Kernels of a
/// training step follow each other within microseconds, and a condition
/// variable wake-up costs tens of microseconds, so a short spin removes most
/// of the hand-over latency; the locked protocol that follows is unchanged.
const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// Polls `done` until it returns true or [`SPIN`] has passed.
fn spin_until(done: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !done() && start.elapsed() < SPIN {
        for _ in 0..64 {
            std::hint::spin_loop();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding this lock (tasks run outside it), so it
        // is not expected to be poisoned; if it were, the state is still
        // consistent because every update is a single field write.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A fixed set of worker threads that run indexed tasks.
///
/// `threads` counts the calling thread: a pool of `n` threads starts `n - 1`
/// workers and the thread calling [`run`](ThreadPool::run) takes tasks too.
/// Dropping the pool stops and joins its workers.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl ThreadPool {
    /// A pool of `threads` threads (the caller plus `threads - 1` workers).
    /// `threads == 0` is treated as 1; with one thread every task runs inline
    /// on the caller. Fails only if the operating system refuses to start a
    /// thread (the workers already started are stopped again).
    pub fn new(threads: usize) -> io::Result<ThreadPool> {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                generation: 0,
                job: None,
                active: 0,
                busy: false,
                panic: None,
                sleeping: 0,
                caller_waiting: false,
                shutdown: false,
            }),
            work: Condvar::new(),
            done: Condvar::new(),
            next: AtomicUsize::new(0),
            published: AtomicU64::new(0),
            running: AtomicUsize::new(0),
        });
        let mut pool = ThreadPool { shared, workers: Vec::with_capacity(threads - 1) };
        for index in 1..threads {
            let shared = Arc::clone(&pool.shared);
            // On error `pool` is dropped here, which stops the workers started so far.
            let handle = thread::Builder::new()
                .name(format!("nnc-pool-{index}"))
                .spawn(move || worker_loop(&shared))?;
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    /// The number of threads that run tasks, the caller included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(i)` exactly once for every `i` in `0..tasks`, spread over the
    /// workers and the calling thread, and returns when all have finished.
    ///
    /// Which thread runs which index is unspecified: `f` must write its
    /// results by task index. If tasks panic, the remaining tasks still run
    /// and the result is `Err` with the message of the lowest panicking task
    /// index (`"task I panicked: MESSAGE"`); the pool stays usable.
    ///
    /// Allocates nothing unless a task panics. If the pool is already running
    /// a job (a nested call from inside a task, or a call from another thread),
    /// this call runs its tasks inline on the calling thread instead of
    /// waiting, so it cannot deadlock.
    pub fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) -> Result<(), String> {
        if tasks == 0 {
            return Ok(());
        }
        if self.workers.is_empty() || tasks == 1 {
            return run_inline(tasks, f);
        }
        // The counter may overshoot `tasks` by one per participating thread.
        if tasks > usize::MAX - self.threads() {
            return Err(format!("too many tasks: {tasks}"));
        }
        {
            let mut state = self.shared.lock();
            if state.busy {
                drop(state);
                return run_inline(tasks, f);
            }
            // SAFETY: only the lifetime bound of the trait object is changed
            // (the pointer layout is identical). The erased pointer is
            // dereferenced by workers only for this generation, and this
            // function does not return before every worker has checked out of
            // it (`active == 0` below), so `f` outlives every use.
            let erased: *const TaskFn =
                unsafe { std::mem::transmute::<*const TaskFnRef<'_>, *const TaskFn>(f) };
            self.shared.next.store(0, Ordering::Relaxed);
            state.busy = true;
            state.job = Some(Job { f: erased, tasks });
            state.panic = None;
            state.active = self.workers.len();
            state.generation = state.generation.wrapping_add(1);
            self.shared.running.store(self.workers.len(), Ordering::Release);
            self.shared.published.store(state.generation, Ordering::Release);
            // A worker counted as sleeping is waiting on `work`; one that is
            // not checks the generation under this lock before it would
            // wait, so it sees this job. The wake-up (a system call) is paid
            // only when some worker sleeps.
            if state.sleeping > 0 {
                self.shared.work.notify_all();
            }
        }

        let own_panic = run_tasks(&self.shared.next, tasks, f);

        spin_until(|| self.shared.running.load(Ordering::Acquire) == 0);
        let mut state = self.shared.lock();
        while state.active > 0 {
            state.caller_waiting = true;
            state = self.shared.done.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        state.caller_waiting = false;
        state.job = None;
        state.busy = false;
        let worker_panic = state.panic.take();
        drop(state);
        match lowest(own_panic, worker_panic) {
            None => Ok(()),
            Some((task, message)) => Err(format!("task {task} panicked: {message}")),
        }
    }

    /// Runs `f(i)` for every `i` in `0..tasks` like [`run`](ThreadPool::run)
    /// and returns the results in task-index order, ready for
    /// [`reduce_ordered`].
    pub fn map<T: Send>(&self, tasks: usize, f: &(dyn Fn(usize) -> T + Sync)) -> Result<Vec<T>, String> {
        let slots: Vec<Mutex<Option<T>>> = (0..tasks).map(|_| Mutex::new(None)).collect();
        self.run(tasks, &|i| {
            let value = f(i);
            *slots[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
        })?;
        let mut out = Vec::with_capacity(tasks);
        for (i, slot) in slots.into_iter().enumerate() {
            match slot.into_inner().unwrap_or_else(PoisonError::into_inner) {
                Some(value) => out.push(value),
                None => return Err(format!("task {i} produced no result")),
            }
        }
        Ok(out)
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.work.notify_all();
        for handle in self.workers.drain(..) {
            // Workers catch task panics, so joining cannot report one; there is
            // nothing useful to do with an error while dropping anyway.
            let _ = handle.join();
        }
    }
}

/// The number of threads the machine offers (at least 1): the default size of
/// a pool.
pub fn available_threads() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// The body of every worker thread: wait for a new generation, run tasks from
/// it, check out, repeat until shutdown.
fn worker_loop(shared: &Shared) {
    let mut seen = 0u64;
    loop {
        spin_until(|| shared.published.load(Ordering::Acquire) != seen);
        let job = {
            let mut state = shared.lock();
            loop {
                if state.shutdown {
                    return;
                }
                if state.generation != seen {
                    break;
                }
                state.sleeping += 1;
                state = shared.work.wait(state).unwrap_or_else(PoisonError::into_inner);
                state.sleeping -= 1;
            }
            seen = state.generation;
            state.job
        };
        let panic = match job {
            // SAFETY: the job was published by a `run` call that is now waiting
            // for this worker to check out (it counted it in `active`), so the
            // task function behind the pointer is alive until the decrement
            // below. It is `Sync`, so calling it from this thread is allowed.
            Some(job) => run_tasks(&shared.next, job.tasks, unsafe { &*job.f }),
            None => None,
        };
        let mut state = shared.lock();
        state.panic = lowest(state.panic.take(), panic);
        state.active -= 1;
        shared.running.fetch_sub(1, Ordering::Release);
        if state.active == 0 && state.caller_waiting {
            shared.done.notify_one();
        }
    }
}

/// Takes task indices from `next` until they reach `tasks`, running each under
/// `catch_unwind`. Returns the lowest-index panic seen by this thread.
fn run_tasks(next: &AtomicUsize, tasks: usize, f: &TaskFnRef<'_>) -> Option<(usize, String)> {
    let mut first_panic = None;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= tasks {
            return first_panic;
        }
        // A task that panics leaves only its own outputs half-written; the pool's
        // state is untouched by tasks, so asserting unwind safety is sound.
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| f(i))) {
            first_panic = lowest(first_panic, Some((i, panic_message(payload.as_ref()))));
        }
    }
}

/// Runs all tasks on the calling thread, in index order.
fn run_inline(tasks: usize, f: &TaskFnRef<'_>) -> Result<(), String> {
    let next = AtomicUsize::new(0);
    match run_tasks(&next, tasks, f) {
        None => Ok(()),
        Some((task, message)) => Err(format!("task {task} panicked: {message}")),
    }
}

/// The panic of the lower task index, if any.
fn lowest(a: Option<(usize, String)>, b: Option<(usize, String)>) -> Option<(usize, String)> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// The message of a panic payload (`panic!` gives `&str` or `String`).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Cuts `0..len` into `parts` contiguous ranges, in order, whose lengths differ
/// by at most one (the first `len % parts` ranges are one longer). Always
/// returns exactly `parts` ranges (some empty when `parts > len`);
/// `parts == 0` is treated as 1. Depends only on its arguments, so the same
/// plan always yields the same split.
pub fn split(len: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.max(1);
    let base = len / parts;
    let extra = len % parts;
    let mut ranges = Vec::with_capacity(parts);
    let mut start = 0;
    for part in 0..parts {
        let size = base + usize::from(part < extra);
        ranges.push(start..start + size);
        start += size;
    }
    ranges
}

/// Combines per-task partial results strictly left to right in task-index
/// order: `combine(combine(p0, p1), p2)…`. `None` for no partials. Because the
/// order depends only on the split, a floating-point reduction gives the same
/// bits whichever thread computed which partial.
pub fn reduce_ordered<T>(partials: Vec<T>, combine: impl FnMut(T, T) -> T) -> Option<T> {
    partials.into_iter().reduce(combine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_table() {
        /// (len, parts, expected (start, end) pairs)
        type Case = (usize, usize, &'static [(usize, usize)]);
        let cases: &[Case] = &[
            (0, 1, &[(0, 0)]),
            (0, 3, &[(0, 0), (0, 0), (0, 0)]),
            (5, 0, &[(0, 5)]),
            (5, 1, &[(0, 5)]),
            (5, 2, &[(0, 3), (3, 5)]),
            (7, 3, &[(0, 3), (3, 5), (5, 7)]),
            (2, 4, &[(0, 1), (1, 2), (2, 2), (2, 2)]),
            (8, 4, &[(0, 2), (2, 4), (4, 6), (6, 8)]),
        ];
        for (len, parts, expected) in cases {
            let got: Vec<(usize, usize)> = split(*len, *parts).iter().map(|r| (r.start, r.end)).collect();
            assert_eq!(got, *expected, "split({len}, {parts})");
        }
    }

    #[test]
    fn reduce_ordered_is_a_left_fold() {
        let cases: &[(&[&str], Option<&str>)] =
            &[(&[], None), (&["a"], Some("a")), (&["a", "b", "c"], Some("((a+b)+c)"))];
        for (parts, expected) in cases {
            let partials: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
            let got = reduce_ordered(partials, |a, b| format!("({a}+{b})"));
            assert_eq!(got.as_deref(), *expected, "{parts:?}");
        }
    }

    #[test]
    fn lowest_panic_wins() {
        let a = Some((3, "a".to_string()));
        let b = Some((1, "b".to_string()));
        assert_eq!(lowest(a.clone(), b.clone()), b);
        assert_eq!(lowest(b.clone(), a.clone()), b);
        assert_eq!(lowest(None, a.clone()), a);
        assert_eq!(lowest(a.clone(), None), a);
        assert_eq!(lowest(None, None), None);
    }

    #[test]
    fn panic_messages() {
        let s: Box<dyn Any + Send> = Box::new("static");
        let owned: Box<dyn Any + Send> = Box::new(String::from("owned"));
        let other: Box<dyn Any + Send> = Box::new(7u32);
        assert_eq!(panic_message(s.as_ref()), "static");
        assert_eq!(panic_message(owned.as_ref()), "owned");
        assert_eq!(panic_message(other.as_ref()), "non-string panic payload");
    }

    #[test]
    fn zero_threads_means_one() {
        let pool = ThreadPool::new(0).expect("pool");
        assert_eq!(pool.threads(), 1);
    }
}
