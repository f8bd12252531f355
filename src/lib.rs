//! transferlab: a workbench for transfer learning.
//!
//! The engine (`data`, `model`, `method`, `analysis`, `train`) knows nothing about egui;
//! the `app` module draws it, and `cli` is its headless twin.

pub mod analysis;
pub mod app;
pub mod cli;
pub mod data;
pub mod device;
pub mod method;
pub mod model;
pub mod tasks;
pub mod train;
