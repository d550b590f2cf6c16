//! The results table's layout, as benches/servers lays its out: number,
//! figure, value, baseline, ratio, and the goal with whether it is met.

/// Prints one row: `cells` are the number, figure, value and baseline.
pub fn row(cells: [&str; 4], ratio: f64, goal: Option<(&str, bool)>) {
    let [num, what, value, base] = cells;
    let (goal, met) = goal.map_or(("", ""), |(g, met)| (g, if met { "yes" } else { "NO" }));
    println!("{num:<3}{what:<48} {value:>12}  {base:<38} {ratio:>7.3}  {goal:<9} {met}");
}

/// `values` shown by `show`, joined with commas.
pub fn join<T>(values: &[T], show: impl Fn(&T) -> String) -> String {
    values.iter().map(show).collect::<Vec<_>>().join(", ")
}
