//! The setup view (journey 4): the backbone drawn as a row of stage boxes, a freezing-depth
//! slider that locks stages visibly and says how many parameters will train, the method
//! picker grouped by the transfer taxonomy, hyperparameters with defaults, the starting
//! model and the device.

use super::context::ViewContext;
use super::format::thousands;
use super::jobs::Job;
use super::runs::Runs;
use super::settings::Settings;
use super::task_setup::{TaskData, TaskSetup, stepping_ui, task_data_ui};
use super::theme::Look;
use super::widgets::{BoxKind, arrow_ui, labelled, settings_grid, stage_box_ui};
use crate::data::{DomainPair, SampleShape};
use crate::device::{DeviceChoice, DeviceInfo};
use crate::method::{Family, MethodKind};
use crate::model::predict::PredictModel;
use crate::model::{BackboneKind, InputKind, Network, NetworkSpec, Normalisation};
use crate::train::ExperimentConfig;
use egui::RichText;

/// What determines a network's stages and parameter counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetKey {
    pub backbone: BackboneKind,
    pub input: SampleShape,
    pub classes: usize,
    pub bottleneck: Option<usize>,
}

/// Stages and parameter counts of a network, for the diagram and the slider.
#[derive(Clone, Debug, PartialEq)]
pub struct NetInfo {
    pub key: NetKey,
    pub stages: Vec<String>,
    /// (trainable, total) for each freezing depth 0..=stages.
    pub counts: Vec<(usize, usize)>,
}

impl NetInfo {
    fn compute(key: NetKey) -> Result<Self, String> {
        let groups = match key.input {
            SampleShape::Image { channels, .. } => channels,
            SampleShape::Vector { dim } => dim,
        };
        let norm = Normalisation {
            mean: vec![0.0; groups],
            std: vec![1.0; groups],
        };
        let spec = NetworkSpec {
            backbone: key.backbone,
            input: key.input,
            num_classes: key.classes.max(2),
            bottleneck: key.bottleneck,
        };
        let net = Network::new(spec, norm, &crate::device::cpu(), 1)
            .map_err(|e| crate::device::error_message(&e))?;
        let stages: Vec<String> = net.stages().iter().map(|s| s.name.clone()).collect();
        let counts = (0..=stages.len()).map(|k| net.param_counts(k)).collect();
        Ok(NetInfo {
            key,
            stages,
            counts,
        })
    }
}

/// The setup view's state.
pub struct SetupState {
    pub net: Option<NetInfo>,
    job: Option<(NetKey, Job<Result<NetInfo, String>>)>,
    pub net_error: Option<String>,
    /// The network that `net_error` is about (not rebuilt until something changes).
    failed_key: Option<NetKey>,
    /// Devices found at start.
    pub devices: Vec<DeviceInfo>,
    /// Text of the "start from a file" field.
    pub init_text: String,
    /// Text of the "teacher from a file" field.
    pub teacher_text: String,
    /// The teacher last chosen, kept while a method without one is picked.
    last_teacher: Option<PredictModel>,
    /// Data of the across-task methods and the stepping stones.
    pub tasks: TaskSetup,
    /// Height of the network diagram when last drawn (kept free while it is rebuilt).
    diagram_height: Option<f32>,
    /// The starting model and the image side it was trained at (if it says).
    init_side: Option<(std::path::PathBuf, Option<usize>)>,
}

impl SetupState {
    /// True while the network summary is being built.
    pub fn is_busy(&self) -> bool {
        self.job.is_some()
    }
}

impl Default for SetupState {
    fn default() -> Self {
        Self {
            net: None,
            job: None,
            failed_key: None,
            net_error: None,
            devices: crate::device::available_devices(),
            init_text: String::new(),
            teacher_text: String::new(),
            last_teacher: None,
            tasks: TaskSetup::default(),
            diagram_height: None,
            init_side: None,
        }
    }
}

/// The backbone a config uses on this data.
pub fn backbone_for(config: &ExperimentConfig, pair: &DomainPair) -> BackboneKind {
    config
        .backbone
        .filter(|b| backbone_fits(*b, pair.source.shape))
        .unwrap_or_else(|| BackboneKind::default_for(pair.source.shape))
}

