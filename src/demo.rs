//! `meshnode demo` (being built).

/// Options of `meshnode demo`.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Run in virtual time without sleeping.
    #[arg(long)]
    pub fast: bool,
}

/// Runs `meshnode demo`.
pub fn run(_args: &DemoArgs) -> Result<(), String> {
    Err("not yet".into())
}
