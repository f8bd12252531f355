//! Run dispatch: one entry point for every kind of run, shared by the CLI and the GUI's
//! worker thread ([`Worker`]). It loads what the config names (unless the caller already
//! holds the domain pair), then runs an ordinary transfer experiment ([`crate::train`]), a
//! stepping-stone chain, a multitask comparison or a zero-shot run ([`crate::tasks`]).
//! It sits above both, so `train` never imports `tasks`.

pub mod worker;

pub use worker::Worker;

use crate::data::demo::{demo_intermediates, find_demo};
use crate::data::{DataError, DomainPair, LoadProgress, SampleShape, align_pair};
use crate::method::{LabelledData, MethodKind};
use crate::tasks::multitask::{
    MultiLabelData, load_multitask_folder, run_multitask, shapes_multitask,
};
use crate::tasks::stepping::{load_via_folder, run_stepping};
use crate::tasks::zeroshot::{
    ZeroShotData, load_zero_shot_folder, run_zero_shot, shapes_zero_shot,
};
use crate::train::config::{DataSource, ExperimentConfig};
use crate::train::events::{Event, EventSink, RunReport};
use crate::train::experiment::{Control, Experiment, RunError};
use crate::train::load::{ShapeHint, load_pair};
use crate::train::settings::{Invalid, Setting};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The built-in demo of the across-task methods (multitask, zero-shot).
pub const TASK_DEMO: &str = "shapes";

/// Images per class of the `shapes` demo for multitask (18 classes: 540 images).
pub const MULTITASK_DEMO_PER_CLASS: usize = 30;

/// Images per class of the `shapes` demo for zero-shot.
pub const ZERO_SHOT_DEMO_PER_CLASS: usize = 60;

/// Seed of generated demo data (fixed: the run's seed varies the training, not the data).
const DEMO_SEED: u64 = 7;

fn loading(sink: &mut dyn EventSink) -> impl FnMut(&str, LoadProgress) + '_ {
    move |what: &str, p: LoadProgress| {
        sink.emit(Event::Loading {
            what: what.into(),
            done: p.done,
            total: p.total,
        })
    }
}

/// The single image folder of a multitask or zero-shot run.
fn task_folder(config: &ExperimentConfig) -> Option<PathBuf> {
    match &config.data {
        DataSource::Folder { folder } => Some(folder.clone()),
        DataSource::Folders { source, .. } => Some(source.clone()),
        DataSource::Demo { .. } => None,
    }
}

fn wrong_demo(config: &ExperimentConfig, table: Setting) -> RunError {
    RunError::Invalid(
        Invalid::text(format!("{} runs on ", config.method.name()))
            .name(Setting::Demo)
            .then(format!(" {TASK_DEMO}, or on "))
            .name(Setting::Source)
            .then(" DIR with ")
            .name(table)
            .then(" CSV"),
    )
}

/// A generated demo domain (drawn at 28×28) at the run's image size and channels.
fn at_hint(domain: crate::data::Domain, hint: ShapeHint) -> crate::data::Domain {
    let SampleShape::Image { channels, .. } = domain.shape else {
        return domain;
    };
    let shape = SampleShape::Image {
        channels: hint.channels.unwrap_or(channels),
        height: hint.size,
        width: hint.size,
    };
    crate::train::load::convert_domain(domain, shape)
}

/// Loads an across-task run's folder with its CSV table at a shape, reporting progress.
type LoadFolder<T> =
    fn(&Path, &Path, ShapeHint, &mut dyn FnMut(LoadProgress)) -> Result<T, DataError>;

/// How an across-task run gets its data: the generated demo, or a folder and the CSV
/// table its setting names.
struct TaskSource<T> {
    table: Setting,
    demo: fn() -> T,
    folder: LoadFolder<T>,
}

const MULTITASK: TaskSource<MultiLabelData> = TaskSource {
    table: Setting::Labels,
    demo: || shapes_multitask(DEMO_SEED, MULTITASK_DEMO_PER_CLASS),
    folder: load_multitask_folder,
};

const ZERO_SHOT: TaskSource<ZeroShotData> = TaskSource {
    table: Setting::Attributes,
    demo: || shapes_zero_shot(DEMO_SEED, ZERO_SHOT_DEMO_PER_CLASS),
    folder: load_zero_shot_folder,
};

/// The CSV table an across-task setting names, and what it holds (for messages).
fn table_file(config: &ExperimentConfig, table: Setting) -> (Option<&PathBuf>, &'static str) {
    match table {
        Setting::Labels => (
            config.labels.as_ref(),
            " CSV (a file column, then one column per task)",
        ),
        Setting::Attributes => (
            config.attributes.as_ref(),
            " CSV (a class column, then one column per attribute)",
        ),
        _ => (None, ""),
    }
}

