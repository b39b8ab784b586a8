//! Learning rates of the `schedule` key: one per epoch, or one per step
//! for a warm-up counted in steps.
//!
//! The rate is a `hyper` input of the compiled training step, so a schedule
//! is only arithmetic here: the trainer feeds [`lr_at`] before every step and
//! nothing is recompiled.

use nnc_compiler::config::Schedule;

/// Where a step is in the run: epoch `epoch` (0-based) of `epochs`, and
/// step `step` (0-based, counted over the whole run) of `epochs ·
/// steps_per_epoch`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    pub epoch: usize,
    pub epochs: usize,
    pub step: u64,
    pub steps_per_epoch: usize,
}

/// The learning rate of the step at `at`, starting from `base`:
///
/// - `constant`: `base`;
/// - `step(every, gamma)`: `base · gamma^⌊epoch / every⌋`;
/// - `exponential(gamma)`: `base · gamma^epoch`;
/// - `cosine(warmup)`: `base · (epoch + 1) / warmup` during the first
///   `warmup` epochs, then `base · ½(1 + cos(π·p))` with
///   `p = (epoch − warmup) / (epochs − warmup)`, which starts at `base` and
///   approaches 0 over the last epoch;
/// - `cosine(warmup_steps)`: the same per step: `base · (step + 1) /
///   warmup_steps` during the first `warmup_steps` steps, then the cosine
///   over the remaining steps of the run.
pub fn lr_at(schedule: &Schedule, base: f64, at: Progress) -> f64 {
    let Progress { epoch, epochs, step, steps_per_epoch } = at;
    match *schedule {
        Schedule::Constant => base,
        Schedule::Step { every, gamma } => base * gamma.powi((epoch / every.max(1)) as i32),
        Schedule::Exponential { gamma } => base * gamma.powi(epoch as i32),
        Schedule::Cosine { warmup_steps, .. } if warmup_steps > 0 => {
            let total = (epochs * steps_per_epoch) as u64;
            warm_cosine(base, step, warmup_steps as u64, total)
        }
        Schedule::Cosine { warmup, .. } => warm_cosine(base, epoch as u64, warmup as u64, epochs as u64),
    }
}

/// Linear warm-up over the first `warmup` of `total` units, then a cosine
/// from `base` towards 0 at the last unit.
fn warm_cosine(base: f64, unit: u64, warmup: u64, total: u64) -> f64 {
    if unit < warmup {
        return base * (unit + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let p = ((unit - warmup) as f64 / span).min(1.0);
    base * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
}

/// A warning when the schedule's warm-up is not shorter than the run of
/// `epochs` epochs of `steps_per_epoch` steps: the rate then never decays.
/// (The compiler warns of a warm-up in epochs against the `train`
/// section's `epochs`; this also sees `--epochs` and the data's size.)
pub fn warmup_warning(schedule: &Schedule, epochs: usize, steps_per_epoch: usize) -> Option<String> {
    let (warmup, unit, total) = match *schedule {
        Schedule::Cosine { warmup_steps, .. } if warmup_steps > 0 => {
            (warmup_steps, "steps", epochs.saturating_mul(steps_per_epoch))
        }
        Schedule::Cosine { warmup, .. } if warmup > 0 => (warmup, "epochs", epochs),
        _ => return None,
    };
    (warmup >= total).then(|| {
        format!(
            "the warm-up of {warmup} {unit} is not shorter than the run's {total} {unit}: the learning rate \
             rises for the whole run and never decays"
        )
    })
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
            (Schedule::Cosine { warmup: 2, warmup_steps: 0 }, 0, 10, 0.05),
            (Schedule::Cosine { warmup: 2, warmup_steps: 0 }, 1, 10, 0.1),
            (Schedule::Cosine { warmup: 2, warmup_steps: 0 }, 2, 10, 0.1),
            (Schedule::Cosine { warmup: 2, warmup_steps: 0 }, 6, 10, 0.05),
            (Schedule::Cosine { warmup: 0, warmup_steps: 0 }, 0, 4, 0.1),
        ];
        for (schedule, epoch, epochs, want) in cases {
            let at = Progress { epoch: *epoch, epochs: *epochs, step: 0, steps_per_epoch: 1 };
            let got = lr_at(schedule, 0.1, at);
            assert!((got - want).abs() < 1e-12, "{schedule:?} epoch {epoch}: {got} != {want}");
        }
    }

    #[test]
    fn cosine_decreases_after_warmup() {
        let s = Schedule::Cosine { warmup: 1, warmup_steps: 0 };
        let at = |epoch| Progress { epoch, epochs: 20, step: 0, steps_per_epoch: 1 };
        let rates: Vec<f64> = (1..20).map(|e| lr_at(&s, 1.0, at(e))).collect();
        assert!(rates.windows(2).all(|w| w[1] < w[0]), "{rates:?}");
        assert!(rates[rates.len() - 1] < 0.01);
    }

    #[test]
    fn a_warm_up_in_steps_rises_every_step_then_decays() {
        // 4 epochs of 10 steps, warm-up over 5 steps.
        let s = Schedule::Cosine { warmup: 0, warmup_steps: 5 };
        let at = |step: u64| Progress { epoch: step as usize / 10, epochs: 4, step, steps_per_epoch: 10 };
        let rates: Vec<f64> = (0..40).map(|k| lr_at(&s, 1.0, at(k))).collect();
        assert_eq!(&rates[..5], &[0.2, 0.4, 0.6, 0.8, 1.0]);
        assert!(rates[5..].windows(2).all(|w| w[1] < w[0]), "{rates:?}");
        // Half-way through the 35 decaying steps, half the rate.
        assert!(
            (lr_at(&s, 1.0, at(5 + 35 / 2)) - 0.5 * (1.0 + (std::f64::consts::PI * 17.0 / 35.0).cos())).abs()
                < 1e-12
        );
        assert!(warmup_warning(&s, 4, 10).is_none());
        let w = warmup_warning(&s, 1, 5).expect("a warm-up as long as the run");
        assert!(w.contains("warm-up of 5 steps") && w.contains("run's 5 steps"), "{w}");
        let epochs = Schedule::Cosine { warmup: 3, warmup_steps: 0 };
        assert!(warmup_warning(&epochs, 4, 10).is_none());
        let w = warmup_warning(&epochs, 3, 10).expect("--epochs 3 with a warm-up of 3 epochs");
        assert!(w.contains("warm-up of 3 epochs") && w.contains("run's 3 epochs"), "{w}");
    }
}
