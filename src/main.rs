//! `meshnode`: the command-line entry point. Subcommands today: `bench` (protocol-core figures against
//! reference implementations). The running node, demo, simulator and control CLI build on the same core.
#![deny(unsafe_code)]

mod alloc_count;
mod bench;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "meshnode",
    version,
    about = "A Bluetooth LE mesh node: multi-hop frames, end-to-end Noise sessions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure the protocol core against reference implementations, side by side in one run.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(args) => match bench::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("meshnode bench: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
