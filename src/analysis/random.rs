//! Seeded randomness for the analysis: one independent ChaCha stream per purpose
//! (subsampling, permutations, splits, start vectors), Gaussian draws, and seeded
//! subsampling of rows. Everything random in `analysis` goes through here, so one
//! user-visible seed reproduces a whole report bit for bit.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Purposes that get their own random stream, so that changing e.g. the number of
/// permutations does not change which points were subsampled.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream {
    MmdSubsample = 1,
    MmdMedian = 2,
    MmdPermutations = 3,
    ADistanceSubsample = 4,
    ADistanceSplit = 5,
    ADistancePower = 6,
    CoralSubsample = 7,
    EmbeddingSubsample = 8,
    EigenStart = 9,
    TsneInit = 10,
    LabelFreeSubsample = 11,
    KmeansStarts = 12,
    SilhouetteSubsample = 13,
}

/// A generator for `stream`, derived from the user's `seed` with splitmix64 so that
/// nearby seeds give unrelated streams.
pub(crate) fn rng(seed: u64, stream: Stream) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(splitmix64(seed ^ splitmix64(stream as u64)))
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One draw from N(0, 1) (Box–Muller; `rand_distr` is not a dependency).
pub(crate) fn standard_normal(rng: &mut impl Rng) -> f64 {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Sorted indices of `max` rows drawn without replacement from `n`, or `None` when
/// `n <= max` and every row is kept.
pub(crate) fn subsample_indices(n: usize, max: usize, rng: &mut impl Rng) -> Option<Vec<usize>> {
    if n <= max {
        return None;
    }
    let mut picked = rand::seq::index::sample(rng, n, max).into_vec();
    picked.sort_unstable();
    Some(picked)
}
