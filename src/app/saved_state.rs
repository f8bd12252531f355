//! The state eframe saved last session (`app.ron`: our settings and egui's memory), read
//! back as untrusted input. A saved zoom of 0, NaN or 1000 used to panic on every start:
//! now each field is checked on its own, a bad one (unreadable, not a number, out of
//! range) is reset or clamped, the good ones are kept, and the user is told once what was
//! reset. The file is left as it is until the user changes something
//! (`TransferLabApp::save`).

use super::settings::Settings;
use super::task_setup::TaskData;
use crate::train::ExperimentConfig;
use ron::value::RawValue;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The name of eframe's storage file inside its folder.
pub const FILE_NAME: &str = "app.ron";

/// eframe's key for egui's memory (options such as the zoom, window layout).
const EGUI_KEY: &str = "egui";

/// Longest saved value quoted back to the user.
const QUOTE_CHARS: usize = 24;

/// One saved value that could not be used.
#[derive(Clone, Debug, PartialEq)]
pub struct Reset {
    /// The setting, in the app's words ("zoom", "learning rate").
    pub what: String,
    /// The saved value as the file has it (shortened).
    pub was: String,
    /// What is used instead.
    pub now: String,
}

impl fmt::Display for Reset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // egui's default fonts have no arrow.
        write!(f, "{} was {}, now {}", self.what, self.was, self.now)
    }
}

/// What was read back: the settings and egui's memory where there were any, and what had
/// to be reset on the way.
#[derive(Default)]
pub struct SavedState {
    pub settings: Option<Settings>,
    pub memory: Option<egui::Memory>,
    pub resets: Vec<Reset>,
}

impl SavedState {
    /// Read eframe's storage file. No file is a first start. A file that is not eframe's
    /// format at all is copied aside (`app.ron.unreadable`) before eframe replaces it.
    pub fn from_file(path: &Path) -> Self {
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Self::default(),
            Err(e) => return Self::unreadable(format!("cannot be read ({e})")),
        };
        match ron::from_str::<HashMap<String, String>>(&text) {
            Ok(entries) => Self::from_entries(
                entries.get(eframe::APP_KEY).map(String::as_str),
                entries.get(EGUI_KEY).map(String::as_str),
            ),
            Err(_) => {
                let aside = PathBuf::from(format!("{}.unreadable", path.display()));
                let kept = match std::fs::copy(path, &aside) {
                    Ok(_) => format!("is not readable; kept as {}", aside.display()),
                    Err(e) => format!("is not readable (and could not be kept: {e})"),
                };
                Self::unreadable(kept)
            }
        }
    }

    /// Check the two entries eframe stores: ours (`app`) and egui's memory (`egui`).
    pub fn from_entries(app: Option<&str>, egui: Option<&str>) -> Self {
        let mut resets = Vec::new();
        // egui's first: a bad zoom is what users notice first.
        let memory = egui.map(|raw| {
            let mut memory = restore_text::<egui::Memory>(raw, "egui.", MEMORY_PARTS, &mut resets)
                .and_then(|text| ron::from_str(&text).ok())
                .unwrap_or_else(|| {
                    resets.push(layout_reset());
                    egui::Memory::default()
                });
            resets.extend(sanitize_options(&mut memory.options));
            memory
        });
        let settings = app.map(|raw| {
            let mut settings = restore_text::<Settings>(raw, "", SETTINGS_PARTS, &mut resets)
                .and_then(|text| ron::from_str(&text).ok())
                .unwrap_or_else(|| {
                    resets.push(Reset {
                        what: "all saved settings".into(),
                        was: "unreadable".into(),
                        now: "defaults".into(),
                    });
                    Settings::default()
                });
            resets.extend(settings.sanitize());
            settings
        });
        // One line per setting, however many of its parts were bad.
        let mut seen = std::collections::HashSet::new();
        resets.retain(|r| seen.insert(r.what.clone()));
        Self {
            settings,
            memory,
            resets,
        }
    }

    fn unreadable(why: String) -> Self {
        Self {
            resets: vec![Reset {
                what: "the saved settings file".into(),
                was: why,
                now: "defaults".into(),
            }],
            ..Self::default()
        }
    }
}

/// What the user is told about `resets`, or None when nothing was reset.
pub fn reset_notice(resets: &[Reset]) -> Option<String> {
    const SHOWN: usize = 8;
    if resets.is_empty() {
        return None;
    }
    let mut list: Vec<String> = resets.iter().take(SHOWN).map(Reset::to_string).collect();
    if resets.len() > SHOWN {
        list.push(format!("and {} more", resets.len() - SHOWN));
    }
    Some(format!(
        "Some saved settings could not be used and were reset, the others were kept: {}. \
         The settings file is left as it is until you change something.",
        list.join("; ")
    ))
}

