//! The operator commands. Each returns an [`Exit`] code that means something:
//! 0 done, 1 failed, 2 bad input (usage or configuration).

pub mod apply;
pub mod config_check;

use std::process::ExitCode;

/// What a command's exit status says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Failed = 1,
    BadInput = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned tables for people.
    #[default]
    Table,
    /// One JSON document on stdout, for scripts.
    Json,
}

/// Prints an error with its chain of causes, one per line.
pub fn print_error(err: &anyhow::Error) {
    eprintln!("lb-ctl: error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}
