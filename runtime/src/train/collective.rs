//! Data-parallel training: the processes (ranks) of a run, and the two
//! collective operations the training loop needs from them.
//!
//! Every rank holds the whole model and all the data. Each takes its share
//! of every global batch (a contiguous slice, the shares differing by at
//! most one example), computes the gradients of its share, and the ranks
//! sum them — each weighted by its share of the batch, so that the sum is
//! the gradient of the loss's mean over the whole batch — before every rank
//! applies the same update to the same parameters. The sum is taken in
//! rank order, whatever the transport, so that every rank gets the same
//! bits and a run is reproducible. Model state that the gradient pass
//! updates (batchnorm statistics) is broadcast from rank 0 after each step,
//! so the ranks' models stay identical and validation gives the same
//! figures everywhere. Rank 0 alone writes checkpoints, logs and output.
//!
//! [`Threads`] runs the ranks as threads of one process (for tests and
//! for checking that a data-parallel run equals a single-process one); with
//! the cargo feature `mpi`, [`mpi::Mpi`] runs them as the processes of
//! `mpirun`.

use std::fmt;
use std::sync::{Arc, Barrier, Mutex};

/// The ranks of a data-parallel run, as seen from one of them.
pub trait Collective: Send + Sync {
    /// This rank, `0 ≤ rank < size`.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// The element-wise sum of every rank's `local` (all of one length),
    /// added in rank order so that every rank gets the same result.
    fn sum(&self, local: &[f64]) -> Result<Vec<f64>, String>;
    /// Rank 0's `values` on every rank.
    fn broadcast(&self, values: &mut [f32]) -> Result<(), String>;
}

/// The ranks of a run as its options hold them.
#[derive(Clone)]
pub struct Ranks(pub Arc<dyn Collective>);

impl fmt::Debug for Ranks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rank {} of {}", self.0.rank(), self.0.size())
    }
}

/// This rank's share of a global batch of `rows`: a contiguous slice, the
/// shares of all ranks covering `rows` in order and differing in length by
/// at most one.
pub fn share<T>(rows: &[T], rank: usize, size: usize) -> &[T] {
    let n = rows.len();
    &rows[rank * n / size..(rank + 1) * n / size]
}

/// Ranks as threads of one process: [`Threads::ranks`] gives one
/// [`Collective`] per rank, each to be used by its own thread.
pub struct Threads {
    rank: usize,
    shared: Arc<Shared>,
}

struct Shared {
    size: usize,
    barrier: Barrier,
    sums: Mutex<Vec<Vec<f64>>>,
    broadcast: Mutex<Vec<f32>>,
}

impl Threads {
    /// `size` ranks.
    pub fn ranks(size: usize) -> Vec<Threads> {
        let shared = Arc::new(Shared {
            size,
            barrier: Barrier::new(size),
            sums: Mutex::new(vec![vec![]; size]),
            broadcast: Mutex::new(vec![]),
        });
        (0..size).map(|rank| Threads { rank, shared: shared.clone() }).collect()
    }
}

impl Collective for Threads {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.shared.size
    }

    fn sum(&self, local: &[f64]) -> Result<Vec<f64>, String> {
        let poisoned = |_| "a rank failed during a collective operation".to_string();
        self.shared.sums.lock().map_err(poisoned)?[self.rank] = local.to_vec();
        self.shared.barrier.wait();
        let total = {
            let all = self.shared.sums.lock().map_err(poisoned)?;
            if all.iter().any(|v| v.len() != local.len()) {
                return Err("the ranks contributed vectors of different lengths".into());
            }
            let mut total = vec![0.0; local.len()];
            for v in all.iter() {
                for (t, x) in total.iter_mut().zip(v) {
                    *t += x;
                }
            }
            total
        };
        self.shared.barrier.wait();
        Ok(total)
    }

    fn broadcast(&self, values: &mut [f32]) -> Result<(), String> {
        let poisoned = |_| "a rank failed during a collective operation".to_string();
        if self.rank == 0 {
            *self.shared.broadcast.lock().map_err(poisoned)? = values.to_vec();
        }
        self.shared.barrier.wait();
        let from = self.shared.broadcast.lock().map_err(poisoned)?.clone();
        self.shared.barrier.wait();
        if from.len() != values.len() {
            return Err("rank 0 broadcast a vector of another length".into());
        }
        values.copy_from_slice(&from);
        Ok(())
    }
}