/// Restores the struct in a RON text, the fields under `prefix`; None if it is not one.
type Restore = fn(&str, &str, &mut Vec<Reset>) -> Option<String>;

/// The parts of the settings checked field by field (the rest is checked as a whole).
const SETTINGS_PARTS: &[(&str, Restore)] = &[
    ("config", |raw, prefix, resets| {
        restore_text::<ExperimentConfig>(raw, prefix, &[], resets)
    }),
    ("tasks", |raw, prefix, resets| {
        restore_text::<TaskData>(raw, prefix, &[], resets)
    }),
];

/// The parts of egui's memory checked field by field; the layout parts (widget state,
/// window positions, layer transforms) are dropped if any number in them is not finite
/// or absurdly large.
const MEMORY_PARTS: &[(&str, Restore)] = &[
    ("options", |raw, prefix, resets| {
        restore_text::<egui::Options>(raw, prefix, OPTIONS_PARTS, resets)
    }),
    ("data", |raw, _, _| {
        numbers_sane(raw).then(|| raw.to_string())
    }),
    ("areas", |raw, _, _| {
        numbers_sane(raw).then(|| raw.to_string())
    }),
    ("to_global", |raw, _, _| {
        numbers_sane(raw).then(|| raw.to_string())
    }),
];

/// Largest coordinate, size or offset a saved layout may hold, in points.
const LAYOUT_LIMIT: f64 = 1e7;

/// Whether every number in the RON text `raw` is finite and within `LAYOUT_LIMIT`,
/// looking into strings that hold RON themselves (egui keeps widget state that way).
fn numbers_sane(raw: &str) -> bool {
    fn sane(v: &ron::Value, depth: usize) -> bool {
        match v {
            // Integers are ids and counts; the floats are positions and sizes.
            ron::Value::Number(ron::Number::F32(x)) => sane_float(f64::from(x.get())),
            ron::Value::Number(ron::Number::F64(x)) => sane_float(x.get()),
            ron::Value::String(text) if depth < 4 => {
                ron::from_str::<ron::Value>(text).map_or(true, |inner| sane(&inner, depth + 1))
            }
            ron::Value::Option(Some(inner)) => sane(inner, depth),
            ron::Value::Seq(items) => items.iter().all(|i| sane(i, depth)),
            ron::Value::Map(map) => map.iter().all(|(k, v)| sane(k, depth) && sane(v, depth)),
            _ => true,
        }
    }
    fn sane_float(x: f64) -> bool {
        x.is_finite() && x.abs() <= LAYOUT_LIMIT
    }
    // What does not read as a plain value was already read as egui's type: keep it.
    ron::from_str::<ron::Value>(raw).map_or(true, |v| sane(&v, 0))
}

const OPTIONS_PARTS: &[(&str, Restore)] = &[
    ("tessellation_options", |raw, prefix, resets| {
        restore_text::<egui::epaint::TessellationOptions>(raw, prefix, &[], resets)
    }),
    ("input_options", |raw, prefix, resets| {
        restore_text::<egui::InputOptions>(raw, prefix, &[], resets)
    }),
];

/// The fields of the RON struct `raw` that are good for a `T`, over `T`'s defaults, as
/// a RON struct again; each field dropped is added to `resets` with the default used
/// instead. A field is good if `T`'s defaults with it alone read. The `parts` are restored
/// field by field themselves. None if `raw` is not a struct at all.
fn restore_text<T: DeserializeOwned + Serialize + Default>(
    raw: &str,
    prefix: &str,
    parts: &[(&str, Restore)],
    resets: &mut Vec<Reset>,
) -> Option<String> {
    let Fields(fields) = ron::from_str(raw).ok()?;
    let Fields(defaults) = ron::to_string(&T::default())
        .ok()
        .and_then(|t| ron::from_str(&t).ok())?;
    let mut out: Vec<(String, String)> = defaults
        .iter()
        .map(|(name, value)| (name.clone(), value.get_ron().to_string()))
        .collect();
    for (name, value) in &fields {
        let path = format!("{prefix}{name}");
        let text = match parts.iter().find(|(part, _)| part == name) {
            Some((_, restore)) => restore(value.get_ron(), &format!("{path}."), resets),
            None => Some(value.get_ron().to_string()),
        };
        let with = |text: String| {
            let mut with: Vec<(String, String)> =
                out.iter().filter(|(n, _)| n != name).cloned().collect();
            with.push((name.clone(), text));
            with
        };
        match text.map(with) {
            Some(with) if ron::from_str::<T>(&assemble(&with)).is_ok() => out = with,
            _ => {
                let now = defaults
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| quote(v.get_ron()))
                    .unwrap_or_else(|| "the default".into());
                resets.push(reset_of(&path, quote(value.get_ron()), now));
            }
        }
    }
    Some(assemble(&out))
}

