//! Frame timing: how long each frame's work took, and its 95th percentile, shown in a
//! small debug overlay (and read by the frame-time test).

use std::collections::VecDeque;
use std::time::Duration;

/// Frames kept for the statistics.
const WINDOW: usize = 300;

/// Recent frame times.
#[derive(Default)]
pub struct FrameStats {
    /// Our own work per frame: draining events and drawing.
    ui_times: VecDeque<f32>,
    /// eframe's measure of the previous frame (drawing plus tessellation and painting).
    cpu_times: VecDeque<f32>,
}

fn push(q: &mut VecDeque<f32>, v: f32) {
    if q.len() == WINDOW {
        q.pop_front();
    }
    q.push_back(v);
}

/// The `p`-th percentile (0..=1) of `values`, in seconds.
pub fn percentile(values: impl Iterator<Item = f32>, p: f32) -> Option<f32> {
    let mut v: Vec<f32> = values.collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let i = ((v.len() - 1) as f32 * p).round() as usize;
    Some(v[i.min(v.len() - 1)])
}

impl FrameStats {
    /// Record one frame's own work.
    pub fn record_ui(&mut self, d: Duration) {
        push(&mut self.ui_times, d.as_secs_f32());
    }

    /// Record eframe's CPU time of the previous frame.
    pub fn record_cpu(&mut self, secs: f32) {
        push(&mut self.cpu_times, secs);
    }

    /// 95th percentile of our own work per frame, in ms.
    pub fn ui_p95_ms(&self) -> Option<f32> {
        percentile(self.ui_times.iter().copied(), 0.95).map(|s| s * 1000.0)
    }

    /// 95th percentile of eframe's whole-frame CPU time, in ms.
    pub fn cpu_p95_ms(&self) -> Option<f32> {
        percentile(self.cpu_times.iter().copied(), 0.95).map(|s| s * 1000.0)
    }

    /// Frames recorded.
    pub fn frames(&self) -> usize {
        self.ui_times.len()
    }

    /// Draw the overlay in a corner.
    pub fn overlay_ui(&self, ctx: &egui::Context) {
        egui::Area::new(egui::Id::unique("frame-stats"))
            .anchor(egui::Align2::RIGHT_BOTTOM, egui::vec2(-8.0, -8.0))
            .interactable(false)
            .show(ctx, |ui| {
                egui::Frame::popup(ui.style()).show(ui, |ui| {
                    let f = |v: Option<f32>| v.map(|v| format!("{v:.1} ms")).unwrap_or("—".into());
                    let text = format!(
                        "frame time p95: app {} · whole frame {} (last {} frames)",
                        f(self.ui_p95_ms()),
                        f(self.cpu_p95_ms()),
                        self.frames()
                    );
                    ui.add(
                        egui::Label::new(egui::RichText::new(text).monospace())
                            .wrap_mode(egui::TextWrapMode::Extend),
                    );
                });
            });
    }
}
