//! Generated domains with a known shift, for tests, benchmarks and demonstrations
//! of the metrics: isotropic Gaussians with a chosen mean shift and scale, and
//! pixel-like labelled image domains (class prototypes plus noise, with the target
//! darker, lower-contrast and noisier than the source).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Features;
use super::random::standard_normal;

/// `n` samples of N(`mean_shift` · 1, `scale`² · I) in `d` dimensions.
pub fn gaussian_domain(n: usize, d: usize, mean_shift: f32, scale: f32, seed: u64) -> Features {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data = (0..n * d)
        .map(|_| mean_shift + scale * standard_normal(&mut rng) as f32)
        .collect();
    Features { data, n, d }
}

/// A labelled source and target domain of pixel-like features.
#[derive(Debug, Clone)]
pub struct LabelledDomains {
    /// Source features, values in [0, 1].
    pub source: Features,
    /// Class of each source sample.
    pub source_labels: Vec<u32>,
    /// Target features, values in [0, 1].
    pub target: Features,
    /// Class of each target sample.
    pub target_labels: Vec<u32>,
    /// Names of the classes.
    pub class_names: Vec<String>,
}

/// `n_per_domain` "images" of `dim` pixels per domain in `n_classes` classes. Each
/// class has a smooth random prototype; a sample is its prototype plus pixel noise.
/// The target domain is the same classes seen darker, with less contrast and more
/// noise: a moderate, realistic covariate shift.
pub fn pixel_like_domains(
    n_per_domain: usize,
    dim: usize,
    n_classes: usize,
    seed: u64,
) -> LabelledDomains {
    let n_classes = n_classes.max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Smooth prototypes: a random walk along the pixels, squashed into [0, 1].
    let prototypes: Vec<Vec<f32>> = (0..n_classes)
        .map(|_| {
            let mut level = 0.0f64;
            (0..dim)
                .map(|_| {
                    level = 0.9 * level + 0.5 * standard_normal(&mut rng);
                    (1.0 / (1.0 + (-2.0 * level).exp())) as f32
                })
                .collect()
        })
        .collect();
    let mut make = |contrast: f32, brightness: f32, noise: f32| {
        let mut data = Vec::with_capacity(n_per_domain * dim);
        let mut labels = Vec::with_capacity(n_per_domain);
        for i in 0..n_per_domain {
            let class = i % n_classes;
            labels.push(class as u32);
            for &p in &prototypes[class] {
                let v = brightness + contrast * p + noise * standard_normal(&mut rng) as f32;
                data.push(v.clamp(0.0, 1.0));
            }
        }
        (
            Features {
                data,
                n: n_per_domain,
                d: dim,
            },
            labels,
        )
    };
    let (source, source_labels) = make(1.0, 0.0, 0.15);
    let (target, target_labels) = make(0.7, 0.05, 0.25);
    LabelledDomains {
        source,
        source_labels,
        target,
        target_labels,
        class_names: (0..n_classes).map(|c| format!("class {c}")).collect(),
    }
}