/// Image sides the app loads at (the "Image size" control's range).
pub const SIDE_RANGE: std::ops::RangeInclusive<usize> = 8..=crate::train::load::MAX_SIDE;
/// Ranges of the Setup view's other number controls (saved settings are clamped to them).
pub const EPOCHS: std::ops::RangeInclusive<usize> = 1..=500;
pub const TARGET_LABELS: std::ops::RangeInclusive<usize> = 0..=10_000;
pub const BATCH_SIZE: std::ops::RangeInclusive<usize> = 1..=4096;
pub const LEARNING_RATE: std::ops::RangeInclusive<f64> = 1e-6..=1.0;
pub const VAL_FRACTION: std::ops::RangeInclusive<f64> = 0.0..=0.9;

/// Smallest image side a backbone takes (its descriptor's).
pub fn min_side(b: BackboneKind) -> usize {
    match b.info().input {
        InputKind::Image { min_side, .. } => min_side,
        InputKind::Vector => 1,
    }
}

/// The side images load at when the user has not set one: the backbone's usual input.
pub fn default_side(b: Option<BackboneKind>) -> usize {
    b.unwrap_or(BackboneKind::SmallCnn)
        .info()
        .default_side()
        .unwrap_or(crate::data::demo::DIGIT_SIDE)
}

/// Whether the loaded data suits the backbone: vectors or images (an image backbone
/// that takes one channel count gets the images reloaded at it, gray repeated to RGB).
fn backbone_fits(b: BackboneKind, shape: SampleShape) -> bool {
    matches!(
        (b.info().input, shape),
        (InputKind::Vector, SampleShape::Vector { .. })
            | (InputKind::Image { .. }, SampleShape::Image { .. })
    )
}

/// The one channel count a backbone takes, if it takes only one (a pretrained network).
pub fn fixed_channels(b: BackboneKind) -> Option<usize> {
    match b.info().input {
        InputKind::Image { channels, .. } => channels,
        InputKind::Vector => None,
    }
}

impl SetupState {
    /// The side to load images at: the user's choice, else the starting model's input
    /// size (as `--init` does in the CLI), else the chosen backbone's default.
    pub fn wanted_side(&self, config: &ExperimentConfig, input_size: Option<usize>) -> usize {
        let init_side = self
            .init_side
            .as_ref()
            .filter(|(p, _)| config.init.as_ref() == Some(p))
            .and_then(|(_, side)| *side);
        input_size
            .or(init_side)
            .unwrap_or_else(|| default_side(config.backbone))
    }

    /// Read the starting model's input size when the starting model changes (a small
    /// JSON file beside it; None when it has none).
    pub fn refresh_init_side(&mut self, config: &ExperimentConfig) {
        let Some(path) = &config.init else {
            self.init_side = None;
            return;
        };
        if self.init_side.as_ref().is_some_and(|(p, _)| p == path) {
            return;
        }
        let side = crate::model::read_meta(path)
            .ok()
            .map(|m| m.input_size[0])
            .filter(|s| SIDE_RANGE.contains(s));
        self.init_side = Some((path.clone(), side));
    }

    /// Keep the network summary in step with the config and data (computed in the background).
    pub fn poll(
        &mut self,
        ctx: &egui::Context,
        config: &ExperimentConfig,
        pair: Option<&DomainPair>,
    ) {
        self.tasks.poll(ctx);
        self.refresh_init_side(config);
        if let Some((job_key, job)) = &self.job {
            let failed = match job.poll() {
                super::jobs::Polled::Pending => return,
                super::jobs::Polled::Done(Ok(info)) => {
                    self.net = Some(info);
                    None
                }
                super::jobs::Polled::Done(Err(e)) => Some(e),
                super::jobs::Polled::Lost => {
                    Some("could not build the network (internal error)".into())
                }
            };
            self.failed_key = failed.is_some().then_some(*job_key);
            self.net_error = failed;
            self.job = None;
        }
        let Some(pair) = pair else { return };
        let backbone = backbone_for(config, pair);
        let input = match (pair.source.shape, fixed_channels(backbone)) {
            // The data is reloaded at the backbone's channels: draw that network already.
            (SampleShape::Image { height, width, .. }, Some(channels)) => SampleShape::Image {
                channels,
                height,
                width,
            },
            (shape, _) => shape,
        };
        let key = NetKey {
            backbone,
            input,
            classes: pair.classes.len(),
            bottleneck: config.method.bottleneck(),
        };
        let current = self.net.as_ref().map(|n| n.key);
        // A network that failed to build is not retried until the key changes (it would
        // fail again, every frame).
        if current == Some(key) {
            // Back to the network already summarised: an error about another one is stale.
            self.net_error = None;
            self.failed_key = None;
        } else if self.failed_key != Some(key) {
            match Job::spawn("network", ctx, move |_| NetInfo::compute(key)) {
                Ok(job) => self.job = Some((key, job)),
                Err(e) => self.net_error = Some(e),
            }
        }
    }
}

