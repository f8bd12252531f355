//! How the app writes numbers: percentages, counts, durations. One place, so every view
//! says "81.3%" and "1,234" the same way.

/// An accuracy (a fraction) as a percentage with one decimal; a dash when there is none.
pub fn pct(v: Option<f64>) -> String {
    v.map(|a| format!("{:.1}%", a * 100.0))
        .unwrap_or_else(|| "—".into())
}

/// A chance level as a percentage without decimals: "50%", "25%", "7%".
pub fn chance(c: f64) -> String {
    format!("{:.0}%", c * 100.0)
}

/// 1234567 → "1,234,567".
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "42 s", "3 min 5 s".
pub fn duration_words(secs: f64) -> String {
    if !secs.is_finite() {
        return "?".into();
    }
    let s = secs.round() as u64;
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// "1 epoch", "5 epochs": a count with its noun, singular for one.
pub fn count_of(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{} {noun}s", thousands(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_111_946), "1,111,946");
    }

    #[test]
    fn percentages_and_durations_read_plainly() {
        assert_eq!(pct(Some(0.8134)), "81.3%");
        assert_eq!(pct(None), "—");
        assert_eq!(duration_words(42.4), "42 s");
        assert_eq!(duration_words(185.0), "3 min 5 s");
        assert_eq!(duration_words(f64::NAN), "?");
    }
}
