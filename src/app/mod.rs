//! The eframe app: draws the engine's state and talks to workers only by messages.
//! Heavy work (loading data, analysis, training) never runs on the UI thread.
//!
//! One view per file: `data` (journey 2), `similarity` (3), `setup` (4), `training` (5),
//! `compare` (6), `predict` (an image file through a model); each draws with the frame's `context::ViewContext`. `state` holds the
//! app; a frame is `poll` (drain workers and jobs), `draw` (the views queue commands),
//! `command_handling` (apply them). `help` and `theme` serve the classroom; `format` and
//! `widgets` are shared by the views; the rest are helpers (background jobs, path fields,
//! thumbnails, the feature map, runs and the runs kept between sessions, exports, frame
//! timing).

mod command_handling;
pub mod commands;
pub mod compare;
pub mod context;
pub mod data;
mod draw;
pub mod export;
pub mod feature_map;
pub mod files;
pub mod format;
pub mod frame_stats;
pub mod help;
pub mod jobs;
mod poll;
pub mod predict;
pub mod rank;
mod relations;
pub mod runs;
pub mod saved_runs;
pub mod saved_state;
pub mod settings;
pub mod setup;
pub mod similarity;
pub mod state;
pub mod task_results;
pub mod task_setup;
pub mod theme;
pub mod thumbs;
pub mod training;
pub mod widgets;

pub use commands::{AppCommand, View};
pub use settings::Settings;
pub use state::{AppOptions, TransferLabApp};

use anyhow::{Result, anyhow};

/// The app's name for eframe (its saved state lives in a folder of this name).
const APP_ID: &str = "transferlab";

/// Open the app window on a built-in demo (or the remembered data).
pub fn run_native(demo: Option<String>) -> Result<()> {
    // The saved state is read and checked here, before eframe uses any of it: egui's
    // memory (its zoom sizes the window) goes into a context of our own, set up as
    // eframe sets up its own.
    let storage = eframe::storage_dir(APP_ID);
    let file = storage.as_ref().map(|d| d.join(saved_state::FILE_NAME));
    let runs_dir = storage.map(|d| d.join(saved_runs::DIR_NAME));
    let mut saved = file
        .as_deref()
        .map(saved_state::SavedState::from_file)
        .unwrap_or_default();
    let ctx = egui::Context::default();
    ctx.set_embed_viewports(false);
    ctx.options_mut(|o| o.max_passes = std::num::NonZeroUsize::MIN.saturating_add(1));
    if let Some(memory) = saved.memory.take() {
        ctx.memory_mut(|m| *m = memory);
    }
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("transferlab")
            .with_inner_size([1440.0, 900.0])
            .with_min_inner_size([900.0, 600.0])
            .with_drag_and_drop(true),
        persistence_path: file,
        ..Default::default()
    };
    eframe::run_native_ext(
        APP_ID,
        options,
        Some(ctx),
        Box::new(move |cc| {
            Ok(Box::new(TransferLabApp::from_creation(
                cc, demo, saved, runs_dir,
            )))
        }),
    )
    .map_err(|e| anyhow!("could not open the window: {e}"))
}
