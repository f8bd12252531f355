//! The built-in demos made of real images, shipped in `assets/demos/` (credited in
//! `assets/NOTICE.md`, reproduced by `scripts/make-demo-assets.py`): Fashion-MNIST with 10
//! labelled images per class, and real MNIST digits against the same kind of digits
//! blended into crops of CC0 photos (MNIST-M). Each domain is one PNG atlas of 28×28
//! tiles, 20 a row, class-major; it is embedded in the binary and decoded only when its
//! demo is asked for, so the app's cold start does not pay for it.

use super::{DataError, Domain, SampleShape};

/// Side of an atlas tile.
const TILE: usize = 28;
/// Tiles per atlas row.
const COLUMNS: usize = 20;

/// Fashion-MNIST's ten classes, in label order.
pub const FASHION_CLASSES: [&str; 10] = [
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
];

/// One shipped domain: its atlas and how many tiles each class has.
struct Atlas {
    png: &'static [u8],
    per_class: usize,
    channels: usize,
}

impl Atlas {
    /// A PNG of `per_class` tiles per class, each with `channels` channels.
    const fn new(png: &'static [u8], per_class: usize, channels: usize) -> Self {
        Self {
            png,
            per_class,
            channels,
        }
    }
}

/// A shipped atlas `assets/demos/NAME.png` with its tiles per class and channels.
macro_rules! atlas {
    ($name:literal, $per_class:literal, $channels:literal) => {
        Atlas::new(
            include_bytes!(concat!("../../assets/demos/", $name, ".png")),
            $per_class,
            $channels,
        )
    };
}

const FASHION_SOURCE: Atlas = atlas!("fashion-source", 10, 1);
const FASHION_TARGET: Atlas = atlas!("fashion-target", 50, 1);
const MNIST_SOURCE: Atlas = atlas!("mnist-source", 40, 1);
const MNISTM_TARGET: Atlas = atlas!("mnistm-target", 30, 3);

/// Images per class of a real demo's source and target (what is shipped).
pub fn shipped_per_class(demo: &str) -> Option<(usize, usize)> {
    let (s, t) = atlases(demo)?;
    Some((s.per_class, t.per_class))
}

fn atlases(demo: &str) -> Option<(Atlas, Atlas)> {
    match demo {
        "fashion-10" => Some((FASHION_SOURCE, FASHION_TARGET)),
        "mnist-m" => Some((MNIST_SOURCE, MNISTM_TARGET)),
        _ => None,
    }
}

/// The source and target of a real demo, at most `per_class` images per class each (the
/// first ones of each class); None when `demo` is not a real demo. Both domains get the
/// larger channel count of the two (gray digits are repeated to RGB against MNIST-M).
pub fn load_real_demo(
    demo: &str,
    source_per_class: usize,
    target_per_class: usize,
) -> Option<Result<(Domain, Domain), DataError>> {
    let (s, t) = atlases(demo)?;
    let channels = s.channels.max(t.channels);
    let classes: Vec<String> = match demo {
        "fashion-10" => FASHION_CLASSES.iter().map(|c| c.to_string()).collect(),
        _ => (0..10).map(|d| d.to_string()).collect(),
    };
    let load = |atlas: &Atlas, role: &str, per_class: usize| {
        decode(atlas, demo, role, per_class, channels, &classes)
    };
    Some(
        load(&s, "source", source_per_class)
            .and_then(|src| Ok((src, load(&t, "target", target_per_class)?))),
    )
}

fn decode(
    atlas: &Atlas,
    demo: &str,
    role: &str,
    per_class: usize,
    channels: usize,
    classes: &[String],
) -> Result<Domain, DataError> {
    let img = image::load_from_memory_with_format(atlas.png, image::ImageFormat::Png)
        .map_err(|e| DataError::Invalid(format!("the shipped {demo} {role} images: {e}")))?;
    let rgb = img.to_rgb8();
    let keep = per_class.min(atlas.per_class);
    let n = keep * classes.len();
    let plane = TILE * TILE;
    let mut x = Vec::with_capacity(n * channels * plane);
    let mut labels = Vec::with_capacity(n);
    let mut files = Vec::with_capacity(n);
    for (class, name) in classes.iter().enumerate() {
        for j in 0..keep {
            let tile = class * atlas.per_class + j;
            let (tx, ty) = ((tile % COLUMNS) * TILE, (tile / COLUMNS) * TILE);
            if (ty + TILE) as u32 > rgb.height() {
                return Err(DataError::Invalid(format!(
                    "the shipped {demo} {role} atlas is too small for {} images per class",
                    atlas.per_class
                )));
            }
            let px = |xx: usize, yy: usize| rgb.get_pixel((tx + xx) as u32, (ty + yy) as u32).0;
            for c in 0..channels {
                for yy in 0..TILE {
                    for xx in 0..TILE {
                        let p = px(xx, yy);
                        // A gray atlas has equal channels: channel 0 is its value.
                        let v = if atlas.channels == 1 { p[0] } else { p[c] };
                        x.push(v as f32 / 255.0);
                    }
                }
            }
            labels.push(class as u32);
            files.push(format!("demo:{demo}/{role}/{name}/{j:05}"));
        }
    }
    Ok(Domain {
        name: role.to_string(),
        shape: SampleShape::Image {
            channels,
            height: TILE,
            width: TILE,
        },
        x,
        labels: Some(labels),
        class_names: classes.to_vec(),
        files,
        skipped: Vec::new(),
        warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_atlases_decode_to_labelled_domains() {
        let (s, t) = load_real_demo("mnist-m", 3, 2).unwrap().unwrap();
        assert_eq!((s.len(), t.len()), (30, 20));
        assert_eq!(s.shape, t.shape);
        assert_eq!(s.class_counts(), vec![3; 10]);
        // Tiles are not blank: real digits have dark and bright pixels.
        let first = s.sample(0);
        let (lo, hi) = first
            .iter()
            .fold((1f32, 0f32), |(l, h), &v| (l.min(v), h.max(v)));
        assert!(lo < 0.1 && hi > 0.9, "{lo} {hi}");
        let (s, t) = load_real_demo("fashion-10", 100, 100).unwrap().unwrap();
        assert_eq!((s.len(), t.len()), (100, 500));
        assert_eq!(s.class_names[9], "ankle-boot");
        assert!(load_real_demo("digits-rotated", 1, 1).is_none());
    }
}
