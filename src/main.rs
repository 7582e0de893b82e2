//! `meshnode`: the command-line entry point. Subcommands: `demo` (a paced multi-hop walk-through on the simulated
//! medium, no Bluetooth needed), `simulate` (many real nodes over the simulated medium in virtual time, both relay
//! policies side by side), `bench` (protocol-core figures against reference implementations), `run` (the node with
//! a real or simulated radio) and `ctl` (its control client).
#![deny(unsafe_code)]

mod ctl;
mod run;

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
    /// Watch seven nodes discover each other, talk privately across hops, fail and recover (~20 s).
    Demo(demo::DemoArgs),
    /// Run N real nodes over the simulated medium in virtual time, each relay policy on the same scenario.
    Simulate(simulate::SimulateArgs),
    /// Measure the protocol core against reference implementations, side by side in one run.
    Bench(bench::BenchArgs),
    /// Run a node: radio, mesh, control socket; stops cleanly on SIGINT / SIGTERM.
    Run(run::RunArgs),
    /// Talk to a running node through its control socket.
    Ctl(ctl::CtlArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (name, result) = match cli.command {
        Command::Demo(args) => ("demo", demo::run(&args)),
        Command::Simulate(args) => ("simulate", simulate::run(&args)),
        Command::Bench(args) => ("bench", bench::run(&args)),
        Command::Run(args) => return run::main(&args),
        Command::Ctl(args) => return ctl::main(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meshnode {name}: {e}");
            ExitCode::FAILURE
        }
    }
}
