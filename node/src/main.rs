//! `mlpow-node`: a Substrate node whose consensus is MatMul proof of work.

mod chain_spec;
mod cli;
mod command;
mod mining_rpc;
mod rpc;
mod service;

fn main() -> sc_cli::Result<()> {
	command::run()
}
