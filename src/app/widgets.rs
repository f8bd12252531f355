//! Small drawing helpers shared by the views: a two-pane split, the error and warning
//! boxes, a signed difference, and the boxes and arrows of the network and stepping-stone
//! diagrams.

use super::theme::{Look, plain};
use egui::{Color32, RichText};

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

/// A striped table (rows alternate their shade), its columns as wide as their cells:
/// the column titles in bold, then the rows `body` adds (each ending with `end_row`).
pub fn table_ui<R>(
    ui: &mut egui::Ui,
    id: &str,
    titles: &[&str],
    body: impl FnOnce(&mut egui::Ui) -> R,
) -> R {
    egui::Grid::new(id)
        .striped(true)
        .num_columns(titles.len())
        .spacing([14.0, 4.0])
        .show(ui, |ui| {
            header_row_ui(ui, titles);
            body(ui)
        })
        .inner
}

/// A two-column grid of settings: a label, then its control, per row.
pub fn settings_grid(id: &str) -> egui::Grid {
    egui::Grid::new(id).num_columns(2).spacing([12.0, 6.0])
}

/// A label and the control it names (screen readers and kittest find the control by it).
pub fn labelled(ui: &mut egui::Ui, label: &str, control: impl egui::Widget) -> egui::Response {
    let l = ui.label(label);
    ui.add(control).labelled_by(l.id)
}

/// A table's header row: the column titles in bold, then the end of the row.
pub fn header_row_ui(ui: &mut egui::Ui, titles: &[&str]) {
    for t in titles {
        ui.label(RichText::new(*t).strong());
    }
    ui.end_row();
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
pub fn delta_ui(ui: &mut egui::Ui, d: Option<f64>, noise: f64, look: Look) -> egui::Response {
    match d {
        Some(d) => {
            let c = if d < -noise {
                look.error()
            } else if d > noise {
                look.good()
            } else {
                ui.visuals().text_color()
            };
            ui.colored_label(c, format!("{:+.1} pts", d * 100.0))
        }
        None => ui.weak("—"),
    }
}

/// What a box of a diagram stands for.
#[derive(Clone, Copy)]
pub enum BoxKind {
    Io,
    Stage { frozen: bool },
}

/// A box of a diagram (a network stage, or a domain), clickable.
pub fn stage_box_ui(ui: &mut egui::Ui, text: &str, kind: BoxKind, look: Look) -> egui::Response {
    let font = egui::TextStyle::Body.resolve(ui.style());
    let galley = ui
        .painter()
        .layout(text.to_string(), font, Color32::PLACEHOLDER, 200.0);
    let lock_room = if matches!(kind, BoxKind::Stage { frozen: true }) {
        18.0
    } else {
        0.0
    };
    let size = galley.size() + egui::vec2(20.0 + lock_room, 14.0);
    let (rect, resp) = ui.allocate_exact_size(size, egui::Sense::click());
    let name = text.replace('\n', " ");
    resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &name));
    let v = ui.visuals();
    let (fill, stroke, text_colour) = match kind {
        BoxKind::Io => (
            v.faint_bg_color,
            v.widgets.noninteractive.bg_stroke,
            v.text_color(),
        ),
        BoxKind::Stage { frozen: true } => (
            v.widgets.inactive.bg_fill,
            egui::Stroke::new(1.5, v.weak_text_color()),
            v.weak_text_color(),
        ),
        BoxKind::Stage { frozen: false } => (
            look.source().gamma_multiply(0.25),
            egui::Stroke::new(2.0, look.source()),
            v.strong_text_color(),
        ),
    };
    let stroke = if resp.hovered() {
        egui::Stroke::new(stroke.width + 1.0, v.strong_text_color())
    } else {
        stroke
    };
    ui.painter()
        .rect(rect, 6.0, fill, stroke, egui::StrokeKind::Inside);
    let text_pos = rect.center() - galley.size() / 2.0 - egui::vec2(lock_room / 2.0, 0.0);
    ui.painter().galley(text_pos, galley, text_colour);
    if lock_room > 0.0 {
        let s = 12.0;
        let at = egui::pos2(rect.right() - 6.0 - s / 2.0, rect.center().y);
        lock_shape(ui.painter(), at, s, text_colour);
    }
    resp
}

/// An arrow between two boxes.
pub fn arrow_ui(ui: &mut egui::Ui) {
    let h = ui.text_style_height(&egui::TextStyle::Heading);
    let (rect, _) = ui.allocate_exact_size(egui::vec2(h * 1.2, h * 2.0), egui::Sense::hover());
    let stroke = egui::Stroke::new(2.0, ui.visuals().text_color());
    let from = rect.left_center() + egui::vec2(2.0, 0.0);
    ui.painter()
        .arrow(from, egui::vec2(rect.width() - 4.0, 0.0), stroke);
}

/// A small padlock: the frozen-stage mark (drawn, so it needs no icon font).
fn lock_shape(painter: &egui::Painter, center: egui::Pos2, size: f32, colour: Color32) {
    let body = egui::Rect::from_center_size(
        center + egui::vec2(0.0, size * 0.2),
        egui::vec2(size, size * 0.7),
    );
    painter.rect_filled(body, size * 0.12, colour);
    let stroke = egui::Stroke::new((size * 0.16).max(1.5), colour);
    let r = size * 0.3;
    let top = body.center_top();
    let n = 10;
    let points: Vec<egui::Pos2> = (0..=n)
        .map(|i| {
            let a = std::f32::consts::PI * i as f32 / n as f32;
            top + egui::vec2(-r * a.cos(), -r * a.sin() - size * 0.05)
        })
        .collect();
    painter.line(points, stroke);
}
