//! `lb-ctl manpages DIR` (hidden): the manual pages, generated from the same
//! clap definitions as `--help`, so they cannot drift from the binary. The
//! Debian package runs it at build time (`cargo xtask package`).

use std::{fs, path::Path};

use anyhow::{Context as _, Result};

/// Section 8: lb-ctl administers the system (as `ipvsadm(8)`, `keepalived(8)`).
const SECTION: &str = "8";

/// Writes `lb-ctl.8` and `lb-ctl-<subcommand>[-<subcommand>].8` for every
/// visible subcommand into `dir`, creating it.
pub fn write_all(cli: clap::Command, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Built once so every subcommand knows its full name (`lb-ctl-backend-drain`);
    // no `help` pseudo-subcommand gets a page.
    let mut cli = cli.disable_help_subcommand(true);
    cli.build();
    write_tree(&cli, dir)
}

fn write_tree(cmd: &clap::Command, dir: &Path) -> Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_tree(sub, dir)?;
    }
    let page = clap_mangen::Man::new(cmd.clone()).section(SECTION);
    page.generate_to(dir).with_context(|| {
        format!(
            "writing the page of `{}` into {}",
            cmd.get_name(),
            dir.display()
        )
    })?;
    Ok(())
}
