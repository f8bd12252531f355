//! Built-in domain pairs (nothing is downloaded): synthetic digits drawn on the spot from
//! stroke templates with a random affine jitter, under several shifts; two moons → rotated
//! two moons for decision-boundary pictures; and real images shipped in `assets/demos/`
//! (Fashion-MNIST, MNIST → MNIST-M; see `real_demos`).

use super::split::rng_for;
use super::{DataError, Domain, DomainPair, SampleShape, align_pair};
use rand::Rng;
use rayon::prelude::*;

/// A built-in demo pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoInfo {
    pub name: &'static str,
    pub title: &'static str,
    /// What the shift is, in one sentence.
    pub description: &'static str,
    /// Images per class in the source and the target.
    pub per_class: (usize, usize),
}

/// The built-in demos; the first is the app's cold-start demo.
pub const DEMOS: [DemoInfo; 7] = [
    DemoInfo {
        name: "digits-rotated",
        title: "Digits: thin → thick, rotated, noisy",
        description: "clean thin strokes (source) against thick, rotated strokes on a noisy background (target)",
        per_class: (200, 100),
    },
    DemoInfo {
        name: "digits-inverted",
        title: "Digits: white on black → black on white",
        description: "the same kind of digits with the contrast inverted in the target",
        per_class: (200, 100),
    },
    DemoInfo {
        name: "digits-colour",
        title: "Digits: gray → coloured backgrounds",
        description: "gray digits (source) against digits on random coloured backgrounds (target), MNIST-M style",
        per_class: (200, 100),
    },
    DemoInfo {
        name: "digits-steps",
        title: "Digits: upright → rotated 60°, via 20° and 40°",
        description: "upright digits (source) against digits rotated by 60° (target), with stepping-stone domains rotated by 20° and 40° (--stepping-stones)",
        per_class: (200, 100),
    },
    DemoInfo {
        name: "moons",
        title: "Two moons → rotated two moons",
        description: "two interleaved half-circles (source) and the same rotated by 40° (target): 2-D points",
        per_class: (200, 200),
    },
    DemoInfo {
        name: "fashion-10",
        title: "Fashion-MNIST: 10 labelled images per class",
        description: "real Fashion-MNIST clothing images: only 10 labelled per class to train on (source) and 50 per class to test on (target) — the small CNN from scratch against ImageNet features (EfficientNet-Lite0, 64 px or more)",
        per_class: (10, 50),
    },
    DemoInfo {
        name: "mnist-m",
        title: "MNIST → MNIST-M (digits on real photos)",
        description: "real MNIST digits (source) against other MNIST digits blended into crops of CC0 photos, |photo − digit| (target), the DANN paper's MNIST-M",
        per_class: (40, 30),
    },
];

/// Look a demo up by name.
pub fn find_demo(name: &str) -> Result<DemoInfo, DataError> {
    DEMOS
        .iter()
        .copied()
        .find(|d| d.name == name)
        .ok_or_else(|| DataError::UnknownDemo {
            name: name.to_string(),
            known: DEMOS.map(|d| d.name).join(", "),
        })
}

/// Generate a demo pair at its default size.
pub fn generate_demo(name: &str, seed: u64) -> Result<DomainPair, DataError> {
    let info = find_demo(name)?;
    generate_demo_sized(name, seed, info.per_class.0, info.per_class.1)
}

/// Generate a demo pair with the given number of samples per class in each domain.
pub fn generate_demo_sized(
    name: &str,
    seed: u64,
    source_per_class: usize,
    target_per_class: usize,
) -> Result<DomainPair, DataError> {
    let info = find_demo(name)?;
    if let Some(real) =
        super::real_demos::load_real_demo(info.name, source_per_class, target_per_class)
    {
        let (source, target) = real?;
        return align_pair(source, target, &format!("demo:{name}"));
    }
    let (source, target) = match info.name {
        "moons" => (
            moons(seed, "source", source_per_class, 0.0),
            moons(seed, "target", target_per_class, 40f64.to_radians()),
        ),
        "digits-rotated" => (
            digits(seed, name, "source", source_per_class, Style::Clean),
            digits(
                seed,
                name,
                "target",
                target_per_class,
                Style::ThickRotatedNoisy,
            ),
        ),
        "digits-steps" => (
            digits(seed, name, "source", source_per_class, Style::Clean),
            digits(
                seed,
                name,
                "target",
                target_per_class,
                Style::Rotated(STEPS_ANGLES[STEPS_ANGLES.len() - 1]),
            ),
        ),
        "digits-inverted" => (
            digits(seed, name, "source", source_per_class, Style::Clean),
            digits(seed, name, "target", target_per_class, Style::Inverted),
        ),
        _ => (
            digits(seed, name, "source", source_per_class, Style::GrayRgb),
            digits(seed, name, "target", target_per_class, Style::Coloured),
        ),
    };
    align_pair(source, target, &format!("demo:{name}"))
}

/// Rotation (degrees) of the `digits-steps` demo's intermediate domains and (last) target.
pub const STEPS_ANGLES: [i16; 3] = [20, 40, 60];

