//! The experiment runner and the worker thread that runs it. A run is configured by an
//! [`ExperimentConfig`], loads its data ([`load_pair`]), is prepared into an
//! [`Experiment`] (validated before anything trains), and reports through an
//! [`EventSink`]: the CLI prints, the GUI forwards events over a bounded channel.

pub mod bench;
pub mod config;
pub mod events;
pub mod experiment;
pub mod job;
pub mod load;
pub mod method_bench;
pub mod similarity;
pub mod worker;

pub use config::{DataSource, ExperimentConfig};
pub use events::{Command, EpochRecord, Event, EventSink, FinalMetrics, RunReport};
pub use experiment::{Control, Experiment, Flow, NoControl, RunError};
pub use job::run_job;
pub use load::{ShapeHint, load_pair};
pub use worker::Worker;
