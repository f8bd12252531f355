//! The experiment runner and the worker thread that runs it. A run is configured by an
//! [`ExperimentConfig`], loads its data ([`load_pair`]), is prepared into an
//! [`Experiment`] (validated before anything trains), and reports through an
//! [`EventSink`]: the CLI prints, the GUI forwards events over a bounded channel. Every kind
//! of run (here and in `crate::tasks`) trains through the one loop in [`epoch_loop`] and
//! builds its network through [`learner`]. Dispatching a config to the right kind of run
//! is `crate::run`'s job.

pub mod bench;
pub mod config;
pub mod epoch_loop;
pub mod events;
pub mod experiment;
pub mod imagenet_distance;
pub mod learner;
pub mod load;
pub mod method_bench;
pub mod pretrained_bench;
pub mod rank;
pub mod results;
pub mod selection;
pub mod settings;
pub mod similarity;

pub use config::{DataSource, ExperimentConfig};
pub use events::{Command, EpochRecord, Event, EventSink, FinalMetrics, RunReport};
pub use experiment::{Control, Experiment, Flow, NoControl, RunError};
pub use load::{ShapeHint, load_pair};
pub use settings::{Audience, Invalid, Setting};
