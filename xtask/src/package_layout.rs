//! The package's tree: where every file goes, with which mode, and the
//! `DEBIAN/` control area. Everything generated (the unit for /usr/bin, man
//! pages, completions, Depends) comes from one source each: packaging/,
//! the built binary, `dpkg-shlibdeps`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use super::{install, set_mode, write};
use crate::{process, workspace_root};

/// The unit's binary path for a manual install, and the package's.
const MANUAL_BIN: &str = "/usr/local/bin/";
const PACKAGED_BIN: &str = "/usr/bin/";

/// Shell completions: `lb-ctl completions SHELL` and where Debian's shells look.
const COMPLETIONS: [(&str, &str); 3] = [
    ("bash", "usr/share/bash-completion/completions/lb-ctl"),
    ("zsh", "usr/share/zsh/vendor-completions/_lb-ctl"),
    ("fish", "usr/share/fish/vendor_completions.d/lb-ctl.fish"),
];

/// Lays out everything but `DEBIAN/control` under `stage`.
pub fn lay_out(stage: &Path, binary: &Path, version: &str) -> Result<()> {
    let root = workspace_root();
    let bin = stage.join("usr/bin/lb-ctl");
    install(binary, &bin, 0o755)?;
    process::run(
        "stripping the binary (debug info and symbols; the embedded XDP object keeps its BTF)",
        Command::new("strip").arg("--strip-unneeded").arg(&bin),
    )?;

    let unit = fs::read_to_string(root.join("packaging/lb.service"))
        .context("reading packaging/lb.service")?;
    write(
        &stage.join("lib/systemd/system/lb.service"),
        packaged_unit(&unit)?,
        0o644,
    )?;
    install(
        &root.join("examples/lb.yaml"),
        &stage.join("etc/lb/lb.yaml"),
        0o644,
    )?;
    let state = stage.join("var/lib/lb");
    fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;

    man_pages(stage, &bin)?;
    for (shell, path) in COMPLETIONS {
        let script = process::stdout_of(Command::new(&bin).args(["completions", shell]))?;
        write(&stage.join(path), script, 0o644)?;
    }
    docs(stage, version)?;
    maintainer_scripts(stage)?;
    directory_modes(stage)?;
    set_mode(&state, 0o700)
}

/// The unit with the package's binary path. packaging/lb.service stays the
/// one source, written for a manual install under /usr/local/bin.
pub fn packaged_unit(unit: &str) -> Result<String> {
    if !unit.contains(MANUAL_BIN) {
        bail!("packaging/lb.service names no {MANUAL_BIN}lb-ctl: has the unit's layout changed?");
    }
    Ok(unit.replace(MANUAL_BIN, PACKAGED_BIN))
}

/// `lb-ctl manpages` into a scratch directory, then each page gzipped.
fn man_pages(stage: &Path, bin: &Path) -> Result<()> {
    let scratch = stage.join("man.tmp");
    process::run(
        "generating the man pages",
        Command::new(bin).arg("manpages").arg(&scratch),
    )?;
    let man8 = stage.join("usr/share/man/man8");
    fs::create_dir_all(&man8).with_context(|| format!("creating {}", man8.display()))?;
    for page in sorted_files(&scratch)? {
        let name = page.file_name().context("a page without a name")?;
        let mut target = man8.join(name);
        target.as_mut_os_string().push(".gz");
        write(&target, gzip(&page)?, 0o644)?;
    }
    fs::remove_dir_all(&scratch).with_context(|| format!("removing {}", scratch.display()))
}

/// `gzip -9n` of `file` (`-n`: no name or time stamp, so rebuilding gives
/// the same bytes).
fn gzip(file: &Path) -> Result<Vec<u8>> {
    let gz = process::capture(Command::new("gzip").args(["-9n", "-c"]).arg(file))?;
    if !gz.status.success() {
        bail!(
            "gzip {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&gz.stderr)
        );
    }
    Ok(gz.stdout)
}

/// /usr/share/doc/lb: the README and docs/ (the README links into it), the
/// example configuration, the copyright file and changelog Debian requires;
/// and the lintian overrides (packaging/debian/lintian-overrides says why).
fn docs(stage: &Path, version: &str) -> Result<()> {
    let root = workspace_root();
    let doc = stage.join("usr/share/doc/lb");
    changelog(&doc, version)?;
    install(
        &root.join("packaging/debian/lintian-overrides"),
        &stage.join("usr/share/lintian/overrides/lb"),
        0o644,
    )?;
    install(&root.join("README.md"), &doc.join("README.md"), 0o644)?;
    install(
        &root.join("packaging/debian/copyright"),
        &doc.join("copyright"),
        0o644,
    )?;
    install(
        &root.join("examples/lb.yaml"),
        &doc.join("examples/lb.yaml"),
        0o644,
    )?;
    for page in sorted_files(&root.join("docs"))? {
        if page.extension().is_some_and(|e| e == "md") {
            let name = page.file_name().context("a doc without a name")?;
            install(&page, &doc.join("docs").join(name), 0o644)?;
        }
    }
    Ok(())
}

