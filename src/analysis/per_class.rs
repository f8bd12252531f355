//! Per-class distances between labelled domains: for each class, how far its
//! source mean lies from its target mean, and the full class × class matrix of
//! mean distances (source class means in rows, target class means in columns), so
//! a user can see which classes shifted most and whether a class in the target now
//! looks like a different class of the source.
//!
//! Distance unit: the Euclidean distance between class means of pooled-standardised
//! features divided by √d, i.e. the root-mean-square per-feature difference in
//! pooled standard deviations. It does not grow with the feature count, so numbers
//! from a 784-pixel domain and a 512-d backbone are comparable.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::standardize::Standardizer;
use super::{AnalysisError, Features, validate_labels, validate_pair};

/// One class present in both domains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassDistance {
    /// The class name.
    pub class: String,
    /// The class's index (its label value).
    pub class_index: u32,
    /// Source samples of this class.
    pub source_count: usize,
    /// Target samples of this class.
    pub target_count: usize,
    /// RMS per-feature distance between the class's source and target means.
    pub mean_distance: f64,
}

/// Per-class distances and the class × class matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerClassReport {
    /// Classes with samples in both domains, in label order.
    pub classes: Vec<ClassDistance>,
    /// `matrix[s][t]`: distance between source class `s`'s mean and target class
    /// `t`'s mean; `null` where a class has no samples in that domain.
    pub matrix: Vec<Vec<Option<f64>>>,
    /// Names of the matrix's rows and columns (all classes, by label).
    pub class_names: Vec<String>,
}

/// Per-class distances between labelled `source` and `target`.
pub fn per_class_distances(
    source: &Features,
    target: &Features,
    source_labels: &[u32],
    target_labels: &[u32],
    class_names: &[String],
) -> Result<PerClassReport, AnalysisError> {
    validate_pair(source, target, "per-class distances", 1)?;
    let k = class_names.len();
    validate_labels("source", source_labels, source.n, k)?;
    validate_labels("target", target_labels, target.n, k)?;
    let scaler = Standardizer::fit(&[source, target])?;
    let s_means = class_means(&scaler.apply(source), source_labels, k);
    let t_means = class_means(&scaler.apply(target), target_labels, k);
    let scale = 1.0 / (source.d as f64).sqrt();

    let matrix: Vec<Vec<Option<f64>>> = s_means
        .par_iter()
        .map(|s| {
            t_means
                .iter()
                .map(|t| match (s, t) {
                    (Some((sm, _)), Some((tm, _))) => Some(distance(sm, tm) * scale),
                    _ => None,
                })
                .collect()
        })
        .collect();
    let classes = (0..k)
        .filter_map(|c| {
            let (Some((_, sc)), Some((_, tc))) = (&s_means[c], &t_means[c]) else {
                return None;
            };
            Some(ClassDistance {
                class: class_names[c].clone(),
                class_index: c as u32,
                source_count: *sc,
                target_count: *tc,
                mean_distance: matrix[c][c].unwrap_or(f64::NAN),
            })
        })
        .collect();
    Ok(PerClassReport {
        classes,
        matrix,
        class_names: class_names.to_vec(),
    })
}

/// Mean row per class with its count; `None` for classes without samples.
fn class_means(f: &Features, labels: &[u32], k: usize) -> Vec<Option<(Vec<f64>, usize)>> {
    let mut sums = vec![vec![0.0f64; f.d]; k];
    let mut counts = vec![0usize; k];
    for (row, &label) in f.rows().zip(labels) {
        let c = label as usize;
        counts[c] += 1;
        for (s, &v) in sums[c].iter_mut().zip(row) {
            *s += f64::from(v);
        }
    }
    sums.into_iter()
        .zip(counts)
        .map(|(mut sum, count)| {
            (count > 0).then(|| {
                sum.iter_mut().for_each(|s| *s /= count as f64);
                (sum, count)
            })
        })
        .collect()
}

fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::super::synthetic::pixel_like_domains;
    use super::*;

    #[test]
    fn matching_classes_are_closer_than_different_classes() {
        let dom = pixel_like_domains(300, 64, 3, 1);
        let r = per_class_distances(
            &dom.source,
            &dom.target,
            &dom.source_labels,
            &dom.target_labels,
            &dom.class_names,
        )
        .unwrap();
        assert_eq!(r.classes.len(), 3);
        assert_eq!(r.classes[0].source_count, 100);
        for (s, row) in r.matrix.iter().enumerate() {
            let own = row[s].unwrap();
            for (t, other) in row.iter().enumerate() {
                if t != s {
                    assert!(own < other.unwrap(), "class {s} vs {t}");
                }
            }
        }
    }

    #[test]
    fn classes_missing_from_a_domain_are_left_out_and_null_in_the_matrix() {
        let s = Features::new(vec![0.0, 1.0, 2.0, 3.0], 4, 1).unwrap();
        let t = Features::new(vec![0.5, 2.5], 2, 1).unwrap();
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let r = per_class_distances(&s, &t, &[0, 0, 1, 1], &[0, 2], &names).unwrap();
        assert_eq!(r.classes.len(), 1);
        assert_eq!(r.classes[0].class, "a");
        assert_eq!(r.matrix[1][1], None);
        assert_eq!(r.matrix[2][0], None);
        assert!(r.matrix[1][2].is_some());
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["matrix"][1][1].is_null());
    }
}
