//! Compiling a host harness for the kernels (`tests/host_kernels*.cpp`)
//! with the C++ compiler.

use std::{path::PathBuf, process::Command};

/// Compiles `tests/{source}` into a binary named after it and the calling
/// test: nextest runs tests in parallel processes, and a shared binary
/// could be rewritten while another one executes it.
pub fn compile(source: &str) -> PathBuf {
	let stem = source.trim_end_matches(".cpp");
	let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
		.join(format!("{stem}-{}", std::thread::current().name().unwrap_or("main")));
	let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join(source);
	let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
	let status = Command::new(&cxx)
		.args(["-O2", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-o"])
		.arg(&out)
		.arg(&src)
		.status()
		.unwrap_or_else(|e| {
			panic!("cannot run the C++ compiler `{cxx}` ({e}); install g++ (scripts/setup-system.sh does)")
		});
	assert!(status.success(), "{cxx} failed to compile {source} for the host");
	out
}
