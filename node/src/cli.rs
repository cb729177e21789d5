//! Command line: Substrate's standard node flags and subcommands, plus
//! `--author`, `--max-reorg-depth` and `--finality-settle-secs`.

#[derive(Debug, clap::Parser)]
#[command(propagate_version = true, args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
	#[command(subcommand)]
	pub subcommand: Option<Subcommand>,

	#[clap(flatten)]
	pub run: NodeArgs,
}

#[derive(Debug, clap::Args)]
pub struct NodeArgs {
	#[clap(flatten)]
	pub base: sc_cli::RunCmd,

	/// Account (SS58) credited with the reward of every block this node
	/// builds. The dev chain defaults to Alice; elsewhere, without it, the
	/// node still serves work but its blocks pay no one.
	#[arg(long, value_name = "SS58")]
	pub author: Option<String>,

	/// Maximum reorg depth: blocks this far below the best block are
	/// finalized, and no fork below them is ever followed (SPEC.md, "Fork
	/// choice and reorg depth").
	#[arg(long, value_name = "BLOCKS", default_value_t = mlpow_consensus::DEFAULT_MAX_REORG_DEPTH,
		value_parser = clap::value_parser!(u32).range(1..))]
	pub max_reorg_depth: u32,

	/// Seconds this node must have been in sync (after it starts, and after
	/// each time it caught up) before it finalizes anything: a chain it just
	/// downloaded waits until its other peers' chains have been fetched and
	/// weighed (SECURITY.md, "Round 2"). A live node finalizes as before
	/// after its first minute. 0 turns it off (tests that need finality at
	/// once).
	#[arg(long, value_name = "SECONDS", default_value_t = mlpow_consensus::DEFAULT_FINALITY_SETTLE.as_secs())]
	pub finality_settle_secs: u64,
}

#[derive(Debug, clap::Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum Subcommand {
	/// Key management.
	#[command(subcommand)]
	Key(sc_cli::KeySubcommand),
	/// Build a chain specification (JSON; `--raw` for the storage form).
	BuildSpec(sc_cli::BuildSpecCmd),
	/// Validate blocks.
	CheckBlock(sc_cli::CheckBlockCmd),
	/// Export blocks.
	ExportBlocks(sc_cli::ExportBlocksCmd),
	/// Export the state of a block as a chain spec.
	ExportState(sc_cli::ExportStateCmd),
	/// Import blocks.
	ImportBlocks(sc_cli::ImportBlocksCmd),
	/// Remove the whole chain.
	PurgeChain(sc_cli::PurgeChainCmd),
	/// Revert the chain to a previous state.
	Revert(sc_cli::RevertCmd),
	/// Database metadata.
	ChainInfo(sc_cli::ChainInfoCmd),
}
