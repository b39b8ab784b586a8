//! Learning rates of the `schedule` key, one per epoch.
//!
//! The rate is a `hyper` input of the compiled training step, so a schedule
//! is only arithmetic here: the trainer feeds [`lr_at`] before every step and
//! nothing is recompiled.

use nnc_compiler::config::Schedule;

/// The learning rate during epoch `epoch` (0-based) of `epochs`, starting
/// from `base`:
///
/// - `constant`: `base`;
/// - `step(every, gamma)`: `base · gamma^⌊epoch / every⌋`;
/// - `exponential(gamma)`: `base · gamma^epoch`;
/// - `cosine(warmup)`: `base · (epoch + 1) / warmup` during the first
///   `warmup` epochs, then `base · ½(1 + cos(π·p))` with
///   `p = (epoch − warmup) / (epochs − warmup)`, which starts at `base` and
///   approaches 0 over the last epoch.
pub fn lr_at(schedule: &Schedule, base: f64, epoch: usize, epochs: usize) -> f64 {
    match *schedule {
        Schedule::Constant => base,
        Schedule::Step { every, gamma } => base * gamma.powi((epoch / every.max(1)) as i32),
        Schedule::Exponential { gamma } => base * gamma.powi(epoch as i32),
        Schedule::Cosine { warmup } => {
            if epoch < warmup {
                return base * (epoch + 1) as f64 / warmup as f64;
            }
            let span = epochs.saturating_sub(warmup).max(1) as f64;
            let p = ((epoch - warmup) as f64 / span).min(1.0);
            base * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_follow_each_schedule() {
        let cases: &[(Schedule, usize, usize, f64)] = &[
            (Schedule::Constant, 7, 10, 0.1),
            (Schedule::Step { every: 3, gamma: 0.5 }, 0, 10, 0.1),
            (Schedule::Step { every: 3, gamma: 0.5 }, 2, 10, 0.1),
            (Schedule::Step { every: 3, gamma: 0.5 }, 3, 10, 0.05),
            (Schedule::Step { every: 3, gamma: 0.5 }, 6, 10, 0.025),
            (Schedule::Exponential { gamma: 0.9 }, 2, 10, 0.1 * 0.81),
            (Schedule::Cosine { warmup: 2 }, 0, 10, 0.05),
            (Schedule::Cosine { warmup: 2 }, 1, 10, 0.1),
            (Schedule::Cosine { warmup: 2 }, 2, 10, 0.1),
            (Schedule::Cosine { warmup: 2 }, 6, 10, 0.05),
            (Schedule::Cosine { warmup: 0 }, 0, 4, 0.1),
        ];
        for (schedule, epoch, epochs, want) in cases {
            let got = lr_at(schedule, 0.1, *epoch, *epochs);
            assert!((got - want).abs() < 1e-12, "{schedule:?} epoch {epoch}: {got} != {want}");
        }
    }

    #[test]
    fn cosine_decreases_after_warmup() {
        let s = Schedule::Cosine { warmup: 1 };
        let rates: Vec<f64> = (1..20).map(|e| lr_at(&s, 1.0, e, 20)).collect();
        assert!(rates.windows(2).all(|w| w[1] < w[0]), "{rates:?}");
        assert!(rates[rates.len() - 1] < 0.01);
    }
}
