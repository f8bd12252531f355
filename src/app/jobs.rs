//! Background jobs: a named thread that computes one value and hands it to the UI over a
//! bounded channel, waking it with a repaint. Used for loading data, folder checks,
//! feature maps, network summaries and file dialogs, so the UI thread only draws.

use crossbeam_channel::{Receiver, TryRecvError, bounded};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

/// Progress a job reports while it runs (read by the UI when it draws).
#[derive(Default)]
pub struct JobProgress {
    pub done: AtomicUsize,
    pub total: AtomicUsize,
}

impl JobProgress {
    /// Record `done` of `total`.
    pub fn set(&self, done: usize, total: usize) {
        self.done.store(done, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
    }

    /// Fraction done in 0..=1, if a total is known.
    pub fn fraction(&self) -> Option<f32> {
        let total = self.total.load(Ordering::Relaxed);
        (total > 0).then(|| self.done.load(Ordering::Relaxed) as f32 / total as f32)
    }
}

/// A value being computed on another thread.
pub struct Job<T> {
    rx: Receiver<T>,
    pub progress: Arc<JobProgress>,
    pub started: Instant,
}

impl<T: Send + 'static> Job<T> {
    /// Run `work` on a thread named `transferlab-{name}`; `ctx` is woken when it is done.
    pub fn spawn(
        name: &str,
        ctx: &egui::Context,
        work: impl FnOnce(&JobProgress) -> T + Send + 'static,
    ) -> Result<Self, String> {
        let (tx, rx) = bounded(1);
        let progress = Arc::new(JobProgress::default());
        let p = progress.clone();
        let ctx = ctx.clone();
        std::thread::Builder::new()
            .name(format!("transferlab-{name}"))
            .spawn(move || {
                let value = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&p)));
                if let Ok(value) = value {
                    let _ = tx.send(value);
                }
                // A panicked job drops its sender: `poll` reports it as lost.
                ctx.request_repaint();
            })
            .map_err(|e| format!("could not start a background thread: {e}"))?;
        Ok(Self {
            rx,
            progress,
            started: Instant::now(),
        })
    }
}

/// What polling a job found.
pub enum Polled<T> {
    Pending,
    Done(T),
    /// The job ended without a value (it panicked).
    Lost,
}

impl<T> Job<T> {
    /// Take the value if the job has finished.
    pub fn poll(&self) -> Polled<T> {
        match self.rx.try_recv() {
            Ok(v) => Polled::Done(v),
            Err(TryRecvError::Empty) => Polled::Pending,
            Err(TryRecvError::Disconnected) => Polled::Lost,
        }
    }
}

/// Poll `slot`'s job; on completion empty the slot and return the value (`Err` if lost).
pub fn take_finished<T>(slot: &mut Option<Job<T>>) -> Option<Result<T, String>> {
    let out = match slot.as_ref()?.poll() {
        Polled::Pending => return None,
        Polled::Done(v) => Ok(v),
        Polled::Lost => Err("the background task failed unexpectedly (internal error)".into()),
    };
    *slot = None;
    Some(out)
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Drive a future to completion on the current (background) thread.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}
