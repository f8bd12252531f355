//! The built-in `shapes` demo: small colour images of a light shape (circle, square,
//! triangle) on a card of a colour (red, green, blue), filled or drawn as an outline, with a random size,
//! position, rotation and a noisy background. Every image carries several labels at once
//! (shape, colour, fill: the multitask demo), and every class (e.g. `triangle-blue-outline`)
//! is described by attributes (the zero-shot demo), so classes that never appear in
//! training can still be named by their attribute signature.

use super::split::rng_for;
use super::{Domain, SampleShape};
use rand::Rng;
use rayon::prelude::*;

/// Side of the generated images.
pub const SHAPES_SIDE: usize = 28;

/// The shapes, colours and fills, in label order.
pub const SHAPES: [&str; 3] = ["circle", "square", "triangle"];
pub const COLOURS: [&str; 3] = ["red", "green", "blue"];
pub const FILLS: [&str; 2] = ["filled", "outline"];

/// The unseen classes of the zero-shot demo when none are chosen: every attribute value
/// still appears among the seen classes, but these combinations never do.
pub const DEFAULT_UNSEEN: [&str; 4] = [
    "circle-green-outline",
    "square-blue-filled",
    "triangle-red-filled",
    "square-red-outline",
];

/// Name of the class (shape, colour, fill).
pub fn class_name(shape: usize, colour: usize, fill: usize) -> String {
    format!("{}-{}-{}", SHAPES[shape], COLOURS[colour], FILLS[fill])
}

/// All 18 classes, sorted by name (the order a folder of class subfolders would have).
pub fn class_names() -> Vec<String> {
    let mut names: Vec<String> = (0..18)
        .map(|i| class_name(i / 6, (i / 2) % 3, i % 2))
        .collect();
    names.sort();
    names
}

/// (shape, colour, fill) of a class name made by [`class_name`].
pub fn parse_class(name: &str) -> Option<(usize, usize, usize)> {
    let parts: Vec<&str> = name.split('-').collect();
    let [shape, colour, fill] = parts.as_slice() else {
        return None;
    };
    let s = SHAPES.iter().position(|x| x == shape)?;
    let c = COLOURS.iter().position(|x| x == colour)?;
    let f = FILLS.iter().position(|x| x == fill)?;
    Some((s, c, f))
}

/// The attribute names of the zero-shot demo and each class's 0/1 signature.
pub fn attribute_table() -> (Vec<String>, Vec<(String, Vec<f32>)>) {
    let attributes: Vec<String> = SHAPES
        .iter()
        .chain(COLOURS.iter())
        .map(|s| s.to_string())
        .chain(std::iter::once("filled".to_string()))
        .collect();
    let rows = class_names()
        .into_iter()
        .map(|name| {
            let (s, c, f) = parse_class(&name).expect("own class name");
            let mut v = vec![0f32; 7];
            v[s] = 1.0;
            v[3 + c] = 1.0;
            v[6] = if f == 0 { 1.0 } else { 0.0 };
            (name, v)
        })
        .collect();
    (attributes, rows)
}

/// A labelled domain of `per_class` images for each of the 18 classes.
pub fn shapes_domain(seed: u64, per_class: usize) -> Domain {
    let classes = class_names();
    let n = per_class * classes.len();
    let rows: Vec<Vec<f32>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let (s, c, f) = parse_class(&classes[i % classes.len()]).expect("own class name");
            let mut rng = rng_for(
                seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                "shapes",
            );
            render_shape(s, c, f, &mut rng)
        })
        .collect();
    Domain {
        name: "shapes".into(),
        shape: SampleShape::Image {
            channels: 3,
            height: SHAPES_SIDE,
            width: SHAPES_SIDE,
        },
        x: rows.concat(),
        labels: Some((0..n).map(|i| (i % classes.len()) as u32).collect()),
        files: (0..n)
            .map(|i| {
                format!(
                    "demo:shapes/{}/{:04}",
                    classes[i % classes.len()],
                    i / classes.len()
                )
            })
            .collect(),
        class_names: classes,
        skipped: Vec::new(),
        warnings: Vec::new(),
    }
}