/// Why the config cannot train on this data, if it cannot.
pub fn config_problem(config: &ExperimentConfig, pair: Option<&DomainPair>) -> Option<String> {
    let Some(pair) = pair else {
        return Some("no data loaded yet".into());
    };
    if let Err(e) = crate::train::experiment::validate_config(config) {
        return Some(e.words(crate::train::Audience::App));
    }
    if let SampleShape::Image { height, width, .. } = pair.source.shape {
        let b = backbone_for(config, pair);
        let min = min_side(b);
        if height.min(width) < min {
            return Some(format!(
                "{} needs images of at least {min}×{min}, the data is loaded at {height}×{width}: set \"Image size\" to {min} or more",
                b.name()
            ));
        }
    }
    if pair.classes == [crate::data::pair::NO_LABEL]
        && config.method.labelled_data() != crate::method::LabelledData::None
    {
        return Some(format!(
            "the source folder has no class folders, so {} has no labels to learn from: pick rotation-pretrain (it reads no label), or load a source with one subfolder per class",
            config.method.name()
        ));
    }
    if config.target_labels > 0 && !pair.target_labelled() {
        return Some(
            "labelled target images need a labelled target folder (one subfolder per class): set \"Labelled target images per class\" to 0"
                .into(),
        );
    }
    if let Some(init) = &config.init
        && !init.is_file()
    {
        return Some(format!(
            "the starting model file does not exist: {}",
            init.display()
        ));
    }
    if let Some(PredictModel::Checkpoint(t)) = &config.teacher
        && !t.is_file()
    {
        return Some(format!(
            "the teacher model file does not exist: {}",
            t.display()
        ));
    }
    None
}

/// Why the next run cannot start, if it cannot: multitask and zero-shot runs need their
/// own data (not the loaded pair), the others the loaded pair and valid stepping stones.
pub fn run_problem(
    config: &ExperimentConfig,
    pair: Option<&DomainPair>,
    tasks: &TaskSetup,
    data: &TaskData,
) -> Option<String> {
    if config.method.is_task_method() {
        if let Err(e) = crate::train::experiment::validate_config(config) {
            return Some(e.words(crate::train::Audience::App));
        }
        tasks.problem(config, data)
    } else {
        config_problem(config, pair).or_else(|| tasks.via_problem(config))
    }
}

/// Group title and one-line meaning of a method family.
pub fn family_title(f: Family) -> (&'static str, &'static str) {
    match f {
        Family::Baseline => (
            "Baselines",
            "no transfer: reference points to compare against",
        ),
        Family::Parameter => (
            "Parameter-based",
            "reuse a trained network's weights and fine-tune them",
        ),
        Family::Feature => (
            "Feature-based",
            "pull the two domains' feature distributions together",
        ),
        Family::Adversarial => (
            "Adversarial",
            "features learn to fool a domain classifier (the GAN idea)",
        ),
        Family::Instance => (
            "Instance-based",
            "re-weight source images by how target-like they are",
        ),
        Family::SelfTraining => (
            "Self-training",
            "learn from the network's own confident predictions on the target",
        ),
        Family::Relation => (
            "Relation-based",
            "transfer the relations between samples: labels spread over a graph of both domains, or a teacher's similarities",
        ),
        Family::Unsupervised => (
            "Unsupervised",
            "learn features from images with no label at all, for a later run to start from",
        ),
        Family::Task => (
            "Across tasks",
            "share what one task learns with others, or name classes never seen",
        ),
        // Families added to the engine later still get a group.
        #[allow(unreachable_patterns)]
        _ => ("Other methods", ""),
    }
}

/// Families in the order the methods list them.
pub fn families() -> Vec<Family> {
    let mut out: Vec<Family> = Vec::new();
    for m in MethodKind::ALL {
        if !out.contains(&m.family()) {
            out.push(m.family());
        }
    }
    out
}

