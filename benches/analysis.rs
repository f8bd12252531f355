//! Times the similarity analysis on generated pixel-like domains (2,000 + 2,000
//! samples of 784 values, like 28×28 images) and prints one `name seconds` line per
//! measurement: `metrics_seconds` (MMD with its permutation test, A-distance,
//! CORAL and per-class distances), `pca_seconds`, `tsne_seconds`, then the parts of
//! the metrics. Run with `cargo bench --bench analysis`; optional arguments
//! override the samples per domain and the dimension.

fn main() {
    // `cargo bench` passes `--bench`; only numeric arguments are ours.
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n_per_domain = numbers.first().copied().unwrap_or(2000);
    let dim = numbers.get(1).copied().unwrap_or(784);
    for (name, seconds) in transferlab::analysis::run_analysis_bench(n_per_domain, dim, 0) {
        println!("{name} {seconds:.3}");
    }
}
