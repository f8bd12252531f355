//! Compute devices: what this build can use, and opening the one the user asked for.
//! CPU always works; `cuda` and `metal` builds add GPUs. A GPU build without a usable
//! driver falls back to the CPU with a note, never a crash.
//!
//! A `cuda` build links the CUDA libraries dynamically (`libcuda.so.1`, `libcublas.so.13`,
//! `libcublasLt.so.13`, `libcudart.so.13`, `libcurand.so.10`, `libnvrtc.so.13`): the loader
//! must find them before `main` runs (see the README's "GPU build"). Once running, every
//! driver call that fails — no GPU, a stub driver library, a driver too old — is an error
//! here, not a panic; probing is also wrapped in `catch_unwind` in case a layer below panics.

use candle_core::Device;
use serde::{Deserialize, Serialize};

/// The device a user asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// A GPU when one is usable, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
    Metal,
}

/// A device found on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    pub choice: DeviceChoice,
    /// E.g. "CPU (2 threads)" or "CUDA GPU 0: NVIDIA H200, 140 GiB".
    pub label: String,
    /// False for a GPU that is found but not the one `choice` opens (training uses GPU 0;
    /// another is picked with `CUDA_VISIBLE_DEVICES`).
    pub selectable: bool,
}

/// Most GPUs of one kind to list.
const MAX_GPUS: usize = 8;

/// Devices this build can open right now. Never panics, also in a GPU build on a machine
/// without a driver.
pub fn available_devices() -> Vec<DeviceInfo> {
    let mut out = vec![DeviceInfo {
        choice: DeviceChoice::Cpu,
        label: format!("CPU ({} threads)", rayon::current_num_threads()),
        selectable: true,
    }];
    if candle_core::utils::cuda_is_available() {
        for (i, desc) in cuda_devices() {
            out.push(DeviceInfo {
                choice: DeviceChoice::Cuda,
                label: if i == 0 {
                    format!("CUDA GPU 0: {desc}")
                } else {
                    format!(
                        "CUDA GPU {i}: {desc} (to train on it, start with CUDA_VISIBLE_DEVICES={i})"
                    )
                },
                selectable: i == 0,
            });
        }
    }
    if candle_core::utils::metal_is_available()
        && guarded(|| Device::new_metal(0).map_err(|e| short(&e))).is_ok()
    {
        out.push(DeviceInfo {
            choice: DeviceChoice::Metal,
            label: "Metal GPU 0".into(),
            selectable: true,
        });
    }
    out
}

/// CUDA GPUs that Candle opens, with a description (name and memory where the driver
/// reports them). Empty without a usable driver.
fn cuda_devices() -> Vec<(usize, String)> {
    let count = guarded(cuda_device_count).unwrap_or(0).min(MAX_GPUS);
    (0..count)
        .filter_map(|i| {
            guarded(|| {
                let d = Device::new_cuda(i).map_err(|e| short(&e))?;
                Ok(describe_cuda(&d).unwrap_or_else(|| "NVIDIA GPU".into()))
            })
            .ok()
            .map(|desc| (i, desc))
        })
        .collect()
}

#[cfg(feature = "cuda")]
fn cuda_device_count() -> Result<usize, String> {
    use candle_core::cuda_backend::cudarc::driver::CudaContext;
    CudaContext::device_count()
        .map(|n| n.max(0) as usize)
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "cuda"))]
fn cuda_device_count() -> Result<usize, String> {
    Ok(0)
}

/// "NVIDIA H200, 140 GiB" for an opened CUDA device.
#[cfg(feature = "cuda")]
fn describe_cuda(d: &Device) -> Option<String> {
    let ctx = d.as_cuda_device().ok()?.cuda_stream().context().clone();
    let name = ctx.name().ok()?;
    Some(match ctx.total_mem() {
        Ok(bytes) => format!("{name}, {:.0} GiB", bytes as f64 / (1u64 << 30) as f64),
        Err(_) => name,
    })
}

#[cfg(not(feature = "cuda"))]
fn describe_cuda(_: &Device) -> Option<String> {
    None
}

