//! Prometheus metrics of the MatMul verifier, so that operators (and tests)
//! can see that a node really checks every seal it imports.

use substrate_prometheus_endpoint::{register, CounterVec, Opts, PrometheusError, Registry, U64};

/// `mlpow_seal_checks_total{result="valid"|"invalid"}` (the node's registry
/// prefixes it with `substrate_`): every seal `MatmulPow::verify` checked,
/// whether it came from the network, an import or a local miner.
#[derive(Clone)]
pub struct Metrics {
	seal_checks: CounterVec<U64>,
}

impl Metrics {
	pub fn register(registry: &Registry) -> Result<Self, PrometheusError> {
		let seal_checks = CounterVec::new(
			Opts::new("mlpow_seal_checks_total", "Seals checked by the MatMul proof-of-work verifier, by result"),
			&["result"],
		)?;
		Ok(Self { seal_checks: register(seal_checks, registry)? })
	}

	pub fn seal_checked(&self, valid: bool) {
		self.seal_checks.with_label_values(&[if valid { "valid" } else { "invalid" }]).inc();
	}
}