/// `changelog.gz` from packaging/debian/changelog, dated by the last commit
/// (the same bytes for the same tree), or now outside a git checkout.
fn changelog(doc: &Path, version: &str) -> Result<()> {
    let root = workspace_root();
    let template = fs::read_to_string(root.join("packaging/debian/changelog"))
        .context("reading packaging/debian/changelog")?;
    let date = process::stdout_of(Command::new("git").current_dir(root).args([
        "log",
        "-1",
        "--format=%aD",
    ]))
    .or_else(|_| process::stdout_of(Command::new("date").arg("-R")))?;
    let text = template
        .replace("@VERSION@", version)
        .replace("@DATE@", date.trim());
    let plain = doc.join("changelog");
    write(&plain, text, 0o644)?;
    let gz = gzip(&plain)?;
    fs::remove_file(&plain).with_context(|| format!("removing {}", plain.display()))?;
    write(&doc.join("changelog.gz"), gz, 0o644)
}

fn maintainer_scripts(stage: &Path) -> Result<()> {
    let debian = stage.join("DEBIAN");
    for script in ["postinst", "prerm", "postrm"] {
        install(
            &workspace_root().join("packaging/debian").join(script),
            &debian.join(script),
            0o755,
        )?;
    }
    write(&debian.join("conffiles"), "/etc/lb/lb.yaml\n", 0o644)
}

/// Every directory 0755 (whatever the umask), before /var/lib/lb gets 0700.
fn directory_modes(dir: &Path) -> Result<()> {
    set_mode(dir, 0o755)?;
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() && !path.is_symlink() {
            directory_modes(&path)?;
        }
    }
    Ok(())
}

/// `DEBIAN/control` from packaging/debian/control, and `DEBIAN/md5sums`.
pub fn control(stage: &Path, version: &str, arch: &str) -> Result<()> {
    let template = fs::read_to_string(workspace_root().join("packaging/debian/control"))
        .context("reading packaging/debian/control")?;
    let depends = shlib_depends(stage)?;
    let size_kib = tree_bytes(stage)?.div_ceil(1024);
    let control = template
        .replace("@VERSION@", version)
        .replace("@ARCH@", arch)
        .replace("@DEPENDS@", &depends)
        .replace("@INSTALLED_SIZE@", &size_kib.to_string());
    if has_placeholder(&control) {
        bail!("packaging/debian/control has a placeholder xtask does not fill:\n{control}");
    }
    write(&stage.join("DEBIAN/control"), control, 0o644)?;
    md5sums(stage)
}

/// Whether `text` still holds an `@NAME@` placeholder.
fn has_placeholder(text: &str) -> bool {
    text.split('@')
        .skip(1)
        .step_by(2)
        .any(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        && text.matches('@').count() >= 2
}

/// The libraries' packages with the minimum versions the binary's symbols
/// need, as `dpkg-shlibdeps` computes them (it wants a debian/control around,
/// made in a scratch directory beside the stage).
fn shlib_depends(stage: &Path) -> Result<String> {
    let binary = stage.join("usr/bin/lb-ctl");
    let scratch = stage
        .parent()
        .context("the stage has no parent directory")?
        .join("shlibdeps.tmp");
    write(
        &scratch.join("debian/control"),
        "Source: lb\n\nPackage: lb\nArchitecture: any\n",
        0o644,
    )?;
    let out = process::stdout_of(
        Command::new("dpkg-shlibdeps")
            .current_dir(&scratch)
            .args(["-O", "-e"])
            .arg(&binary),
    );
    fs::remove_dir_all(&scratch).with_context(|| format!("removing {}", scratch.display()))?;
    let out = out?;
    out.lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .map(str::to_owned)
        .with_context(|| format!("no shlibs:Depends in dpkg-shlibdeps' output:\n{out}"))
}

fn tree_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            tree_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// `md5sum` of every file outside `DEBIAN/`, paths relative to the root.
fn md5sums(stage: &Path) -> Result<()> {
    let mut files = Vec::new();
    collect_files(stage, stage, &mut files)?;
    let sums = process::stdout_of(Command::new("md5sum").current_dir(stage).args(&files))?;
    write(&stage.join("DEBIAN/md5sums"), sums, 0o644)
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for path in sorted_files_and_dirs(dir)? {
        if path.is_dir() {
            if path != root.join("DEBIAN") {
                collect_files(root, &path, out)?;
            }
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_owned());
        }
    }
    Ok(())
}

fn sorted_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(sorted_files_and_dirs(dir)?
        .into_iter()
        .filter(|p| p.is_file())
        .collect())
}

fn sorted_files_and_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("listing {}", dir.display()))?;
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaged_unit_runs_usr_bin() {
        let unit = fs::read_to_string(workspace_root().join("packaging/lb.service")).unwrap();
        let packaged = packaged_unit(&unit).unwrap();
        assert!(packaged.contains("ExecStart=/usr/bin/lb-ctl agent --config /etc/lb/lb.yaml"));
        assert!(!packaged.contains("/usr/local"), "{packaged}");
        assert!(packaged_unit("ExecStart=/opt/lb-ctl").is_err());
    }

    #[test]
    fn placeholders_are_found_addresses_are_not() {
        assert!(has_placeholder("Version: @VERSION@\n"));
        assert!(!has_placeholder("Maintainer: lb <lb@example.invalid>\n"));
        assert!(!has_placeholder("Version: 0.1.0\n"));
    }
}
