//! A timing benchmark of the analysis on generated pixel-like domains, shared by
//! `cargo bench --bench analysis` and the `transferlab bench` subcommand so both
//! measure the same thing.

use std::time::Instant;

use super::a_distance::proxy_a_distance;
use super::coral::coral_distance;
use super::embedding::{pca_2d, tsne_2d};
use super::mmd::mmd_permutation_test;
use super::per_class::per_class_distances;
use super::synthetic::pixel_like_domains;
use super::{Features, SimilarityOptions};

/// Times the analysis on `n_per_domain` generated samples of `dim` pixels per
/// domain (10 classes), with the report's default settings. Returns, in order,
/// `metrics_seconds` (MMD with its permutation test, A-distance, CORAL and
/// per-class distances together), `pca_seconds`, `tsne_seconds`, then the metrics'
/// parts (`mmd_seconds`, `a_distance_seconds`, `coral_seconds`,
/// `per_class_seconds`). Panics only if the generated data were degenerate.
pub fn run_analysis_bench(n_per_domain: usize, dim: usize, seed: u64) -> Vec<(&'static str, f64)> {
    let dom = pixel_like_domains(n_per_domain, dim, 10, seed);
    let opts = SimilarityOptions {
        seed,
        ..SimilarityOptions::default()
    };
    let timed = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        start.elapsed().as_secs_f64()
    };
    let expect = "the generated benchmark domains are analysable";

    let mmd_seconds = timed(&mut || {
        mmd_permutation_test(&dom.source, &dom.target, &opts.mmd()).expect(expect);
    });
    let a_distance_seconds = timed(&mut || {
        proxy_a_distance(&dom.source, &dom.target, &opts.a_distance()).expect(expect);
    });
    let coral_seconds = timed(&mut || {
        coral_distance(&dom.source, &dom.target).expect(expect);
    });
    let per_class_seconds = timed(&mut || {
        per_class_distances(
            &dom.source,
            &dom.target,
            &dom.source_labels,
            &dom.target_labels,
            &dom.class_names,
        )
        .expect(expect);
    });

    let all = Features::stack(&dom.source, &dom.target);
    let pca_seconds = timed(&mut || {
        pca_2d(&all).expect(expect);
    });
    let tsne_seconds = timed(&mut || {
        tsne_2d(&all, opts.perplexity, seed, opts.max_iter).expect(expect);
    });

    vec![
        (
            "metrics_seconds",
            mmd_seconds + a_distance_seconds + coral_seconds + per_class_seconds,
        ),
        ("pca_seconds", pca_seconds),
        ("tsne_seconds", tsne_seconds),
        ("mmd_seconds", mmd_seconds),
        ("a_distance_seconds", a_distance_seconds),
        ("coral_seconds", coral_seconds),
        ("per_class_seconds", per_class_seconds),
    ]
}
