//! transferlab's binary: no subcommand opens the app; subcommands run headlessly.

use anyhow::Result;
use clap::Parser;
use transferlab::cli::{Cli, CliCommand, bench_command, demos_command, run_command};

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        // Stopped by Ctrl-C or SIGTERM: what was done is written, and the shell is told.
        Ok(()) if transferlab::cli::interrupted() => std::process::ExitCode::from(130),
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The error chain only: a backtrace (RUST_BACKTRACE=1) is for developers, and
            // TRANSFERLAB_DEBUG=1 asks for it.
            if std::env::var_os("TRANSFERLAB_DEBUG").is_some_and(|v| v == "1") {
                eprintln!("Error: {e:?}");
            } else {
                eprintln!("Error: {e:#}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(CliCommand::Run(args)) => run_command(&args).map(|_| ()),
        Some(CliCommand::Demos) => {
            demos_command();
            Ok(())
        }
        Some(CliCommand::Methods) => {
            transferlab::cli::methods_command();
            Ok(())
        }
        Some(CliCommand::Backbones) => {
            transferlab::cli::backbones_command();
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
        Some(CliCommand::Rank(args)) => transferlab::cli::rank_command(&args).map(|_| ()),
        Some(CliCommand::BenchPretrained(args)) => {
            transferlab::cli::bench_pretrained_command(&args).map(|_| ())
        }
        None => transferlab::app::run_native(cli.demo),
    }
}
