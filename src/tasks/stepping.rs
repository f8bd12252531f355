//! Stepping-stone transfer: when the source and the target are far apart, go through
//! intermediate domains. Hop 1 runs the chosen method from the labelled source to the first
//! intermediate domain; the model then labels that domain itself (pseudo-labels: its most
//! confident predictions), and hop 2 runs the method from the pseudo-labelled intermediate
//! to the next domain, starting from hop 1's weights; and so on to the target. With
//! `source-only` this is gradual self-training (Kumar et al. 2020); with an adaptation
//! method each hop also aligns its two neighbouring domains.
//!
//! The report compares it with direct transfer on the same budget: the same method from
//! the source straight to the target for as many epochs as all hops together.
//! Labels of the intermediate domains, when their folders have them, are only used to
//! report how good the pseudo-labels were.

use crate::data::folder::{LoadOptions, decode_scan, scan_folder};
use crate::data::{DataError, Domain, DomainPair, LoadProgress, align_pair};
use crate::method::LabelledData;
use crate::model::checkpoint::sidecar_path;
use crate::train::config::ExperimentConfig;
use crate::train::events::{BatchProgress, Event, EventSink, RunReport};
use crate::train::experiment::{Control, Experiment};
use crate::train::results::{HopOutcome, Phase, RunExtra, SteppingResults};
use crate::train::{Invalid, RunError, Setting};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Fraction of an intermediate domain kept as pseudo-labelled training data for the next
/// hop: the most confident predictions (the rest are the likeliest to be wrong).
pub const PSEUDO_KEEP: f64 = 0.8;

/// Load an intermediate domain's folder (flat or with class subfolders) at `pair`'s shape.
pub fn load_via_folder(
    path: &Path,
    index: usize,
    pair: &DomainPair,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<Domain, DataError> {
    let role = format!("intermediate {}", index + 1);
    let scan = scan_folder(&role, path)?;
    let opts = LoadOptions {
        role,
        shape: pair.source.shape,
        allow_flat: true,
    };
    decode_scan(&scan, path, &opts, progress)
}

/// Forwards a hop's events as part of the whole run: epochs renumbered, one `Started`,
/// each epoch tagged with its hop (or as the direct run).
struct PhaseSink<'a> {
    inner: &'a mut dyn EventSink,
    offset: usize,
    total_epochs: usize,
    phase: Phase,
    started: bool,
    /// Epochs left after this phase, and the last epoch's seconds, for the ETA.
    epochs_after: usize,
    epoch_secs: f64,
    /// Every phase's warnings, each once.
    warnings: Vec<String>,
}

impl<'a> PhaseSink<'a> {
    fn new(inner: &'a mut dyn EventSink, total_epochs: usize) -> Self {
        Self {
            inner,
            offset: 0,
            total_epochs,
            phase: Phase::Direct,
            started: false,
            epochs_after: 0,
            epoch_secs: 0.0,
            warnings: Vec::new(),
        }
    }

    /// Train `exp` as `phase`, its epochs numbered from `offset + 1`, with `epochs_after`
    /// epochs of later phases still to come.
    fn run(
        &mut self,
        exp: &mut Experiment,
        (phase, offset, epochs_after): (Phase, usize, usize),
        control: &mut dyn Control,
    ) -> Result<RunReport, RunError> {
        (self.phase, self.offset, self.epochs_after) = (phase, offset, epochs_after);
        exp.run(self, control)
    }
}

impl EventSink for PhaseSink<'_> {
    fn emit(&mut self, event: Event) {
        match event {
            Event::Started(mut start) => {
                for w in std::mem::take(&mut start.warnings) {
                    if !self.warnings.contains(&w) {
                        self.warnings.push(w);
                    }
                }
                if !self.started {
                    self.started = true;
                    start.epochs = self.total_epochs;
                    start.warnings = self.warnings.clone();
                    self.inner.emit(Event::Started(start));
                }
            }
            Event::BatchFinished(p) => self.inner.emit(Event::BatchFinished(BatchProgress {
                epoch: p.epoch + self.offset,
                eta_secs: p.eta_secs + self.epochs_after as f64 * self.epoch_secs,
                ..p
            })),
            Event::EpochFinished(mut r) => {
                self.epoch_secs = r.seconds;
                r.epoch += self.offset;
                r.phase = Some(self.phase);
                self.inner.emit(Event::EpochFinished(r));
            }
            Event::Finished(_) => {}
            other => self.inner.emit(other),
        }
    }
}

fn temp_model(hop: usize) -> PathBuf {
    std::env::temp_dir().join(format!(
        "transferlab-stepping-{}-{:x}-{hop}.safetensors",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ))
}

fn remove_model(path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(sidecar_path(path));
}

/// `domain` labelled by the model's most confident predictions (a [`PSEUDO_KEEP`]
/// fraction), and the accuracy of those labels when the domain has true ones.
fn pseudo_label(
    domain: &Domain,
    preds: &[(u32, f32)],
    classes: &[String],
) -> (Domain, Option<f64>) {
    let mut order: Vec<usize> = (0..preds.len()).collect();
    order.sort_by(|&a, &b| preds[b].1.total_cmp(&preds[a].1).then(a.cmp(&b)));
    let keep = ((preds.len() as f64 * PSEUDO_KEEP).ceil() as usize).clamp(1, preds.len());
    let mut kept: Vec<usize> = order[..keep].to_vec();
    kept.sort_unstable();
    let accuracy = domain.labels.as_ref().map(|truth| {
        kept.iter().filter(|&&i| truth[i] == preds[i].0).count() as f64 / kept.len() as f64
    });
    let mut d = domain.subset(&kept);
    d.labels = Some(kept.iter().map(|&i| preds[i].0).collect());
    d.class_names = classes.to_vec();
    d.name = format!("{} (pseudo-labelled)", domain.name);
    (d, accuracy)
}

