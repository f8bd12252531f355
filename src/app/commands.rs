//! What the panels ask for while they draw. Panels only read state and queue commands;
//! the app applies the queue once, at the end of the frame, so no panel mutates what
//! another is still drawing.

use super::export::ExportKind;
use crate::method::MethodKind;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The views, in the order of the tab bar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum View {
    #[default]
    Data,
    Similarity,
    Setup,
    Training,
    Compare,
    Predict,
}

impl View {
    /// All views, in tab order.
    pub const ALL: [View; 6] = [
        View::Data,
        View::Similarity,
        View::Setup,
        View::Training,
        View::Compare,
        View::Predict,
    ];

    /// Tab title.
    pub fn title(self) -> &'static str {
        match self {
            View::Data => "1 Data",
            View::Similarity => "2 Similarity",
            View::Setup => "3 Setup",
            View::Training => "4 Training",
            View::Compare => "5 Compare",
            View::Predict => "6 Predict",
        }
    }
}

/// A request raised while drawing.
#[derive(Clone, Debug, PartialEq)]
pub enum AppCommand {
    /// Generate a built-in demo pair.
    LoadDemo(String),
    /// Load the two folders of the path fields.
    LoadFolders {
        source: PathBuf,
        target: PathBuf,
    },
    /// Folders dropped on the window.
    Dropped(Vec<PathBuf>),
    StartTraining,
    Pause,
    Resume,
    Stop,
    ShowView(View),
    /// Set method, freezing depth and labelled-target count (the advisor's "Apply").
    ApplyAdvice {
        method: MethodKind,
        freeze: usize,
        target_labels: Option<usize>,
    },
    /// Start the next run from this run's model.
    UseRunAsInit(usize),
    /// Export something of a run.
    Export {
        run: usize,
        kind: ExportKind,
    },
    /// Forget a finished run.
    RemoveRun(usize),
}
