//! Thumbnails: sample rows turned into textures once and cached, so drawing a grid of
//! images costs nothing after the first frame. Creation is capped per frame so that
//! opening a big gallery never stalls a frame.

use crate::data::{Domain, SampleShape};
use egui::{ColorImage, TextureHandle, TextureOptions};
use std::collections::HashMap;

/// New textures made in one frame, at most.
const PER_FRAME: usize = 96;
/// Textures kept before the cache is emptied.
const CAPACITY: usize = 6000;

/// Identifies one sample: the pair it belongs to, its domain and index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SampleKey {
    /// Which loaded pair (see `DataState::pair_id`).
    pub pair_id: u64,
    pub target: bool,
    pub index: usize,
}

/// The texture cache.
#[derive(Default)]
pub struct Thumbnails {
    textures: HashMap<SampleKey, TextureHandle>,
    made_this_frame: usize,
}

impl Thumbnails {
    /// Number of textures made so far.
    pub fn len(&self) -> usize {
        self.textures.len()
    }

    /// True when no texture has been made.
    pub fn is_empty(&self) -> bool {
        self.textures.is_empty()
    }

    /// Call once per frame before drawing.
    pub fn begin_frame(&mut self) {
        self.made_this_frame = 0;
        if self.textures.len() > CAPACITY {
            self.textures.clear();
        }
    }

    /// The texture of a sample, made on first use; None for non-image samples, or when this
    /// frame's budget is spent (the caller draws a placeholder and it appears next frame).
    pub fn get(
        &mut self,
        ctx: &egui::Context,
        domain: &Domain,
        key: SampleKey,
    ) -> Option<TextureHandle> {
        if let Some(t) = self.textures.get(&key) {
            return Some(t.clone());
        }
        if self.made_this_frame >= PER_FRAME {
            ctx.request_repaint();
            return None;
        }
        let image = sample_image(domain, key.index)?;
        self.made_this_frame += 1;
        let name = format!(
            "thumb-{}-{}-{}",
            key.pair_id,
            if key.target { "t" } else { "s" },
            key.index
        );
        let tex = ctx.load_texture(name, image, TextureOptions::NEAREST);
        self.textures.insert(key, tex.clone());
        Some(tex)
    }
}

/// A sample as an image (values in [0, 1], channel-major), or None for 2-D points.
pub fn sample_image(domain: &Domain, index: usize) -> Option<ColorImage> {
    let SampleShape::Image {
        channels,
        height,
        width,
    } = domain.shape
    else {
        return None;
    };
    if index >= domain.len() {
        return None;
    }
    let s = domain.sample(index);
    let plane = height * width;
    let to_u8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    if channels >= 3 {
        let rgb: Vec<u8> = (0..plane)
            .flat_map(|p| (0..3).map(move |c| to_u8(s[c * plane + p])))
            .collect();
        Some(ColorImage::from_rgb([width, height], &rgb))
    } else {
        let gray: Vec<u8> = s[..plane].iter().map(|&v| to_u8(v)).collect();
        Some(ColorImage::from_gray([width, height], &gray))
    }
}

/// Draw a thumbnail (or a placeholder square while it is being made).
pub fn thumb_ui(ui: &mut egui::Ui, tex: Option<&TextureHandle>, side: f32) -> egui::Response {
    match tex {
        Some(t) => {
            let r = ui.add(
                egui::Image::new(t)
                    .fit_to_exact_size(egui::vec2(side, side))
                    .sense(egui::Sense::hover()),
            );
            // A thin frame, so dark images stay distinct on a dark background.
            ui.painter().rect_stroke(
                r.rect,
                0.0,
                ui.visuals().widgets.noninteractive.bg_stroke,
                egui::StrokeKind::Inside,
            );
            r
        }
        None => {
            let (rect, resp) = ui.allocate_exact_size(egui::vec2(side, side), egui::Sense::hover());
            ui.painter()
                .rect_filled(rect, 2.0, ui.visuals().faint_bg_color);
            resp
        }
    }
}
