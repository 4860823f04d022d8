//! The dev outbox: every message becomes one JSON line in `<data dir>/outbox.jsonl`, e.g.
//! `{"time":"2025-01-01T10:00:00Z","channel":"sms","to":"+375291234567","subject":"","body":"…"}`.
//! Developers and tests read codes from it instead of a phone or a mailbox.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Channel, Message, NotifyError};

pub const OUTBOX_FILE: &str = "outbox.jsonl";

/// Where the outbox of a data directory is.
pub fn outbox_path(data_dir: &Path) -> PathBuf {
    data_dir.join(OUTBOX_FILE)
}

/// One line of the outbox. Dev data: its `Debug` shows the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// RFC 3339, UTC.
    pub time: String,
    pub channel: Channel,
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Every message written to the outbox of a data directory, oldest first; none if there is no
/// outbox yet.
pub fn read_outbox(data_dir: &Path) -> std::io::Result<Vec<OutboxEntry>> {
    let text = match std::fs::read_to_string(outbox_path(data_dir)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })
        .collect()
}

pub(super) struct Outbox {
    path: PathBuf,
    /// One writer at a time, so lines never interleave.
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Outbox {
    pub(super) fn new(path: PathBuf) -> Self {
        Outbox {
            path,
            lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) async fn append(&self, msg: &Message) -> Result<(), NotifyError> {
        let entry = OutboxEntry {
            time: crate::clock::rfc3339_now(),
            channel: msg.channel,
            to: msg.to.clone(),
            subject: msg.subject.clone(),
            body: msg.body.clone(),
        };
        let mut line = serde_json::to_string(&entry)
            .map_err(|e| NotifyError::Io(format!("encoding the outbox line: {e}")))?;
        line.push('\n');
        // The guard moves into the blocking write: even if this future is dropped mid-write,
        // the next writer waits until the line is complete.
        let guard = self.lock.clone().lock_owned().await;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let _guard = guard;
            append_line(&path, line.as_bytes())
                .map_err(|e| NotifyError::Io(format!("appending to {}: {e}", path.display())))
        })
        .await
        .map_err(|e| NotifyError::Io(format!("the outbox writer failed: {e}")))?
    }
}

fn append_line(path: &Path, line: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    // The outbox holds codes: readable by its owner only.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // One write of the whole line (O_APPEND): other processes appending cannot split it either.
    file.write_all(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_appended_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested/data");
        let outbox = Outbox::new(outbox_path(&data));
        assert!(read_outbox(&data).unwrap().is_empty());
        outbox
            .append(&Message::sms("+375291234567", "Код: 123456"))
            .await
            .unwrap();
        outbox
            .append(&Message::email("a@example.by", "Тэма", "Радок\nдругі"))
            .await
            .unwrap();
        let text = std::fs::read_to_string(outbox_path(&data)).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.ends_with('\n'));
        let entries = read_outbox(&data).unwrap();
        assert_eq!(entries[0].channel, Channel::Sms);
        assert_eq!(entries[0].body, "Код: 123456");
        assert_eq!(entries[0].subject, "");
        assert_eq!(entries[1].subject, "Тэма");
        assert_eq!(entries[1].body, "Радок\nдругі");
        let t = &entries[1].time;
        assert!(
            t.len() >= 20 && t.as_bytes()[10] == b'T' && t.ends_with('Z'),
            "{t}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(outbox_path(&data))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the outbox is private: {mode:o}");
        }
    }

    #[tokio::test]
    async fn an_unwritable_outbox_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        // The data "directory" is a file: nothing can be created below it.
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let outbox = Outbox::new(outbox_path(&file));
        let err = outbox
            .append(&Message::sms("+375291234567", "Код: 654321"))
            .await
            .unwrap_err();
        assert!(matches!(err, NotifyError::Io(_)), "{err:?}");
        assert!(!err.to_string().contains("654321"));
    }
}
