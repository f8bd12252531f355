//! UI tests: the real app, driven through its widgets with egui_kittest (no display, no
//! GPU). Each test uses a small generated demo and polls for background results with a
//! time bound, so a hang fails instead of blocking CI.

mod common;

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use std::time::{Duration, Instant};
use transferlab::app::frame_stats::percentile;
use transferlab::app::runs::RunStatus;
use transferlab::app::{AppOptions, Settings, TransferLabApp, View};

/// Longest wait for any background result.
const TIMEOUT: Duration = Duration::from_secs(180);

fn options() -> AppOptions {
    let mut settings = Settings::default();
    settings.config.epochs = 2;
    settings.config.batch_size = 32;
    settings.map_points = 60;
    AppOptions {
        demo: Some("digits-rotated".into()),
        // 10 classes × 24 source and 12 target images: an epoch takes well under a second.
        demo_size: Some((24, 12)),
        settings: Some(settings),
        ..Default::default()
    }
}

type App = Option<TransferLabApp>;

fn harness(options: AppOptions) -> Harness<'static, App> {
    Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .with_max_steps(20)
        .build_ui_state(
            move |ui, app: &mut App| {
                app.get_or_insert_with(|| TransferLabApp::new(ui.ctx(), options.clone()))
                    .frame_ui(ui);
            },
            None,
        )
}

fn app<'a>(h: &'a Harness<'static, App>) -> &'a TransferLabApp {
    h.state()
        .as_ref()
        .expect("the app exists after the first frame")
}

