//! UI test with `RUST_BACKTRACE=1` set, as many developers and CI machines have it: the
//! app shows what went wrong, never a Rust backtrace. Its own test binary, because the
//! standard library reads the variable once per process.

mod common;

use common::texts_containing;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use std::time::{Duration, Instant};
use transferlab::app::runs::RunStatus;
use transferlab::app::{AppOptions, Settings, TransferLabApp};

type App = Option<TransferLabApp>;

fn app<'a>(h: &'a Harness<'static, App>) -> &'a TransferLabApp {
    h.state()
        .as_ref()
        .expect("the app exists after the first frame")
}

fn wait_for(h: &mut Harness<'static, App>, what: &str, done: impl Fn(&TransferLabApp) -> bool) {
    let start = Instant::now();
    loop {
        h.run_steps(1);
        if done(app(h)) {
            h.run_steps(3);
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// No line of a backtrace ("  12: std::rt::lang_start" or "at /rustc/…").
fn assert_no_backtrace(text: &str) {
    for line in text.lines() {
        let t = line.trim_start();
        let frame = t
            .split_once(": ")
            .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        assert!(
            !frame && !t.starts_with("at /"),
            "a backtrace is shown:\n{text}"
        );
    }
    assert!(
        text.lines().count() <= 3,
        "more than the message is shown:\n{text}"
    );
}

#[test]
fn with_rust_backtrace_set_errors_show_their_message_only() {
    // SAFETY: set before this process starts any other thread.
    unsafe { std::env::set_var("RUST_BACKTRACE", "1") };
    let tmp = tempfile::tempdir().unwrap();
    let bad_model = tmp.path().join("model.safetensors");
    std::fs::write(&bad_model, "these bytes are not a model").unwrap();
    let mut settings = Settings::default();
    settings.config.epochs = 1;
    settings.map_points = 40;
    settings.config.init = Some(bad_model);
    let options = AppOptions {
        demo: Some("digits-rotated".into()),
        demo_size: Some((12, 6)),
        settings: Some(settings),
        ..Default::default()
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .with_max_steps(20)
        .build_ui_state(
            move |ui, app: &mut App| {
                app.get_or_insert_with(|| TransferLabApp::new(ui.ctx(), options.clone()))
                    .frame_ui(ui);
            },
            None,
        );
    wait_for(&mut h, "the demo", |a| {
        a.data.pair().is_some() && a.train_blocker().is_none()
    });
    // A run that fails inside the engine (Candle's error carries a backtrace).
    h.get_by_label("Train").click();
    wait_for(&mut h, "the run to fail", |a| {
        a.runs
            .latest()
            .is_some_and(|r| matches!(r.status, RunStatus::Failed(_)))
    });
    let RunStatus::Failed(message) = &app(&h).runs.latest().unwrap().status else {
        unreachable!()
    };
    assert_no_backtrace(message);
    let shown = texts_containing(&h, "model.safetensors");
    assert!(!shown.is_empty());
    for text in &shown {
        assert_no_backtrace(text);
    }
    // A network that cannot be built (ResNet-18 on 28×28 images, set by the image size).
    h.get_by_label("3 Setup").click();
    h.run_steps(2);
    h.get_by_role_and_label(egui::accesskit::Role::ComboBox, "Backbone")
        .click();
    h.run_steps(2);
    h.get_by_label("resnet18").click();
    h.run_steps(2);
    h.get_by_role_and_label(egui::accesskit::Role::SpinButton, "Image size")
        .focus();
    h.run_steps(1);
    for _ in 0..4 {
        h.key_press(egui::Key::ArrowDown);
    }
    wait_for(&mut h, "the network error", |a| a.setup.net_error.is_some());
    let shown = texts_containing(&h, "Cannot build this network");
    assert!(
        shown.iter().any(|t| t.contains("32 to 256")),
        "the message says why: {shown:?}"
    );
    for text in &shown {
        assert_no_backtrace(text);
    }
}
