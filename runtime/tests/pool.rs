//! The thread pool's contract: every task exactly once, no deadlock across
//! many calls, panics reported and survived, a deterministic split, and
//! parallel reductions bit-identical to the sequential one over the same split.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Barrier};
use std::time::Duration;

use nnc_runtime::exec::arena::Arena;
use nnc_runtime::exec::pool::{reduce_ordered, split, ThreadPool};

const THREADS: [usize; 3] = [1, 2, 4];

/// Runs `body` on its own thread and fails the test if it does not finish
/// within `seconds` (a deadlock fails instead of hanging the test run).
fn with_timeout(seconds: u64, body: impl FnOnce() + Send + 'static) {
    let (done_tx, done_rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        body();
        let _ = done_tx.send(());
    });
    match done_rx.recv_timeout(Duration::from_secs(seconds)) {
        Ok(()) => handle.join().expect("test body"),
        // The body panicked: join to re-raise its panic message.
        Err(mpsc::RecvTimeoutError::Disconnected) => handle.join().expect("test body"),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("timed out after {seconds} s (deadlock?)"),
    }
}

fn pool(threads: usize) -> ThreadPool {
    ThreadPool::new(threads).expect("start pool")
}

/// Runs `tasks` tasks and returns how often each index ran.
fn run_counts(pool: &ThreadPool, tasks: usize) -> Vec<usize> {
    let counts: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
    pool.run(tasks, &|i| {
        counts[i].fetch_add(1, Ordering::Relaxed);
    })
    .expect("run");
    counts.into_iter().map(AtomicUsize::into_inner).collect()
}

#[test]
fn every_task_runs_exactly_once() {
    with_timeout(20, || {
        for threads in THREADS {
            let pool = pool(threads);
            assert_eq!(pool.threads(), threads);
            for tasks in [0, 1, 2, 3, 7, 100, 1000] {
                let counts = run_counts(&pool, tasks);
                assert_eq!(counts, vec![1; tasks], "threads {threads}, tasks {tasks}");
            }
        }
    });
}

#[test]
fn many_consecutive_runs() {
    with_timeout(30, || {
        for threads in THREADS {
            let pool = pool(threads);
            let total = AtomicUsize::new(0);
            for call in 0..1000 {
                let tasks = call % 9;
                pool.run(tasks, &|i| {
                    total.fetch_add(i + 1, Ordering::Relaxed);
                })
                .expect("run");
            }
            // Sum over calls of tasks * (tasks + 1) / 2, tasks = call % 9.
            let expected: usize = (0..1000).map(|call| (call % 9) * (call % 9 + 1) / 2).sum();
            assert_eq!(total.into_inner(), expected, "threads {threads}");
        }
    });
}

#[test]
fn all_threads_take_part() {
    // Each task waits at a barrier for `threads` tasks: this only finishes if
    // that many threads run tasks at the same time.
    with_timeout(20, || {
        for threads in [2, 4] {
            let pool = pool(threads);
            for _ in 0..20 {
                let barrier = Barrier::new(threads);
                pool.run(threads, &|_| {
                    barrier.wait();
                })
                .expect("run");
            }
        }
    });
}

#[test]
fn panicking_task_is_reported_and_pool_survives() {
    with_timeout(20, || {
        for threads in THREADS {
            let pool = pool(threads);
            // (tasks, panicking indices, index expected in the error)
            let cases: &[(usize, &[usize], usize)] =
                &[(1, &[0], 0), (8, &[3], 3), (100, &[70, 5, 99], 5), (4, &[0, 1, 2, 3], 0)];
            for (tasks, panicking, reported) in cases {
                let ran = AtomicUsize::new(0);
                let result = pool.run(*tasks, &|i| {
                    ran.fetch_add(1, Ordering::Relaxed);
                    if panicking.contains(&i) {
                        panic!("boom {i}");
                    }
                });
                let err = result.expect_err("a task panicked");
                assert_eq!(err, format!("task {reported} panicked: boom {reported}"), "threads {threads}");
                assert_eq!(ran.into_inner(), *tasks, "the other tasks still run");
                assert_eq!(run_counts(&pool, 50), vec![1; 50], "pool usable after a panic");
            }
        }
    });
}

#[test]
fn nested_run_does_not_deadlock() {
    with_timeout(20, || {
        for threads in THREADS {
            let pool = pool(threads);
            let counts: Vec<AtomicUsize> = (0..16).map(|_| AtomicUsize::new(0)).collect();
            pool.run(4, &|outer| {
                pool.run(4, &|inner| {
                    counts[outer * 4 + inner].fetch_add(1, Ordering::Relaxed);
                })
                .expect("inner run");
            })
            .expect("outer run");
            let counts: Vec<usize> = counts.into_iter().map(AtomicUsize::into_inner).collect();
            assert_eq!(counts, vec![1; 16], "threads {threads}");
        }
    });
}

