//! The overrides file: versioned JSON, read whole, written atomically (temp
//! file in the same directory, fsync, rename, fsync the directory) so that a
//! crash leaves the old file or the new one, never a mix or nothing.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::Overrides;

/// Mode of the state directory when `save` creates it.
const DIR_MODE: u32 = 0o700;
/// Mode of the overrides file: operators' changes are nobody else's business.
const FILE_MODE: u32 = 0o600;

/// Why the overrides could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A filesystem operation failed; `op` says which (`read`, `write`, ...).
    #[error("cannot {op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file exists but is not an overrides file this agent can read. It
    /// is never ignored: that would silently drop the operator's changes.
    #[error(
        "{} is not a valid overrides file (fix it, or move it aside to drop every runtime change)",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Reads the overrides at `path`; a missing file means no runtime changes.
pub fn load(path: &Path) -> Result<Overrides, StateError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Overrides::default()),
        Err(source) => {
            return Err(StateError::Io {
                op: "read",
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut ov: Overrides =
        serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt {
            path: path.to_owned(),
            source,
        })?;
    // A hand-edited file may hold empty entries; they change nothing.
    ov.normalize();
    Ok(ov)
}

/// Writes `ov` to `path` atomically, with mode 0600, creating its directory
/// (mode 0700) if missing.
pub fn save(path: &Path, ov: &Overrides) -> Result<(), StateError> {
    let io_err = |op: &'static str, at: &Path| {
        let path = at.to_owned();
        move |source| StateError::Io { op, path, source }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(name) = path.file_name() else {
        return Err(io_err("write", path)(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file name",
        )));
    };
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(io_err("create directory", dir))?;
    let mut text = serde_json::to_vec_pretty(ov).map_err(|e| io_err("encode", path)(e.into()))?;
    text.push(b'\n');
    // Same directory, so the rename cannot cross filesystems; the pid keeps
    // two processes writing at once from sharing a temp file.
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = write_synced(&tmp, &text)
        .and_then(|()| fs::rename(&tmp, path).map_err(io_err("replace", path)));
    if written.is_err() {
        // Best effort: the error being returned is the one that matters.
        let _ = fs::remove_file(&tmp);
    }
    written?;
    // The rename is durable only once the directory entry is on disk.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync directory", dir))
}

/// Creates (or truncates) `tmp` with [`FILE_MODE`], writes `text` and syncs it.
fn write_synced(tmp: &Path, text: &[u8]) -> Result<(), StateError> {
    let err = |op: &'static str| {
        let path = tmp.to_owned();
        move |source| StateError::Io { op, path, source }
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(tmp)
        .map_err(err("create"))?;
    // `mode` applies only to a new file and through the umask; a stale temp
    // file could have any mode.
    f.set_permissions(Permissions::from_mode(FILE_MODE))
        .map_err(err("set the mode of"))?;
    f.write_all(text).map_err(err("write"))?;
    f.sync_all().map_err(err("sync"))
}
