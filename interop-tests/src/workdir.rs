//! A temp dir for one lab: configs, sockets, pid files and logs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Created under the system temp dir with mode 0755 (FRR's daemons run as
/// user `frr` and must reach their own subdirectory). Removed on drop,
/// except when the test is failing or `TERN_IT_KEEP` is set: then it is
/// kept and its path printed, so the full logs can be read.
pub struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    pub fn new(tag: &str) -> WorkDir {
        let path = std::env::temp_dir().join(crate::unique_name(tag));
        // Only a dead process with our PID (PIDs wrap) can have left it: a
        // failed run's kept dir. Moved aside with its logs, so its state
        // (a restart marker) does not make our tern think it restarted.
        if path.exists() {
            let aside = path.with_extension(format!("stale-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&aside);
            std::fs::rename(&path, &aside)
                .unwrap_or_else(|e| panic!("cannot move the stale {} aside: {e}", path.display()));
            eprintln!(
                "a stale work dir of an earlier process moved aside: {}",
                aside.display()
            );
        }
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
        WorkDir { path }
    }

    /// `path` itself (created, mode 0755) rather than a unique temp dir,
    /// e.g. for a lab that people look at; removed on drop like the others.
    pub fn at(path: &Path) -> WorkDir {
        std::fs::create_dir_all(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
        WorkDir {
            path: path.to_owned(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A subdirectory (created, mode 0755).
    pub fn subdir(&self, name: &str) -> PathBuf {
        let dir = self.path.join(name);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", dir.display()));
        dir
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("TERN_IT_KEEP").is_some() {
            eprintln!("work dir kept: {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