/// Signed distance (negative inside) from `p` to a shape of radius `r` centred at the
/// origin and rotated by `rot`.
fn signed_distance(shape: usize, p: (f32, f32), r: f32, rot: f32) -> f32 {
    let (s, c) = rot.sin_cos();
    let (x, y) = (c * p.0 + s * p.1, -s * p.0 + c * p.1);
    match shape {
        0 => (x * x + y * y).sqrt() - r,
        1 => {
            let h = r * 0.85;
            let (dx, dy) = (x.abs() - h, y.abs() - h);
            let outside = (dx.max(0.0).powi(2) + dy.max(0.0).powi(2)).sqrt();
            outside + dx.max(dy).min(0.0)
        }
        _ => {
            // Equilateral triangle: the largest distance to its three edge lines.
            (0..3)
                .map(|k| {
                    let a = std::f32::consts::TAU * k as f32 / 3.0 + std::f32::consts::FRAC_PI_2;
                    x * a.cos() + y * a.sin() - r * 0.55
                })
                .fold(f32::MIN, f32::max)
        }
    }
}

/// Render one image (3 channels, channel-major) of the given shape, colour and fill.
pub fn render_shape(shape: usize, colour: usize, fill: usize, rng: &mut impl Rng) -> Vec<f32> {
    let side = SHAPES_SIDE as f32;
    let r = side * rng.random_range(0.22..0.34f32);
    let (cx, cy) = (
        side / 2.0 + rng.random_range(-3.0..3.0f32),
        side / 2.0 + rng.random_range(-3.0..3.0f32),
    );
    let rot = rng.random_range(0.0..std::f32::consts::TAU);
    let width = rng.random_range(1.2..2.0f32);
    // A light shape on a card of the colour: the shape's outline looks the same on every
    // card, so what a network learns about shapes can carry over to unseen combinations.
    let light = rng.random_range(0.8..1.0f32);
    let fg = [light; 3];
    let mut bg: [f32; 3] = std::array::from_fn(|_| rng.random_range(0.0..0.2f32));
    bg[colour] = rng.random_range(0.45..0.7);
    let plane = SHAPES_SIDE * SHAPES_SIDE;
    let mut out = vec![0f32; 3 * plane];
    for py in 0..SHAPES_SIDE {
        for px in 0..SHAPES_SIDE {
            let p = (px as f32 + 0.5 - cx, py as f32 + 0.5 - cy);
            let d = signed_distance(shape, p, r, rot);
            let cover = if fill == 0 {
                (0.5 - d).clamp(0.0, 1.0)
            } else {
                (width / 2.0 + 0.5 - d.abs()).clamp(0.0, 1.0)
            };
            for ch in 0..3 {
                let noise = 0.06 * (rng.random_range(0.0..1.0f32) - 0.5);
                out[ch * plane + py * SHAPES_SIDE + px] =
                    (bg[ch] * (1.0 - cover) + fg[ch] * cover + noise).clamp(0.0, 1.0);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_its_own_signature_and_images_differ_by_fill() {
        let (attributes, rows) = attribute_table();
        assert_eq!(attributes.len(), 7);
        assert_eq!(rows.len(), 18);
        for (i, a) in rows.iter().enumerate() {
            for b in &rows[i + 1..] {
                assert_ne!(a.1, b.1, "{} and {} share a signature", a.0, b.0);
            }
        }
        // A filled shape covers more pixels than its outline.
        let mut rng = rng_for(1, "t");
        let filled: f32 = render_shape(0, 0, 0, &mut rng).iter().sum();
        let mut rng = rng_for(1, "t");
        let outline: f32 = render_shape(0, 0, 1, &mut rng).iter().sum();
        assert!(filled > outline * 1.3, "{filled} vs {outline}");
        let d = shapes_domain(3, 2);
        assert_eq!(d.len(), 36);
        assert_eq!(d.x.len(), 36 * 3 * 28 * 28);
        for u in DEFAULT_UNSEEN {
            assert!(d.class_names.iter().any(|c| c == u));
        }
    }
}
