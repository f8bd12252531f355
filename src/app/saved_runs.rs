//! Runs kept between sessions: each run that ended is one JSON file in the runs folder
//! beside `app.ron` (its report, the RunReport the CLI writes, with what the Compare
//! view shows of it), written to a temporary file and renamed so a crash never leaves
//! half a file. On start they are read back into Compare as runs "from an earlier
//! session"; a file that cannot be read is skipped with a one-line note and left where
//! it is, and the others still load. Their models and images are not kept.

use super::runs::{RunFacts, RunRecord, RunStatus, Runs};
use crate::train::events::NetworkSummary;
use crate::train::results::Metric;
use crate::train::{EpochRecord, ExperimentConfig, RunReport};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The name of the runs folder inside the app's data folder.
pub const DIR_NAME: &str = "runs";

/// What the first field of a saved run says it is.
const FORMAT: &str = "transferlab-run-1";

/// Most saved runs read back (the newest by id).
const MAX_RUNS: usize = 500;

/// A run as one file.
#[derive(Serialize, Deserialize)]
struct SavedRun {
    format: String,
    id: usize,
    facts: RunFacts,
    config: ExperimentConfig,
    total_epochs: usize,
    status: RunStatus,
    history: Vec<EpochRecord>,
    metrics: Vec<Metric>,
    network: NetworkSummary,
    warnings: Vec<String>,
    elapsed_secs: f64,
    report: Option<RunReport>,
}

/// The runs read back, and one line per file skipped.
#[derive(Default)]
pub struct Loaded {
    pub runs: Vec<RunRecord>,
    pub problems: Vec<String>,
}

/// Read back the runs saved in `dir` by earlier sessions into `runs` (a file that cannot
/// be read is skipped and named in `runs.saved_problems`; nothing is deleted).
pub fn restore(runs: &mut Runs, dir: &Path) {
    let loaded = load_all(dir);
    runs.saved_problems.extend(loaded.problems);
    runs.add_earlier(loaded.runs);
}

/// Save the runs that ended since the last call into `dir`; a run that cannot be saved
/// is named in `runs.saved_problems`.
pub fn keep_ended(runs: &mut Runs, dir: &Path) {
    for id in runs.take_ended() {
        let Some(run) = runs.get(id) else { continue };
        match save(dir, run) {
            Ok(path) => {
                if let Some(r) = runs.get_mut(id) {
                    r.saved_file = Some(path);
                }
            }
            Err(e) => runs
                .saved_problems
                .push(format!("Run #{id} was not kept for the next session: {e}")),
        }
    }
}

/// Write `run` (ended) into `dir` as `run-<id>-<start time>.json`, atomically; the path.
pub fn save(dir: &Path, run: &RunRecord) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the runs folder ({e}): {}", dir.display()))?;
    let saved = SavedRun {
        format: FORMAT.into(),
        id: run.id,
        facts: run.facts.clone(),
        config: run.config.clone(),
        total_epochs: run.total_epochs,
        status: run.status.clone(),
        history: run.history.clone(),
        metrics: run.metrics.clone(),
        network: run.network.clone(),
        warnings: run.warnings.clone(),
        elapsed_secs: run.elapsed_secs,
        report: run.report.as_deref().cloned(),
    };
    let text = serde_json::to_string_pretty(&saved).map_err(|e| e.to_string())?;
    // JSON has no NaN: a figure that is not a number would make the file unreadable.
    serde_json::from_str::<SavedRun>(&text)
        .map_err(|e| format!("its figures do not read back as JSON ({e})"))?;
    let path = match &run.saved_file {
        Some(p) => p.clone(),
        None => dir.join(format!("run-{}-{}.json", run.id, unix_millis())),
    };
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("cannot write ({e}): {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot rename ({e}): {}", path.display())
    })?;
    Ok(path)
}

/// Read every saved run in `dir` (none when it does not exist), ordered by id.
pub fn load_all(dir: &Path) -> Loaded {
    let mut out = Loaded::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
        Err(e) => {
            out.problems.push(format!(
                "Runs from earlier sessions could not be read ({e}): {}",
                dir.display()
            ));
            return out;
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for path in files {
        match load(&path) {
            Ok(run) => out.runs.push(run),
            Err(e) => out.problems.push(format!(
                "Skipped a saved run that could not be read ({e}): {}",
                path.display()
            )),
        }
    }
    out.runs.sort_by_key(|r| r.id);
    let extra = out.runs.len().saturating_sub(MAX_RUNS);
    out.runs.drain(..extra);
    out
}

fn load(path: &Path) -> Result<RunRecord, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let saved: SavedRun = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    if saved.format != FORMAT {
        return Err(format!("format {:?}, not {FORMAT:?}", saved.format));
    }
    // The pair and the model were this session's: none now (pair id 0 is no loaded pair).
    let mut run = RunRecord::new(saved.id, saved.config, None, 0, PathBuf::new());
    run.facts = saved.facts;
    run.total_epochs = saved.total_epochs;
    // A run saved while live (it never is) reads as failed rather than training forever.
    run.status = if saved.status.is_live() {
        RunStatus::Failed("it was still training when the app closed".into())
    } else {
        saved.status
    };
    run.history = saved.history;
    run.metrics = saved.metrics;
    run.network = saved.network;
    run.warnings = saved.warnings;
    run.elapsed_secs = saved.elapsed_secs;
    run.report = saved.report.map(Box::new);
    run.earlier_session = true;
    run.saved_file = Some(path.to_path_buf());
    Ok(run)
}

fn unix_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}
