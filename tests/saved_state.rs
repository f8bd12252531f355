//! The app's saved state (eframe's `app.ron`) is untrusted input: a bad zoom or setting is
//! reset on its own, the good ones are kept, the user is told, and the file is not
//! written over until the user changes something.

mod common;

use egui_kittest::kittest::Queryable;
use std::collections::HashMap;
use transferlab::app::saved_state::{FILE_NAME, SavedState};
use transferlab::app::{AppOptions, Settings, View};

/// eframe's storage in memory, as `FileStorage` keeps it.
#[derive(Default)]
struct MapStorage(HashMap<String, String>);

impl eframe::Storage for MapStorage {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.into(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

/// The saved settings: good ones a user chose, and bad ones of every kind.
fn saved_settings() -> String {
    let mut s = Settings {
        presentation: true,
        demo: "digits-inverted".into(),
        ..Default::default()
    };
    s.config.seed = 7;
    s.config.learning_rate = f64::NAN;
    s.config.epochs = 0;
    s.map_points = 1_000_000;
    s.input_size = Some(100_000);
    let text = ron::to_string(&s).unwrap();
    // Values no version writes: an unknown view and a negative batch size.
    let text = text.replace("view:Data", "view:Nope");
    assert!(text.contains("batch_size:64"));
    text.replace("batch_size:64", "batch_size:-3")
}

/// egui's memory with `zoom` (as RON writes it) and one other option changed.
fn saved_memory(zoom: &str) -> String {
    let mut m = egui::Memory::default();
    m.options.zoom_factor = 1.5;
    m.options.tessellation_options.feathering = false;
    let text = ron::to_string(&m).unwrap();
    assert!(text.contains("zoom_factor:1.5"));
    text.replace("zoom_factor:1.5", &format!("zoom_factor:{zoom}"))
}

fn write_file(dir: &std::path::Path, app: &str, egui: &str) -> std::path::PathBuf {
    let entries: HashMap<&str, &str> = [("app", app), ("egui", egui)].into();
    let path = dir.join(FILE_NAME);
    std::fs::write(&path, ron::to_string(&entries).unwrap()).unwrap();
    path
}

fn whats(saved: &SavedState) -> Vec<&str> {
    saved.resets.iter().map(|r| r.what.as_str()).collect()
}

#[test]
fn a_saved_zoom_of_0_nan_or_1000_is_reset_and_every_good_setting_kept() {
    let tmp = tempfile::tempdir().unwrap();
    for zoom in ["0.0", "NaN", "1000.0", "-inf"] {
        let path = write_file(tmp.path(), &saved_settings(), &saved_memory(zoom));
        let saved = SavedState::from_file(&path);
        let memory = saved.memory.as_ref().expect("egui's memory is kept");
        assert_eq!(memory.options.zoom_factor, 1.0, "zoom {zoom}");
        assert!(!memory.options.tessellation_options.feathering);
        let s = saved.settings.as_ref().expect("the settings are kept");
        // The good fields as saved…
        assert!(s.presentation);
        assert_eq!(s.demo, "digits-inverted");
        assert_eq!(s.config.seed, 7);
        // …the bad ones reset or clamped into their controls' ranges.
        let d = Settings::default();
        assert_eq!(s.view, d.view);
        assert_eq!(s.config.batch_size, d.config.batch_size);
        assert_eq!(s.config.learning_rate, d.config.learning_rate);
        assert_eq!(s.config.epochs, 1);
        assert_eq!(s.map_points, 3000);
        assert_eq!(s.input_size, None);
        let whats = whats(&saved);
        for what in [
            "zoom",
            "view",
            "batch size",
            "learning rate",
            "epochs",
            "feature map points per domain",
            "image size",
        ] {
            assert!(whats.contains(&what), "{what} is not reported: {whats:?}");
        }
        assert_eq!(whats.len(), 7, "only what was bad is reported: {whats:?}");
        let zoom_reset = &saved.resets[whats.iter().position(|w| *w == "zoom").unwrap()];
        assert_eq!(zoom_reset.now.parse::<f32>(), Ok(1.0), "zoom {zoom}");
    }
}

#[test]
fn a_good_save_reports_nothing_and_a_missing_one_is_a_first_start() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Settings {
        presentation: true,
        ..Default::default()
    };
    let path = write_file(
        tmp.path(),
        &ron::to_string(&s).unwrap(),
        &saved_memory("1.5"),
    );
    let saved = SavedState::from_file(&path);
    assert!(saved.resets.is_empty(), "{:?}", saved.resets);
    assert_eq!(saved.settings, Some(s));
    assert_eq!(saved.memory.unwrap().options.zoom_factor, 1.5);
    let first = SavedState::from_file(&tmp.path().join("missing.ron"));
    assert!(first.resets.is_empty() && first.settings.is_none() && first.memory.is_none());
}

#[test]
fn a_file_that_is_not_eframes_format_is_kept_aside_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(FILE_NAME);
    std::fs::write(&path, b"\x00\xffnot ron at all {{{").unwrap();
    let saved = SavedState::from_file(&path);
    assert!(saved.settings.is_none());
    let aside = tmp.path().join(format!("{FILE_NAME}.unreadable"));
    assert_eq!(
        std::fs::read(&aside).unwrap(),
        b"\x00\xffnot ron at all {{{"
    );
    let notice = transferlab::app::saved_state::reset_notice(&saved.resets).unwrap();
    assert!(notice.contains(&aside.display().to_string()), "{notice}");
}