#[test]
fn map_returns_results_in_task_order() {
    with_timeout(20, || {
        for threads in THREADS {
            let pool = pool(threads);
            for tasks in [0, 1, 5, 64] {
                let squares = pool.map(tasks, &|i| i * i).expect("map");
                assert_eq!(squares, (0..tasks).map(|i| i * i).collect::<Vec<_>>());
            }
        }
    });
}

#[test]
fn split_properties() {
    for len in 0..200 {
        for parts in 0..40 {
            let ranges = split(len, parts);
            assert_eq!(ranges.len(), parts.max(1), "split({len}, {parts})");
            let mut next = 0;
            for range in &ranges {
                assert_eq!(range.start, next, "contiguous and in order: split({len}, {parts})");
                next = range.end;
            }
            assert_eq!(next, len, "covers exactly: split({len}, {parts})");
            let sizes: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
            let (min, max) = (sizes.iter().min(), sizes.iter().max());
            assert!(max.zip(min).is_some_and(|(max, min)| max - min <= 1), "balanced: {sizes:?}");
            assert_eq!(split(len, parts), ranges, "deterministic");
        }
    }
    // Large lengths do not overflow.
    let ranges = split(usize::MAX, 3);
    assert_eq!(ranges.last().map(|r| r.end), Some(usize::MAX));
}

/// Values of very different magnitudes, so that the summation order shows in
/// the bits of the result.
fn test_data(len: usize) -> Vec<f32> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let mantissa = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let exponent = ((state >> 32) % 16) as i32 - 8;
            mantissa * 2f32.powi(exponent)
        })
        .collect()
}

#[test]
fn parallel_sum_is_bit_identical() {
    with_timeout(20, || {
        let data = test_data(100_003);
        for parts in [1, 2, 3, 8, 33] {
            let ranges = split(data.len(), parts);
            let partial = |i: usize| data[ranges[i].clone()].iter().sum::<f32>();
            let sequential = reduce_ordered((0..parts).map(partial).collect(), |a, b| a + b);
            let sequential = sequential.expect("parts > 0").to_bits();
            for threads in THREADS {
                let pool = pool(threads);
                for _ in 0..10 {
                    let partials = pool.map(parts, &partial).expect("map");
                    let sum = reduce_ordered(partials, |a, b| a + b).expect("parts > 0");
                    assert_eq!(sum.to_bits(), sequential, "parts {parts}, threads {threads}");
                }
            }
        }
        // The order matters: a different split gives different bits here,
        // which is why the split must be fixed by the plan.
        let by = |parts: usize| {
            let partials =
                split(data.len(), parts).into_iter().map(|r| data[r].iter().sum::<f32>()).collect();
            reduce_ordered(partials, |a: f32, b| a + b).map(f32::to_bits)
        };
        assert!((2..10).any(|parts| by(parts) != by(1)), "test data too tame to show order effects");
    });
}

#[test]
fn parallel_writes_into_arena_regions() {
    with_timeout(20, || {
        let len = 1000;
        let mut arena = Arena::new(len * 4).expect("arena");
        let ranges = split(len, 7);
        let requests: Vec<(usize, usize)> = ranges.iter().map(|r| (r.start * 4, r.len())).collect();
        let regions = arena.regions_mut(&requests).expect("disjoint regions");
        let slots: Vec<std::sync::Mutex<&mut [f32]>> =
            regions.into_iter().map(std::sync::Mutex::new).collect();
        let pool = pool(4);
        pool.run(slots.len(), &|i| {
            let mut region = slots[i].lock().expect("slot");
            for (k, x) in region.iter_mut().enumerate() {
                *x = (ranges[i].start + k) as f32;
            }
        })
        .expect("run");
        drop(slots);
        let all = arena.region(0, len).expect("region");
        assert!(all.iter().enumerate().all(|(k, &x)| x == k as f32));
    });
}

#[test]
fn arena_errors() {
    let mut arena = Arena::new(256).expect("arena");
    // (requests, expected error fragment)
    let cases: &[(&[(usize, usize)], &str)] = &[
        (&[(256, 1)], "exceeds"),
        (&[(0, 65)], "exceeds"),
        (&[(0, usize::MAX)], "exceeds"),
        (&[(6, 1)], "aligned"),
        (&[(0, 8), (28, 1)], "overlap"),
        (&[(128, 32), (0, 33)], "overlap"),
    ];
    for (requests, fragment) in cases {
        let err = arena.regions_mut(requests).expect_err("invalid request");
        assert!(err.contains(fragment), "{requests:?}: {err}");
    }
    assert!(arena.region(252, 2).is_err());
    assert!(arena.region_mut(2, 0).is_err());
    assert_eq!(arena.base_ptr() as usize % nnc_runtime::exec::arena::ALIGN, 0);
}
