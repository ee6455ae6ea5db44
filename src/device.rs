//! `--device cpu|cuda[:N]`: where the networks run.

use candle_core::Device;

use crate::error::FdbError;

/// Parse a device name; `None` picks cuda when this build has it and a GPU answers, else cpu.
pub fn select_device(name: Option<&str>) -> Result<Device, FdbError> {
    match name.map(str::trim) {
        None | Some("") => Ok(default_device()),
        Some("cpu") => Ok(Device::Cpu),
        Some(spec) if spec == "cuda" || spec.starts_with("cuda:") => {
            let ordinal = match spec.strip_prefix("cuda:") {
                Some(n) => n.parse::<usize>().map_err(|_| FdbError::BadDevice(spec.into()))?,
                None => 0,
            };
            Device::new_cuda(ordinal).map_err(|e| {
                // candle's error text ends in a backtrace: the first line is the reason.
                FdbError::DeviceUnavailable(format!("{spec}: {}", e.to_string().lines().next().unwrap_or_default()))
            })
        }
        Some(other) => Err(FdbError::BadDevice(other.into())),
    }
}

fn default_device() -> Device {
    if candle_core::utils::cuda_is_available() {
        if let Ok(device) = Device::new_cuda(0) {
            return device;
        }
    }
    Device::Cpu
}

/// A short name for messages: "cpu" or "cuda:N".
pub fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_nonsense_is_refused() {
        assert!(select_device(Some("cpu")).unwrap().is_cpu());
        assert!(matches!(select_device(Some("gpu")), Err(FdbError::BadDevice(_))));
        assert!(matches!(select_device(Some("cuda:x")), Err(FdbError::BadDevice(_))));
        if !candle_core::utils::cuda_is_available() {
            assert!(matches!(select_device(Some("cuda")), Err(FdbError::DeviceUnavailable(_))));
            assert!(select_device(None).unwrap().is_cpu());
        }
    }
}