/// Step frames (sleeping between them) until `done` holds; panics after `TIMEOUT`.
fn wait_for(h: &mut Harness<'static, App>, what: &str, done: impl Fn(&TransferLabApp) -> bool) {
    let start = Instant::now();
    loop {
        h.run_steps(1);
        if done(app(h)) {
            // Let the views settle on the new state.
            h.run_steps(3);
            return;
        }
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Step frames until some node's label contains `part` (views that rebuild in the
/// background may need a few frames under load), then its text.
fn wait_for_text(h: &mut Harness<'static, App>, part: &str) -> String {
    let start = Instant::now();
    while h.query_all_by_label_contains(part).next().is_none() {
        assert!(
            start.elapsed() < TIMEOUT,
            "timed out waiting for text {part:?}"
        );
        h.run_steps(1);
        std::thread::sleep(Duration::from_millis(20));
    }
    text_containing(h, part)
}

/// The text of the first node whose label contains `part`.
fn text_containing(h: &Harness<'static, App>, part: &str) -> String {
    let node = h
        .query_all_by_label_contains(part)
        .next()
        .unwrap_or_else(|| panic!("no text containing {part:?}"));
    let n = node.accesskit_node();
    n.label()
        .or_else(|| n.value())
        .unwrap_or_default()
        .to_string()
}

fn is_enabled(h: &Harness<'static, App>, label: &str) -> bool {
    !h.get_by_label(label).accesskit_node().is_disabled()
}

#[test]
fn cold_start_shows_both_domains_a_map_and_a_working_train_button() {
    let mut h = harness(options());
    wait_for(&mut h, "the demo and its feature map", |a| {
        a.data.pair().is_some() && a.similarity.map().is_some()
    });
    let a = app(&h);
    assert_eq!(a.settings.view, View::Data);
    let pair = a.data.pair().unwrap();
    assert_eq!(pair.source.len(), 240);
    assert!(
        a.thumbs.len() > 20,
        "thumbnails were made: {}",
        a.thumbs.len()
    );
    let map = a.similarity.map().unwrap();
    assert!(map.points.iter().any(|p| p.target) && map.points.iter().any(|p| !p.target));
    h.get_by_label("Source");
    h.get_by_label("Target");
    h.get_by_label("Feature map");
    assert!(is_enabled(&h, "Train"), "Train works with no other click");
}

#[test]
fn training_shows_epochs_in_the_curves_and_stops() {
    let mut opts = options();
    opts.settings.as_mut().unwrap().config.epochs = 30;
    let mut h = harness(opts);
    wait_for(&mut h, "the demo", |a| {
        a.data.pair().is_some() && a.train_blocker().is_none()
    });
    // Choose another demo from the picker.
    pick_inverted_demo(&mut h);
    assert_eq!(app(&h).data.pair().unwrap().source.len(), 240);
    click(&mut h, "Train");
    wait_for(&mut h, "the first epoch", |a| {
        a.runs.latest().is_some_and(|r| !r.history.is_empty())
    });
    assert_eq!(app(&h).settings.view, View::Training);
    h.get_by_label("Accuracy");
    text_containing(&h, "epoch ");
    assert!(is_enabled(&h, "Stop"));
    h.get_by_label("Stop").click();
    wait_for(&mut h, "the run to stop", |a| {
        a.runs.latest().is_some_and(|r| !r.status.is_live())
    });
    let run = app(&h).runs.latest().unwrap();
    assert_eq!(run.status, RunStatus::Stopped);
    assert!(run.history.len() < 30, "stopped early");
    assert!(run.report.is_some());
    // Its model's features can be measured in the similarity view.
    click(&mut h, "2 Similarity");
    h.run_steps(2);
    h.get_by_role_and_label(egui::accesskit::Role::ComboBox, "Features from")
        .click();
    h.run_steps(2);
    h.get_by_label_contains("stage 3").click();
    h.run_steps(2);
    h.get_by_role_and_label(egui::accesskit::Role::ComboBox, "of")
        .click();
    h.run_steps(2);
    h.get_by_label_contains("the model of run #1").click();
    wait_for(
        &mut h,
        "the analysis of the trained model's features",
        |a| {
            a.similarity
                .analysis
                .as_ref()
                .is_some_and(|x| x.map.layer_name.contains("trained model"))
        },
    );
    let analysis = app(&h).similarity.analysis.as_ref().unwrap();
    assert!(analysis.metrics.is_some(), "{:?}", analysis.metrics_note);
    text_containing(&h, "Proxy A-distance");
    // The run is in the compare table.
    click(&mut h, "5 Compare");
    h.run_steps(3);
    h.get_by_label("#1");
    // Every input of every view has an accessible name (kittest's check).
    for view in [
        "1 Data",
        "2 Similarity",
        "3 Setup",
        "4 Training",
        "5 Compare",
    ] {
        h.get_by_label(view).click();
        h.run_steps(3);
        h.check_accessibility();
    }
    click(&mut h, "1 Data");
    h.run_steps(2);
    click(&mut h, "my folders");
    h.run_steps(2);
    h.check_accessibility();
    click(&mut h, "Presentation");
    h.run_steps(3);
    h.check_accessibility();
}

#[test]
fn freezing_slider_changes_the_trainable_parameter_count() {
    let mut h = harness(options());
    wait_for(&mut h, "the demo", |a| a.data.pair().is_some());
    click(&mut h, "3 Setup");
    wait_for(&mut h, "the network summary", |a| a.setup.net.is_some());
    let before = text_containing(&h, "parameters will train");
    let slider = h.get_by_role_and_label(egui::accesskit::Role::Slider, "Frozen stages");
    slider.focus();
    h.run_steps(1);
    h.key_press(egui::Key::ArrowRight);
    h.run_steps(2);
    assert_eq!(app(&h).settings.config.freeze, 1);
    let after = text_containing(&h, "parameters will train");
    assert_ne!(before, after, "the count follows the slider");
    let trainable = |s: &str| -> usize {
        s.split(" of ")
            .next()
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap()
    };
    assert!(trainable(&after) < trainable(&before), "{before} → {after}");
    text_containing(&h, "frozen");
}

#[test]
fn a_methods_hyperparameters_appear_as_its_descriptor_declares_them() {
    // Source-only has no adaptation weight.
    let mut h = harness(options());
    wait_for(&mut h, "the demo", |a| a.data.pair().is_some());
    click(&mut h, "3 Setup");
    h.run_steps(2);
    assert!(h.query_by_label("λ (adaptation weight)").is_none());
    // DANN has λ, starting at its own default.
    let mut opts = options();
    opts.settings.as_mut().unwrap().config.method = transferlab::method::MethodKind::Dann;
    let mut h = harness(opts);
    wait_for(&mut h, "the demo", |a| a.data.pair().is_some());
    click(&mut h, "3 Setup");
    h.run_steps(2);
    settle(&mut h);
    let lambda =
        h.get_by_role_and_label(egui::accesskit::Role::SpinButton, "λ (adaptation weight)");
    lambda.focus();
    h.run_steps(1);
    h.key_press(egui::Key::ArrowUp);
    h.run_steps(2);
    let set = app(&h).settings.config.lambda;
    // One step up from DANN's own default (0.3), not from any other number.
    assert!(
        set.is_some_and(|l| l > 0.3 && l < 0.4),
        "the control starts at DANN's default and sets λ: {set:?}"
    );
}

#[test]
fn a_bad_folder_path_shows_an_error_with_what_to_do() {
    let mut h = harness(options());
    wait_for(&mut h, "the demo", |a| a.data.pair().is_some());
    click(&mut h, "my folders");
    h.run_steps(2);
    type_into(&mut h, "Source folder", "/no/such/folder/anywhere");
    let text = text_containing(&h, "does not exist");
    assert!(text.contains("/no/such/folder/anywhere"), "{text}");
    assert!(text.contains("Choose folder"), "says what to do: {text}");
    assert!(!is_enabled(&h, "Load these folders"));
    // The demo stays loaded and usable.
    assert!(app(&h).data.pair().is_some());
}

/// Frame time while training: prints the 95th percentile of a whole frame (drain, layout,
/// drawing) on the training view, with live curves and the live feature map.
#[test]
fn frame_time_while_training() {
    let mut opts = options();
    {
        let s = opts.settings.as_mut().unwrap();
        s.config.epochs = 200;
        s.map_points = 200;
    }
    opts.demo_size = Some((60, 30));
    let mut h = harness(opts);
    wait_for(&mut h, "the demo", |a| {
        a.data.pair().is_some() && a.train_blocker().is_none()
    });
    click(&mut h, "Train");
    wait_for(&mut h, "two epochs and their maps", |a| {
        a.runs.latest().is_some_and(|r| r.maps.len() >= 3)
    });
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(6) {
        let t = Instant::now();
        h.run_steps(1);
        times.push(t.elapsed().as_secs_f32());
        std::thread::sleep(Duration::from_millis(10));
    }
    let p95 = percentile(times.iter().copied(), 0.95).unwrap() * 1000.0;
    let p50 = percentile(times.iter().copied(), 0.5).unwrap() * 1000.0;
    let run = app(&h).runs.latest().unwrap();
    println!(
        "frame time while training ({} frames, {} epochs done, {} batch points): p50 {p50:.2} ms, p95 {p95:.2} ms",
        times.len(),
        run.history.len(),
        run.batch_losses.len()
    );
    h.get_by_label("Stop").click();
    wait_for(&mut h, "the run to stop", |a| {
        a.runs.latest().is_some_and(|r| !r.status.is_live())
    });
    // Generous bound for a shared CI machine; the figure itself is printed above.
    assert!(p95 < 100.0, "p95 frame time {p95:.1} ms");
}

#[test]
fn settings_from_an_older_or_partial_save_fill_in_defaults() {
    // A save written before most fields existed still loads; unknown fields are ignored.
    let s: Settings =
        serde_json::from_str(r#"{"presentation": true, "no_longer_exists": 3}"#).unwrap();
    assert!(s.presentation);
    assert_eq!(s.view, View::Data);
    assert_eq!(s.config.epochs, Settings::default().config.epochs);
}

#[derive(Debug)]
struct DroppedFolder(std::path::PathBuf);

impl egui::DroppedFile for DroppedFolder {
    fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        Err("a folder has no bytes".into())
    }
}

#[test]
fn dropped_folders_are_validated_loaded_and_their_problems_shown() {
    use transferlab::data::demo::Style;
    let tmp = tempfile::tempdir().unwrap();
    let (source, target) = (tmp.path().join("source"), tmp.path().join("target"));
    common::write_digit_folder(&source, &[0, 1, 2], 6, Style::Clean, 28, "png", 1);
    common::write_digit_folder(
        &target,
        &[0, 1, 3],
        4,
        Style::ThickRotatedNoisy,
        28,
        "png",
        2,
    );
    std::fs::write(target.join("1").join("notes.txt"), "not an image").unwrap();
    std::fs::write(target.join("0").join("broken.png"), "not a png either").unwrap();

    let mut h = harness(options());
    wait_for(&mut h, "the demo", |a| a.data.pair().is_some());
    for dir in [&source, &target] {
        h.input_mut()
            .dropped_files
            .push(std::sync::Arc::new(DroppedFolder(dir.clone())));
    }
    wait_for(&mut h, "both dropped folders to be checked", |a| {
        a.data.source_field.valid_path().is_some() && a.data.target_field.valid_path().is_some()
    });
    text_containing(&h, "OK: 18 images, 3 classes");
    assert!(is_enabled(&h, "Load these folders"));
    click(&mut h, "Load these folders");
    wait_for(&mut h, "the folders to load", |a| {
        a.data
            .loaded
            .as_ref()
            .is_some_and(|l| matches!(l.origin, transferlab::train::DataSource::Folders { .. }))
    });
    let pair = app(&h).data.pair().unwrap().clone();
    assert_eq!(pair.source.len(), 18);
    // Target class '3' is not in the source: left out, and said so.
    assert_eq!(pair.target.len(), 8);
    text_containing(&h, "class sets differ");
    // The undecodable file is listed with its reason.
    text_containing(&h, "file(s) skipped");
}

#[test]
fn a_failed_run_says_what_went_wrong_and_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let bad_model = tmp.path().join("model.safetensors");
    std::fs::write(&bad_model, "these bytes are not a model").unwrap();
    let mut opts = options();
    opts.settings.as_mut().unwrap().config.init = Some(bad_model.clone());
    let mut h = harness(opts);
    wait_for(&mut h, "the demo", |a| {
        a.data.pair().is_some() && a.train_blocker().is_none()
    });
    click(&mut h, "Train");
    wait_for(&mut h, "the run to fail", |a| {
        a.runs
            .latest()
            .is_some_and(|r| matches!(r.status, RunStatus::Failed(_)))
    });
    text_containing(&h, "The run failed");
    let text = text_containing(&h, "press Train again");
    assert!(text.contains("model.safetensors"), "{text}");
    // The app is still usable: Train is enabled again.
    assert!(is_enabled(&h, "Train"));
    // Compare lists it as failed (the error on hover), with its method and start.
    click(&mut h, "5 Compare");
    h.run_steps(3);
    h.get_by_label("failed");
    h.get_by_label("source-only");
    h.get_by_label("from model.safetensors");
    h.get_by_label("0/2, failed");
}

/// Step frames until no background result is pending that could move the widgets (a
/// pointer click lands where the widget was drawn last frame; an arriving analysis or
/// network summary can shift the layout under it, most often on a loaded machine).
fn settle(h: &mut Harness<'static, App>) {
    let start = Instant::now();
    loop {
        h.run_steps(1);
        let pending = app(h).pending_work();
        if pending.is_empty() {
            h.run_steps(2);
            return;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "timed out waiting for the views to settle: {pending:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Click the widget labelled `label` once the views have settled.
fn click(h: &mut Harness<'static, App>, label: &str) {
    settle(h);
    h.get_by_label(label).click();
}

/// Scroll the widget labelled `label` into view, then click it.
fn press(h: &mut Harness<'static, App>, label: &str) {
    settle(h);
    h.get_by_label(label).scroll_to_me();
    h.run_steps(3);
    settle(h);
    h.get_by_label(label).click();
    h.run_steps(3);
}

/// Step frames until the latest run has ended; panics if it failed.
fn wait_for_run(h: &mut Harness<'static, App>) {
    wait_for(h, "the run to end", |a| {
        a.runs.latest().is_some_and(|r| !r.status.is_live())
    });
    let run = app(h).runs.latest().unwrap();
    assert_eq!(run.status, RunStatus::Finished, "{:?}", run.status);
}

/// The latest run's extra results as they are written to JSON.
fn extra_json(h: &Harness<'static, App>) -> serde_json::Value {
    let report = app(h).runs.latest().unwrap().report.as_ref().unwrap();
    serde_json::to_value(report.extra.as_ref().unwrap()).unwrap()
}

fn extra_kind(h: &Harness<'static, App>) -> String {
    extra_json(h)["kind"].as_str().unwrap().to_string()
}

/// True when a multitask epoch holds `task`'s joint and alone accuracies.
fn has_task(r: &transferlab::train::EpochRecord, task: &str) -> bool {
    r.tasks
        .iter()
        .any(|t| t.task == task && t.joint.is_some() && t.alone.is_some())
}

#[test]
fn multitask_on_the_shapes_demo_shows_each_task_joint_and_alone() {
    let mut h = harness(options());
    wait_for(&mut h, "the demo", |a| a.data.pair().is_some());
    click(&mut h, "3 Setup");
    h.run_steps(2);
    press(&mut h, "multitask");
    wait_for_text(&mut h, "Multitask data");
    // The demo's tasks are known at once: their weights can be set.
    wait_for_text(&mut h, "Task weights");
    h.get_by_label("colour");
    assert!(is_enabled(&h, "Train"), "{:?}", app(&h).train_blocker());
    click(&mut h, "Train");
    wait_for_run(&mut h);
    let run = app(&h).runs.latest().unwrap();
    assert!(run.pair.is_none(), "multitask brings its own data");
    assert_eq!(
        run.config.data,
        transferlab::train::DataSource::Demo {
            name: "shapes".into()
        }
    );
    assert_eq!(run.history.len(), 2);
    assert!(has_task(&run.history[1], "shape"));
    assert_eq!(extra_kind(&h), "multitask");
    // The training view shows the per-task curves and table.
    text_containing(&h, "Accuracy per task");
    text_containing(&h, "each alone");
    click(&mut h, "5 Compare");
    h.run_steps(3);
    text_containing(&h, "trained together (joint) against alone");
    text_containing(&h, "Mean over tasks");
    for task in ["shape", "colour", "fill"] {
        assert!(
            h.query_all_by_label(task).next().is_some(),
            "a row for the {task} task"
        );
    }
    h.check_accessibility();
}

/// Focus the text field labelled `label` and type `text` into it.
fn type_into(h: &mut Harness<'static, App>, label: &str, text: &str) {
    h.get_by_label(label).scroll_to_me();
    h.run_steps(2);
    h.get_by_label(label).focus();
    h.run_steps(1);
    h.get_by_label(label).type_text(text);
    h.run_steps(3);
}

#[test]
fn multitask_from_a_folder_and_labels_csv_names_a_bad_row_then_trains() {
    use transferlab::data::demo::Style;
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    common::write_digit_folder(&images, &[0, 1, 2], 6, Style::Clean, 28, "png", 3);
    // Two tasks per image: the digit, and whether it is even.
    let mut rows = vec!["file,digit,parity".to_string()];
    for d in 0..3 {
        for i in 0..6 {
            let parity = if d % 2 == 0 { "even" } else { "odd" };
            rows.push(format!("{d}/{d}_{i:03}.png,{d},{parity}"));
        }
    }
    let good = rows.join("\n") + "\n";
    let labels = tmp.path().join("labels.csv");
    // Line 20 names a file the folder does not have.
    std::fs::write(&labels, format!("{good}2/missing.png,2,even\n")).unwrap();

    let mut h = harness(options());
    wait_for(&mut h, "the demo", |a| a.data.pair().is_some());
    click(&mut h, "3 Setup");
    h.run_steps(2);
    press(&mut h, "multitask");
    press(&mut h, "folder + CSV");
    type_into(&mut h, "Image folder", &images.display().to_string());
    type_into(&mut h, "Labels CSV", &labels.display().to_string());
    wait_for(&mut h, "the folder and the CSV to be read", |a| {
        a.train_blocker().is_none()
    });
    // The CSV's tasks are listed with their weights before any run.
    text_containing(&h, "Task weights");
    h.get_by_label("parity");

    click(&mut h, "Train");
    wait_for(&mut h, "the run to fail on the bad row", |a| {
        a.runs
            .latest()
            .is_some_and(|r| matches!(r.status, RunStatus::Failed(_)))
    });
    let text = text_containing(&h, "missing.png");
    assert!(text.contains("line 20"), "names the row: {text}");

    // Mend the CSV (same path): pressing Train again reads it afresh and trains.
    std::fs::write(&labels, &good).unwrap();
    assert!(is_enabled(&h, "Train"));
    click(&mut h, "Train");
    wait_for_run(&mut h);
    let run = app(&h).runs.latest().unwrap();
    assert_eq!(run.config.labels.as_deref(), Some(labels.as_path()));
    assert_eq!(run.history.len(), 2);
    assert!(has_task(&run.history[1], "parity"));
    assert!(has_task(&run.history[1], "digit"));
    assert_eq!(extra_kind(&h), "multitask");
}

#[test]
fn a_multitask_run_loads_its_images_at_the_chosen_image_size() {
    let mut h = harness(options());
    wait_for(&mut h, "the demo", |a| a.data.pair().is_some());
    click(&mut h, "3 Setup");
    h.run_steps(2);
    press(&mut h, "multitask");
    wait_for_text(&mut h, "Task weights");
    // The user asks for 40 px (the Image size control); the run's own data follows.
    h.state_mut().as_mut().unwrap().settings.input_size = Some(40);
    h.run_steps(2);
    click(&mut h, "Train");
    wait_for_run(&mut h);
    let run = app(&h).runs.latest().unwrap();
    let report = run.report.as_ref().expect("the run finished");
    assert_eq!(report.data.sample_shape, "3×40×40");
    assert!(has_task(run.history.last().unwrap(), "shape"));
}

#[test]
fn zero_shot_with_a_class_ticked_unseen_reports_it_against_chance() {
    let mut h = harness(options());
    wait_for(&mut h, "the demo", |a| a.data.pair().is_some());
    click(&mut h, "3 Setup");
    h.run_steps(2);
    press(&mut h, "zero-shot");
    text_containing(&h, "tick the classes to hold out");
    // The demo's four unseen classes are ticked; tick a fifth.
    press(&mut h, "circle-red-filled");
    let unseen = app(&h).settings.config.unseen.clone();
    assert_eq!(unseen.len(), 5, "{unseen:?}");
    assert!(unseen.contains(&"circle-red-filled".to_string()));
    text_containing(&h, "5 unseen, 13 seen");
    click(&mut h, "Train");
    wait_for_run(&mut h);
    assert_eq!(extra_kind(&h), "zero-shot");
    assert_eq!(extra_json(&h)["unseen"].as_array().unwrap().len(), 5);
    let run = app(&h).runs.latest().unwrap();
    assert!(run.history.last().unwrap().target_accuracy.is_some());
    text_containing(&h, "unseen classes");
    click(&mut h, "5 Compare");
    h.run_steps(3);
    text_containing(&h, "Unseen classes:");
    text_containing(&h, "chance 20.0%");
    text_containing(&h, "Attribute table: unseen classes marked");
    text_containing(&h, "right on unseen images");
    text_containing(&h, "circle-red-filled (unseen)");
    text_containing(&h, "Each unseen class");
    // Pick an image once the demo's thumbnails are made.
    wait_for(&mut h, "the gallery", |a| a.compare.tasks.images_ready());
    let first = h
        .query_all_by_label_contains(", predicted ")
        .next()
        .expect("a gallery image")
        .accesskit_node()
        .label()
        .unwrap_or_default()
        .to_string();
    press(&mut h, &first);
    assert!(app(&h).compare.tasks.picked.is_some());
    text_containing(&h, "the attributes point to");
    text_containing(&h, "predicted probability");
    h.check_accessibility();
}

#[test]
fn stepping_stones_on_digits_steps_show_each_hop_and_the_direct_run() {
    let mut opts = options();
    opts.demo = Some("digits-steps".into());
    opts.settings.as_mut().unwrap().config.epochs = 1;
    let mut h = harness(opts);
    wait_for(&mut h, "the demo", |a| {
        a.data.pair().is_some() && a.train_blocker().is_none()
    });
    click(&mut h, "3 Setup");
    h.run_steps(2);
    press(&mut h, "through the demo's intermediate domains");
    assert!(app(&h).settings.config.stepping_stones);
    // The chain: source → 20° → 40° → target.
    h.get_by_label_contains("stone 2 rotated 40°");
    text_containing(&h, "3 hops of 1 epoch(s)");
    click(&mut h, "Train");
    wait_for_run(&mut h);
    assert_eq!(extra_kind(&h), "stepping-stones");
    let run = app(&h).runs.latest().unwrap();
    // Three hops of one epoch, then three epochs of direct transfer.
    assert_eq!(run.total_epochs, 6);
    assert_eq!(run.history.len(), 6);
    text_containing(&h, "target, direct transfer");
    click(&mut h, "5 Compare");
    h.run_steps(3);
    text_containing(&h, "Stepping stones: hop by hop");
    text_containing(&h, "intermediate 2");
    text_containing(&h, "direct transfer on the same budget");
    h.check_accessibility();
}

/// Switch the similarity map to t-SNE and wait for the new analysis.
fn switch_map_to_tsne(h: &mut Harness<'static, App>) {
    wait_for(h, "the first analysis", |a| a.similarity.map().is_some());
    click(h, "2 Similarity");
    h.run_steps(2);
    click(h, "t-SNE");
    wait_for(h, "the analysis with the new map", |a| {
        a.similarity
            .analysis
            .as_ref()
            .is_some_and(|x| x.key.tsne && !a.similarity.is_busy())
    });
}

#[test]
fn the_similarity_map_switches_to_t_sne_and_explains_a_fallback() {
    // 60 + 60 points: enough for t-SNE's default perplexity.
    let mut h = harness(options());
    switch_map_to_tsne(&mut h);
    let a = app(&h).similarity.analysis.as_ref().unwrap();
    assert_eq!(a.map.projection, "t-SNE");
    assert!(
        a.metrics.is_some(),
        "the metrics stay: {:?}",
        a.metrics_note
    );
    text_containing(&h, "t-SNE map");

    // 20 + 20 points are too few: the map falls back to PCA, says why, keeps the metrics.
    let mut opts = options();
    opts.settings.as_mut().unwrap().map_points = 20;
    let mut h = harness(opts);
    switch_map_to_tsne(&mut h);
    let a = app(&h).similarity.analysis.as_ref().unwrap();
    assert_eq!(a.map.projection, "PCA");
    assert!(a.metrics.is_some());
    text_containing(&h, "t-SNE is not possible here");
}

#[test]
fn compare_shows_and_overlays_each_new_run() {
    let mut opts = options();
    opts.settings.as_mut().unwrap().config.epochs = 1;
    let mut h = harness(opts);
    wait_for(&mut h, "the demo", |a| a.data.pair().is_some());
    press(&mut h, "Train");
    wait_for_run(&mut h);
    click(&mut h, "5 Compare");
    h.run_steps(3);
    assert_eq!(app(&h).compare.detail, Some(1));
    // Beside the true target accuracy, the estimate made without target labels.
    text_containing(&h, "estimate (no labels)");
    let estimate = text_containing(&h, "≈ ");
    assert!(estimate.ends_with('%'), "{estimate}");
    press(&mut h, "Train");
    wait_for_run(&mut h);
    click(&mut h, "5 Compare");
    h.run_steps(3);
    let compare = &app(&h).compare;
    assert_eq!(compare.detail, Some(2), "the new run's details are shown");
    assert!(
        compare.overlaid.contains(&1) && compare.overlaid.contains(&2),
        "both runs' curves are overlaid: {:?}",
        compare.overlaid
    );
}

/// Side of the loaded images (0 for vectors).
fn loaded_side(a: &TransferLabApp) -> usize {
    match a.data.pair().map(|p| p.source.shape) {
        Some(transferlab::data::SampleShape::Image { height, .. }) => height,
        _ => 0,
    }
}

#[test]
fn resnet18_trains_from_the_gui_on_a_32px_folder() {
    use egui::accesskit::Role;
    use transferlab::data::demo::Style;
    use transferlab::model::BackboneKind;
    let tmp = tempfile::tempdir().unwrap();
    let (source, target) = (tmp.path().join("source"), tmp.path().join("target"));
    common::write_digit_folder(&source, &[0, 1, 2], 6, Style::Clean, 32, "png", 1);
    common::write_digit_folder(&target, &[0, 1, 2], 4, Style::Inverted, 32, "png", 2);
    let mut opts = options();
    opts.demo = None;
    {
        let s = opts.settings.as_mut().unwrap();
        s.data_mode = transferlab::app::settings::DataMode::Folders;
        s.source_folder = source.display().to_string();
        s.target_folder = target.display().to_string();
        s.config.epochs = 1;
        s.config.batch_size = 8;
    }
    let mut h = harness(opts);
    wait_for(&mut h, "the folders", |a| {
        a.data.pair().is_some_and(|p| p.source.len() == 18) && !a.data.is_loading()
    });
    // The small CNN's usual size.
    assert_eq!(loaded_side(app(&h)), 28);
    click(&mut h, "3 Setup");
    h.run_steps(2);
    h.get_by_role_and_label(Role::ComboBox, "Backbone").click();
    h.run_steps(2);
    click(&mut h, "resnet18");
    // ResNet-18 needs 32 px: the folders reload at its size, the network follows.
    wait_for(
        &mut h,
        "the folders at 32 px and the ResNet-18 summary",
        |a| {
            loaded_side(a) == 32
                && !a.data.is_loading()
                && a.setup
                    .net
                    .as_ref()
                    .is_some_and(|n| n.key.backbone == BackboneKind::Resnet18)
        },
    );
    let size = h.get_by_role_and_label(Role::SpinButton, "Image size");
    assert_eq!(size.accesskit_node().numeric_value(), Some(32.0));
    text_containing(&h, "32×32");
    // One pixel less is refused, with what to do; "default" goes back to 32.
    h.get_by_role_and_label(Role::SpinButton, "Image size")
        .focus();
    h.run_steps(1);
    h.key_press(egui::Key::ArrowDown);
    wait_for(
        &mut h,
        "the folders at 31 px and the network's verdict",
        |a| loaded_side(a) == 31 && !a.data.is_loading() && a.setup.net_error.is_some(),
    );
    text_containing(&h, "Cannot build this network");
    let problem = text_containing(&h, "Image size\" to 32 or more");
    assert!(
        problem.contains("resnet18 needs images of at least 32×32"),
        "{problem}"
    );
    assert!(!is_enabled(&h, "Train"));
    press(&mut h, "default");
    wait_for(&mut h, "the folders at 32 px again", |a| {
        loaded_side(a) == 32 && !a.data.is_loading() && a.train_blocker().is_none()
    });
    click(&mut h, "Train");
    wait_for_run(&mut h);
    let run = app(&h).runs.latest().unwrap();
    assert_eq!(run.config.backbone, Some(BackboneKind::Resnet18));
    assert_eq!(run.history.len(), 1);
    assert!(run.target_accuracy().is_some());
    assert!(
        run.network.total_params > 10_000_000,
        "{}",
        run.network.total_params
    );
}

/// The GUI's analysis job and `transferlab similarity` read the same subsample of the same
/// features with the same seed: the same MMD², A-distance, CORAL distance and map points.
#[test]
fn the_gui_and_the_cli_measure_the_same_similarity() {
    use transferlab::app::feature_map::Layer;
    for (layer, cli_layer) in [(Layer::Pixels, None), (Layer::Stage(1), Some("conv2"))] {
        let mut opts = options();
        opts.demo_size = None; // the CLI's demo, at full size
        opts.settings.as_mut().unwrap().map_layer = layer;
        opts.settings.as_mut().unwrap().config.seed = 3;
        let mut h = harness(opts);
        wait_for(&mut h, "the analysis", |a| {
            a.similarity
                .analysis
                .as_ref()
                .is_some_and(|x| x.key.layer == layer && x.metrics.is_some())
        });
        let gui = app(&h).similarity.analysis.clone().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let json = tmp.path().join("similarity.json");
        let mut args = vec![
            "similarity".to_string(),
            "--demo".into(),
            "digits-rotated".into(),
            "--max-per-domain".into(),
            "60".into(),
            "--seed".into(),
            "3".into(),
            "--json".into(),
            json.display().to_string(),
        ];
        if let Some(l) = cli_layer {
            assert!(gui.map.layer_name.contains(l), "{}", gui.map.layer_name);
            args.extend([
                "--backbone".into(),
                "small-cnn".into(),
                "--layer".into(),
                l.into(),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, _, err) = common::run_cli(&args);
        assert!(ok, "{err}");
        let cli: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let m = gui.metrics.as_ref().unwrap();
        assert_eq!(m.mmd2, cli["mmd2"].as_f64().unwrap(), "MMD², {layer:?}");
        assert_eq!(m.a_distance, cli["a_distance"].as_f64().unwrap());
        assert_eq!(m.coral_distance, cli["coral_distance"].as_f64().unwrap());
        assert_eq!(m.samples, (60, 60));
        let points = cli["points"].as_array().unwrap();
        assert_eq!(gui.map.points.len(), points.len());
        for (g, c) in gui.map.points.iter().zip(points) {
            assert_eq!(g.index as u64, c["index"].as_u64().unwrap());
            assert_eq!(g.target, c["domain"] == "target");
            assert_eq!(g.pos[0] as f32, c["x"].as_f64().unwrap() as f32);
            assert_eq!(g.pos[1] as f32, c["y"].as_f64().unwrap() as f32);
        }
    }
}

/// Choose EfficientNet-Lite0 in the Setup view's backbone picker.
fn choose_efficientnet(h: &mut Harness<'static, App>) {
    click(h, "3 Setup");
    h.run_steps(2);
    h.get_by_role_and_label(egui::accesskit::Role::ComboBox, "Backbone")
        .click();
    h.run_steps(2);
    click(h, "efficientnet-lite0");
}

fn loaded_channels(a: &TransferLabApp) -> usize {
    a.data.pair().map_or(0, |p| p.source.shape.batch_dims(1)[1])
}

/// Gray digits: the picker offers EfficientNet-Lite0, the images reload at three channels,
/// the diagram shows its nine stages, the advisor reads the cases from the target's
/// ImageNet distance, and a run with five stages frozen trains.
#[test]
fn efficientnet_on_gray_digits_shows_its_stages_advises_a_case_and_trains() {
    use transferlab::model::BackboneKind;
    let mut opts = options();
    {
        let s = opts.settings.as_mut().unwrap();
        s.input_size = Some(32);
        s.config.epochs = 1;
    }
    let mut h = harness(opts);
    wait_for(&mut h, "the gray demo", |a| {
        a.data.pair().is_some() && !a.data.is_loading()
    });
    assert_eq!(loaded_channels(app(&h)), 1);
    choose_efficientnet(&mut h);
    wait_for(&mut h, "RGB images and the EfficientNet summary", |a| {
        loaded_channels(a) == 3
            && !a.data.is_loading()
            && a.setup
                .net
                .as_ref()
                .is_some_and(|n| n.key.backbone == BackboneKind::EfficientnetLite0)
    });
    let stages = app(&h).setup.net.as_ref().unwrap().stages.clone();
    assert_eq!(stages.len(), 9);
    for s in ["stem", "stage1", "stage7", "conv_head"] {
        assert!(
            h.query_all_by_label_contains(s).next().is_some(),
            "the diagram shows {s}"
        );
    }
    // Click stage4 in the diagram: it and every stage before it freeze.
    press(&mut h, "stage4 trains");
    assert_eq!(app(&h).settings.config.freeze, 5);
    text_containing(&h, "stage4 frozen");
    click(&mut h, "2 Similarity");
    let case = wait_for_text(&mut h, "Case (");
    assert!(case.contains("(c)"), "digits are far from ImageNet: {case}");
    text_containing(&h, "from ImageNet");
    click(&mut h, "Train");
    wait_for_run(&mut h);
    let run = app(&h).runs.latest().unwrap();
    assert_eq!(run.config.backbone, Some(BackboneKind::EfficientnetLite0));
    assert_eq!(run.config.freeze, 5);
    assert!(run.target_accuracy().is_some());
}

/// Write `per_class` colour photos-to-be of two classes (reddish and bluish noise with a
/// bright square), each of another size, into `dir/<class>/`.
fn write_colour_folder(dir: &std::path::Path, per_class: usize, seed: u32) {
    for (class, base) in [("red", [200u8, 40, 40]), ("blue", [40u8, 60, 200])] {
        let sub = dir.join(class);
        std::fs::create_dir_all(&sub).unwrap();
        for i in 0..per_class as u32 {
            let (w, h) = (40 + 7 * i, 30 + 11 * ((i + seed) % 5));
            let img = image::RgbImage::from_fn(w, h, |x, y| {
                let n = ((x * 31 + y * 17 + i * 7 + seed * 13) % 41) as u8;
                let square = (w / 3..2 * w / 3).contains(&x) && (h / 3..2 * h / 3).contains(&y);
                if square {
                    image::Rgb([240, 240, 240])
                } else {
                    image::Rgb(base.map(|c| c.saturating_add(n)))
                }
            });
            img.save(sub.join(format!("{i:03}.png"))).unwrap();
        }
    }
}

/// A folder of colour photos of assorted sizes: EfficientNet-Lite0 as a linear probe at
/// 32 px learns to tell the classes apart.
#[test]
fn efficientnet_linear_probe_trains_on_a_colour_folder_of_any_size() {
    use transferlab::model::BackboneKind;
    let tmp = tempfile::tempdir().unwrap();
    let (source, target) = (tmp.path().join("source"), tmp.path().join("target"));
    write_colour_folder(&source, 12, 1);
    write_colour_folder(&target, 6, 2);
    let mut opts = options();
    opts.demo = None;
    {
        let s = opts.settings.as_mut().unwrap();
        s.data_mode = transferlab::app::settings::DataMode::Folders;
        s.source_folder = source.display().to_string();
        s.target_folder = target.display().to_string();
        s.input_size = Some(32);
        s.config.epochs = 8;
        s.config.batch_size = 8;
        s.config.learning_rate = 3e-3;
    }
    let mut h = harness(opts);
    wait_for(&mut h, "the folders", |a| {
        a.data.pair().is_some_and(|p| p.source.len() == 24) && !a.data.is_loading()
    });
    choose_efficientnet(&mut h);
    wait_for(&mut h, "the EfficientNet summary", |a| {
        !a.data.is_loading()
            && a.setup
                .net
                .as_ref()
                .is_some_and(|n| n.key.backbone == BackboneKind::EfficientnetLite0)
    });
    press(&mut h, "conv_head trains");
    assert_eq!(app(&h).settings.config.freeze, 9, "a linear probe");
    click(&mut h, "Train");
    wait_for_run(&mut h);
    let run = app(&h).runs.latest().unwrap();
    assert_eq!(run.config.freeze, 9);
    let acc = run.target_accuracy().unwrap();
    assert!(acc >= 0.75, "ImageNet features tell red from blue: {acc}");
}

/// The Predict view: type a photo's path, press Predict, see ImageNet's classes with
/// their probabilities (computed in the background).
#[test]
fn the_predict_view_names_the_espresso_in_a_photo() {
    let mut h = harness(options());
    wait_for(&mut h, "the demo", |a| a.data.pair().is_some());
    click(&mut h, "6 Predict");
    h.run_steps(2);
    let photo = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/effnet/coffee-224.png"
    );
    type_into(&mut h, "Image file", photo);
    press(&mut h, "Predict");
    wait_for(&mut h, "the prediction", |a| a.predict.outcome.is_some());
    let outcome = app(&h).predict.outcome.as_ref().unwrap();
    let top = &outcome.result.as_ref().expect("the photo is read").top;
    assert_eq!(top[0].name, "espresso");
    assert_eq!(top.len(), 5);
    text_containing(&h, "espresso");
    let shown = text_containing(&h, "%");
    assert!(shown.ends_with('%'), "{shown}");
    // A file that is not an image says so.
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), b"not an image").unwrap();
    h.get_by_label("Image file").focus();
    h.run_steps(1);
    for _ in 0..photo.chars().count() {
        h.key_press(egui::Key::Backspace);
    }
    h.run_steps(1);
    h.get_by_label("Image file")
        .type_text(bad.path().to_str().unwrap());
    h.run_steps(2);
    press(&mut h, "Predict");
    wait_for_text(&mut h, "Could not classify");
}

#[test]
fn which_source_ranks_candidate_folders_and_makes_the_closest_the_source() {
    use transferlab::data::demo::Style;
    let tmp = tempfile::tempdir().unwrap();
    let dir = |n: &str| tmp.path().join(n);
    let classes = [0, 1, 2];
    common::write_digit_folder(&dir("clean"), &classes, 8, Style::Clean, 28, "png", 1);
    common::write_digit_folder(&dir("target"), &classes, 8, Style::Inverted, 28, "png", 2);
    common::write_digit_folder(&dir("inverted"), &classes, 8, Style::Inverted, 28, "png", 3);
    let mut opts = options();
    opts.demo = None;
    {
        let s = opts.settings.as_mut().unwrap();
        s.data_mode = transferlab::app::settings::DataMode::Folders;
        s.source_folder = dir("clean").display().to_string();
        s.target_folder = dir("target").display().to_string();
    }
    let mut h = harness(opts);
    wait_for(&mut h, "the folders and their map", |a| {
        a.data.pair().is_some() && a.similarity.map().is_some()
    });
    click(&mut h, "2 Similarity");
    h.run_steps(3);
    press(&mut h, "Which source?");
    for c in ["clean", "inverted"] {
        type_into(&mut h, "Candidate", dir(c).to_str().unwrap());
        press(&mut h, "Add");
    }
    assert_eq!(app(&h).similarity.rank.candidates.len(), 2);
    press(&mut h, "Rank");
    wait_for(&mut h, "the ranking", |a| {
        a.similarity.rank.report.is_some()
    });
    let report = app(&h).similarity.rank.report.clone().unwrap();
    let best = report.candidates.iter().find(|c| c.rank == 1).unwrap();
    assert!(best.name.ends_with("inverted"), "{report:?}");
    text_containing(&h, "mmd2 ");
    // One click makes the closest folder the source, and the data reloads.
    press(&mut h, "Use the closest as source");
    wait_for(&mut h, "the new source", |a| {
        a.settings.source_folder.ends_with("inverted") && !a.data.is_loading()
    });
    assert!(app(&h).data.source_field.text.ends_with("inverted"));
}

/// Choose the inverted-digits demo from the Data view's picker and wait for it.
fn pick_inverted_demo(h: &mut Harness<'static, App>) {
    h.get_by_role_and_label(egui::accesskit::Role::ComboBox, "Demo")
        .click();
    h.run_steps(2);
    h.get_by_label("Digits: white on black to black on white")
        .click();
    wait_for(h, "the chosen demo", |a| {
        a.settings.demo == "digits-inverted" && a.data.pair().is_some() && !a.data.is_loading()
    });
}

/// The app on its demo, set to 1-epoch runs, ready to train.
fn one_epoch_demo() -> Harness<'static, App> {
    let mut opts = options();
    opts.settings.as_mut().unwrap().config.epochs = 1;
    let mut h = harness(opts);
    wait_for(&mut h, "the demo", |a| {
        a.data.pair().is_some() && a.train_blocker().is_none()
    });
    h
}

/// Set the method (as the Setup view's picker does) and frames for it to take.
fn choose_method(h: &mut Harness<'static, App>, method: transferlab::method::MethodKind) {
    h.state_mut().as_mut().unwrap().settings.config.method = method;
    h.run_steps(2);
}

/// Train one run with the current settings and open Compare on it.
fn train_and_compare(h: &mut Harness<'static, App>) {
    press(h, "Train");
    wait_for_run(h);
    click(h, "5 Compare");
    h.run_steps(3);
}

#[test]
fn compare_names_each_runs_data_and_never_measures_across_data() {
    use transferlab::method::MethodKind;
    let mut h = one_epoch_demo();
    train_and_compare(&mut h);
    // One data pair: the chart title names it, as does the table.
    h.get_by_label("digits-rotated");
    text_containing(
        &h,
        "target accuracy per epoch · digits-rotated (28×28 gray)",
    );
    // Other data: a DANN run on the inverted digits.
    click(&mut h, "1 Data");
    h.run_steps(2);
    pick_inverted_demo(&mut h);
    choose_method(&mut h, MethodKind::Dann);
    train_and_compare(&mut h);
    // Each row names its data, the table says it holds two data pairs, and the chart
    // title no longer claims one.
    h.get_by_label("digits-rotated");
    h.get_by_label("digits-inverted");
    text_containing(&h, "Runs on 2 data pairs");
    text_containing(&h, "runs on 2 data pairs (see the legend)");
    assert!(
        h.query_all_by_label_contains("per epoch · digits-rotated")
            .next()
            .is_none(),
        "the chart is not titled with one run's data"
    );
    // DANN on the inverted digits has no source-only run on its data: no Δ, and why.
    assert_eq!(app(&h).compare.detail, Some(2));
    let why = text_containing(&h, "No Δ vs source-only:");
    assert!(
        why.contains("no source-only run on the same data, digits-inverted"),
        "{why}"
    );
    h.check_accessibility();
}

#[test]
fn delta_is_only_measured_against_a_source_only_run_of_the_same_epochs() {
    use transferlab::method::MethodKind;
    let mut h = one_epoch_demo();
    // #1 source-only, 1 epoch; #2 DANN, 1 epoch; #3 DANN, 2 epochs.
    train_and_compare(&mut h);
    choose_method(&mut h, MethodKind::Dann);
    train_and_compare(&mut h);
    let delta = text_containing(&h, "Δ vs source-only: ");
    assert!(
        delta.contains(" pts, against source-only run #1"),
        "the same budget is compared: {delta}"
    );
    h.state_mut().as_mut().unwrap().settings.config.epochs = 2;
    train_and_compare(&mut h);
    assert_eq!(app(&h).compare.detail, Some(3));
    h.get_by_label("2/2");
    let why = text_containing(&h, "No Δ vs source-only:");
    assert!(
        why.contains("same data and epochs")
            && why.contains("this run has 2/2 epochs, source-only run #1 has 1/1"),
        "{why}"
    );
    assert!(
        !h.query_all_by_label_contains("Δ vs source-only: ")
            .any(|n| n
                .accesskit_node()
                .label()
                .is_some_and(|l| l.starts_with('Δ'))),
        "no Δ is shown for the 2-epoch run"
    );
}

#[test]
fn a_run_continued_from_an_earlier_runs_model_says_so_and_gets_no_fresh_baseline() {
    use transferlab::method::MethodKind;
    let mut h = one_epoch_demo();
    train_and_compare(&mut h);
    h.get_by_label("fresh");
    press(&mut h, "Start the next run from this model");
    assert_eq!(app(&h).settings.view, View::Setup);
    choose_method(&mut h, MethodKind::Dann);
    train_and_compare(&mut h);
    // The table's start column and the details say where run #2 began.
    h.get_by_label("from run #1");
    text_containing(&h, "from run #1 · epochs 1/1");
    let why = text_containing(&h, "No Δ vs source-only:");
    assert!(
        why.contains("same starting point")
            && why.contains("this run started from the model of run #1"),
        "{why}"
    );
}

/// The run files in a runs folder.
fn saved_run_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|x| x == "json"));
    v.sort();
    v
}

