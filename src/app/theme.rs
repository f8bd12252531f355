//! Looks: light and dark themes, and the classroom presentation mode (large text, thick
//! lines, high contrast). Also the colours every view uses for the two domains and the
//! classes, so a domain has the same colour everywhere.

use egui::{Color32, FontId, TextStyle, Theme};
use serde::{Deserialize, Serialize};

/// The user's theme choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThemeChoice {
    #[default]
    Dark,
    Light,
}

impl ThemeChoice {
    /// The other theme.
    pub fn toggled(self) -> Self {
        match self {
            ThemeChoice::Dark => ThemeChoice::Light,
            ThemeChoice::Light => ThemeChoice::Dark,
        }
    }
}

/// Sizes that depend on presentation mode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Look {
    pub presentation: bool,
    pub dark: bool,
}

impl Look {
    /// Width of plot lines.
    pub fn line_width(self) -> f32 {
        if self.presentation { 3.5 } else { 1.8 }
    }

    /// Radius of scatter markers.
    pub fn marker_radius(self) -> f32 {
        if self.presentation { 3.5 } else { 2.2 }
    }

    /// Side of a thumbnail in the data view.
    pub fn thumb_side(self) -> f32 {
        if self.presentation { 56.0 } else { 40.0 }
    }

    /// The dark theme's colour or the light theme's.
    fn pick(self, dark: (u8, u8, u8), light: (u8, u8, u8)) -> Color32 {
        let (r, g, b) = if self.dark { dark } else { light };
        Color32::from_rgb(r, g, b)
    }

    /// Colour of the source domain.
    pub fn source(self) -> Color32 {
        self.pick((86, 156, 255), (20, 90, 200))
    }

    /// Colour of the target domain.
    pub fn target(self) -> Color32 {
        self.pick((255, 150, 60), (210, 95, 0))
    }

    /// Colour of a domain by index (0 = source, 1 = target).
    pub fn domain(self, target: bool) -> Color32 {
        if target { self.target() } else { self.source() }
    }

    /// Colour for a warning.
    pub fn warn(self) -> Color32 {
        self.pick((255, 200, 70), (150, 100, 0))
    }

    /// Colour for an error.
    pub fn error(self) -> Color32 {
        self.pick((255, 110, 110), (190, 20, 20))
    }

    /// Colour for good news.
    pub fn good(self) -> Color32 {
        self.pick((110, 220, 120), (20, 130, 40))
    }

    /// A distinct colour per class (a fixed palette, then hues).
    pub fn class(self, i: usize) -> Color32 {
        const PALETTE: [(u8, u8, u8); 10] = [
            (31, 119, 180),
            (255, 127, 14),
            (44, 160, 44),
            (214, 39, 40),
            (148, 103, 189),
            (140, 86, 75),
            (227, 119, 194),
            (127, 127, 127),
            (188, 189, 34),
            (23, 190, 207),
        ];
        if i < PALETTE.len() {
            let (r, g, b) = PALETTE[i];
            Color32::from_rgb(r, g, b)
        } else {
            let h = (i as f32 * 0.618_034).fract();
            egui::ecolor::Hsva::new(h, 0.75, 0.85, 1.0).into()
        }
    }
}

/// Apply theme and presentation mode to the context (call when either changes).
pub fn apply(ctx: &egui::Context, theme: ThemeChoice, presentation: bool) {
    ctx.set_theme(match theme {
        ThemeChoice::Dark => egui::ThemePreference::Dark,
        ThemeChoice::Light => egui::ThemePreference::Light,
    });
    for t in [Theme::Dark, Theme::Light] {
        let mut style = egui::Style {
            visuals: match t {
                Theme::Dark => egui::Visuals::dark(),
                Theme::Light => egui::Visuals::light(),
            },
            ..Default::default()
        };
        let scale = if presentation { 1.5 } else { 1.0 };
        style.text_styles = [
            (TextStyle::Small, FontId::proportional(10.0 * scale)),
            (TextStyle::Body, FontId::proportional(13.5 * scale)),
            (TextStyle::Button, FontId::proportional(13.5 * scale)),
            (TextStyle::Heading, FontId::proportional(19.0 * scale)),
            (TextStyle::Monospace, FontId::monospace(12.5 * scale)),
        ]
        .into();
        style.spacing.item_spacing = egui::vec2(8.0, 5.0) * scale.sqrt();
        style.spacing.button_padding = egui::vec2(6.0, 3.0) * scale.sqrt();
        style.spacing.interact_size.y *= scale;
        style.spacing.slider_width = 180.0 * scale;
        if presentation {
            // High contrast: pure backgrounds, strong text, thicker outlines.
            let (bg, fg) = match t {
                Theme::Dark => (Color32::BLACK, Color32::WHITE),
                Theme::Light => (Color32::WHITE, Color32::BLACK),
            };
            style.visuals.panel_fill = bg;
            style.visuals.window_fill = bg;
            style.visuals.extreme_bg_color = bg;
            style.visuals.override_text_color = Some(fg);
            for w in [
                &mut style.visuals.widgets.inactive,
                &mut style.visuals.widgets.hovered,
                &mut style.visuals.widgets.active,
            ] {
                w.bg_stroke.width = w.bg_stroke.width.max(1.0) * 1.8;
                w.fg_stroke.width *= 1.8;
            }
        }
        ctx.set_style_of(t, style);
    }
}

/// Engine text made drawable with the built-in fonts, which have no arrows or symbol
/// glyphs (they would show as boxes): "a → b" becomes "a to b".
pub fn plain(s: &str) -> String {
    s.replace(" → ", " to ")
        .replace('→', " to ")
        .replace('←', " from ")
        .replace(['✓', '✔'], "OK")
        .replace(['✗', '✘', '✖'], "x")
        .replace('⚠', "!")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_replaces_glyphs_the_fonts_lack() {
        assert_eq!(plain("thin → thick"), "thin to thick");
        assert_eq!(plain("a/b → c/d"), "a/b to c/d");
        assert_eq!(plain("no symbols"), "no symbols");
    }

    #[test]
    fn class_colours_are_distinct() {
        let look = Look {
            presentation: false,
            dark: true,
        };
        let colours: Vec<_> = (0..20).map(|i| look.class(i)).collect();
        for (i, a) in colours.iter().enumerate() {
            assert!(colours[i + 1..].iter().all(|b| b != a), "class {i}");
        }
    }
}
