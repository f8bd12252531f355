//! Relation-based distillation, seen rather than told: the cosine similarities of labelled
//! images sorted by class as three heatmaps (the teacher's, the student's before training
//! and after), with class blocks outlined, and the relation agreement on the target before
//! and after. A student that learnt the teacher's relations shows the teacher's blocks.

use super::format::pct;
use super::theme::Look;
use crate::method::relation_distill::Relations;
use egui::{Color32, RichText, Sense, Stroke, vec2};

/// The relations a run's method reported, if it reported any.
pub fn relations_of(extra: &serde_json::Value) -> Option<Relations> {
    serde_json::from_value(extra.get("relations")?.clone()).ok()
}

/// A value from 0 (dark blue) to 1 (yellow), on a perceptually even ramp.
fn ramp(t: f32) -> Color32 {
    const STOPS: [(f32, [u8; 3]); 4] = [
        (0.0, [48, 18, 90]),
        (0.4, [38, 110, 142]),
        (0.75, [60, 185, 110]),
        (1.0, [250, 230, 40]),
    ];
    let t = t.clamp(0.0, 1.0);
    let i = STOPS.iter().rposition(|(s, _)| *s <= t).unwrap_or(0).min(2);
    let ((a, ca), (b, cb)) = (STOPS[i], STOPS[i + 1]);
    let f = (t - a) / (b - a);
    let mix = |x: u8, y: u8| (x as f32 + (y as f32 - x as f32) * f).round() as u8;
    Color32::from_rgb(mix(ca[0], cb[0]), mix(ca[1], cb[1]), mix(ca[2], cb[2]))
}

/// One heatmap, `side` points square, each matrix scaled to its own range (the spaces
/// differ in scale; the structure is what counts). Class blocks of `classes` are outlined.
fn heatmap_ui(ui: &mut egui::Ui, title: &str, m: &[Vec<f32>], classes: &[u32], side: f32) {
    ui.vertical(|ui| {
        ui.label(RichText::new(title).strong());
        let (rect, response) = ui.allocate_exact_size(vec2(side, side), Sense::hover());
        let n = m.len();
        if n == 0 {
            ui.painter()
                .rect_filled(rect, 0.0, ui.visuals().faint_bg_color);
            ui.weak("not measured");
            return;
        }
        let off_diagonal = m
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.iter().enumerate().filter(move |(j, _)| *j != i))
            .map(|(_, v)| *v);
        let (lo, hi) = off_diagonal.fold((f32::MAX, f32::MIN), |(a, b), v| (a.min(v), b.max(v)));
        let span = (hi - lo).max(1e-6);
        let cell = side / n as f32;
        let painter = ui.painter_at(rect);
        for (i, row) in m.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let min = rect.min + vec2(j as f32 * cell, i as f32 * cell);
                let r = egui::Rect::from_min_size(min, vec2(cell + 0.5, cell + 0.5));
                painter.rect_filled(r, 0.0, ramp((v - lo) / span));
            }
        }
        // Class blocks along the diagonal.
        let stroke = Stroke::new(1.0, Color32::WHITE);
        let mut start = 0;
        for i in 1..=classes.len() {
            if i == classes.len() || classes[i] != classes[start] {
                let a = rect.min + vec2(start as f32 * cell, start as f32 * cell);
                let b = rect.min + vec2(i as f32 * cell, i as f32 * cell);
                painter.rect_stroke(
                    egui::Rect::from_two_pos(a, b),
                    0.0,
                    stroke,
                    egui::StrokeKind::Inside,
                );
                start = i;
            }
        }
        response.on_hover_text(format!(
            "{n} labelled images sorted by class (outlined); bright = similar. Range {lo:.2} to {hi:.2}."
        ));
    });
}

/// The three heatmaps and the agreement line.
pub fn relations_ui(ui: &mut egui::Ui, r: &Relations, look: Look) {
    ui.separator();
    ui.label(RichText::new("Relations between samples").strong());
    ui.label(format!(
        "Teacher: {}. Each square: how alike the features of two labelled images are, images sorted by class.",
        r.teacher_model
    ));
    let side = ((ui.available_width() - 40.0) / 3.0).clamp(120.0, 240.0);
    ui.horizontal(|ui| {
        heatmap_ui(ui, "Teacher", &r.teacher, &r.classes, side);
        heatmap_ui(ui, "Student before", &r.student_before, &r.classes, side);
        heatmap_ui(ui, "Student after", &r.student_after, &r.classes, side);
    });
    let text = format!(
        "Relation agreement on the target ({}-nearest-neighbour overlap with the teacher): {} before training, {} after",
        r.k,
        pct(r.agreement_before),
        pct(r.agreement_after)
    );
    match (r.agreement_before, r.agreement_after) {
        (Some(a), Some(b)) if b > a => ui.colored_label(look.good(), text),
        (Some(_), Some(_)) => ui.colored_label(look.warn(), text),
        _ => ui.label(text),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_colour_ramp_runs_from_dark_to_bright() {
        let lum = |c: Color32| c.r() as u32 + c.g() as u32 + c.b() as u32;
        assert!(lum(ramp(0.0)) < lum(ramp(0.5)));
        assert!(lum(ramp(0.5)) < lum(ramp(1.0)));
        assert_eq!(ramp(-1.0), ramp(0.0));
        assert_eq!(ramp(2.0), ramp(1.0));
    }
}
