//! The order statistics the benchmarks report: medians and nearest-rank
//! percentiles, the same arithmetic for every benchmark so that their
//! figures compare.

use std::time::Duration;

/// The median of `values` (the mean of the two middle ones for an even
/// count); NaN when there are none.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The nearest-rank `p`th percentile (0 to 100) of `values`: 0 gives the
/// least, 100 the greatest; NaN when there are none.
pub fn percentile(values: &[f64], p: usize) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (v.len() * p).div_ceil(100).max(1);
    v.get(rank - 1).copied().unwrap_or(f64::NAN)
}

/// The nearest-rank `p`th percentile of `values`, in milliseconds.
pub fn percentile_ms(values: &[Duration], p: usize) -> f64 {
    let ms: Vec<f64> = values.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    percentile(&ms, p)
}