/// Draw the setup view; `loaded_demo` names the loaded demo (its stepping stones).
pub fn setup_ui(
    ui: &mut egui::Ui,
    ctx: &mut ViewContext<'_>,
    state: &mut SetupState,
    loaded_demo: Option<&str>,
) {
    let look = ctx.look;
    let running = ctx.runs.is_running();
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            ui.add_enabled_ui(!running, |ui| {
                if ctx.settings.config.method.is_task_method() {
                    let settings = &mut *ctx.settings;
                    task_data_ui(
                        ui,
                        &mut state.tasks,
                        &mut settings.tasks,
                        &mut settings.config,
                        look,
                    );
                } else {
                    network_ui(ui, ctx, state);
                }
                ui.separator();
                ui.columns(2, |cols| {
                    method_ui(&mut cols[0], &mut ctx.settings.config, look);
                    settings_ui(&mut cols[1], ctx, state);
                    // Next to the settings: the method list is long.
                    let config = &mut ctx.settings.config;
                    if !config.method.is_task_method() {
                        cols[1].separator();
                        // Not justified: buttons keep their own width.
                        cols[1].vertical(|ui| {
                            stepping_ui(ui, &mut state.tasks, config, loaded_demo, look);
                        });
                    }
                });
            });
            if running {
                ui.colored_label(
                    look.warn(),
                    "A run is training: settings apply to the next run.",
                );
            }
        });
}

fn network_ui(ui: &mut egui::Ui, ctx: &mut ViewContext<'_>, state: &mut SetupState) {
    ui.heading("Network and freezing depth");
    let (look, config) = (ctx.look, &mut ctx.settings.config);
    let Some(pair) = ctx.pair.as_deref() else {
        ui.label("Load data first: the network depends on the image size and classes.");
        return;
    };
    // While the network is (re)built, or cannot be, its message takes the diagram's room:
    // the controls below do not jump under the pointer.
    let row = ui.text_style_height(&egui::TextStyle::Body);
    let gap = ui.spacing().item_spacing.y;
    let room = state
        .diagram_height
        .unwrap_or(3.0 * row + 18.0 + ui.spacing().interact_size.y + 3.0 * gap);
    let in_room = |ui: &mut egui::Ui, add: &mut dyn FnMut(&mut egui::Ui)| {
        ui.allocate_ui(egui::vec2(ui.available_width(), room), |ui| {
            ui.set_min_height(room);
            add(ui);
        });
    };
    if let Some(e) = &state.net_error {
        let text = format!("Cannot build this network: {}", super::theme::plain(e));
        in_room(ui, &mut |ui| {
            ui.colored_label(look.error(), &text);
        });
        return;
    }
    let Some(net) = &state.net else {
        in_room(ui, &mut |ui| {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("building the network…");
            });
        });
        return;
    };
    let top = ui.cursor().top();
    diagram_ui(ui, net, config, pair, look);
    state.diagram_height = Some(ui.cursor().top() - top);
}

/// The network as a row of stage boxes, the freezing slider and what it means.
fn diagram_ui(
    ui: &mut egui::Ui,
    net: &NetInfo,
    config: &mut ExperimentConfig,
    pair: &DomainPair,
    look: Look,
) {
    let n = net.stages.len();
    if config.freeze > n {
        config.freeze = n;
    }
    // The diagram: input → stages → (bottleneck) → head; click a stage to freeze up to it.
    let mut clicked = None;
    ui.horizontal_wrapped(|ui| {
        stage_box_ui(
            ui,
            &format!("input\n{}", pair.source.shape.describe()),
            BoxKind::Io,
            look,
        );
        for (i, s) in net.stages.iter().enumerate() {
            arrow_ui(ui);
            let frozen = i < config.freeze;
            let text = if frozen {
                format!("{s}\nfrozen")
            } else {
                format!("{s}\ntrains")
            };
            if stage_box_ui(ui, &text, BoxKind::Stage { frozen }, look)
                .on_hover_text("Click to freeze every stage up to this one")
                .clicked()
            {
                clicked = Some(if config.freeze == i + 1 { i } else { i + 1 });
            }
        }
        if let Some(w) = net.key.bottleneck {
            arrow_ui(ui);
            stage_box_ui(
                ui,
                &format!("adaptation\nlayer ({w})"),
                BoxKind::Stage { frozen: false },
                look,
            );
        }
        arrow_ui(ui);
        stage_box_ui(
            ui,
            &format!("head\n{} classes", pair.classes.len()),
            BoxKind::Stage { frozen: false },
            look,
        );
    });
    if let Some(k) = clicked {
        config.freeze = k;
    }
    ui.horizontal(|ui| {
        let l = ui.label("Frozen stages");
        ui.add(egui::Slider::new(&mut config.freeze, 0..=n))
            .labelled_by(l.id);
        let (trainable, total) = net.counts.get(config.freeze).copied().unwrap_or((0, 0));
        ui.label(
            RichText::new(format!(
                "{} of {} parameters will train",
                thousands(trainable),
                thousands(total)
            ))
            .strong(),
        );
    });
    let what = match config.freeze {
        0 => "Fine-tune everything: every stage adapts to the data.".to_string(),
        k if k == n => {
            "Every stage frozen: a frozen feature extractor with a new linear classifier (a linear probe)."
                .to_string()
        }
        k => format!(
            "The first {k} stage(s) keep their weights (general, early features); the rest adapt."
        ),
    };
    ui.weak(what);
    if config.freeze > 0 && config.init.is_none() {
        ui.colored_label(
            look.warn(),
            "Freezing stages of a new, untrained network keeps random weights: choose a starting model below (e.g. a source-only run's).",
        );
    }
}

