//! `meshnode`: the command-line entry point. Subcommands: `bench` (protocol-core figures against reference
//! implementations), `run` (the node with a real or simulated radio) and `ctl` (its control client).
#![deny(unsafe_code)]

mod alloc_count;
mod bench;
mod ctl;
mod run;

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
    /// Run a node: radio, mesh, control socket; stops cleanly on SIGINT / SIGTERM.
    Run(run::RunArgs),
    /// Talk to a running node through its control socket.
    Ctl(ctl::CtlArgs),
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
        Command::Run(args) => run::main(&args),
        Command::Ctl(args) => ctl::main(&args),
    }
}
