//! Helpers shared by the integration tests: small generated image folders and quick configs.
#![allow(dead_code)]

use std::path::Path;
use transferlab::data::demo::{DIGIT_SIDE, Style, render_digit};
use transferlab::data::split::rng_for;

/// Write `per_class` generated digit images for each class in `classes` into
/// `dir/<class>/NNN.<ext>`, in the given style, resized to `side`.
pub fn write_digit_folder(
    dir: &Path,
    classes: &[usize],
    per_class: usize,
    style: Style,
    side: u32,
    ext: &str,
    seed: u64,
) {
    let mut rng = rng_for(seed, &format!("{}", dir.display()));
    for &c in classes {
        let sub = dir.join(c.to_string());
        std::fs::create_dir_all(&sub).unwrap();
        for i in 0..per_class {
            let v = render_digit(c, style, &mut rng);
            let img = image::GrayImage::from_raw(
                DIGIT_SIDE as u32,
                DIGIT_SIDE as u32,
                v.iter().map(|&p| (p * 255.0) as u8).collect(),
            )
            .unwrap();
            let img =
                image::imageops::resize(&img, side, side, image::imageops::FilterType::Triangle);
            let path = sub.join(format!("{c}_{i:03}.{ext}"));
            // GIF and WebP encoders want colour; the loader converts back to gray.
            match ext {
                "gif" => image::DynamicImage::ImageLuma8(img)
                    .to_rgba8()
                    .save(path)
                    .unwrap(),
                "webp" => image::DynamicImage::ImageLuma8(img)
                    .to_rgb8()
                    .save(path)
                    .unwrap(),
                _ => img.save(path).unwrap(),
            }
        }
    }
}

/// Path of the built binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_transferlab")
}

/// Run the binary with arguments; (success, stdout, stderr).
pub fn run_cli(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(bin())
        .args(args)
        .output()
        .expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every text on screen that contains `part` (a label's text or a widget's value).
pub fn texts_containing<S>(h: &egui_kittest::Harness<'_, S>, part: &str) -> Vec<String> {
    use egui_kittest::kittest::{NodeT, Queryable};
    h.query_all_by_label_contains(part)
        .map(|n| {
            let n = n.accesskit_node();
            n.label()
                .or_else(|| n.value())
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// The real app in a kittest harness (1400×900), created on the first frame from `options`.
pub fn app_harness(
    options: transferlab::app::AppOptions,
) -> egui_kittest::Harness<'static, Option<transferlab::app::TransferLabApp>> {
    use transferlab::app::TransferLabApp;
    egui_kittest::Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .with_max_steps(20)
        .build_ui_state(
            move |ui, app: &mut Option<TransferLabApp>| {
                app.get_or_insert_with(|| TransferLabApp::new(ui.ctx(), options.clone()))
                    .frame_ui(ui);
            },
            None,
        )
}