fn method_ui(ui: &mut egui::Ui, config: &mut ExperimentConfig, look: Look) {
    ui.heading("Method");
    for f in families() {
        let (title, meaning) = family_title(f);
        ui.add_space(4.0);
        ui.label(RichText::new(title).strong());
        ui.weak(meaning);
        for m in MethodKind::ALL.into_iter().filter(|m| m.family() == f) {
            ui.horizontal(|ui| {
                ui.add_space(12.0);
                let r = ui.radio_value(&mut config.method, m, m.name());
                if r.changed() {
                    config.lambda = None;
                    config.params.clear();
                }
            });
            ui.indent(("summary", m.name()), |ui| {
                ui.weak(super::theme::plain(m.summary()));
            });
        }
    }
    if config.method == MethodKind::TargetOnly && config.target_labels == 0 {
        ui.colored_label(
            look.warn(),
            "target-only needs labelled target images: set \"Labelled target images per class\".",
        );
    }
}

fn settings_ui(ui: &mut egui::Ui, ctx: &mut ViewContext<'_>, state: &mut SetupState) {
    let (look, presentation, runs) = (ctx.look, ctx.presentation(), ctx.runs);
    let pair = ctx.pair.clone();
    let pair = pair.as_deref();
    let Settings {
        config,
        tasks: task_data,
        input_size,
        ..
    } = &mut *ctx.settings;
    let task = config.method.is_task_method();
    ui.heading("Settings");
    settings_grid("settings-grid")
        .show(ui, |ui| {
            labelled(ui, "Epochs", egui::DragValue::new(&mut config.epochs).range(EPOCHS));
            ui.end_row();
            if !task {
                let labels = egui::DragValue::new(&mut config.target_labels).range(TARGET_LABELS);
                labelled(ui, "Labelled target images per class", labels)
                    .on_hover_text("0 = unsupervised adaptation: the target's labels are only used to measure accuracy");
                ui.end_row();
            }
            // The method's hyperparameters, as its descriptor declares them.
            for h in config.method.info().hyperparameters {
                let set = if h.key == "lambda" {
                    config.lambda
                } else {
                    config.params.get(h.key).copied()
                };
                let mut value = set.unwrap_or(h.default);
                if h.switch {
                    let mut on = value >= 0.5;
                    let l = ui.label(h.label);
                    let r = ui.checkbox(&mut on, "").labelled_by(l.id);
                    if r.on_hover_text(h.help).changed() {
                        config.params.insert(h.key.to_string(), if on { 1.0 } else { 0.0 });
                    }
                    ui.end_row();
                    continue;
                }
                let speed = if h.logarithmic { 0.01 } else { (h.max - h.min) / 200.0 };
                let control = egui::DragValue::new(&mut value)
                    .speed(speed)
                    .range(h.min..=h.max);
                if labelled(ui, h.label, control)
                    .on_hover_text(h.help)
                    .changed()
                {
                    if h.key == "lambda" {
                        config.lambda = Some(value);
                    } else {
                        config.params.insert(h.key.to_string(), value);
                    }
                }
                ui.end_row();
            }
            // Multitask and zero-shot runs read images (the demo's are 28×28 colour).
            let shape = if task {
                Some(SampleShape::Image {
                    channels: 3,
                    height: 28,
                    width: 28,
                })
            } else {
                pair.map(|p| p.source.shape)
            };
            if let Some(shape) = shape {
                let l = ui.label("Backbone");
                let current = config
                    .backbone
                    .filter(|b| backbone_fits(*b, shape))
                    .unwrap_or_else(|| BackboneKind::default_for(shape));
                let mut choice = config.backbone;
                egui::ComboBox::from_id_salt("backbone")
                    .selected_text(match choice {
                        None => format!("default ({})", current.name()),
                        Some(b) => b.name().to_string(),
                    })
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut choice, None, "default for the data");
                        for b in BackboneKind::ALL {
                            if backbone_fits(b, shape) {
                                ui.selectable_value(&mut choice, Some(b), b.name());
                            }
                        }
                    })
                    .response
                    .labelled_by(l.id);
                config.backbone = choice;
                ui.end_row();
            }
            if !task && matches!(shape, Some(SampleShape::Image { .. })) {
                let default = state.wanted_side(config, None);
                image_size_ui(ui, default, input_size, config.init.is_some());
                ui.end_row();
            }
            let l = ui.label("Device");
            // Say what "automatic" resolves to on this machine.
            let auto_text = match state
                .devices
                .iter()
                .find(|d| d.selectable && d.choice != DeviceChoice::Cpu)
            {
                Some(gpu) => format!("automatic: {}", gpu.label),
                None => "automatic: CPU (no usable GPU found)".to_string(),
            };
            let selected = state
                .devices
                .iter()
                .find(|d| d.selectable && d.choice == config.device)
                .map(|d| d.label.clone())
                .unwrap_or_else(|| auto_text.clone());
            egui::ComboBox::from_id_salt("device")
                .selected_text(selected)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut config.device, DeviceChoice::Auto, auto_text);
                    for d in &state.devices {
                        if d.selectable {
                            ui.selectable_value(&mut config.device, d.choice, &d.label);
                        } else {
                            ui.weak(&d.label);
                        }
                    }
                })
                .response
                .labelled_by(l.id);
            ui.end_row();
        });
    let advanced = |ui: &mut egui::Ui, config: &mut ExperimentConfig| {
        settings_grid("advanced-grid").show(ui, |ui| {
            let batch = egui::DragValue::new(&mut config.batch_size).range(BATCH_SIZE);
            labelled(ui, "Batch size", batch);
            ui.end_row();
            let lr = egui::DragValue::new(&mut config.learning_rate)
                .speed(0.0001)
                .range(LEARNING_RATE)
                .max_decimals(5);
            labelled(ui, "Learning rate", lr);
            ui.end_row();
            labelled(ui, "Seed", egui::DragValue::new(&mut config.seed));
            ui.end_row();
            let val = egui::DragValue::new(&mut config.val_fraction)
                .speed(0.01)
                .range(VAL_FRACTION);
            labelled(ui, "Held-out source fraction", val)
                .on_hover_text("source images kept aside to measure source accuracy");
            ui.end_row();
            keep_epoch_ui(ui, config);
            ui.end_row();
        });
        if ui.button("Reset to defaults").clicked() {
            let d = ExperimentConfig::default();
            config.batch_size = d.batch_size;
            config.learning_rate = d.learning_rate;
            config.seed = d.seed;
            config.val_fraction = d.val_fraction;
            config.epochs = d.epochs;
            config.lambda = None;
            config.params.clear();
            config.select_by = None;
        }
    };
    egui::CollapsingHeader::new("More settings")
        .default_open(!presentation)
        .show(ui, |ui| advanced(ui, config));
    ui.add_space(6.0);
    start_from_ui(ui, state, config, runs, look);
    teacher_ui(ui, state, config, runs, look);
    if let Some(p) = run_problem(config, pair, &state.tasks, task_data) {
        ui.colored_label(look.error(), format!("Cannot train yet: {p}"));
    }
}

