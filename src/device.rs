//! Compute devices: what this build can use, and opening the one the user asked for.
//! CPU always works; `cuda` and `metal` builds add GPUs. A GPU build without a usable
//! driver falls back to the CPU with a note, never a crash.

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
    /// E.g. "CPU (2 threads)" or "CUDA GPU 0".
    pub label: String,
}

/// Devices this build can open right now.
pub fn available_devices() -> Vec<DeviceInfo> {
    let mut out = vec![DeviceInfo {
        choice: DeviceChoice::Cpu,
        label: format!("CPU ({} threads)", rayon::current_num_threads()),
    }];
    if candle_core::utils::cuda_is_available() && Device::new_cuda(0).is_ok() {
        out.push(DeviceInfo {
            choice: DeviceChoice::Cuda,
            label: "CUDA GPU 0".into(),
        });
    }
    if candle_core::utils::metal_is_available() && Device::new_metal(0).is_ok() {
        out.push(DeviceInfo {
            choice: DeviceChoice::Metal,
            label: "Metal GPU 0".into(),
        });
    }
    out
}

/// Open a device: the device and, when it is not what was asked for, a note saying why.
pub fn open_device(choice: DeviceChoice) -> (Device, Option<String>) {
    let cuda = || {
        if !candle_core::utils::cuda_is_available() {
            return Err("this build has no CUDA support (build with --features cuda)".to_string());
        }
        Device::new_cuda(0).map_err(|e| format!("no usable CUDA device: {e}"))
    };
    let metal = || {
        if !candle_core::utils::metal_is_available() {
            return Err(
                "this build has no Metal support (build with --features metal)".to_string(),
            );
        }
        Device::new_metal(0).map_err(|e| format!("no usable Metal device: {e}"))
    };
    match choice {
        DeviceChoice::Cpu => (Device::Cpu, None),
        DeviceChoice::Auto => match cuda().or_else(|_| metal()) {
            Ok(d) => (d, None),
            Err(_) => (Device::Cpu, None),
        },
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
