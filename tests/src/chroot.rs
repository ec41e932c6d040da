//! A throwaway Debian root to install packages into, without debootstrap or
//! a network: the host's `/usr` and dpkg database as read-only lower layers
//! of overlay mounts (so the root has Debian 12's programs and libraries, and
//! dpkg knows the packages that provide them), a fresh `/etc`, `/run`, `/tmp`
//! and `/var` of its own, and a few device nodes.
//!
//! Each [`ThrowawayRoot::run`] mounts the overlays, `/proc`, `/sys` and a
//! fresh bpffs in a private mount namespace (`unshare --mount`) and runs a
//! shell script chrooted there, so nothing is ever mounted on the host and a
//! failing test leaves no mount behind; what the script changes stays in the
//! root's own directories and the overlays' upper layers until drop.

use std::{
    fs,
    os::unix::fs::{PermissionsExt as _, symlink},
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{Context as _, Result, bail};

/// The host directories the root sees through overlays.
const LOWER: [(&str, &str); 2] = [("usr", "/usr"), ("dpkg", "/var/lib/dpkg")];

/// A root under `/tmp`, removed on drop.
pub struct ThrowawayRoot {
    dir: PathBuf,
}

impl ThrowawayRoot {
    /// Lays out a new root. Fails if the host has an `lb` package installed:
    /// its files would show through the overlays.
    pub fn new() -> Result<ThrowawayRoot> {
        let host = Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", "lb"])
            .output()
            .context("running dpkg-query")?;
        if host.stdout.starts_with(b"install ok") {
            bail!("the host has an lb package installed; purge it (`dpkg -P lb`) first");
        }
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("lb-root-{}-{n}", std::process::id()));
        let this = ThrowawayRoot { dir };
        this.lay_out()?;
        Ok(this)
    }

    /// The root directory, as seen from the host.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    fn lay_out(&self) -> Result<()> {
        let root = self.root();
        for d in [
            "usr",
            "var/lib/dpkg",
            "var/log",
            "var/cache",
            "etc",
            "run",
            "root",
            "proc",
            "sys",
            "dev",
            "tmp",
        ] {
            fs::create_dir_all(root.join(d)).with_context(|| format!("creating {d}"))?;
        }
        fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))?;
        // Debian 12 merged /usr: the top-level directories are links into it.
        for (link, target) in [
            ("bin", "usr/bin"),
            ("sbin", "usr/sbin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
        ] {
            symlink(target, root.join(link)).with_context(|| format!("linking /{link}"))?;
        }
        // Users and groups the maintainer scripts of installed packages
        // (man-db's trigger) may switch to.
        for f in ["passwd", "group"] {
            fs::copy(Path::new("/etc").join(f), root.join("etc").join(f))
                .with_context(|| format!("copying /etc/{f}"))?;
        }
        for (name, _) in LOWER {
            for sub in ["upper", "work"] {
                fs::create_dir_all(self.dir.join("layers").join(name).join(sub))?;
            }
        }
        make_devices(&root.join("dev"))
    }

    /// Copies a host file into the root, at `to` (absolute, inside the root).
    pub fn copy_in(&self, from: &Path, to: &str) -> Result<()> {
        let target = self.root().join(to.trim_start_matches('/'));
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir)?;
        }
        fs::copy(from, &target)
            .with_context(|| format!("copying {} to {}", from.display(), target.display()))?;
        Ok(())
    }

    /// Runs `script` with `sh -eu` chrooted into the root (in network
    /// namespace `netns` if given) and returns its output, whatever its exit
    /// status.
    pub fn run(&self, netns: Option<&str>, script: &str) -> Result<Output> {
        let mut mounts = String::new();
        for (name, lower) in LOWER {
            let layer = self.dir.join("layers").join(name);
            let at = self.root().join(lower.trim_start_matches('/'));
            mounts.push_str(&format!(
                "mount -t overlay overlay -o lowerdir={lower},upperdir={},workdir={} {}\n",
                layer.join("upper").display(),
                layer.join("work").display(),
                at.display()
            ));
        }
        let root = self.root();
        let root = root.display();
        let setup = format!(
            "{mounts}mount -t proc proc {root}/proc\n\
             mount -t sysfs -o ro sysfs {root}/sys\n\
             mount -t bpf bpf {root}/sys/fs/bpf\n\
             exec chroot {root} /usr/bin/env -i PATH=/usr/sbin:/usr/bin HOME=/root LANG=C.UTF-8 \
             /bin/sh -euc \"$0\"\n"
        );
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "unshare"]);
                c
            }
            None => Command::new("unshare"),
        };
        cmd.args(["--mount", "--propagation", "private", "sh", "-euc"])
            .arg(setup)
            .arg(script);
        cmd.output().context("running unshare")
    }
}

/// The character devices programs expect in `/dev`.
fn make_devices(dev: &Path) -> Result<()> {
    for (node, minor) in [
        ("null", "3"),
        ("zero", "5"),
        ("random", "8"),
        ("urandom", "9"),
    ] {
        let path = dev.join(node);
        let out = Command::new("mknod")
            .args(["-m", "666"])
            .arg(&path)
            .args(["c", "1", minor])
            .output()
            .context("running mknod")?;
        if !out.status.success() {
            bail!(
                "mknod {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

impl Drop for ThrowawayRoot {
    fn drop(&mut self) {
        // Nothing is mounted here outside a `run`; a leftover is only files.
        let _ = fs::remove_dir_all(&self.dir);
    }
}