/// Run source → vias → target, then direct transfer on the same budget; the report is the
/// last hop's (its target is the real target), with every hop's epochs in `history` and
/// the comparison in `extra`.
pub fn run_stepping(
    config: &ExperimentConfig,
    pair: Arc<DomainPair>,
    vias: Vec<Domain>,
    sink: &mut dyn EventSink,
    control: &mut dyn Control,
) -> Result<RunReport, RunError> {
    if vias.is_empty() {
        return Err(RunError::Invalid(
            Invalid::text("stepping stones need at least one intermediate domain (")
                .name(Setting::Via)
                .then(")"),
        ));
    }
    if config.method.labelled_data() == LabelledData::Target {
        return Err(RunError::Invalid(Invalid::text(format!(
            "{} never trains on the source, so it cannot step through intermediate domains",
            config.method.name()
        ))));
    }
    let started = std::time::Instant::now();
    let hops = vias.len() + 1;
    let total_epochs = 2 * hops * config.epochs;
    let mut phases = PhaseSink::new(sink, total_epochs);
    let mut history = Vec::new();
    let mut outcomes = Vec::new();
    let mut source = pair.source.clone();
    let mut from_name = "source".to_string();
    let mut init = config.init.clone();
    let mut temps: Vec<PathBuf> = Vec::new();
    let mut last_report: Option<RunReport> = None;
    let destinations: Vec<Domain> = vias.into_iter().chain([pair.target.clone()]).collect();
    let result = (|| -> Result<Option<RunReport>, RunError> {
        for (h, dest) in destinations.iter().enumerate() {
            let last_hop = h + 1 == hops;
            let to_name = if last_hop {
                "target".to_string()
            } else {
                format!("intermediate {}", h + 1)
            };
            let hop_pair = if last_hop && h == 0 {
                pair.clone()
            } else {
                let mut d = dest.clone();
                if !last_hop {
                    d.name = to_name.clone();
                }
                Arc::new(align_pair(source.clone(), d, &from_name)?)
            };
            let save = if last_hop {
                config.save.clone()
            } else {
                let p = temp_model(h);
                temps.push(p.clone());
                Some(p)
            };
            let hop_config = ExperimentConfig {
                init: init.clone(),
                save: save.clone(),
                target_labels: if last_hop { config.target_labels } else { 0 },
                ..config.clone()
            };
            let mut exp = Experiment::new(hop_config, hop_pair.clone())?;
            let epochs_after = (hops - h - 1) * config.epochs + hops * config.epochs;
            let phase = (Phase::Hop(h + 1), h * config.epochs, epochs_after);
            let report = phases.run(&mut exp, phase, control)?;
            for mut r in report.history.clone() {
                r.epoch += h * config.epochs;
                r.phase = Some(Phase::Hop(h + 1));
                history.push(r);
            }
            let mut outcome = HopOutcome {
                from: from_name.clone(),
                to: to_name.clone(),
                epochs: report.final_metrics.epochs_completed,
                accuracy: report.final_metrics.target_accuracy,
                pseudo_labels: None,
                pseudo_label_accuracy: None,
            };
            if report.stopped_early {
                outcomes.push(outcome);
                return Ok(Some(report));
            }
            if !last_hop {
                let all: Vec<usize> = (0..hop_pair.target.len()).collect();
                let preds = exp.predict(true, &all).map_err(|e| RunError::Training {
                    epoch: (h + 1) * config.epochs,
                    message: e.to_string(),
                })?;
                let (next, acc) = pseudo_label(&hop_pair.target, &preds, &hop_pair.classes);
                outcome.pseudo_labels = Some(next.len());
                outcome.pseudo_label_accuracy = acc;
                source = next;
                from_name = to_name;
                init = save;
            }
            outcomes.push(outcome);
            last_report = Some(report);
        }
        Ok(None)
    })();
    for t in &temps {
        remove_model(t);
    }
    let stopped = result?;
    let base = match stopped {
        Some(r) => r,
        None => last_report.expect("at least one hop ran"),
    };
    let mut direct = None;
    if !base.stopped_early {
        let direct_config = ExperimentConfig {
            epochs: hops * config.epochs,
            save: None,
            ..config.clone()
        };
        let mut exp = Experiment::new(direct_config, pair.clone())?;
        let phase = (Phase::Direct, hops * config.epochs, 0);
        direct = Some(phases.run(&mut exp, phase, control)?);
    }
    let stepping_acc = base.final_metrics.target_accuracy;
    let direct_acc = direct
        .as_ref()
        .and_then(|d| d.final_metrics.target_accuracy);
    let mut report = base;
    report.final_metrics.epochs_completed = history.len();
    report.history = history;
    report.elapsed_secs = started.elapsed().as_secs_f64();
    report.stopped_early |= direct.as_ref().is_some_and(|d| d.stopped_early);
    for w in phases.warnings {
        if !report.warnings.contains(&w) {
            report.warnings.push(w);
        }
    }
    report.config = config.clone();
    let method_extra = match report.extra.take() {
        Some(RunExtra::Method(v)) => Some(v),
        _ => None,
    };
    report.extra = Some(RunExtra::SteppingStones(SteppingResults {
        hops: outcomes,
        pseudo_keep: PSEUDO_KEEP,
        stepping_target_accuracy: stepping_acc,
        direct_target_accuracy: direct_acc,
        direct_epochs: hops * config.epochs,
        gain: stepping_acc.zip(direct_acc).map(|(s, d)| s - d),
        direct_history: direct.map(|d| d.history),
        method_extra,
    }));
    Ok(report)
}