/// The "Image size" control: `default` is the side used when the user sets none.
fn image_size_ui(
    ui: &mut egui::Ui,
    default: usize,
    input_size: &mut Option<usize>,
    from_model: bool,
) {
    let l = ui.label("Image size");
    ui.horizontal(|ui| {
        let mut side = input_size.unwrap_or(default);
        let r = ui
            .add(
                egui::DragValue::new(&mut side)
                    .range(SIDE_RANGE)
                    .speed(1)
                    .suffix(" px"),
            )
            .labelled_by(l.id)
            .on_hover_text(format!(
                "Images are resized to this many pixels a side when they load (the data reloads when it changes); {} to {}. ResNet-18 needs at least 32.",
                SIDE_RANGE.start(),
                SIDE_RANGE.end()
            ));
        if r.changed() {
            *input_size = Some(side);
        }
        match input_size {
            None if from_model => {
                ui.weak("the starting model's size, or the backbone's default");
            }
            None => {
                ui.weak("the backbone's default");
            }
            Some(_) => {
                if ui
                    .small_button("default")
                    .on_hover_text(format!("Use {default} px: the starting model's size, else the backbone's usual one (28, or 32 for ResNet-18)"))
                    .clicked()
                {
                    *input_size = None;
                }
            }
        }
    });
}

