//! The host emulation of Hopper's `wgmma.mma_async` (m64nNk32, s8 inputs,
//! s32 accumulators; `tests/wgmma_emulation.hpp`), checked on its own before
//! any kernel is run against it: `tests/wgmma_emulation_selftest.cpp`
//! stores operands in every swizzle mode from the PTX ISA's tables (not
//! from the emulation's address function), gathers the accumulators through
//! CUTLASS's published fragment layout, compares them with a plain product,
//! and shows that each mutation (a descriptor offset, a swizzle mode, two
//! fragment registers swapped) is caught.

#[path = "support/host_cxx.rs"]
mod host_cxx;

use std::process::Command;

#[test]
fn the_wgmma_emulation_passes_its_self_test() {
	let bin = host_cxx::compile("wgmma_emulation_selftest.cpp");
	let out = Command::new(&bin).output().expect("run the wgmma self-test");
	let stdout = String::from_utf8_lossy(&out.stdout);
	assert!(out.status.success(), "the wgmma self-test failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
	assert!(stdout.contains("ALL PASSED"), "{stdout}");
	let mutations = stdout.lines().find(|l| l.contains("mutations detected")).unwrap_or_default();
	println!("{mutations}");
	assert!(!mutations.is_empty(), "the self-test ran no mutation:\n{stdout}");
}
