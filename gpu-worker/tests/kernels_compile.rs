//! Every kernel source compiles with NVRTC, for every GPU generation the
//! worker mines on, on any machine: NVRTC is a plain library (the PyPI
//! wheel `nvidia-cuda-nvrtc`, which `scripts/setup-nvrtc.sh` installs and
//! `scripts/env.sh` puts on LD_LIBRARY_PATH), no GPU needed. A syntax or
//! type error in `kernels/*.cu` fails here, never on a miner's machine.

use mlpow_worker::{cuda, kernels};

/// Turing, Ampere (A100, consumer), Ada, Hopper, Blackwell (data centre,
/// consumer).
const ARCHITECTURES: [(i32, i32); 7] = [(7, 5), (8, 0), (8, 6), (8, 9), (9, 0), (10, 0), (12, 0)];

#[test]
fn every_kernel_compiles_for_every_supported_architecture() {
	for cc in ARCHITECTURES {
		let ptx = match cuda::compile_kernels(cc) {
			Ok(ptx) => ptx,
			Err(e) => panic!(
				"{e:#}\n(if NVRTC is missing: run scripts/setup-nvrtc.sh, then `source scripts/env.sh`; \
				 scripts/test.sh does both)"
			),
		};
		let text = ptx.to_src();
		for name in kernels::KERNELS {
			assert!(text.contains(&format!(".entry {name}(")), "compute_{}{}: no entry {name} in the PTX", cc.0, cc.1);
		}
		assert!(text.contains(&format!(".target sm_{}{}", cc.0, cc.1)), "PTX for compute_{}{}", cc.0, cc.1);
		// The Hopper transcript kernel's wgmma exists only on the
		// architecture-specific sm_90a; elsewhere its entry only traps.
		let hopper = cc == (9, 0);
		assert_eq!(text.contains(".target sm_90a"), hopper, "compute_{}{}: the sm_90a target", cc.0, cc.1);
		assert_eq!(text.contains("wgmma.mma_async"), hopper, "compute_{}{}: wgmma.mma_async in the PTX", cc.0, cc.1);
		// The transcript kernel keeps its accumulators and folds (and, for a
		// useful job, the correction it computes in the fold registers) in
		// registers: an array the compiler could not promote would show as
		// a local-memory depot in its PTX.
		let body = entry_body(&text, "mlpow2_transcript");
		assert!(!body.contains("__local_depot"), "compute_{}{}: mlpow2_transcript uses local memory", cc.0, cc.1);
		assert!(body.contains("mma.sync.aligned"), "compute_{}{}: mlpow2_transcript without mma", cc.0, cc.1);
	}
}

/// The PTX of entry `name`, up to the next entry.
fn entry_body<'a>(ptx: &'a str, name: &str) -> &'a str {
	let start = ptx.find(&format!(".entry {name}(")).expect("the entry is there");
	let rest = &ptx[start + 1..];
	&ptx[start..start + 1 + rest.find(".entry ").unwrap_or(rest.len())]
}

#[test]
fn below_the_minimum_architecture_is_refused() {
	assert!(kernels::MIN_COMPUTE_CAPABILITY == (7, 5));
	let old = cuda::DeviceInfo {
		ordinal: 0,
		name: "an old GPU".into(),
		compute_capability: (7, 0),
		memory_bytes: 16 << 30,
		multiprocessors: 80,
	};
	let why = old.unsupported_reason().expect("7.0 cannot mine");
	assert!(why.contains("7.0") && why.contains("7.5"), "{why}");
	let new = cuda::DeviceInfo { compute_capability: (9, 0), ..old };
	assert_eq!(new.unsupported_reason(), None);
}