/// A one-line message for a device error: without the backtrace Candle attaches when
/// `RUST_BACKTRACE` is set.
fn short(e: &candle_core::Error) -> String {
    error_message(e)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// What a Candle error says, for a person: its message and context chain, without the
/// backtrace Candle attaches (its `Display` prints it) when `RUST_BACKTRACE` is set.
pub fn error_message(e: &candle_core::Error) -> String {
    use candle_core::Error as E;
    match e {
        E::WithBacktrace { inner, .. } => error_message(inner),
        E::Context { inner, context } => format!("{context}: {}", error_message(inner)),
        E::WithPath { inner, path } => format!("{}: {}", error_message(inner), path.display()),
        e => without_backtrace(&e.to_string()),
    }
}

/// `text` without a Rust backtrace (the numbered `N: function` / `at file:line` lines
/// `std::backtrace::Backtrace` prints). A last guard for messages that were made into
/// strings before they reached a person, e.g. an engine error wrapping a Candle one.
pub fn without_backtrace(text: &str) -> String {
    let is_frame = |l: &str| {
        let t = l.trim_start();
        let numbered = t
            .split_once(": ")
            .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        (numbered && l.starts_with(' ')) || (t.starts_with("at ") && l.starts_with("    "))
    };
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !is_frame(l) && l.trim() != "stack backtrace:")
        .collect();
    kept.join("\n").trim_end().to_string()
}

/// The CPU device (the app builds small networks on it without naming Candle).
pub fn cpu() -> Device {
    Device::Cpu
}

/// Run a device probe, turning a panic in the layers below into an error.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(format!(
            "the GPU library panicked ({})",
            p.downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied())
                .unwrap_or("no message")
        )),
    }
}

/// Open a device: the device and, when it is not what was asked for, a note saying why.
pub fn open_device(choice: DeviceChoice) -> (Device, Option<String>) {
    let cuda = || {
        if !candle_core::utils::cuda_is_available() {
            return Err("this build has no CUDA support (build with --features cuda)".to_string());
        }
        guarded(|| Device::new_cuda(0).map_err(|e| short(&e)))
            .map_err(|e| format!("no usable CUDA device ({e})"))
    };
    let metal = || {
        if !candle_core::utils::metal_is_available() {
            return Err(
                "this build has no Metal support (build with --features metal)".to_string(),
            );
        }
        guarded(|| Device::new_metal(0).map_err(|e| short(&e)))
            .map_err(|e| format!("no usable Metal device ({e})"))
    };
    let gpu_build =
        candle_core::utils::cuda_is_available() || candle_core::utils::metal_is_available();
    match choice {
        DeviceChoice::Cpu => (Device::Cpu, None),
        DeviceChoice::Auto => {
            let found = if candle_core::utils::cuda_is_available() {
                cuda()
            } else {
                metal()
            };
            match found {
                Ok(d) => (d, None),
                // A CPU-only build on auto: the CPU is what was expected, no note.
                Err(_) if !gpu_build => (Device::Cpu, None),
                Err(e) => (Device::Cpu, Some(format!("{e}; training on the CPU"))),
            }
        }
        DeviceChoice::Cuda => match cuda() {
            Ok(d) => (d, None),
            Err(e) => (
                Device::Cpu,
                Some(format!("{e}; training on the CPU instead")),
            ),
        },
        DeviceChoice::Metal => match metal() {
            Ok(d) => (d, None),
            Err(e) => (
                Device::Cpu,
                Some(format!("{e}; training on the CPU instead")),
            ),
        },
    }
}

/// Short name of an opened device.
pub fn device_name(d: &Device) -> &'static str {
    match d {
        Device::Cpu => "cpu",
        Device::Cuda(_) => "cuda",
        Device::Metal(_) => "metal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_always_listed_and_opens() {
        let devices = available_devices();
        assert_eq!(devices[0].choice, DeviceChoice::Cpu);
        assert!(devices[0].selectable);
        let (d, note) = open_device(DeviceChoice::Cpu);
        assert!(d.is_cpu() && note.is_none());
    }

    #[test]
    fn error_messages_leave_out_the_backtrace() {
        let inner = candle_core::Error::Msg("ResNet-18 needs images of at least 32×32".into());
        let e = candle_core::Error::WithBacktrace {
            inner: Box::new(inner),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        assert!(
            e.to_string().lines().count() > 3,
            "Candle prints the backtrace"
        );
        assert_eq!(
            error_message(&e),
            "ResNet-18 needs images of at least 32×32"
        );
        let e = e.context("building the network");
        assert_eq!(
            error_message(&e),
            "building the network: ResNet-18 needs images of at least 32×32"
        );
        // Made into a string first: the frames are still dropped.
        let text = format!("could not set up the run: {e}");
        assert_eq!(
            without_backtrace(&text),
            "could not set up the run: building the network\nResNet-18 needs images of at least 32×32"
        );
    }

    #[test]
    fn auto_without_gpu_support_is_cpu_without_note() {
        if candle_core::utils::cuda_is_available() || candle_core::utils::metal_is_available() {
            return;
        }
        let (d, note) = open_device(DeviceChoice::Auto);
        assert!(d.is_cpu() && note.is_none());
        let (d, note) = open_device(DeviceChoice::Cuda);
        assert!(d.is_cpu());
        assert!(note.unwrap().contains("--features cuda"));
    }
}
