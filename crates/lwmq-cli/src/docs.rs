//! `lwmq generate completions SHELL` and `lwmq generate man`: shell
//! completion scripts and the man page, generated from the clap
//! definitions of the binary (so they cannot drift from `--help`). Hidden
//! from `--help`: it serves packagers and `scripts/install.sh`.

use std::io::Write;

use clap_complete::Shell;

use crate::failure::Failure;

/// Arguments of `lwmq generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// What to generate.
    #[command(subcommand)]
    pub what: Generated,
}

/// What `lwmq generate` writes to stdout.
#[derive(Debug, clap::Subcommand)]
pub enum Generated {
    /// A completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// The man page lwmq(1), in roff.
    Man,
}

/// Writes what `a` asks for about `cmd` (the binary's whole command
/// line) to stdout.
pub fn run(a: &GenerateArgs, cmd: clap::Command) -> Result<(), Failure> {
    let mut out = Vec::new();
    generate(&a.what, cmd, &mut out)?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::runtime(format!("write to stdout failed: {e}")))
}

/// Renders what `what` asks for into `out`.
pub fn generate(
    what: &Generated,
    mut cmd: clap::Command,
    out: &mut Vec<u8>,
) -> Result<(), Failure> {
    match what {
        Generated::Completions { shell } => {
            clap_complete::generate(*shell, &mut cmd, "lwmq", out);
            Ok(())
        }
        Generated::Man => clap_mangen::Man::new(cmd.name("lwmq"))
            .render(out)
            .map_err(|e| Failure::runtime(format!("rendering the man page failed: {e}"))),
    }
}
