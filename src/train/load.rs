//! Loading a run's two domains from a [`DataSource`] at the shape the model needs.

use super::config::DataSource;
use super::experiment::RunError;
use super::settings::{Invalid, Setting};
use crate::data::folder::{LoadOptions, decode_scan, image_to_values, looks_colour, scan_folder};
use crate::data::{
    DataError, Domain, DomainPair, LoadProgress, SampleShape, align_pair, generate_demo,
    pair::pair_without_source_labels,
};
use crate::model::{BackboneKind, ModelMeta};
use rayon::prelude::*;

/// The image shape to load at: `None` channels = decide from the images (colour → 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShapeHint {
    pub channels: Option<usize>,
    pub size: usize,
    /// Accept a source folder without class folders (for the methods that read no label:
    /// its images then share one placeholder class, [`crate::data::pair::NO_LABEL`]).
    pub flat_source: bool,
}

impl Default for ShapeHint {
    fn default() -> Self {
        Self {
            channels: None,
            size: crate::data::demo::DIGIT_SIDE,
            flat_source: false,
        }
    }
}

pub use crate::model::MAX_SIDE;

impl ShapeHint {
    /// The shape a run loads its images at: `size` (`--input-size`), else the starting
    /// model's, else the backbone's default; `channels` (`--channels`), else the model's,
    /// else the images decide. Both are checked against the backbone (the model's, else
    /// `backbone`, else the small CNN) before anything is loaded; a model's sidecar is
    /// checked like a flag, since a model file can come from anywhere.
    pub fn for_run(
        backbone: Option<BackboneKind>,
        meta: Option<&ModelMeta>,
        size: Option<usize>,
        channels: Option<usize>,
    ) -> Result<Self, RunError> {
        let info = meta
            .map(|m| m.backbone)
            .or(backbone)
            .unwrap_or(BackboneKind::SmallCnn)
            .info();
        let (size, size_from) = match (size, meta) {
            (Some(s), _) => (s, Setting::InputSize),
            (None, Some(m)) => (m.input_size[0], Setting::Init),
            (None, None) => (
                info.default_side().unwrap_or(crate::data::demo::DIGIT_SIDE),
                Setting::Backbone,
            ),
        };
        let invalid = |from: Setting, e: String| {
            RunError::Invalid(match from {
                Setting::Init => Invalid::setting(from, format!(" (its sidecar): {e}")),
                _ => Invalid::setting(from, format!(": {e}")),
            })
        };
        if !(1..=MAX_SIDE).contains(&size) {
            return Err(invalid(
                size_from,
                format!("{size} pixels a side; images are loaded at 1 to {MAX_SIDE}"),
            ));
        }
        info.check_side(size).map_err(|e| invalid(size_from, e))?;
        let (channels, channels_from) = match (channels, meta) {
            (Some(c), _) => (Some(c), Setting::Channels),
            (None, Some(m)) => (Some(m.channels.max(1)), Setting::Init),
            // A backbone that takes one channel count (a pretrained one) gets it.
            (None, None) => (
                match info.input {
                    crate::model::InputKind::Image { channels, .. } => channels,
                    crate::model::InputKind::Vector => None,
                },
                Setting::Backbone,
            ),
        };
        if let Some(c) = channels {
            info.check_channels(c)
                .map_err(|e| invalid(channels_from, e))?;
        }
        Ok(Self {
            channels,
            size,
            flat_source: false,
        })
    }
}

/// A generated image pair at the hint's side and channels (a vector pair as it is).
pub fn resize_pair(mut pair: DomainPair, hint: ShapeHint) -> DomainPair {
    if let SampleShape::Image { channels, .. } = pair.source.shape {
        let shape = SampleShape::Image {
            channels: hint.channels.unwrap_or(channels),
            height: hint.size,
            width: hint.size,
        };
        pair.source = convert_domain(pair.source, shape);
        pair.target = convert_domain(pair.target, shape);
    }
    pair
}

/// Convert an image domain to another channel count or size (used for generated demos).
pub fn convert_domain(domain: Domain, shape: SampleShape) -> Domain {
    let (
        SampleShape::Image {
            channels: c0,
            height: h0,
            width: w0,
        },
        SampleShape::Image {
            channels,
            height,
            width,
        },
    ) = (domain.shape, shape)
    else {
        return domain;
    };
    if domain.shape == shape {
        return domain;
    }
    let plane = h0 * w0;
    let rows: Vec<Vec<f32>> = (0..domain.len())
        .into_par_iter()
        .map(|i| {
            let s = domain.sample(i);
            let to_u8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            let img = if c0 == 1 {
                image::DynamicImage::ImageLuma8(
                    image::GrayImage::from_raw(
                        w0 as u32,
                        h0 as u32,
                        s.iter().map(|&v| to_u8(v)).collect(),
                    )
                    .expect("sizes match"),
                )
            } else {
                let raw: Vec<u8> = (0..plane)
                    .flat_map(|p| (0..3).map(move |c| to_u8(s[c * plane + p])))
                    .collect();
                image::DynamicImage::ImageRgb8(
                    image::RgbImage::from_raw(w0 as u32, h0 as u32, raw).expect("sizes match"),
                )
            };
            image_to_values(&img, channels, height, width)
        })
        .collect();
    Domain {
        shape,
        x: rows.concat(),
        ..domain
    }
}

/// Load (or generate) both domains and put them on one class index.
pub fn load_pair(
    source: &DataSource,
    hint: ShapeHint,
    progress: &mut dyn FnMut(&str, LoadProgress),
) -> Result<DomainPair, DataError> {
    match source {
        DataSource::Demo { name } => {
            progress("generating demo", LoadProgress { done: 0, total: 1 });
            let pair = resize_pair(generate_demo(name, 7)?, hint);
            progress("generating demo", LoadProgress { done: 1, total: 1 });
            Ok(pair)
        }
        DataSource::Folder { folder } => Err(DataError::Invalid(format!(
            "a domain pair needs a source and a target folder, got only {}",
            folder.display()
        ))),
        DataSource::Folders { source, target } => {
            let s_scan = scan_folder("source", source)?;
            let t_scan = scan_folder("target", target)?;
            let channels = hint.channels.unwrap_or_else(|| {
                if looks_colour(&s_scan) || looks_colour(&t_scan) {
                    3
                } else {
                    1
                }
            });
            let shape = SampleShape::Image {
                channels,
                height: hint.size,
                width: hint.size,
            };
            let opts = |role: &str, allow_flat| LoadOptions {
                role: role.into(),
                shape,
                allow_flat,
            };
            let s = decode_scan(
                &s_scan,
                source,
                &opts("source", hint.flat_source),
                &mut |p| progress("loading source", p),
            )?;
            let t = decode_scan(&t_scan, target, &opts("target", true), &mut |p| {
                progress("loading target", p)
            })?;
            match s.labels {
                None if hint.flat_source => pair_without_source_labels(s, t),
                _ => align_pair(s, t, &source.display().to_string()),
            }
        }
    }
}
