//! Finding GPUs, and the libraries and kernels a lane needs.

use crate::kernels::{self, MIN_COMPUTE_CAPABILITY};
use anyhow::{anyhow, bail};
use cudarc::{
	cublaslt::sys as lt_sys,
	driver::{result as drv, sys as drv_sys},
	nvrtc,
};

#[derive(Clone, Debug)]
pub struct DeviceInfo {
	pub ordinal: usize,
	pub name: String,
	pub compute_capability: (i32, i32),
	pub memory_bytes: usize,
	pub multiprocessors: i32,
}

impl DeviceInfo {
	/// Why this device cannot mine, if it cannot.
	pub fn unsupported_reason(&self) -> Option<String> {
		(self.compute_capability < MIN_COMPUTE_CAPABILITY).then(|| {
			format!(
				"compute capability {}.{} is below {}.{}, the first with int8 tensor cores",
				self.compute_capability.0,
				self.compute_capability.1,
				MIN_COMPUTE_CAPABILITY.0,
				MIN_COMPUTE_CAPABILITY.1
			)
		})
	}
}

impl std::fmt::Display for DeviceInfo {
	fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
		write!(
			f,
			"cuda:{} {} (compute {}.{}, {} SMs, {:.1} GiB)",
			self.ordinal,
			self.name,
			self.compute_capability.0,
			self.compute_capability.1,
			self.multiprocessors,
			self.memory_bytes as f64 / (1u64 << 30) as f64
		)
	}
}

/// Is the NVIDIA driver library loadable? Nothing else in cudarc's driver
/// API may be called before this says yes.
fn driver_loadable() -> bool {
	// SAFETY: only tries to dlopen the library's candidate names.
	unsafe { drv_sys::is_culib_present() }
}

/// Every CUDA device, or why there are none. Never panics: no driver, a
/// driver that fails to initialise and zero devices are all errors.
pub fn devices() -> anyhow::Result<Vec<DeviceInfo>> {
	if !driver_loadable() {
		bail!("no NVIDIA driver: libcuda.so.1 cannot be loaded (install the driver, or mine with --backend cpu)");
	}
	drv::init().map_err(|e| anyhow!("the NVIDIA driver failed to initialise: {e:?}"))?;
	let count = drv::device::get_count().map_err(|e| anyhow!("cannot count CUDA devices: {e:?}"))?;
	if count <= 0 {
		bail!("the NVIDIA driver reports no CUDA device");
	}
	(0..count as usize)
		.map(|ordinal| {
			let dev = drv::device::get(ordinal as i32).map_err(|e| anyhow!("cuda:{ordinal}: {e:?}"))?;
			let attr = |a| {
				// SAFETY: `dev` is a valid device handle from the driver.
				unsafe { drv::device::get_attribute(dev, a) }.map_err(|e| anyhow!("cuda:{ordinal}: {e:?}"))
			};
			use drv_sys::CUdevice_attribute::*;
			Ok(DeviceInfo {
				ordinal,
				name: drv::device::get_name(dev).map_err(|e| anyhow!("cuda:{ordinal}: {e:?}"))?,
				compute_capability: (
					attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
					attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?,
				),
				// SAFETY: as above.
				memory_bytes: unsafe { drv::device::total_mem(dev) }.map_err(|e| anyhow!("cuda:{ordinal}: {e:?}"))?,
				multiprocessors: attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?,
			})
		})
		.collect()
}

/// The run-time libraries besides the driver, or which one is missing.
pub(super) fn libraries_loadable() -> anyhow::Result<()> {
	// SAFETY: only tries to dlopen the libraries' candidate names.
	if !unsafe { nvrtc::sys::is_culib_present() } {
		bail!(
			"NVRTC (libnvrtc.so.13 or .12) cannot be loaded: install the CUDA toolkit's NVRTC \
			 (or `pip install nvidia-cuda-nvrtc`) and put its lib directory on LD_LIBRARY_PATH"
		);
	}
	// SAFETY: as above.
	if !unsafe { lt_sys::is_culib_present() } {
		bail!(
			"cuBLASLt (libcublasLt.so.13 or .12) cannot be loaded: install the CUDA toolkit's cuBLAS \
			 (or `pip install nvidia-cublas`) and put its lib directory on LD_LIBRARY_PATH"
		);
	}
	Ok(())
}

/// Compiles the kernels (`kernels/v2.cu` with `mine.cu`) for compute capability `cc` with NVRTC.
/// Returns the PTX, or NVRTC's log as the error.
pub fn compile_kernels(cc: (i32, i32)) -> anyhow::Result<nvrtc::Ptx> {
	// SAFETY: only tries to dlopen the library's candidate names.
	if !unsafe { nvrtc::sys::is_culib_present() } {
		bail!("NVRTC (libnvrtc.so.13 or .12) cannot be loaded; put its lib directory on LD_LIBRARY_PATH");
	}
	let opts =
		nvrtc::CompileOptions { options: kernels::nvrtc_options(cc), name: Some("v2.cu".into()), ..Default::default() };
	nvrtc::compile_ptx_with_opts(kernels::source(), opts).map_err(|e| match e {
		nvrtc::CompileError::CompileError { log, .. } => {
			anyhow!(
				"NVRTC rejected the kernels (kernels/v2.cu, mine.cu) for compute_{}{}:\n{}",
				cc.0,
				cc.1,
				log.to_string_lossy()
			)
		}
		other => anyhow!("NVRTC failed on the kernels: {other:?}"),
	})
}
