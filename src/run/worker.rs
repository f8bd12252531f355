//! The training worker: one named thread per run, commands in and events out over bounded
//! channels, and a wake-up callback so the GUI repaints only when something happened.
//! Errors and panics in the thread become a `Failed` event; the thread never takes the
//! process down.

use super::run_job;
use crate::data::{DomainPair, SampleShape};
use crate::device::without_backtrace;
use crate::train::config::ExperimentConfig;
use crate::train::events::{Command, Event, EventSink};
use crate::train::experiment::{Control, Flow};
use crate::train::load::ShapeHint;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Called after each event so the UI can repaint.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// Capacity of the event channel; progress events are dropped when it is full.
pub const EVENT_CAPACITY: usize = 256;

/// A running (or finished) training thread.
pub struct Worker {
    commands: Sender<Command>,
    events: Receiver<Event>,
    handle: Option<JoinHandle<()>>,
}

struct ChannelSink {
    tx: Sender<Event>,
    wake: Wake,
}

impl EventSink for ChannelSink {
    fn emit(&mut self, event: Event) {
        match event {
            // Progress may be dropped when the UI is behind; the next one supersedes it.
            Event::BatchFinished(_) | Event::Loading { .. } => match self.tx.try_send(event) {
                Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
            },
            other => {
                let _ = self.tx.send(other);
            }
        }
        (self.wake)();
    }
}

struct ChannelControl {
    rx: Receiver<Command>,
}

impl Control for ChannelControl {
    fn check(&mut self, sink: &mut dyn EventSink) -> Flow {
        loop {
            match self.rx.try_recv() {
                Ok(Command::Stop) | Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    return Flow::Stop;
                }
                Ok(Command::Resume) => {}
                Ok(Command::Pause) => {
                    sink.emit(Event::Paused);
                    loop {
                        match self.rx.recv_timeout(Duration::from_millis(200)) {
                            Ok(Command::Resume) => {
                                sink.emit(Event::Resumed);
                                break;
                            }
                            Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => {
                                return Flow::Stop;
                            }
                            Ok(Command::Pause) | Err(RecvTimeoutError::Timeout) => {}
                        }
                    }
                }
                Err(crossbeam_channel::TryRecvError::Empty) => return Flow::Continue,
            }
        }
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

impl Worker {
    /// Start a run on its own thread. `pair`: data already loaded (else it is loaded from
    /// the config, at `input_size` when the user chose one); `threads`: size of the compute
    /// pool (None = rayon's default).
    pub fn spawn(
        config: ExperimentConfig,
        pair: Option<Arc<DomainPair>>,
        input_size: Option<usize>,
        threads: Option<usize>,
        wake: Wake,
    ) -> std::io::Result<Self> {
        let (cmd_tx, cmd_rx) = bounded(16);
        let (ev_tx, ev_rx) = bounded(EVENT_CAPACITY);
        let handle = std::thread::Builder::new()
            .name("transferlab-train".into())
            .spawn(move || {
                let mut sink = ChannelSink { tx: ev_tx, wake };
                let mut control = ChannelControl { rx: cmd_rx };
                let body = || -> Result<(), super::RunError> {
                    let meta = crate::train::learner::init_meta(&config)?;
                    // Loaded data fixes the shape (stepping stones load at it too); else
                    // the starting model's input, else the default.
                    let loaded = pair.as_ref().and_then(|p| match p.source.shape {
                        SampleShape::Image {
                            channels, height, ..
                        } => Some(ShapeHint {
                            channels: Some(channels),
                            size: height,
                            flat_source: false,
                        }),
                        SampleShape::Vector { .. } => None,
                    });
                    let hint = match loaded {
                        Some(hint) => hint,
                        None => {
                            ShapeHint::for_run(config.backbone, meta.as_ref(), input_size, None)?
                        }
                    };
                    let report = run_job(&config, pair, hint, &mut sink, &mut control)?;
                    sink.emit(Event::Finished(Box::new(report)));
                    Ok(())
                };
                let run = || std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
                let result = match threads.and_then(|n| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(n.max(1))
                        .thread_name(|i| format!("transferlab-compute-{i}"))
                        .build()
                        .ok()
                }) {
                    Some(pool) => pool.install(run),
                    None => run(),
                };
                let failure = match result {
                    Ok(Ok(())) => None,
                    // This worker serves the app: settings are named as the app names
                    // them, and never a backtrace in front of a person.
                    Ok(Err(e)) => Some((
                        e.epoch(),
                        without_backtrace(&e.words(crate::train::Audience::App)),
                    )),
                    Err(p) => Some((None, format!("internal error: {}", panic_message(p)))),
                };
                if let Some((epoch, message)) = failure {
                    sink.emit(Event::Failed { epoch, message });
                }
            })?;
        Ok(Self {
            commands: cmd_tx,
            events: ev_rx,
            handle: Some(handle),
        })
    }

    /// Send a command (ignored when the run has ended).
    pub fn send(&self, command: Command) {
        let _ = self.commands.try_send(command);
    }

    /// The event stream.
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// True once the thread has ended.
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Dropping the command sender stops the run within a batch; don't wait for it.
        let _ = self.commands.try_send(Command::Stop);
    }
}
