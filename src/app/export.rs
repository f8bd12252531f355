//! Exports of a run: its metrics per epoch as CSV, its report as JSON, its model
//! checkpoint (safetensors + JSON sidecar), and a plot as PNG (a crop of a screenshot of
//! the window, so the file shows exactly what is on screen).

use super::runs::RunRecord;
use crate::model::checkpoint::sidecar_path;
use crate::output::write_atomic;
use crate::train::results::{Phase, Unit};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportKind {
    MetricsCsv,
    ReportJson,
    Checkpoint,
    /// The compare view's curves, as shown.
    CurvesPng,
}

impl ExportKind {
    /// Button text.
    pub fn title(self) -> &'static str {
        match self {
            ExportKind::MetricsCsv => "Metrics (CSV)",
            ExportKind::ReportJson => "Report (JSON)",
            ExportKind::Checkpoint => "Model checkpoint",
            ExportKind::CurvesPng => "Curves (PNG)",
        }
    }
}

/// File name stem of a run's exports.
pub fn stem(run: &RunRecord) -> String {
    format!("run-{}-{}", run.id, run.config.method.name())
}

/// The run's epochs as CSV: fixed columns, then one column per method metric (headed by
/// its key, with its unit when it is not a plain number), then each task's accuracies.
pub fn metrics_csv(run: &RunRecord) -> Result<String, String> {
    let keys: BTreeSet<&String> = run.history.iter().flat_map(|r| r.metrics.keys()).collect();
    let tasks: BTreeSet<&String> = run
        .history
        .iter()
        .flat_map(|r| r.tasks.iter().map(|t| &t.task))
        .collect();
    let phases = run.history.iter().any(|r| r.phase.is_some());
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = [
        "epoch",
        "train_loss",
        "source_accuracy",
        "target_accuracy",
        "seconds",
        "images_per_sec",
    ]
    .map(String::from)
    .to_vec();
    if phases {
        header.insert(1, "phase".into());
    }
    header.extend(keys.iter().map(|k| match run.metric(k).unit {
        Unit::Plain => k.to_string(),
        Unit::Fraction => format!("{k} (fraction)"),
        Unit::Nats => format!("{k} (nats)"),
    }));
    for t in &tasks {
        header.push(format!("{t} joint accuracy"));
        header.push(format!("{t} alone accuracy"));
    }
    w.write_record(&header).map_err(|e| e.to_string())?;
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for r in &run.history {
        let mut row = vec![
            r.epoch.to_string(),
            r.train_loss.to_string(),
            opt(r.source_accuracy),
            opt(r.target_accuracy),
            r.seconds.to_string(),
            r.images_per_sec.to_string(),
        ];
        if phases {
            row.insert(1, r.phase.map(Phase::describe).unwrap_or_default());
        }
        row.extend(keys.iter().map(|k| opt(r.metrics.get(*k).copied())));
        for t in &tasks {
            let figures = r.tasks.iter().find(|f| &&f.task == t);
            row.push(opt(figures.and_then(|f| f.joint)));
            row.push(opt(figures.and_then(|f| f.alone)));
        }
        w.write_record(&row).map_err(|e| e.to_string())?;
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

#[derive(Serialize)]
struct PartialReport<'a> {
    status: &'a str,
    error: Option<&'a str>,
    config: &'a crate::train::ExperimentConfig,
    history: &'a [crate::train::EpochRecord],
}

/// The run's report as JSON (the same structure the CLI writes); a run that failed before
/// finishing gets its settings and the epochs it completed.
pub fn report_json(run: &RunRecord) -> Result<String, String> {
    match &run.report {
        Some(r) => serde_json::to_string_pretty(r.as_ref()),
        None => serde_json::to_string_pretty(&PartialReport {
            status: run.status.word(),
            error: match &run.status {
                super::runs::RunStatus::Failed(e) => Some(e.as_str()),
                _ => None,
            },
            config: &run.config,
            history: &run.history,
        }),
    }
    .map_err(|e| e.to_string())
}

/// Write a file export into `dir`; returns the path written.
pub fn export_file(run: &RunRecord, kind: ExportKind, dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the export folder ({e}): {}", dir.display()))?;
    let write = |name: String, text: String| {
        let path = dir.join(name);
        write_atomic("the export", &path, text.as_bytes()).map_err(|e| e.to_string())?;
        Ok(path)
    };
    match kind {
        ExportKind::MetricsCsv => write(format!("{}-metrics.csv", stem(run)), metrics_csv(run)?),
        ExportKind::ReportJson => write(format!("{}-report.json", stem(run)), report_json(run)?),
        ExportKind::Checkpoint => {
            if !run.has_checkpoint() {
                return Err("this run has no saved model yet (it needs one finished epoch)".into());
            }
            let path = dir.join(format!("{}.safetensors", stem(run)));
            for (what, from, to) in [
                ("the model", run.checkpoint.clone(), path.clone()),
                (
                    "the model's sidecar",
                    sidecar_path(&run.checkpoint),
                    sidecar_path(&path),
                ),
            ] {
                let bytes = std::fs::read(&from)
                    .map_err(|e| format!("cannot read {what} ({e}): {}", from.display()))?;
                write_atomic(what, &to, &bytes).map_err(|e| e.to_string())?;
            }
            Ok(path)
        }
        ExportKind::CurvesPng => Err("a plot is saved from a screenshot, not from a file".into()),
    }
}

/// Crop `rect` (in points) out of a screenshot and save it as PNG.
pub fn save_png(
    image: &egui::ColorImage,
    rect: egui::Rect,
    pixels_per_point: f32,
    path: &Path,
) -> Result<PathBuf, String> {
    let crop = image.region(&rect, Some(pixels_per_point));
    let [w, h] = crop.size;
    if w == 0 || h == 0 {
        return Err("the plot was not on screen when the screenshot was taken".into());
    }
    let raw: Vec<u8> = crop.pixels.iter().flat_map(|c| c.to_array()).collect();
    let img = image::RgbaImage::from_raw(w as u32, h as u32, raw)
        .ok_or_else(|| "the screenshot had an unexpected size".to_string())?;
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| format!("cannot encode the PNG ({e}): {}", path.display()))?;
    write_atomic("the PNG", path, png.get_ref()).map_err(|e| e.to_string())?;
    Ok(path.to_path_buf())
}

/// The default export folder: `~/transferlab-exports`, else the current folder's.
pub fn default_export_dir() -> String {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join("transferlab-exports")
        .display()
        .to_string()
}
