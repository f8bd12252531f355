//! Soak test (run by `scripts/soak.sh`, not in the normal suite): 20 runs back to back in
//! one app session, driven through the real widgets. It prints the resident and peak
//! memory after run 5 (warmed up) and after the last, and the longest event queue seen; the
//! queue stays within the worker's bound and memory stays flat (with one malloc arena, as
//! the script runs it: glibc's per-thread arenas add steps that are not the app's).

mod common;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use std::time::{Duration, Instant};
use transferlab::app::{AppOptions, Settings, TransferLabApp};
use transferlab::run::worker::EVENT_CAPACITY;

type App = Option<TransferLabApp>;

fn app<'a>(h: &'a Harness<'static, App>) -> &'a TransferLabApp {
    h.state()
        .as_ref()
        .expect("the app exists after the first frame")
}

/// (resident, peak) memory of this process in MiB, from /proc.
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[test]
#[ignore = "soak: run with scripts/soak.sh"]
fn twenty_runs_back_to_back_keep_memory_flat_and_the_queue_bounded() {
    let mut settings = Settings::default();
    settings.config.epochs = 3;
    settings.config.batch_size = 32;
    settings.map_points = 40;
    let options = AppOptions {
        demo: Some("digits-rotated".into()),
        demo_size: Some((12, 6)),
        settings: Some(settings),
        ..Default::default()
    };
    let mut h = common::app_harness(options);
    let mut longest_queue = 0;
    let mut first = None;
    let started = Instant::now();
    for run in 1..=20 {
        let wait = Instant::now();
        while app(&h).train_blocker().is_some() {
            assert!(
                wait.elapsed() < Duration::from_secs(120),
                "Train never enabled"
            );
            h.run_steps(1);
            std::thread::sleep(Duration::from_millis(10));
        }
        h.get_by_label("Train").click();
        h.run_steps(2);
        loop {
            longest_queue = longest_queue.max(app(&h).runs.queued_events());
            h.run_steps(1);
            let done = app(&h)
                .runs
                .latest()
                .is_some_and(|r| r.id == run && !r.status.is_live());
            if done {
                break;
            }
            assert!(
                wait.elapsed() < Duration::from_secs(300),
                "run {run} never ended"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let r = app(&h).runs.latest().unwrap();
        assert!(r.history.len() == 3, "run {run}: {:?}", r.status);
        // The first runs warm up (allocator arenas of the worker threads, caches).
        if run == 5 {
            first = Some(memory_mib());
        }
        if run % 5 == 0 {
            println!("soak: after run {run}: RSS {:.0} MiB", memory_mib().0);
        }
    }
    let (rss0, peak0) = first.unwrap();
    let (rss1, peak1) = memory_mib();
    println!(
        "soak: 20 runs in {:.0} s; after run 5: RSS {rss0:.0} MiB, peak {peak0:.0} MiB; after run 20: RSS {rss1:.0} MiB, peak {peak1:.0} MiB; longest event queue {longest_queue} (bound {EVENT_CAPACITY})",
        started.elapsed().as_secs_f64()
    );
    assert!(longest_queue <= EVENT_CAPACITY);
    // Flat: 15 more small runs may keep their curves, not their tensors.
    assert!(
        rss1 < rss0 * 1.5,
        "memory grew from {rss0:.0} to {rss1:.0} MiB"
    );
}
