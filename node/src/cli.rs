//! Command line: Substrate's standard node flags and subcommands, plus
//! `--author`.

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
