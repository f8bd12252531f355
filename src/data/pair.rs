//! A source and a target domain put on one class index (the source's folder names).
//! Target images of classes the source does not have cannot be predicted, so they are left
//! out of evaluation and named in a warning.

use super::{DataError, Domain};

/// Source and target on one class index.
#[derive(Clone, Debug)]
pub struct DomainPair {
    pub source: Domain,
    pub target: Domain,
    /// The class index shared by both domains (the source's classes).
    pub classes: Vec<String>,
    /// Non-fatal problems: differing class sets, skipped files, empty classes.
    pub warnings: Vec<String>,
}

impl DomainPair {
    /// True when the target carries labels (used for evaluation, or training with `--target-labels`).
    pub fn target_labelled(&self) -> bool {
        self.target.labels.is_some()
    }
}

fn names(list: &[String]) -> String {
    list.iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What every pair checks: both domains' samples have one shape; their warnings and
/// skipped files, gathered.
fn shared_checks(source: &Domain, target: &Domain) -> Result<Vec<String>, DataError> {
    if source.shape != target.shape {
        return Err(DataError::Invalid(format!(
            "source samples are {} but target samples are {}",
            source.shape.describe(),
            target.shape.describe()
        )));
    }
    let mut warnings: Vec<String> = source
        .warnings
        .iter()
        .chain(&target.warnings)
        .cloned()
        .collect();
    warnings.extend([source, target].iter().filter_map(|d| d.skipped_warning()));
    Ok(warnings)
}

/// The one class of a source read without labels (a flat folder, for the methods that
/// learn without any label).
pub const NO_LABEL: &str = "(no label)";

/// A source without class folders beside a target, for the methods that read no label
/// (rotation-pretrain): every source image is put in one placeholder class [`NO_LABEL`]
/// that no one trains on, and the target's labels (if any) are dropped, since no class of
/// the source can name them.
pub fn pair_without_source_labels(
    mut source: Domain,
    mut target: Domain,
) -> Result<DomainPair, DataError> {
    let warnings = shared_checks(&source, &target)?;
    let classes = vec![NO_LABEL.to_string()];
    source.labels = Some(vec![0; source.len()]);
    source.class_names = classes.clone();
    target.labels = None;
    target.class_names = classes.clone();
    Ok(DomainPair {
        source,
        target,
        classes,
        warnings,
    })
}

/// Put both domains on the source's class index.
pub fn align_pair(
    source: Domain,
    mut target: Domain,
    source_path: &str,
) -> Result<DomainPair, DataError> {
    let Some(_) = source.labels else {
        return Err(DataError::NoClasses {
            role: "source".into(),
            path: source_path.into(),
        });
    };
    let present: Vec<String> = source
        .class_names
        .iter()
        .zip(source.class_counts())
        .filter(|(_, c)| *c > 0)
        .map(|(n, _)| n.clone())
        .collect();
    if present.len() < 2 {
        // Class folders that could not be listed are why, more often than not.
        let unlisted = source
            .warnings
            .iter()
            .find(|w| w.contains("cannot be listed"))
            .map(|w| format!("; {w}"))
            .unwrap_or_default();
        return Err(DataError::OneClass {
            role: "source".into(),
            class: present.first().cloned().unwrap_or_default(),
            unlisted,
            path: source_path.into(),
        });
    }
    let mut warnings = shared_checks(&source, &target)?;
    let classes = source.class_names.clone();
    if let Some(tlabels) = target.labels.take() {
        let map: Vec<Option<u32>> = target
            .class_names
            .iter()
            .map(|n| classes.iter().position(|c| c == n).map(|i| i as u32))
            .collect();
        let only_target: Vec<String> = target
            .class_names
            .iter()
            .zip(&map)
            .filter(|(_, m)| m.is_none())
            .map(|(n, _)| n.clone())
            .collect();
        let only_source: Vec<String> = classes
            .iter()
            .filter(|c| !target.class_names.contains(c))
            .cloned()
            .collect();
        let keep: Vec<usize> = (0..tlabels.len())
            .filter(|&i| map[tlabels[i] as usize].is_some())
            .collect();
        if keep.is_empty() {
            return Err(DataError::NoSharedClasses {
                source_classes: names(&classes),
                target_classes: names(&target.class_names),
            });
        }
        if !only_target.is_empty() {
            warnings.push(format!(
                "class sets differ: target class(es) {} are not in the source; their {} image(s) are left out of evaluation",
                names(&only_target),
                tlabels.len() - keep.len()
            ));
        }
        if !only_source.is_empty() {
            warnings.push(format!(
                "class sets differ: source class(es) {} are not in the target; evaluation uses the shared classes",
                names(&only_source)
            ));
        }
        let remapped: Vec<u32> = tlabels
            .iter()
            .map(|&l| map[l as usize].unwrap_or(0))
            .collect();
        target.labels = Some(remapped);
        target = target.subset(&keep);
    }
    target.class_names = classes.clone();
    Ok(DomainPair {
        source,
        target,
        classes,
        warnings,
    })
}