/// Load an across-task run's data (the demo at the run's image size).
fn load_task<T: AsMut<crate::data::Domain>>(
    config: &ExperimentConfig,
    hint: ShapeHint,
    sink: &mut dyn EventSink,
    from: &TaskSource<T>,
) -> Result<T, RunError> {
    let (csv, holds) = table_file(config, from.table);
    match (&config.data, task_folder(config), csv) {
        (DataSource::Demo { name }, _, None) if name == TASK_DEMO => {
            let mut data = (from.demo)();
            let domain = data.as_mut();
            *domain = at_hint(domain.clone(), hint);
            Ok(data)
        }
        (_, Some(folder), Some(csv)) => {
            let mut progress = loading(sink);
            Ok((from.folder)(&folder, csv, hint, &mut |p| {
                progress("loading images", p)
            })?)
        }
        (_, Some(_), None) => Err(RunError::Invalid(
            Invalid::text(format!("{} needs ", config.method.name()))
                .name(from.table)
                .then(holds),
        )),
        _ => Err(wrong_demo(config, from.table)),
    }
}

/// The intermediate domains of a stepping-stone run, aligned to `pair`'s classes.
pub fn load_vias(
    config: &ExperimentConfig,
    pair: &DomainPair,
    sink: &mut dyn EventSink,
) -> Result<Vec<crate::data::Domain>, RunError> {
    let mut out = Vec::new();
    if config.stepping_stones {
        let DataSource::Demo { name } = &config.data else {
            return Err(RunError::Invalid(
                Invalid::setting(
                    Setting::SteppingStones,
                    " uses a demo's built-in intermediate domains; with folders, name them with ",
                )
                .name(Setting::Via)
                .then(" DIR"),
            ));
        };
        let per_class = find_demo(name)?.per_class.1;
        let vias = demo_intermediates(name, DEMO_SEED, per_class);
        if vias.is_empty() {
            return Err(RunError::Invalid(Invalid::text(format!(
                "the demo '{name}' has no intermediate domains; digits-steps has"
            ))));
        }
        for v in vias {
            let v = crate::train::load::convert_domain(v, pair.source.shape);
            out.push(v);
        }
    }
    for (i, path) in config.via.iter().enumerate() {
        let mut progress = loading(sink);
        let d = load_via_folder(path, out.len(), pair, &mut |p| {
            progress(&format!("loading intermediate {}", i + 1), p)
        })?;
        out.push(d);
    }
    // Put each on the pair's class index (a labelled intermediate's labels are only used
    // to report how good its pseudo-labels were).
    out.into_iter()
        .map(|d| {
            align_pair(pair.source.clone(), d, "source")
                .map(|p| p.target)
                .map_err(RunError::from)
        })
        .collect()
}

/// Run whatever `config` describes. `pair`: the domains when the caller already loaded
/// them (ignored by the across-task methods, which load their own data).
pub fn run_job(
    config: &ExperimentConfig,
    pair: Option<Arc<DomainPair>>,
    hint: ShapeHint,
    sink: &mut dyn EventSink,
    control: &mut dyn Control,
) -> Result<RunReport, RunError> {
    crate::train::experiment::validate_config(config)?;
    // Before any work: a run's results must never be lost to an unwritable output.
    crate::output::check_all(&config.inputs(), &config.outputs())?;
    let stepping = config.stepping_stones || !config.via.is_empty();
    if stepping && config.method.is_task_method() {
        return Err(RunError::Invalid(
            Invalid::text("stepping stones (")
                .name(Setting::Via)
                .then(format!(
                    ") go from a source domain to a target domain; {} does not",
                    config.method.name()
                )),
        ));
    }
    match config.method {
        MethodKind::Multitask => {
            let data = load_task(config, hint, sink, &MULTITASK)?;
            run_multitask(config, &data, sink, control)
        }
        MethodKind::ZeroShot => {
            let data = load_task(config, hint, sink, &ZERO_SHOT)?;
            run_zero_shot(config, &data, sink, control)
        }
        _ => {
            let pair = match pair {
                Some(p) => p,
                None => {
                    if let DataSource::Folder { .. } = config.data {
                        return Err(RunError::Invalid(
                            Invalid::text(format!(
                                "{} needs a source and a target (",
                                config.method.name()
                            ))
                            .name(Setting::Source)
                            .then(" DIR ")
                            .name(Setting::Target)
                            .then(" DIR)"),
                        ));
                    }
                    let mut progress = loading(sink);
                    // A method that reads no label takes a source folder without classes.
                    let hint = ShapeHint {
                        flat_source: config.method.labelled_data() == LabelledData::None,
                        ..hint
                    };
                    Arc::new(load_pair(&config.data, hint, &mut progress).map_err(|e| {
                        match (&config.data, e) {
                            (DataSource::Demo { name }, DataError::UnknownDemo { .. })
                                if name == TASK_DEMO =>
                            {
                                RunError::Invalid(
                                    Invalid::text(format!("the '{TASK_DEMO}' demo is for "))
                                        .name(Setting::Method)
                                        .then(" multitask or ")
                                        .name(Setting::Method)
                                        .then(" zero-shot"),
                                )
                            }
                            (_, e) => e.into(),
                        }
                    })?)
                }
            };
            if stepping {
                let vias = load_vias(config, &pair, sink)?;
                run_stepping(config, pair, vias, sink, control)
            } else {
                let mut exp =
                    Experiment::new_reporting(config.clone(), pair, &mut loading(&mut *sink))?;
                exp.run(sink, control)
            }
        }
    }
}