fn start_from_ui(
    ui: &mut egui::Ui,
    state: &mut SetupState,
    config: &mut ExperimentConfig,
    runs: &Runs,
    look: Look,
) {
    ui.label(RichText::new("Start from").strong());
    let run_models: Vec<_> = runs.records.iter().filter(|r| r.has_checkpoint()).collect();
    let current = match &config.init {
        None => "a new network (random weights)".to_string(),
        Some(p) => run_models
            .iter()
            .find(|r| &r.checkpoint == p)
            .map(|r| format!("the model of run {}", r.label()))
            .unwrap_or_else(|| p.display().to_string()),
    };
    ui.horizontal(|ui| {
        let l = ui.label("Model");
        egui::ComboBox::from_id_salt("init")
            .selected_text(current)
            .width(300.0)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut config.init, None, "a new network (random weights)");
                for r in &run_models {
                    ui.selectable_value(
                        &mut config.init,
                        Some(r.checkpoint.clone()),
                        format!("the model of run {}", r.label()),
                    );
                }
            })
            .response
            .labelled_by(l.id);
    });
    ui.horizontal(|ui| {
        let l = ui.label("or a model file");
        let r = ui
            .add(
                egui::TextEdit::singleline(&mut state.init_text)
                    .hint_text("/path/to/model.safetensors")
                    .desired_width(260.0),
            )
            .labelled_by(l.id);
        if r.changed() {
            let t = state.init_text.trim();
            config.init = (!t.is_empty()).then(|| t.into());
        }
    });
    if !state.init_text.trim().is_empty() && !std::path::Path::new(state.init_text.trim()).is_file()
    {
        ui.colored_label(
            look.error(),
            "No such file: give the path of a .safetensors model saved by transferlab (or a ResNet-18).",
        );
    }
    if config.method == MethodKind::FineTune && config.init.is_none() {
        ui.colored_label(
            look.warn(),
            "fine-tune reuses a trained network: pick a starting model, e.g. a source-only run's.",
        );
    }
}

/// The "Keep the epoch" control (`--select-by`): the last epoch, or the one a label-free
/// criterion scores best.
fn keep_epoch_ui(ui: &mut egui::Ui, config: &mut ExperimentConfig) {
    use crate::train::selection::SelectBy;
    let words = |c: Option<SelectBy>| match c {
        None => "the last".to_string(),
        Some(SelectBy::SourceVal) => "best on the held-out source".to_string(),
        Some(SelectBy::Entropy) => "lowest prediction entropy (no target label)".to_string(),
        Some(c) => format!("best by {} (no target label)", c.name().to_uppercase()),
    };
    let l = ui.label("Keep the epoch");
    egui::ComboBox::from_id_salt("select-by")
        .selected_text(words(config.select_by))
        .show_ui(ui, |ui| {
            for c in [
                None,
                Some(SelectBy::SourceVal),
                Some(SelectBy::Dev),
                Some(SelectBy::Iwcv),
                Some(SelectBy::Atc),
                Some(SelectBy::Snd),
                Some(SelectBy::Entropy),
            ] {
                ui.selectable_value(&mut config.select_by, c, words(c));
            }
        })
        .response
        .labelled_by(l.id)
        .on_hover_text("Which epoch's weights the run keeps: the last, or the one a criterion that needs no target label scores best. Compare then says which epoch the target labels would have chosen.");
}

/// The name of the built-in ImageNet teacher in the picker.
pub const IMAGENET_TEACHER: &str = "the ImageNet network (EfficientNet-Lite0)";

