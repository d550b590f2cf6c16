//! The results table's layout: one row per figure (number, figure, value,
//! baseline, ratio, goal, met), notes without a goal, and the arithmetic
//! the rows share.

pub use testkit::stats::median;

/// One row of the results table.
pub struct Row<'a> {
    /// The figure's number, on its first row only.
    pub num: &'a str,
    /// What is measured.
    pub what: &'a str,
    /// The value measured.
    pub value: String,
    /// The baseline it is held against.
    pub base: String,
    /// Value over baseline, if they compare.
    pub ratio: Option<f64>,
    /// The goal, if any.
    pub goal: &'a str,
    /// Whether the goal is met, if there is one.
    pub met: Option<bool>,
}

/// Prints one row.
pub fn row(r: Row<'_>) {
    println!(
        "{:<3}{:<50} {:>15}  {:<46} {:>7}  {:<15} {}",
        r.num,
        r.what,
        r.value,
        r.base,
        r.ratio.map_or(String::new(), |x| format!("{x:.3}")),
        r.goal,
        match r.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        }
    );
}

/// A row with no goal or ratio.
pub fn note(num: &str, what: &str, value: String, base: String) {
    row(Row {
        num,
        what,
        value,
        base,
        ratio: None,
        goal: "",
        met: None,
    });
}

/// Bytes in MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// The mean of `values` (0 when there are none).
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The greatest of `values` (NaN when there are none).
pub fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NAN, f64::max)
}
