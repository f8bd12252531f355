//! Parsers of the CLI's numeric values. Negative numbers reach them (`--lr -0.1` is a
//! value, not the flag `-0`), and each says what the value must be.

use std::str::FromStr;

/// `s` parsed as a `T` that passes `ok`, or a message saying what it `must` be.
fn parsed<T: FromStr>(s: &str, ok: impl Fn(&T) -> bool, must: &str) -> Result<T, String> {
    match s.trim().parse::<T>() {
        Ok(v) if ok(&v) => Ok(v),
        _ => Err(format!("must be {must}, got {s}")),
    }
}

/// A number greater than 0 (`--lr`).
pub fn positive(s: &str) -> Result<f64, String> {
    parsed(s, |v: &f64| v.is_finite() && *v > 0.0, "a positive number")
}

/// A finite number (`--lambda`: its range depends on the method and is checked with it).
pub fn number(s: &str) -> Result<f64, String> {
    parsed(s, |v: &f64| v.is_finite(), "a number")
}

/// A number of 0 or more (`--task-weights`).
pub fn non_negative(s: &str) -> Result<f64, String> {
    parsed(
        s,
        |v: &f64| v.is_finite() && *v >= 0.0,
        "a number, 0 or more",
    )
}

/// The held-out fraction: at least 0, below 0.95 (`--val-fraction`).
pub fn fraction(s: &str) -> Result<f64, String> {
    parsed(s, |v| (0.0..0.95).contains(v), "at least 0 and below 0.95")
}

/// A whole number, 0 or more (`--freeze`, `--target-labels`, `--input-size` …).
pub fn count(s: &str) -> Result<usize, String> {
    parsed(s, |_| true, "a whole number, 0 or more")
}

/// A whole number, 1 or more (`--epochs`, `--batch-size`, `--threads`).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    parsed(s, |v| *v >= 1, "a whole number, 1 or more")
}

/// A seed: a whole number, 0 or more.
pub fn seed(s: &str) -> Result<u64, String> {
    parsed(s, |_| true, "a whole number, 0 or more")
}

/// Image channels: 1 (gray) or 3 (colour).
pub fn channels(s: &str) -> Result<u8, String> {
    parsed(s, |v| matches!(v, 1 | 3), "1 (gray) or 3 (colour)")
}