/// A RON struct of these fields.
fn assemble(fields: &[(String, String)]) -> String {
    let fields: Vec<String> = fields.iter().map(|(n, v)| format!("{n}:{v}")).collect();
    format!("({})", fields.join(","))
}

/// A reset of the setting at `path` (`config.learning_rate`, `egui.options.zoom_factor`).
fn reset_of(path: &str, was: String, now: String) -> Reset {
    if path.starts_with("egui.") && !path.starts_with("egui.options.") {
        return layout_reset();
    }
    let what = match path {
        "egui.options.zoom_factor" => "zoom".to_string(),
        "config.learning_rate" => "learning rate".into(),
        "config.val_fraction" => "held-out source fraction".into(),
        "config.target_labels" => "labelled target images per class".into(),
        "config.lambda" => "adaptation weight (lambda)".into(),
        "config.params" => "method hyperparameters".into(),
        "map_points" => "feature map points per domain".into(),
        "input_size" => "image size".into(),
        _ => path.rsplit('.').next().unwrap_or(path).replace('_', " "),
    };
    Reset { what, was, now }
}

/// Where the window layout (panel sizes, scroll positions) was unreadable.
fn layout_reset() -> Reset {
    Reset {
        what: "window layout".into(),
        was: "unreadable".into(),
        now: "the default".into(),
    }
}

/// `value` shortened to what a notice can quote.
fn quote(value: &str) -> String {
    let value = value.trim();
    if value.chars().count() <= QUOTE_CHARS {
        value.to_string()
    } else {
        let short: String = value.chars().take(QUOTE_CHARS).collect();
        format!("{short}…")
    }
}

/// The fields of a RON struct, each as its own RON text.
struct Fields(Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a struct")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields, A::Error> {
                let mut fields = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    fields.push((name, map.next_value()?));
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_struct("", &[], Visitor)
    }
}

/// Clamp a number into `range`, or put back `default` if it is not one; the reset if any.
fn check_f32(
    value: &mut f32,
    default: f32,
    range: std::ops::RangeInclusive<f32>,
    what: &str,
) -> Option<Reset> {
    let now = if !value.is_finite() {
        default
    } else {
        value.clamp(*range.start(), *range.end())
    };
    (now != *value).then(|| {
        let was = std::mem::replace(value, now);
        Reset {
            what: what.into(),
            was: format!("{was}"),
            now: format!("{now}"),
        }
    })
}

/// egui's options that a bad value would break: the zoom (0 or NaN panics, 1000 makes
/// the window unusable), the number of passes, tessellation and input thresholds.
fn sanitize_options(o: &mut egui::Options) -> Vec<Reset> {
    let d = egui::Options::default();
    let mut resets = Vec::new();
    // egui's own zoom keys stay within 0.2–5; outside it the zoom is reset, not clamped:
    // 1000 clamped to 5 would still be unusable.
    if !(o.zoom_factor.is_finite() && (0.2..=5.0).contains(&o.zoom_factor)) {
        resets.push(Reset {
            what: "zoom".into(),
            was: format!("{}", o.zoom_factor),
            now: format!("{}", d.zoom_factor),
        });
        o.zoom_factor = d.zoom_factor;
    }
    if o.max_passes.get() > 4 {
        resets.push(Reset {
            what: "max passes".into(),
            was: o.max_passes.to_string(),
            now: "2".into(),
        });
        o.max_passes = std::num::NonZeroUsize::MIN.saturating_add(1);
    }
    let (t, dt) = (&mut o.tessellation_options, &d.tessellation_options);
    let (i, di) = (&mut o.input_options, &d.input_options);
    let checks = [
        check_f32(
            &mut t.feathering_size_in_pixels,
            dt.feathering_size_in_pixels,
            0.0..=10.0,
            "feathering size",
        ),
        check_f32(
            &mut t.bezier_tolerance,
            dt.bezier_tolerance,
            1e-4..=10.0,
            "bezier tolerance",
        ),
        check_f32(&mut t.epsilon, dt.epsilon, 1e-9..=1.0, "epsilon"),
        check_f32(
            &mut i.line_scroll_speed,
            di.line_scroll_speed,
            0.0..=1000.0,
            "scroll speed",
        ),
        check_f32(
            &mut i.scroll_zoom_speed,
            di.scroll_zoom_speed,
            0.0..=1.0,
            "scroll zoom speed",
        ),
        check_f32(
            &mut i.max_click_dist,
            di.max_click_dist,
            0.0..=100.0,
            "click distance",
        ),
    ];
    resets.extend(checks.into_iter().flatten());
    for (value, default, what) in [
        (
            &mut i.max_click_duration,
            di.max_click_duration,
            "click duration",
        ),
        (
            &mut i.max_double_click_delay,
            di.max_double_click_delay,
            "double-click delay",
        ),
    ] {
        if !(value.is_finite() && (0.0..=10.0).contains(value)) {
            resets.push(Reset {
                what: what.into(),
                was: format!("{value}"),
                now: format!("{default}"),
            });
            *value = default;
        }
    }
    resets
}

