//! `mlpow-node`: a Substrate node whose consensus is MatMul proof of work.

// sc-cli's and sc-service's error types are large by design; every node
// entry point returns them.
#![allow(clippy::result_large_err)]

mod chain_spec;
mod chain_work_rpc;
mod cli;
mod command;
mod fork_fetch;
mod fork_watch;
mod mining_rpc;
mod rpc;
mod service;

fn main() -> sc_cli::Result<()> {
	command::run()
}
