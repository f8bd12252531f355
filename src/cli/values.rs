//! Parsers of the CLI's numeric values. Negative numbers reach them (`--lr -0.1` is a
//! value, not the flag `-0`), and each says what the value must be.

/// A number greater than 0 (`--lr`).
pub fn positive(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("must be a positive number, got {s}")),
    }
}

/// A finite number (`--lambda`: its range depends on the method and is checked with it).
pub fn number(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("must be a number, got {s}")),
    }
}

/// A number of 0 or more (`--task-weights`).
pub fn non_negative(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("must be a number, 0 or more, got {s}")),
    }
}

/// The held-out fraction: at least 0, below 0.95 (`--val-fraction`).
pub fn fraction(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..0.95).contains(&v) => Ok(v),
        _ => Err(format!("must be at least 0 and below 0.95, got {s}")),
    }
}

/// A whole number, 0 or more (`--freeze`, `--target-labels`, `--input-size` …).
pub fn count(s: &str) -> Result<usize, String> {
    s.trim()
        .parse::<usize>()
        .map_err(|_| format!("must be a whole number, 0 or more, got {s}"))
}

/// A whole number, 1 or more (`--epochs`, `--batch-size`, `--threads`).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(format!("must be a whole number, 1 or more, got {s}")),
    }
}

/// A seed: a whole number, 0 or more.
pub fn seed(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<u64>()
        .map_err(|_| format!("must be a whole number, 0 or more, got {s}"))
}

/// Image channels: 1 (gray) or 3 (colour).
pub fn channels(s: &str) -> Result<u8, String> {
    match s.trim() {
        "1" => Ok(1),
        "3" => Ok(3),
        _ => Err(format!("must be 1 (gray) or 3 (colour), got {s}")),
    }
}
