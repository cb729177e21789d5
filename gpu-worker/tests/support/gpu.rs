//! The GPU the device tests run on, or why there is none.
#![allow(dead_code)]

use mlpow_worker::{
	cuda::{self, CudaLane, DeviceInfo},
	kernels::Transcript,
};

/// The first usable GPU, or `None` after printing why there is none (the
/// test then passes without checking anything: CI has no GPU).
fn device(test: &str) -> Option<DeviceInfo> {
	let reason = match cuda::devices() {
		Ok(devices) => match devices.into_iter().find(|d| d.unsupported_reason().is_none()) {
			Some(d) => return Some(d),
			None => "no device of compute capability 7.5 or newer".into(),
		},
		Err(e) => format!("{e:#}"),
	};
	eprintln!("SKIPPED {test}: no usable GPU: {reason}");
	None
}

/// The first usable GPU's lane (its transcript kernel as `MLPOW_V2_KERNEL`
/// names it), or `None` after printing why there is none.
pub fn gpu(test: &str) -> Option<CudaLane> {
	let d = device(test)?;
	match CudaLane::open(d) {
		Ok(lane) => Some(lane),
		Err(e) => {
			eprintln!("SKIPPED {test}: no usable GPU: {e:#}");
			None
		}
	}
}

/// The first usable GPU's lane once for each puzzle v2 transcript kernel it
/// can run (mma.sync everywhere, wgmma on Hopper too), so that a test
/// checks every one; empty after printing why there is no GPU. A lane that
/// fails to open is a failure, not a skip: the device is there.
pub fn gpu_each_transcript(test: &str) -> Vec<(Transcript, CudaLane)> {
	let Some(d) = device(test) else { return Vec::new() };
	Transcript::available(d.compute_capability)
		.into_iter()
		.map(|kernel| {
			let lane = CudaLane::open_with(d.clone(), kernel).unwrap_or_else(|e| panic!("{test}: {kernel:?}: {e:#}"));
			eprintln!("{test}: on {} with the {kernel:?} transcript kernel", lane.info());
			(kernel, lane)
		})
		.collect()
}