#[test]
fn finished_runs_come_back_in_compare_after_a_restart_and_a_corrupt_file_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let runs_dir = tmp.path().join("runs");
    let mut opts = options();
    opts.settings.as_mut().unwrap().config.epochs = 1;
    opts.runs_dir = Some(runs_dir.clone());
    let accuracy = {
        let mut h = harness(opts.clone());
        wait_for(&mut h, "the demo", |a| {
            a.data.pair().is_some() && a.train_blocker().is_none()
        });
        train_and_compare(&mut h);
        app(&h).runs.latest().unwrap().target_accuracy().unwrap()
    };
    let files = saved_run_files(&runs_dir);
    assert_eq!(files.len(), 1, "the run was saved: {files:?}");
    // A file a crash or another program mangled.
    let corrupt = runs_dir.join("run-7-0.json");
    std::fs::write(&corrupt, "{\"format\": \"transferlab-run-1\", \"id\": ").unwrap();

    let mut h = harness(opts);
    wait_for(&mut h, "the demo", |a| {
        a.data.pair().is_some() && a.train_blocker().is_none()
    });
    text_containing(&h, "Skipped a saved run that could not be read");
    click(&mut h, "5 Compare");
    h.run_steps(3);
    h.get_by_label("#1");
    h.get_by_label("finished (earlier session)");
    h.get_by_label("digits-rotated");
    let shown = format!("{:.1}%", accuracy * 100.0);
    assert!(
        h.query_all_by_label(&shown).next().is_some(),
        "its target accuracy {shown} is shown"
    );
    text_containing(&h, "From an earlier session");
    text_containing(&h, "run-7-0.json");
    assert!(corrupt.is_file(), "the unreadable file is left as it was");
    // A new run continues the numbering and is saved beside the old one.
    press(&mut h, "Train");
    wait_for_run(&mut h);
    assert_eq!(app(&h).runs.latest().unwrap().id, 2);
    assert_eq!(saved_run_files(&runs_dir).len(), 3);
}