/// The built-in stepping-stone domains between a demo's source and target (unlabeled as
/// far as training goes; their labels are only used to report accuracy on them), in
/// order from the source side. Empty for demos that have none.
pub fn demo_intermediates(name: &str, seed: u64, per_class: usize) -> Vec<Domain> {
    match name {
        "digits-steps" => STEPS_ANGLES[..STEPS_ANGLES.len() - 1]
            .iter()
            .enumerate()
            .map(|(i, &angle)| {
                digits(
                    seed,
                    name,
                    &format!("via-{}", i + 1),
                    per_class,
                    Style::Rotated(angle),
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Digit images of the given style (used by demos, tests and benchmarks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Clean,
    /// Clean strokes rotated by this many degrees (clockwise on screen).
    Rotated(i16),
    ThickRotatedNoisy,
    Inverted,
    GrayRgb,
    Coloured,
}

/// Side of the generated digit images.
pub const DIGIT_SIDE: usize = 28;

/// Stroke templates of the digits 0–9 in a unit box (x right, y down); each digit is one
/// or more polylines.
fn glyph(digit: usize) -> Vec<Vec<(f32, f32)>> {
    let ellipse = |cx: f32, cy: f32, rx: f32, ry: f32, n: usize| -> Vec<(f32, f32)> {
        (0..=n)
            .map(|i| {
                let t = i as f32 / n as f32 * std::f32::consts::TAU;
                (cx + rx * t.cos(), cy + ry * t.sin())
            })
            .collect()
    };
    match digit {
        0 => vec![ellipse(0.5, 0.5, 0.28, 0.4, 16)],
        1 => vec![vec![(0.35, 0.25), (0.52, 0.1), (0.52, 0.9)]],
        2 => vec![vec![
            (0.22, 0.28),
            (0.32, 0.12),
            (0.5, 0.08),
            (0.7, 0.13),
            (0.78, 0.3),
            (0.7, 0.48),
            (0.22, 0.9),
            (0.82, 0.9),
        ]],
        3 => vec![vec![
            (0.22, 0.15),
            (0.5, 0.08),
            (0.76, 0.18),
            (0.74, 0.38),
            (0.45, 0.5),
            (0.78, 0.6),
            (0.8, 0.8),
            (0.5, 0.92),
            (0.2, 0.84),
        ]],
        4 => vec![vec![(0.66, 0.9), (0.66, 0.1), (0.16, 0.64), (0.86, 0.64)]],
        5 => vec![vec![
            (0.8, 0.1),
            (0.28, 0.1),
            (0.24, 0.45),
            (0.55, 0.4),
            (0.78, 0.55),
            (0.78, 0.78),
            (0.5, 0.92),
            (0.2, 0.85),
        ]],
        6 => vec![vec![
            (0.7, 0.1),
            (0.42, 0.28),
            (0.26, 0.6),
            (0.3, 0.85),
            (0.55, 0.92),
            (0.75, 0.78),
            (0.72, 0.58),
            (0.5, 0.5),
            (0.27, 0.62),
        ]],
        7 => vec![vec![(0.16, 0.1), (0.84, 0.1), (0.42, 0.9)]],
        8 => vec![
            ellipse(0.5, 0.29, 0.2, 0.19, 12),
            ellipse(0.5, 0.7, 0.25, 0.21, 12),
        ],
        _ => vec![vec![
            (0.74, 0.42),
            (0.5, 0.52),
            (0.28, 0.4),
            (0.3, 0.18),
            (0.5, 0.08),
            (0.72, 0.2),
            (0.74, 0.42),
            (0.66, 0.9),
        ]],
    }
}

fn seg_distance(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (qx, qy) = (a.0 + t * dx - p.0, a.1 + t * dy - p.1);
    (qx * qx + qy * qy).sqrt()
}

fn gaussian(rng: &mut impl Rng) -> f32 {
    let u1: f32 = rng.random_range(1e-7..1.0);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// Render one digit as a `side×side` gray image in [0, 1] (white stroke on black).
pub fn render_digit(digit: usize, style: Style, rng: &mut impl Rng) -> Vec<f32> {
    let side = DIGIT_SIDE as f32;
    let thick = style == Style::ThickRotatedNoisy;
    let base_rot: f32 = match style {
        Style::ThickRotatedNoisy => 0.55,
        Style::Rotated(deg) => (deg as f32).to_radians(),
        _ => 0.0,
    };
    let rot = base_rot + rng.random_range(-0.2..0.2f32);
    let scale = side * rng.random_range(0.62..0.78f32);
    let shear = rng.random_range(-0.25..0.25f32);
    let (tx, ty) = (
        rng.random_range(-1.5..1.5f32),
        rng.random_range(-1.5..1.5f32),
    );
    let half_width = if thick {
        rng.random_range(1.9..2.6f32)
    } else {
        rng.random_range(0.8..1.3f32)
    };
    let (s, c) = rot.sin_cos();
    let strokes: Vec<Vec<(f32, f32)>> = glyph(digit)
        .into_iter()
        .map(|line| {
            line.into_iter()
                .map(|(x, y)| {
                    let (x, y) = (
                        x - 0.5 + rng.random_range(-0.03..0.03f32),
                        y - 0.5 + rng.random_range(-0.03..0.03f32),
                    );
                    let x = x + shear * y;
                    let (x, y) = (c * x - s * y, s * x + c * y);
                    (side / 2.0 + tx + x * scale, side / 2.0 + ty + y * scale)
                })
                .collect()
        })
        .collect();
    let mut img = vec![0f32; DIGIT_SIDE * DIGIT_SIDE];
    for py in 0..DIGIT_SIDE {
        for px in 0..DIGIT_SIDE {
            let p = (px as f32 + 0.5, py as f32 + 0.5);
            let mut d = f32::MAX;
            for line in &strokes {
                for w in line.windows(2) {
                    d = d.min(seg_distance(p, w[0], w[1]));
                }
            }
            img[py * DIGIT_SIDE + px] = (half_width + 0.5 - d).clamp(0.0, 1.0);
        }
    }
    if thick {
        for v in &mut img {
            *v = (*v * 0.85 + 0.1 + 0.12 * gaussian(rng)).clamp(0.0, 1.0);
        }
    }
    if style == Style::Inverted {
        for v in &mut img {
            *v = 1.0 - *v;
        }
    }
    img
}

/// Render one digit in its style, with the style's channel count.
fn render_sample(digit: usize, style: Style, rng: &mut impl Rng) -> Vec<f32> {
    let gray = render_digit(digit, style, rng);
    match style {
        Style::GrayRgb => [gray.as_slice(); 3].concat(),
        Style::Coloured => {
            let bg: [f32; 3] = std::array::from_fn(|_| rng.random_range(0.0..1.0f32));
            let fg: [f32; 3] = std::array::from_fn(|i| {
                let v: f32 = rng.random_range(0.0..1.0);
                // Keep the stroke readable against the background.
                if (v - bg[i]).abs() < 0.35 {
                    1.0 - bg[i]
                } else {
                    v
                }
            });
            let mut out = Vec::with_capacity(3 * gray.len());
            for ch in 0..3 {
                out.extend(gray.iter().map(|&g| {
                    (bg[ch] * (1.0 - g) + fg[ch] * g + 0.05 * gaussian(rng)).clamp(0.0, 1.0)
                }));
            }
            out
        }
        _ => gray,
    }
}

/// A labelled domain of generated digits, `per_class` per digit.
pub fn digits(seed: u64, demo: &str, role: &str, per_class: usize, style: Style) -> Domain {
    let channels = if matches!(style, Style::GrayRgb | Style::Coloured) {
        3
    } else {
        1
    };
    let n = per_class * 10;
    let rows: Vec<Vec<f32>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut rng = rng_for(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15), role);
            render_sample(i % 10, style, &mut rng)
        })
        .collect();
    Domain {
        name: role.to_string(),
        shape: SampleShape::Image {
            channels,
            height: DIGIT_SIDE,
            width: DIGIT_SIDE,
        },
        x: rows.concat(),
        labels: Some((0..n).map(|i| (i % 10) as u32).collect()),
        class_names: (0..10).map(|d| d.to_string()).collect(),
        files: (0..n)
            .map(|i| format!("demo:{demo}/{role}/{}/{:05}", i % 10, i / 10))
            .collect(),
        skipped: Vec::new(),
        warnings: Vec::new(),
    }
}

/// Two moons (`per_class` points each), rotated by `angle` radians about their centre.
pub fn moons(seed: u64, role: &str, per_class: usize, angle: f64) -> Domain {
    let mut rng = rng_for(seed, role);
    let (s, c) = (angle.sin() as f32, angle.cos() as f32);
    let (cx, cy) = (0.5f32, 0.25f32);
    let mut x = Vec::with_capacity(per_class * 4);
    let mut labels = Vec::with_capacity(per_class * 2);
    for i in 0..per_class * 2 {
        let class = i % 2;
        let t = rng.random_range(0.0..std::f32::consts::PI);
        let (px, py) = if class == 0 {
            (t.cos(), t.sin())
        } else {
            (1.0 - t.cos(), 0.5 - t.sin())
        };
        let (px, py) = (px + 0.1 * gaussian(&mut rng), py + 0.1 * gaussian(&mut rng));
        let (dx, dy) = (px - cx, py - cy);
        x.push(cx + c * dx - s * dy);
        x.push(cy + s * dx + c * dy);
        labels.push(class as u32);
    }
    Domain {
        name: role.to_string(),
        shape: SampleShape::Vector { dim: 2 },
        x,
        labels: Some(labels),
        class_names: vec!["upper".into(), "lower".into()],
        files: (0..per_class * 2)
            .map(|i| format!("demo:moons/{role}/{:05}", i))
            .collect(),
        skipped: Vec::new(),
        warnings: Vec::new(),
    }
}