impl Settings {
    /// Bring every number into the range its control allows (the Setup view's, the map's);
    /// what had to change.
    pub fn sanitize(&mut self) -> Vec<Reset> {
        let d = Settings::default();
        let mut resets = Vec::new();
        let mut clamp = |value: &mut usize, range: std::ops::RangeInclusive<usize>, what: &str| {
            let now = (*value).clamp(*range.start(), *range.end());
            if now != *value {
                resets.push(Reset {
                    what: what.into(),
                    was: value.to_string(),
                    now: now.to_string(),
                });
                *value = now;
            }
        };
        clamp(
            &mut self.map_points,
            super::similarity::MAP_POINTS,
            "feature map points per domain",
        );
        let c = &mut self.config;
        clamp(&mut c.epochs, super::setup::EPOCHS, "epochs");
        clamp(&mut c.batch_size, super::setup::BATCH_SIZE, "batch size");
        clamp(
            &mut c.target_labels,
            super::setup::TARGET_LABELS,
            "labelled target images per class",
        );
        clamp(&mut c.freeze, 0..=MAX_STAGES, "frozen stages");
        let mut float =
            |value: &mut f64, default: f64, range: std::ops::RangeInclusive<f64>, what: &str| {
                let now = if value.is_finite() && *value >= *range.start() {
                    value.min(*range.end())
                } else {
                    default
                };
                if now != *value {
                    resets.push(Reset {
                        what: what.into(),
                        was: value.to_string(),
                        now: now.to_string(),
                    });
                    *value = now;
                }
            };
        float(
            &mut c.learning_rate,
            d.config.learning_rate,
            super::setup::LEARNING_RATE,
            "learning rate",
        );
        float(
            &mut c.val_fraction,
            d.config.val_fraction,
            super::setup::VAL_FRACTION,
            "held-out source fraction",
        );
        let info = c.method.info();
        if let (Some(l), Some(h)) = (c.lambda, info.hyperparameter("lambda"))
            && h.check(l).is_err()
        {
            resets.push(Reset {
                what: "adaptation weight (lambda)".into(),
                was: l.to_string(),
                now: "the method's default".into(),
            });
            c.lambda = None;
        }
        c.params.retain(|key, value| {
            let good = info
                .hyperparameter(key)
                .is_some_and(|h| h.check(*value).is_ok());
            if !good {
                resets.push(Reset {
                    what: key.replace('_', " "),
                    was: value.to_string(),
                    now: "the method's default".into(),
                });
            }
            good
        });
        if let Some(width) = c.bottleneck
            && width > crate::model::checkpoint::MAX_BOTTLENECK
        {
            resets.push(Reset {
                what: "bottleneck width".into(),
                was: width.to_string(),
                now: "the method's default".into(),
            });
            c.bottleneck = None;
        }
        if c.task_weights
            .iter()
            .any(|w| !(w.is_finite() && super::task_setup::TASK_WEIGHT.contains(w)))
        {
            resets.push(Reset {
                what: "task weights".into(),
                was: format!("{:?}", c.task_weights),
                now: "all 1".into(),
            });
            c.task_weights.clear();
        }
        if let Some(side) = self.input_size
            && !super::setup::SIDE_RANGE.contains(&side)
        {
            resets.push(Reset {
                what: "image size".into(),
                was: side.to_string(),
                now: "the backbone's default".into(),
            });
            self.input_size = None;
        }
        resets
    }
}

/// More stages than any backbone has (the Setup view clamps to the chosen one's).
const MAX_STAGES: usize = 64;