#[test]
fn the_similarity_map_colours_the_targets_clusters_and_scores_them() {
    let mut h = harness(options());
    wait_for(&mut h, "the first analysis", |a| {
        a.similarity.map().is_some()
    });
    click(&mut h, "2 Similarity");
    h.run_steps(2);
    click(&mut h, "target clusters");
    h.run_steps(3);
    let line = text_containing(&h, "k-means found");
    assert!(line.contains("adjusted Rand index"), "{line}");
    let a = app(&h).similarity.analysis.as_ref().unwrap();
    let clusters = a.clusters.as_ref().unwrap();
    assert_eq!(clusters.k, app(&h).data.pair().unwrap().classes.len());
    // Every target point on the map carries its cluster, no source point does.
    assert!(a.map.points.iter().all(|p| p.cluster.is_some() == p.target));
}

#[test]
fn rotation_pretraining_runs_from_the_picker_and_reports_no_class_accuracy() {
    let mut h = one_epoch_demo();
    click(&mut h, "3 Setup");
    h.run_steps(2);
    press(&mut h, "rotation-pretrain");
    assert_eq!(
        app(&h).settings.config.method,
        transferlab::method::MethodKind::RotationPretrain
    );
    text_containing(&h, "Unsupervised");
    press(&mut h, "Train");
    wait_for_run(&mut h);
    let report = app(&h).runs.latest().unwrap().report.clone().unwrap();
    assert_eq!(report.final_metrics.target_accuracy, None);
    let rotation = report.history.last().unwrap().metrics["rotation_acc"];
    assert!((0.0..=1.0).contains(&rotation));
    click(&mut h, "4 Training");
    h.run_steps(3);
    text_containing(&h, "rotation accuracy");
}

