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
		for name in ["mlpow2_transcript", "mlpow2_transcript_useful"] {
			let body = entry_body(&text, name);
			assert!(!body.contains("__local_depot"), "compute_{}{}: {name} uses local memory", cc.0, cc.1);
			assert!(body.contains("mma.sync.aligned"), "compute_{}{}: {name} without mma", cc.0, cc.1);
		}
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

/// ptxas's report (NVRTC compiling for the real architecture, `-Xptxas
/// -v`): for each kernel, its registers and its spill stores and loads.
fn ptxas_report(cc: (i32, i32)) -> String {
	use cudarc::nvrtc::result;
	let arch = format!("--gpu-architecture=sm_{}{}{}", cc.0, cc.1, if cc == (9, 0) { "a" } else { "" });
	let mut options = kernels::nvrtc_options(cc);
	options[0] = arch;
	options.push("--ptxas-options=-v".into());
	let source = std::ffi::CString::new(kernels::source()).unwrap();
	let program = result::create_program(&source, None).expect("an NVRTC program");
	// SAFETY: a program just created, compiled once, its log read, then
	// destroyed.
	unsafe {
		let compiled = result::compile_program(program, &options);
		let log = result::get_program_log(program).expect("the program's log");
		result::destroy_program(program).expect("destroying the program");
		let log = std::ffi::CStr::from_ptr(log.as_ptr()).to_string_lossy().into_owned();
		assert!(compiled.is_ok(), "sm_{}{}: {compiled:?}\n{log}", cc.0, cc.1);
		log
	}
}

/// The transcript kernels keep everything in registers on every real
/// architecture: their accumulators, folds and, for a useful job, the
/// correction computed in the fold registers. A spill would cost every
/// nonce; PTX cannot show one (registers are allocated after it), so this
/// asks ptxas, through NVRTC. On Hopper ptxas also says when it had to
/// serialize the wgmma kernel's `wgmma.mma_async` (warnings C7510-C7516):
/// the whole kernel would lose its overlap of copies and products, so that
/// fails too. (A miner's driver JITs the PTX with its own ptxas; this is
/// the closest check without a GPU.)
#[test]
fn the_transcript_kernels_fit_their_registers_without_spilling() {
	for cc in ARCHITECTURES {
		let report = ptxas_report(cc);
		let mut entries = vec!["mlpow2_transcript", "mlpow2_transcript_useful"];
		if cc == (9, 0) {
			entries.extend(["mlpow2_transcript_wgmma", "mlpow2_transcript_wgmma_useful"]);
		}
		for name in entries {
			let at = report
				.find(&format!("Function properties for {name}\n"))
				.unwrap_or_else(|| panic!("sm_{}{}: no report for {name}:\n{report}", cc.0, cc.1));
			let lines: Vec<&str> = report[at..].lines().take(3).collect();
			eprintln!("sm_{}{} {name}: {}", cc.0, cc.1, lines[1..].join(" | ").trim());
			assert!(
				lines[1].contains(" 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads"),
				"sm_{}{}: {name} uses local memory or spills: {}",
				cc.0,
				cc.1,
				lines[1]
			);
		}
		assert!(!report.contains("serialized"), "sm_{}{}: ptxas serialized the wgmma kernel:\n{report}", cc.0, cc.1);
	}
}
