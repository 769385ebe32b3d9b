//! Removing what iceoryx2 leaves behind.
//!
//! iceoryx2 keeps its shared memory in `/dev/shm` and its service and node
//! descriptions under its root directory (`/tmp/iceoryx2/`), every name
//! starting with the configured file prefix (`iox2_` by default). The bench
//! gives its iceoryx2 peers a prefix of their own (`lwmqb<PID>_`), so that
//! afterwards exactly the entries of this run can be found and removed,
//! whatever other iceoryx2 users on the machine have.

use std::path::{Path, PathBuf};

/// iceoryx2's root directory on Linux.
pub const IOX2_ROOT: &str = "/tmp/iceoryx2";

/// The iceoryx2 files of one bench run.
#[derive(Debug, Clone)]
pub struct Iox2Files {
    prefix: String,
    root_existed: bool,
}

impl Iox2Files {
    /// For this process: the prefix holds the pid.
    pub fn new() -> Self {
        Self {
            prefix: format!("lwmqb{}_", std::process::id()),
            root_existed: Path::new(IOX2_ROOT).exists(),
        }
    }

    /// The file-name prefix the peers use.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Removes every entry with the prefix from `/dev/shm` and the iceoryx2
    /// root, and the root's directories if this run created them and they
    /// are empty. Returns the paths removed.
    pub fn remove_created(&self) -> Vec<PathBuf> {
        let mut gone = Vec::new();
        remove_prefixed(Path::new("/dev/shm"), &self.prefix, false, &mut gone);
        remove_prefixed(Path::new(IOX2_ROOT), &self.prefix, true, &mut gone);
        if !self.root_existed {
            remove_empty_dirs(Path::new(IOX2_ROOT));
        }
        gone
    }
}

impl Default for Iox2Files {
    fn default() -> Self {
        Self::new()
    }
}

/// Removes the entries of `dir` whose names start with `prefix` (and,
/// with `recurse`, those of its subdirectories; a subdirectory left empty
/// by that goes too: iceoryx2 names its per-node directories by node id
/// only). Returns whether anything was removed.
fn remove_prefixed(dir: &Path, prefix: &str, recurse: bool, gone: &mut Vec<PathBuf>) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut removed = false;
    for e in entries.flatten() {
        let path = e.path();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        let ours = e.file_name().to_string_lossy().starts_with(prefix);
        if ours {
            let r = if is_dir {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if r.is_ok() {
                gone.push(path);
                removed = true;
            }
        } else if is_dir && recurse && remove_prefixed(&path, prefix, true, gone) {
            removed = true;
            if std::fs::remove_dir(&path).is_ok() {
                gone.push(path);
            }
        }
    }
    removed
}

/// Removes `dir` and its subdirectories bottom-up where they are empty.
fn remove_empty_dirs(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}
