//! `meshnode`: the command-line entry point. Subcommands: `bench` (protocol-core figures against reference
//! implementations), `simulate` (many real nodes over the simulated medium in virtual time, both relay policies
//! side by side) and `demo` (a paced multi-hop walk-through on the simulated medium, no Bluetooth needed).
#![deny(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use meshnode::{bench, demo, simulate};

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
    /// Run N real nodes over the simulated medium in virtual time, each relay policy on the same scenario.
    Simulate(simulate::SimulateArgs),
    /// Watch six or more nodes discover each other, talk privately across hops, fail and recover (~20 s).
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (name, result) = match cli.command {
        Command::Bench(args) => ("bench", bench::run(&args)),
        Command::Simulate(args) => ("simulate", simulate::run(&args)),
        Command::Demo(args) => ("demo", demo::run(&args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meshnode {name}: {e}");
            ExitCode::FAILURE
        }
    }
}
