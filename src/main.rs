//! transferlab's binary: no subcommand opens the app; subcommands run headlessly.

use anyhow::Result;
use clap::Parser;
use transferlab::cli::{Cli, CliCommand, bench_command, demos_command, run_command};

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(CliCommand::Run(args)) => run_command(&args).map(|_| ()),
        Some(CliCommand::Demos) => {
            demos_command();
            Ok(())
        }
        Some(CliCommand::Bench(args)) => bench_command(&args),
        Some(CliCommand::Similarity(args)) => {
            transferlab::cli::similarity_command(&args).map(|_| ())
        }
        Some(CliCommand::BenchMethods(args)) => transferlab::cli::bench_methods_command(&args),
        Some(CliCommand::Devices) => {
            transferlab::cli::devices_command();
            Ok(())
        }
        Some(CliCommand::Predict(args)) => transferlab::cli::predict_command(&args).map(|_| ()),
        None => transferlab::app::run_native(cli.demo),
    }
}
