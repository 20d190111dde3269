//! `hotline desk …`: tools for the desk's configuration.
//!
//! `hash-password` reads a password from standard input (so it stays out of the
//! shell's history and the process list) and prints its argon2id PHC string for a
//! `[[user]]`'s `password_hash`. `check FILE` validates a desk configuration.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::Subcommand;

use crate::cli::Failure;

/// The desk's configuration tools.
#[derive(Debug, Subcommand)]
pub enum DeskCommand {
    /// Read a password on standard input and print its hash for the desk's
    /// configuration (`password_hash = "…"`).
    HashPassword,
    /// Validate a desk configuration file and say what is wrong, where.
    Check {
        /// The file.
        file: PathBuf,
    },
}

/// Runs a desk tool.
pub fn run(cmd: DeskCommand) -> Result<(), Failure> {
    match cmd {
        DeskCommand::HashPassword => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!("password (the line is hashed as typed, without its newline):");
            }
            let mut line = String::new();
            stdin.lock().read_line(&mut line).map_err(|e| {
                Failure::Runtime(anyhow::anyhow!("cannot read standard input: {e}"))
            })?;
            let password = line.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err(Failure::Config(
                    "no password on standard input; try: printf '%s' 'the password' | hotline desk hash-password"
                        .into(),
                ));
            }
            let hash = hotline_desk::auth::hash_password(password)
                .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot hash the password: {e}")))?;
            println!("{hash}");
            Ok(())
        }
        DeskCommand::Check { file } => {
            let c = hotline_desk::DeskConfig::load(&file)
                .map_err(|e| Failure::Config(e.to_string()))?;
            println!(
                "{}: ok — {} tenant(s), {} user(s)",
                file.display(),
                c.tenants.len(),
                c.users.len()
            );
            Ok(())
        }
    }
}