/// The teacher picker of the distillation methods: the ImageNet network (the default), an
/// earlier run's model or a model file. Other methods take no teacher: the choice is put
/// aside until a distillation method is picked again.
fn teacher_ui(
    ui: &mut egui::Ui,
    state: &mut SetupState,
    config: &mut ExperimentConfig,
    runs: &Runs,
    look: Look,
) {
    if !config.method.needs_teacher() {
        if let Some(t) = config.teacher.take() {
            state.last_teacher = Some(t);
        }
        return;
    }
    if config.teacher.is_none() {
        config.teacher = Some(state.last_teacher.clone().unwrap_or(PredictModel::Imagenet));
    }
    ui.add_space(4.0);
    ui.label(RichText::new("Teacher").strong());
    let run_models: Vec<_> = runs.records.iter().filter(|r| r.has_checkpoint()).collect();
    let current = match &config.teacher {
        None | Some(PredictModel::Imagenet) => IMAGENET_TEACHER.to_string(),
        Some(PredictModel::Checkpoint(p)) => run_models
            .iter()
            .find(|r| &r.checkpoint == p)
            .map(|r| format!("the model of run {}", r.label()))
            .unwrap_or_else(|| p.display().to_string()),
    };
    ui.horizontal(|ui| {
        let l = ui.label("Model");
        egui::ComboBox::from_id_salt("teacher")
            .selected_text(current)
            .width(300.0)
            .show_ui(ui, |ui| {
                ui.selectable_value(
                    &mut config.teacher,
                    Some(PredictModel::Imagenet),
                    IMAGENET_TEACHER,
                );
                for r in &run_models {
                    ui.selectable_value(
                        &mut config.teacher,
                        Some(PredictModel::Checkpoint(r.checkpoint.clone())),
                        format!("the model of run {}", r.label()),
                    );
                }
            })
            .response
            .labelled_by(l.id)
            .on_hover_text("The trained network whose relations (or outputs) the student learns; it never changes.");
    });
    ui.horizontal(|ui| {
        let l = ui.label("or a teacher file");
        let r = ui
            .add(
                egui::TextEdit::singleline(&mut state.teacher_text)
                    .hint_text("/path/to/model.safetensors")
                    .desired_width(260.0),
            )
            .labelled_by(l.id);
        if r.changed() {
            let t = state.teacher_text.trim();
            config.teacher = Some(match t.is_empty() {
                true => PredictModel::Imagenet,
                false => PredictModel::Checkpoint(t.into()),
            });
        }
    });
    state.last_teacher = config.teacher.clone();
    if config.method == MethodKind::Distill && config.teacher == Some(PredictModel::Imagenet) {
        ui.colored_label(
            look.warn(),
            "distill matches the teacher's class probabilities: pick a teacher trained on these classes (an earlier run's model), or use relation-distill.",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_flags_become_control_names() {
        let config = ExperimentConfig {
            method: MethodKind::TargetOnly,
            ..Default::default()
        };
        let m = crate::train::experiment::validate_config(&config)
            .unwrap_err()
            .words(crate::train::Audience::App);
        assert!(m.contains("Labelled target images per class"), "{m}");
        assert!(!m.contains("--"), "{m}");
    }

    #[test]
    fn images_load_at_the_set_size_else_the_starting_models_else_the_backbones() {
        let dir = std::env::temp_dir().join(format!("tl-init-side-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let model = dir.join("model.safetensors");
        let meta = crate::model::ModelMeta {
            input_size: [40, 40],
            class_names: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        // A safetensors file that holds only the description (no tensors).
        let header = serde_json::json!({
            "__metadata__": {"transferlab": serde_json::to_string(&meta).unwrap()}
        })
        .to_string();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        std::fs::write(&model, bytes).unwrap();
        let mut state = SetupState::default();
        let mut config = ExperimentConfig::default();
        state.refresh_init_side(&config);
        assert_eq!(state.wanted_side(&config, None), 28);
        config.backbone = Some(BackboneKind::Resnet18);
        assert_eq!(state.wanted_side(&config, None), 32);
        config.init = Some(model);
        state.refresh_init_side(&config);
        assert_eq!(state.wanted_side(&config, None), 40);
        assert_eq!(state.wanted_side(&config, Some(64)), 64);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_method_is_in_a_group() {
        let groups = families();
        for m in MethodKind::ALL {
            assert!(groups.contains(&m.family()), "{}", m.name());
        }
    }
}
