//! Domains: samples (images or 2-D points) with optional labels, where they came from,
//! and what was skipped while loading them.
//!
//! Images are stored as `f32` in `[0, 1]`, channel-major (`C×H×W`), one row per sample;
//! normalisation belongs to the model, not to the data.

pub mod demo;
pub mod folder;
pub mod pair;
pub mod real_demos;
pub mod shapes;
pub mod split;

pub use demo::{DEMOS, DemoInfo, generate_demo};
pub use folder::{LoadOptions, LoadProgress, load_domain_folder};
pub use pair::{DomainPair, align_pair};
pub use split::{Batcher, Split, split_indices};

use std::path::PathBuf;

/// Shape of one sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SampleShape {
    /// An image, channel-major.
    Image {
        channels: usize,
        height: usize,
        width: usize,
    },
    /// A plain feature vector (the 2-D demos).
    Vector { dim: usize },
}

impl SampleShape {
    /// Number of `f32` values per sample.
    pub fn len(&self) -> usize {
        match *self {
            SampleShape::Image {
                channels,
                height,
                width,
            } => channels * height * width,
            SampleShape::Vector { dim } => dim,
        }
    }

    /// True when a sample holds no values (never for a valid shape).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Dimensions of a batch of `n` samples, as a tensor shape.
    pub fn batch_dims(&self, n: usize) -> Vec<usize> {
        match *self {
            SampleShape::Image {
                channels,
                height,
                width,
            } => vec![n, channels, height, width],
            SampleShape::Vector { dim } => vec![n, dim],
        }
    }

    /// Short human description, e.g. `1×28×28` or `2-D points`.
    pub fn describe(&self) -> String {
        match *self {
            SampleShape::Image {
                channels,
                height,
                width,
            } => format!("{channels}×{height}×{width}"),
            SampleShape::Vector { dim } => format!("{dim}-D points"),
        }
    }
}

/// A file that could not be used, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SkippedFile {
    pub path: PathBuf,
    pub reason: String,
}

/// One domain: its samples, labels (None for an unlabeled folder) and provenance.
#[derive(Clone, Debug)]
pub struct Domain {
    /// Display name ("source", "target" or a demo's domain name).
    pub name: String,
    pub shape: SampleShape,
    /// `n × shape.len()` values, row-major.
    pub x: Vec<f32>,
    /// Class index per sample, into `class_names`; `None` for an unlabeled domain.
    pub labels: Option<Vec<u32>>,
    /// Class names of this domain (folder names), sorted.
    pub class_names: Vec<String>,
    /// Where each sample came from (a path, or a generated id).
    pub files: Vec<String>,
    /// Files found but not loaded.
    pub skipped: Vec<SkippedFile>,
    /// Non-fatal problems found while loading (empty class folders, stray files …).
    pub warnings: Vec<String>,
}

impl Domain {
    /// "N file(s) skipped in the … folder, e.g. a.png (corrupt …); …" when files were skipped.
    pub fn skipped_warning(&self) -> Option<String> {
        if self.skipped.is_empty() {
            return None;
        }
        let examples: Vec<String> = self
            .skipped
            .iter()
            .take(3)
            .map(|s| format!("{} ({})", s.path.display(), s.reason))
            .collect();
        Some(format!(
            "{} file(s) skipped in the {} folder, e.g. {}",
            self.skipped.len(),
            self.name,
            examples.join("; ")
        ))
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when the domain holds no samples.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The values of sample `i`.
    pub fn sample(&self, i: usize) -> &[f32] {
        let d = self.shape.len();
        &self.x[i * d..(i + 1) * d]
    }

    /// Number of samples per class (empty for an unlabeled domain).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.class_names.len()];
        if let Some(labels) = &self.labels {
            for &l in labels {
                counts[l as usize] += 1;
            }
        }
        counts
    }

    /// Keep only the samples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Domain {
        let d = self.shape.len();
        let mut x = Vec::with_capacity(indices.len() * d);
        for &i in indices {
            x.extend_from_slice(self.sample(i));
        }
        Domain {
            name: self.name.clone(),
            shape: self.shape,
            x,
            labels: self
                .labels
                .as_ref()
                .map(|l| indices.iter().map(|&i| l[i]).collect()),
            class_names: self.class_names.clone(),
            files: indices.iter().map(|&i| self.files[i].clone()).collect(),
            skipped: self.skipped.clone(),
            warnings: self.warnings.clone(),
        }
    }
}

/// What went wrong while reading a domain. The path comes last in each message.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("the {role} folder does not exist: {path}")]
    NotFound { role: String, path: PathBuf },
    #[error("the {role} path is not a folder: {path}")]
    NotAFolder { role: String, path: PathBuf },
    #[error("cannot read the {role} folder ({source}): {path}")]
    Unreadable {
        role: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the {role} folder holds no images: {path}")]
    Empty { role: String, path: PathBuf },
    #[error(
        "the {role} folder has no class subfolders (put each class's images in its own subfolder; only rotation-pretrain, which reads no label, learns from a flat folder): {path}"
    )]
    NoClasses { role: String, path: PathBuf },
    #[error(
        "the {role} folder has only one class ('{class}'){unlisted}: a classifier needs at least two: {path}"
    )]
    OneClass {
        role: String,
        class: String,
        /// "; 2 class folder(s) … cannot be listed …" when some could not be read.
        unlisted: String,
        path: PathBuf,
    },
    #[error(
        "no image in the {role} folder could be decoded ({skipped} skipped, e.g. {example}): {path}"
    )]
    NothingDecoded {
        role: String,
        skipped: usize,
        example: String,
        path: PathBuf,
    },
    #[error(
        "the source and target share no class: source has {source_classes}, target has {target_classes}"
    )]
    NoSharedClasses {
        source_classes: String,
        target_classes: String,
    },
    #[error(
        "stopped scanning the {role} folder at its limit ({limit}): {found}; is it the folder of images you meant? {path}"
    )]
    ScanStopped {
        role: String,
        path: PathBuf,
        found: String,
        limit: String,
    },
    #[error("unknown demo '{name}'; built-in demos: {known}")]
    UnknownDemo { name: String, known: String },
    #[error("{0}")]
    Invalid(String),
}
