//! What the app remembers between sessions (eframe's persistence): the view, the look,
//! the data, the next run's settings and the map's. Every field has a default, so saves
//! from older versions still load. Views read and edit it through the frame's context.

use super::commands::View;
use super::export::default_export_dir;
use super::feature_map::{ColourBy, Layer};
use super::task_setup::TaskData;
use super::theme::ThemeChoice;
use crate::data::DEMOS;
use crate::train::ExperimentConfig;
use serde::{Deserialize, Serialize};

/// Demo or folders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataMode {
    #[default]
    Demo,
    Folders,
}

/// What is remembered between sessions. Every field has a default, so saves from older
/// versions still load; a corrupt save is ignored and the defaults are used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub view: View,
    pub theme: ThemeChoice,
    pub presentation: bool,
    pub help_open: bool,
    pub data_mode: DataMode,
    pub demo: String,
    pub source_folder: String,
    pub target_folder: String,
    /// Settings of the next run (its data and save path are set when it starts).
    pub config: ExperimentConfig,
    /// Data of the multitask and zero-shot runs.
    pub tasks: TaskData,
    pub map_layer: Layer,
    pub map_colour: ColourBy,
    pub map_points: usize,
    /// Side images are loaded at; None = the chosen backbone's default (28, ResNet-18 32).
    pub input_size: Option<usize>,
    pub export_dir: String,
    pub frame_overlay: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            view: View::Data,
            theme: ThemeChoice::Dark,
            presentation: false,
            help_open: true,
            data_mode: DataMode::Demo,
            demo: DEMOS[0].name.into(),
            source_folder: String::new(),
            target_folder: String::new(),
            config: ExperimentConfig::default(),
            tasks: TaskData::default(),
            map_layer: Layer::Pixels,
            map_colour: ColourBy::Domain,
            map_points: 400,
            input_size: None,
            export_dir: default_export_dir(),
            frame_overlay: false,
        }
    }
}