#[cfg(feature = "mpi")]
pub mod mpi {
    //! The ranks of `mpirun`, through MPI.

    use mpi::collective::{CommunicatorCollectives, Root};
    use mpi::environment::Universe;
    use mpi::topology::{Communicator, SimpleCommunicator};
    use mpi::Threading;

    use super::Collective;

    /// The processes of `mpirun` (`MPI_COMM_WORLD`). MPI is finalised when
    /// this is dropped; only the thread that made it calls MPI.
    pub struct Mpi {
        _universe: Universe,
        world: SimpleCommunicator,
    }

    // SAFETY: MPI is initialised with `Threading::Funneled` and every call
    // goes through `&Mpi` from the training loop's thread, the one that
    // initialised it; the runtime's worker threads never see it. `Send` and
    // `Sync` are needed only to pass it as a `Collective` trait object.
    unsafe impl Send for Mpi {}
    // SAFETY: as above.
    unsafe impl Sync for Mpi {}

    impl Mpi {
        /// Initialises MPI; `None` if it was already initialised.
        pub fn init() -> Option<Mpi> {
            let (universe, _) = mpi::initialize_with_threading(Threading::Funneled)?;
            let world = universe.world();
            Some(Mpi { _universe: universe, world })
        }

        /// Ends every rank of the run with `code` (after an error on this one,
        /// so that the others do not wait for it forever).
        pub fn abort(&self, code: i32) -> ! {
            self.world.abort(code)
        }
    }

    impl Collective for Mpi {
        fn rank(&self) -> usize {
            self.world.rank() as usize
        }

        fn size(&self) -> usize {
            self.world.size() as usize
        }

        /// A reduce-scatter and an all-gather, each rank summing its chunk
        /// of everyone's vectors in rank order: the traffic of a ring
        /// all-reduce (twice the vector per rank), the same bits everywhere.
        fn sum(&self, local: &[f64]) -> Result<Vec<f64>, String> {
            let size = self.size();
            let chunk = local.len().div_ceil(size).max(1);
            let mut send = local.to_vec();
            send.resize(chunk * size, 0.0);
            let mut received = vec![0.0; chunk * size];
            self.world.all_to_all_into(&send[..], &mut received[..]);
            let mut mine = vec![0.0; chunk];
            for from in received.chunks(chunk) {
                for (m, x) in mine.iter_mut().zip(from) {
                    *m += x;
                }
            }
            let mut total = vec![0.0; chunk * size];
            self.world.all_gather_into(&mine[..], &mut total[..]);
            total.truncate(local.len());
            Ok(total)
        }

        fn broadcast(&self, values: &mut [f32]) -> Result<(), String> {
            self.world.process_at_rank(0).broadcast_into(values);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_batch_in_order() {
        let rows: Vec<usize> = (0..10).collect();
        let shares: Vec<&[usize]> = (0..3).map(|r| share(&rows, r, 3)).collect();
        assert_eq!(shares, [&[0, 1, 2][..], &[3, 4, 5][..], &[6, 7, 8, 9][..]]);
        assert_eq!(share(&rows[..1], 0, 2), &[] as &[usize]);
        assert_eq!(share(&rows[..1], 1, 2), &[0]);
    }

    #[test]
    fn threads_sum_in_rank_order_and_broadcast_rank_0() {
        let ranks = Threads::ranks(3);
        let results: Vec<(Vec<f64>, Vec<f32>)> = std::thread::scope(|s| {
            let handles: Vec<_> = ranks
                .iter()
                .map(|c| {
                    s.spawn(move || {
                        let r = c.rank() as f64;
                        let sum = c.sum(&[r, 10.0 * r, 1e16 * (1.0 - r)]).unwrap();
                        let mut v = vec![c.rank() as f32; 2];
                        c.broadcast(&mut v).unwrap();
                        (sum, v)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // Rank order: 1e16 + 0 + (-1e16) = 0, exactly, on every rank.
        for (sum, v) in &results {
            assert_eq!(sum, &vec![3.0, 30.0, 0.0]);
            assert_eq!(v, &vec![0.0, 0.0]);
        }
    }
}
