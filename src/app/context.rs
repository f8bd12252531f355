//! The per-frame context every view draws with (after rerun's `ViewerContext`): the
//! remembered settings, the runs, the loaded data, the thumbnail cache, the look and the
//! queue of commands. A view takes `(ui, ctx, its own state)` instead of ten borrows.

use super::commands::AppCommand;
use super::runs::Runs;
use super::settings::Settings;
use super::theme::Look;
use super::thumbs::Thumbnails;
use crate::data::DomainPair;
use std::sync::Arc;

/// What a view may read or ask for during one frame.
pub struct ViewContext<'a> {
    /// Remembered settings, the next run's config among them (views edit them in place).
    pub settings: &'a mut Settings,
    pub runs: &'a Runs,
    /// The loaded pair, if any.
    pub pair: Option<Arc<DomainPair>>,
    /// Changes with every load; keys thumbnails and cached results.
    pub pair_id: u64,
    pub thumbs: &'a mut Thumbnails,
    pub look: Look,
    /// Applied once, at the end of the frame.
    pub commands: &'a mut Vec<AppCommand>,
}

impl ViewContext<'_> {
    /// Large text, fewer controls: for a projector.
    pub fn presentation(&self) -> bool {
        self.settings.presentation
    }

    /// Queue a command for the end of the frame.
    pub fn command(&mut self, c: AppCommand) {
        self.commands.push(c);
    }
}
