//! Small drawing helpers shared by the views: a two-pane split and the error and
//! warning boxes.

use super::theme::{Look, plain};
use egui::RichText;

/// Split the remaining space into a left pane and a right pane of `right_width`; the
/// space is taken from `ui`, and the two panes are drawn into afterwards.
pub fn split_right(ui: &mut egui::Ui, right_width: f32) -> (egui::Ui, egui::Ui) {
    let rect = ui.available_rect_before_wrap();
    let gap = 12.0;
    let right_width = right_width.min(rect.width() * 0.7);
    let split = rect.right() - right_width;
    let left_rect = egui::Rect::from_min_max(rect.min, egui::pos2(split - gap, rect.bottom()));
    let right_rect = egui::Rect::from_min_max(egui::pos2(split, rect.top()), rect.max);
    let mut pane = |r: egui::Rect, salt: &str| {
        let mut child = ui.new_child(
            egui::UiBuilder::new()
                .id_salt(salt)
                .max_rect(r)
                .layout(egui::Layout::top_down(egui::Align::Min)),
        );
        child.shrink_clip_rect(r);
        child
    };
    let left = pane(left_rect, "left-pane");
    let right = pane(right_rect, "right-pane");
    ui.painter().vline(
        split - gap / 2.0,
        rect.y_range(),
        ui.visuals().widgets.noninteractive.bg_stroke,
    );
    ui.allocate_rect(rect, egui::Sense::hover());
    (left, right)
}

/// A red box: what went wrong (the message says what to do).
pub fn error_box_ui(ui: &mut egui::Ui, look: Look, title: &str, message: &str) {
    egui::Frame::group(ui.style())
        .stroke(egui::Stroke::new(1.5, look.error()))
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.colored_label(look.error(), RichText::new(title).strong());
            ui.label(plain(message));
        });
}

/// A yellow box with a warning.
pub fn warning_box_ui(ui: &mut egui::Ui, look: Look, message: &str) {
    egui::Frame::group(ui.style())
        .stroke(egui::Stroke::new(1.5, look.warn()))
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.colored_label(look.warn(), plain(message));
        });
}

/// A difference of accuracies (fractions) in points, red when below −`noise`, green when
/// above +`noise`; a dash when there is none.
pub fn delta_ui(ui: &mut egui::Ui, d: Option<f64>, noise: f64, look: Look) {
    match d {
        Some(d) => {
            let c = if d < -noise {
                look.error()
            } else if d > noise {
                look.good()
            } else {
                ui.visuals().text_color()
            };
            ui.colored_label(c, format!("{:+.1} pts", d * 100.0));
        }
        None => {
            ui.weak("—");
        }
    }
}
