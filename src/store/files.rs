//! Files of the embedded deployment (the data directory, the SQLite database) are readable by
//! the service's user only: they hold password hashes, sessions and the development outbox.

use std::path::Path;

use anyhow::Context;

/// Creates `dir` (and missing parents) private to the owner, or makes an existing one so.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    restrict(dir, 0o700)
}

/// With `create`, creates the SQLite file (and a missing directory) private to the owner
/// before SQLite opens it; SQLite gives its journal and WAL files the database file's mode.
/// Existing files are made private.
pub fn private_database(file: &Path, create: bool) -> anyhow::Result<()> {
    if create {
        if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.exists()
        {
            private_dir(parent)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options
            .open(file)
            .with_context(|| format!("creating the database file {}", file.display()))?;
    }
    if !file.exists() {
        return Ok(());
    }
    restrict(file, 0o600)?;
    for side in ["-wal", "-shm", "-journal"] {
        let mut name = file.as_os_str().to_owned();
        name.push(side);
        let path = Path::new(&name);
        if path.exists() {
            restrict(path, 0o600)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if current != mode {
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
            Ok(()) => {}
            // A mount point the platform owns (a Kubernetes volume with fsGroup): only its
            // owner may change it, and its access is the platform's to set. What vhod creates
            // inside stays private.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{current:o}"),
                    "cannot make this private (another user owns it): its own permissions apply"
                );
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("making {} private (mode {mode:o})", path.display()));
            }
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_and_existing_files_become_private() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("a/b/vhod.db");
        private_database(&db, true).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(db.parent().unwrap()), 0o700);
        let wal = tmp.path().join("a/b/vhod.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        private_database(&db, true).unwrap();
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // Without `create` (no mode=rwc) a missing database stays missing.
        let absent = tmp.path().join("absent/vhod.db");
        private_database(&absent, false).unwrap();
        assert!(!absent.exists() && !absent.parent().unwrap().exists());
    }
}
