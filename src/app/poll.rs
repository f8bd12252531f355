//! Polling, once per frame before drawing: drain the workers and background jobs
//! (time-boxed), keep the analysis and network summary in step with the settings, reload
//! the data when the image size changes, save runs that ended for the next session, and
//! queue dropped folders.

use super::commands::AppCommand;
use super::state::{NOTICE_SECS, TransferLabApp};
use super::theme::apply;
use crate::data::SampleShape;
use crate::train::DataSource;
use std::path::PathBuf;
use std::time::{Duration, Instant};

impl TransferLabApp {
    /// Drain workers and background jobs; handle dropped folders.
    pub(super) fn logic_step(&mut self, ctx: &egui::Context) {
        self.frame_start = Some(Instant::now());
        self.thumbs.begin_frame();
        let look = (self.settings.theme, self.settings.presentation);
        if self.applied_look != Some(look) {
            apply(ctx, look.0, look.1);
            self.applied_look = Some(look);
        }
        if self.data.poll(ctx) {
            self.on_new_pair();
        }
        self.reload_at_wanted_side();
        self.runs.poll(ctx, self.settings.map_layer);
        match &self.options.runs_dir {
            Some(dir) => super::saved_runs::keep_ended(&mut self.runs, dir),
            None => drop(self.runs.take_ended()),
        }
        let pair = self.data.pair().cloned();
        self.similarity.poll(
            ctx,
            pair.as_ref().map(|p| (p, self.data.pair_id)),
            &self.settings,
            &self.runs,
        );
        self.setup.poll(ctx, &self.settings.config, pair.as_deref());
        self.compare.poll(&mut self.settings.export_dir);
        while let Ok(r) = self.shots.1.try_recv() {
            match r {
                Ok(p) => self.notify(format!("Saved {}", p.display()), false),
                Err(e) => self.notify(format!("Could not save the plot: {e}"), true),
            }
        }
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        if !dropped.is_empty() {
            self.commands.push(AppCommand::Dropped(dropped));
        }
        if self
            .notice
            .as_ref()
            .is_some_and(|n| n.at.elapsed() > Duration::from_secs(NOTICE_SECS))
        {
            self.notice = None;
        }
    }

    fn on_new_pair(&mut self) {
        let Some(loaded) = &self.data.loaded else {
            return;
        };
        match &loaded.origin {
            DataSource::Demo { name } => {
                self.settings.demo = name.clone();
            }
            DataSource::Folders { source, target } => {
                self.settings.source_folder = source.display().to_string();
                self.settings.target_folder = target.display().to_string();
            }
            DataSource::Folder { folder } => {
                self.settings.source_folder = folder.display().to_string();
            }
        }
        // Labelled target images cannot be asked of an unlabeled target.
        if !loaded.pair.target_labelled() {
            self.settings.config.target_labels = 0;
        }
    }

    /// Reload the data when the image size or channels it should have changed (a new
    /// backbone, or the "Image size" control), unless a run is training or that size was already tried.
    fn reload_at_wanted_side(&mut self) {
        if self.data.is_loading() || self.runs.is_running() {
            return;
        }
        let Some(loaded) = &self.data.loaded else {
            return;
        };
        let SampleShape::Image {
            height, channels, ..
        } = loaded.pair.source.shape
        else {
            return;
        };
        let want = self.wanted_shape();
        let differs = height != want.size || want.channels.is_some_and(|c| c != channels);
        if differs && self.data.requested != Some(want) {
            let origin = loaded.origin.clone();
            self.load(origin);
        }
    }
}
