//! The GPU the device tests run on, or why there is none.

use mlpow_worker::cuda::{self, CudaLane};

/// The first usable GPU's lane, or `None` after printing why there is none
/// (the test then passes without checking anything: CI has no GPU).
pub fn gpu(test: &str) -> Option<CudaLane> {
	let reason = match cuda::devices() {
		Ok(devices) => match devices.into_iter().find(|d| d.unsupported_reason().is_none()) {
			Some(d) => match CudaLane::open(d) {
				Ok(lane) => return Some(lane),
				Err(e) => format!("{e:#}"),
			},
			None => "no device of compute capability 7.5 or newer".into(),
		},
		Err(e) => format!("{e:#}"),
	};
	eprintln!("SKIPPED {test}: no usable GPU: {reason}");
	None
}
