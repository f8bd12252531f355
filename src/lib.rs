//! transferlab: a workbench for transfer learning.
//!
//! The engine knows nothing about egui. Its layers import one way only:
//! `data` ← `model` ← `method` ← `train` ← `tasks` ← `run` ← {`app`, `cli`}, with
//! `analysis` (similarity, embeddings, the advisor), `device` and `metric` (what a
//! recorded figure is) beside them. The `app`
//! module draws the engine, and `cli` is its headless twin. See docs/ARCHITECTURE.md.

pub mod analysis;
pub mod app;
pub mod cli;
pub mod data;
pub mod device;
pub mod matrix;
pub mod method;
pub mod metric;
pub mod model;
pub mod output;
pub mod run;
pub mod tasks;
pub mod train;
