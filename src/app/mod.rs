//! The eframe app: draws the engine's state and talks to the training worker only by
//! messages. Heavy work (data generation/loading, training) never runs on the UI thread.

pub mod state;
pub mod training;

pub use state::TransferLabApp;

use anyhow::{Result, anyhow};

/// Open the app window on a built-in demo.
pub fn run_native(demo: Option<String>) -> Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("transferlab")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([800.0, 500.0]),
        ..Default::default()
    };
    eframe::run_native(
        "transferlab",
        options,
        Box::new(move |cc| Ok(Box::new(TransferLabApp::new(&cc.egui_ctx, demo.as_deref())))),
    )
    .map_err(|e| anyhow!("could not open the window: {e}"))
}
