//! The worker binary's command line: backends, devices and the benchmark,
//! as a user runs them. Without a GPU, `--backend cuda` must fail with a
//! clear message (never a panic) and `auto` must fall back to the CPU.

use std::process::Command;

fn worker(args: &[&str]) -> (bool, String) {
	let out = Command::new(env!("CARGO_BIN_EXE_mlpow-worker"))
		.args(args)
		.env("RUST_LOG", "info")
		.output()
		.expect("running mlpow-worker");
	let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
	assert!(!text.contains("panicked"), "{args:?} panicked:\n{text}");
	(out.status.success(), text)
}

fn has_gpu() -> bool {
	mlpow_worker::cuda::devices().is_ok_and(|d| d.iter().any(|d| d.unsupported_reason().is_none()))
}

#[test]
fn list_devices_names_the_cpu_and_says_what_cuda_has() {
	let (ok, text) = worker(&["--list-devices"]);
	assert!(ok, "{text}");
	assert!(text.contains("cpu: "), "{text}");
	assert!(text.contains("cuda:"), "{text}");
}

#[test]
fn the_cuda_backend_without_a_gpu_fails_clearly_and_auto_falls_back() {
	if has_gpu() {
		eprintln!("SKIPPED: this machine has a GPU; tests/cuda_device.rs covers it");
		return;
	}
	let (ok, text) = worker(&["--backend", "cuda", "--benchmark", "--bench-params", "dev", "--bench-secs", "0.2"]);
	assert!(!ok, "{text}");
	assert!(text.contains("CUDA backend: "), "{text}");

	let (ok, text) =
		worker(&["--backend", "auto", "--threads", "1", "--benchmark", "--bench-params", "dev", "--bench-secs", "0.2"]);
	assert!(ok, "{text}");
	assert!(text.contains("backend auto: the CPU, because CUDA is unavailable: "), "{text}");
	for needle in ["tickets/s", "plain GEMM", "ratio"] {
		assert!(text.contains(needle), "{text}");
	}
}

#[test]
fn bad_benchmark_parameters_are_refused_with_the_reason() {
	let (ok, text) = worker(&["--backend", "cpu", "--benchmark", "--bench-params", "64,64,64,24"]);
	assert!(!ok);
	assert!(text.contains("NotMultipleOf16"), "{text}");
	let (ok, text) = worker(&["--backend", "cpu", "--benchmark", "--bench-params", "64,64"]);
	assert!(!ok);
	assert!(text.contains("M,K,N,T"), "{text}");
}

#[test]
fn an_absent_device_is_named() {
	if !has_gpu() {
		eprintln!("SKIPPED: no GPU; without one the driver check fails first (see above)");
		return;
	}
	let (ok, text) = worker(&["--backend", "cuda", "--devices", "99", "--benchmark", "--bench-secs", "0.2"]);
	assert!(!ok);
	assert!(text.contains("no device cuda:99"), "{text}");
}

/// The worker speaks plain `ws://` to its node; `wss://` and anything else
/// is refused at once with the reason, not after a connection attempt.
#[test]
fn node_urls_other_than_ws_are_refused_with_the_reason() {
	let (ok, text) = worker(&["--node", "wss://node.example:443"]);
	assert!(!ok, "{text}");
	assert!(text.contains("wss:// is not supported") && text.contains("ssh -L"), "{text}");
	let (ok, text) = worker(&["--node", "http://127.0.0.1:9944"]);
	assert!(!ok, "{text}");
	assert!(text.contains("is not a ws:// URL"), "{text}");
}

/// The job API reads and writes files that requests name: it refuses to
/// listen anywhere but loopback, at start-up, with the reason.
#[test]
fn the_job_api_listens_on_loopback_only() {
	let (ok, text) = worker(&["--backend", "cpu", "--threads", "1", "--jobs-api", "0.0.0.0:0"]);
	assert!(!ok, "{text}");
	assert!(text.contains("loopback only"), "{text}");
}

/// `--benchmark --bench-job` runs useful mode's jobs against the plain GEMM
/// of the job's shape; it needs puzzle v2 parameters.
#[test]
fn the_useful_mode_benchmark_runs_and_wants_v2() {
	let args = ["--backend", "cpu", "--threads", "1", "--benchmark", "--bench-secs", "0.2", "--bench-job", "70,100,50"];
	let (ok, text) = worker(&[&args[..], &["--bench-params", "64,64,64,16,32"]].concat());
	assert!(ok, "{text}");
	assert!(text.contains("job MAC/s") && text.contains("useful mode / plain GEMM"), "{text}");
	let (ok, text) = worker(&[&args[..], &["--bench-params", "dev"]].concat());
	assert!(!ok, "{text}");
	assert!(text.contains("puzzle v2"), "{text}");
}