#[test]
fn the_app_starts_on_a_bad_save_says_what_was_reset_and_keeps_the_file_until_a_change() {
    let app_text = saved_settings();
    let egui_text = saved_memory("0.0");
    let saved = SavedState::from_entries(Some(&app_text), Some(&egui_text));
    let memory = saved.memory.unwrap();
    let mut settings = saved.settings.unwrap();
    settings.config.epochs = 1;
    settings.map_points = 40;
    let options = AppOptions {
        demo_size: Some((12, 6)),
        settings: Some(settings),
        resets: saved.resets,
        ..Default::default()
    };
    let mut h = common::app_harness(options);
    h.ctx.memory_mut(|m| *m = memory);
    h.run_steps(5);
    assert_eq!(h.ctx.zoom_factor(), 1.0);
    let notice = common::texts_containing(&h, "could not be used and were reset");
    assert_eq!(notice.len(), 1, "one notice: {notice:?}");
    for part in [
        "zoom was 0, now 1",
        "learning rate was NaN, now 0.001",
        "view was Nope, now Data",
    ] {
        assert!(notice[0].contains(part), "{part} missing: {}", notice[0]);
    }

    // Saving before the user changes anything leaves the file's entries as they were.
    let mut storage = MapStorage::default();
    storage.0.insert("app".into(), app_text.clone());
    let app = h.state_mut().as_mut().unwrap();
    assert!(!eframe::App::persist_egui_memory(app));
    eframe::App::save(app, &mut storage);
    assert_eq!(storage.0["app"], app_text);

    // Dismissing the notice is not a change; switching views is.
    h.get_by_label("OK").click();
    h.run_steps(2);
    assert_eq!(
        h.query_all_by_label_contains("were reset").count(),
        0,
        "the notice is gone once dismissed"
    );
    let app = h.state_mut().as_mut().unwrap();
    eframe::App::save(app, &mut storage);
    assert_eq!(storage.0["app"], app_text);
    h.get_by_label("3 Setup").click();
    h.run_steps(2);
    let app = h.state_mut().as_mut().unwrap();
    assert_eq!(app.settings.view, View::Setup);
    assert!(eframe::App::persist_egui_memory(app));
    eframe::App::save(app, &mut storage);
    let again = SavedState::from_entries(Some(&storage.0["app"]), None);
    assert!(again.resets.is_empty(), "{:?}", again.resets);
    let s = again.settings.unwrap();
    assert!(s.presentation && s.view == View::Setup);
}

#[test]
fn a_window_layout_with_nan_positions_is_dropped_and_the_zoom_kept() {
    let ctx = egui::Context::default();
    // A frame with a window gives egui's memory an area with a position.
    let _ = ctx.run_ui(Default::default(), |ui| {
        egui::Window::new("w").show(ui.ctx(), |ui| ui.label("x"));
    });
    let mut memory = ctx.memory(|m| m.clone());
    memory.options.zoom_factor = 1.5;
    let good = ron::to_string(&memory).unwrap();
    let saved = SavedState::from_entries(None, Some(&good));
    assert!(saved.resets.is_empty(), "{:?}", saved.resets);
    // The area's position, as NaN.
    let key = "pivot_pos:Some((";
    let at = good.find(key).expect("an area is saved") + key.len();
    let end = at + good[at..].find(')').unwrap();
    let bad = format!("{}x:NaN,y:NaN{}", &good[..at], &good[end..]);
    let saved = SavedState::from_entries(None, Some(&bad));
    assert_eq!(whats(&saved), ["window layout"]);
    assert_eq!(saved.memory.unwrap().options.zoom_factor, 1.5);
}
