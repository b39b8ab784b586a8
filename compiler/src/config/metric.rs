//! The validation metrics: the `metrics` key.

/// A validation metric. The thresholded scores take the threshold in the
/// target's physical units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    /// Over every element, or also per variable (axis 1) when `per_variable`.
    Rmse {
        per_variable: bool,
    },
    Mae {
        per_variable: bool,
    },
    Accuracy,
    Csi(f64),
    Pod(f64),
    Far(f64),
    Hss(f64),
    Dice,
}

impl Metric {
    /// The name as written in a `.nn` file.
    pub fn name(&self) -> &'static str {
        match self {
            Metric::Rmse { .. } => "rmse",
            Metric::Mae { .. } => "mae",
            Metric::Accuracy => "accuracy",
            Metric::Csi(_) => "csi",
            Metric::Pod(_) => "pod",
            Metric::Far(_) => "far",
            Metric::Hss(_) => "hss",
            Metric::Dice => "dice",
        }
    }
}