#[test]
fn the_similarity_map_shows_the_labels_spreading_step_by_step() {
    let mut h = harness(options());
    wait_for(&mut h, "the first analysis", |a| {
        a.similarity.map().is_some()
    });
    click(&mut h, "2 Similarity");
    h.run_steps(2);
    click(&mut h, "labels spreading");
    h.run_steps(3);
    let line = text_containing(&h, "Step 0 of 20");
    assert!(line.contains("reached 0% of the target"), "{line}");
    press(&mut h, "Play");
    // Half a second a step, a quarter of a second a frame.
    for _ in 0..50 {
        h.run_steps(1);
        if app(&h).similarity.spread_playing.is_none() {
            break;
        }
    }
    assert_eq!(app(&h).similarity.spread_step, 20, "played to the end");
    let line = text_containing(&h, "Step 20 of 20");
    assert!(line.contains("labelled right"), "{line}");
    let a = app(&h).similarity.analysis.as_ref().unwrap();
    let s = a.spreading.as_ref().unwrap().as_ref().unwrap();
    assert!(*s.reached.last().unwrap() > 0.9, "{:?}", s.reached);
}

#[test]
fn relation_distillation_from_the_picker_learns_from_the_imagenet_teacher_and_shows_heatmaps() {
    let mut h = one_epoch_demo();
    click(&mut h, "3 Setup");
    h.run_steps(2);
    press(&mut h, "relation-distill");
    h.run_steps(2);
    assert_eq!(
        app(&h).settings.config.teacher,
        Some(transferlab::model::predict::PredictModel::Imagenet),
        "the built-in ImageNet network is the default teacher"
    );
    h.get_by_label("or a teacher file");
    train_and_compare(&mut h);
    let report = app(&h).runs.latest().unwrap().report.clone().unwrap();
    assert!(report.final_metrics.target_accuracy.is_some());
    text_containing(&h, "Relations between samples");
    h.get_by_label("Student after");
    let line = text_containing(&h, "Relation agreement on the target");
    assert!(line.contains("before training"), "{line}");
    // Another method takes no teacher: the choice is put aside, and comes back.
    choose_method(&mut h, transferlab::method::MethodKind::SourceOnly);
    click(&mut h, "3 Setup");
    h.run_steps(2);
    assert_eq!(app(&h).settings.config.teacher, None);
    assert!(app(&h).train_blocker().is_none());
    press(&mut h, "relation-distill");
    h.run_steps(2);
    assert!(app(&h).settings.config.teacher.is_some());
}

#[test]
fn a_run_can_keep_the_epoch_a_label_free_criterion_prefers_and_compare_says_which() {
    let mut h = harness(options());
    wait_for(&mut h, "the demo", |a| {
        a.data.pair().is_some() && a.train_blocker().is_none()
    });
    click(&mut h, "3 Setup");
    h.run_steps(2);
    h.get_by_label("Keep the epoch");
    h.state_mut().as_mut().unwrap().settings.config.select_by =
        Some(transferlab::train::selection::SelectBy::Dev);
    train_and_compare(&mut h);
    let report = app(&h).runs.latest().unwrap().report.clone().unwrap();
    let sel = report.selection.expect("the run selected an epoch");
    assert_eq!(sel.scores.len(), 2);
    let line = text_containing(&h, "chosen by dev without target labels");
    assert!(
        line.starts_with(&format!("Kept epoch {} of 2", sel.chosen_epoch)),
        "{line}"
    );
    // The table's accuracy is the kept epoch's, not the last one's.
    let kept = report.history[sel.chosen_epoch - 1].target_accuracy;
    assert_eq!(app(&h).runs.latest().unwrap().target_accuracy(), kept);
}
