//! The validation metrics: the `metrics` key.
//!
//! One [`Metric`] is one reported value (plus its per-variable and per-lead
//! breakdowns): a call with several thresholds, `csi([0.5, 2, 5])`, is
//! expanded by the checker into one metric per threshold, so the type stays
//! `Copy`.

/// A validation metric. The thresholded scores take the threshold in the
/// target's physical units.
///
/// `per_lead` also reports the metric per index of axis 1 of the target,
/// the lead time of a sequence target `[B, T, ...]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    /// Over every element, or also per variable (axis 1) when `per_variable`.
    Rmse {
        per_variable: bool,
        per_lead: bool,
    },
    Mae {
        per_variable: bool,
        per_lead: bool,
    },
    Accuracy,
    Csi {
        threshold: f64,
        per_lead: bool,
    },
    Pod {
        threshold: f64,
        per_lead: bool,
    },
    Far {
        threshold: f64,
        per_lead: bool,
    },
    Hss {
        threshold: f64,
        per_lead: bool,
    },
    Dice,
    /// Relative error of the totals over the axes after the first two (the
    /// mass of each example's field at each lead or variable): Σ|ΣP − ΣT| /
    /// Σ|ΣT|. On a source that conserves the total, the violation of
    /// conservation by the prediction.
    MassError {
        per_lead: bool,
    },
}

impl Metric {
    /// The name as written in a `.nn` file.
    pub fn name(&self) -> &'static str {
        match self {
            Metric::Rmse { .. } => "rmse",
            Metric::Mae { .. } => "mae",
            Metric::Accuracy => "accuracy",
            Metric::Csi { .. } => "csi",
            Metric::Pod { .. } => "pod",
            Metric::Far { .. } => "far",
            Metric::Hss { .. } => "hss",
            Metric::Dice => "dice",
            Metric::MassError { .. } => "mass_error",
        }
    }

    /// The threshold of a contingency score (csi, pod, far, hss).
    pub fn threshold(&self) -> Option<f64> {
        match self {
            Metric::Csi { threshold, .. }
            | Metric::Pod { threshold, .. }
            | Metric::Far { threshold, .. }
            | Metric::Hss { threshold, .. } => Some(*threshold),
            _ => None,
        }
    }

    /// Also reported per variable (index of axis 1).
    pub fn per_variable(&self) -> bool {
        matches!(self, Metric::Rmse { per_variable: true, .. } | Metric::Mae { per_variable: true, .. })
    }

    /// Also reported per lead time (index of axis 1).
    pub fn per_lead(&self) -> bool {
        match self {
            Metric::Rmse { per_lead, .. }
            | Metric::Mae { per_lead, .. }
            | Metric::Csi { per_lead, .. }
            | Metric::Pod { per_lead, .. }
            | Metric::Far { per_lead, .. }
            | Metric::Hss { per_lead, .. }
            | Metric::MassError { per_lead } => *per_lead,
            Metric::Accuracy | Metric::Dice => false,
        }
    }

    /// The stable key of the overall value in logs and plots: the name, and
    /// for the contingency scores `@` and the threshold in Rust's shortest
    /// `f64` form (`csi@0.5`, `pod@2`). Two metrics of one section never
    /// share a label.
    pub fn label(&self) -> String {
        match self.threshold() {
            Some(t) => format!("{}@{t}", self.name()),
            None => self.name().to_string(),
        }
    }
}
