//! One sink's on-disk queue: append-only segments of checksummed frames and a cursor file.
//! All calls block on the file system; the async side reaches them through `spawn_blocking`.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Length (u32 BE) and CRC-32C of the payload (u32 BE).
const HEADER: u64 = 8;
/// Larger frames are refused on append and taken for garbage when reading back.
const MAX_PAYLOAD: u64 = 16 << 20;
const CURSOR: &str = "cursor";
const CURSOR_TMP: &str = "cursor.tmp";
const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// A record read back, with its place in this spool.
#[derive(Debug, Clone)]
pub(super) struct Spooled {
    pub index: u64,
    pub payload: Vec<u8>,
}

/// What became of the records handed to [`Spool::append`].
#[derive(Debug, Default)]
pub(super) struct Appended {
    pub accepted: usize,
    /// Refused for the bound (or larger than the bound on their own).
    pub refused: usize,
    /// Lost to a file system error, which is given.
    pub failed: usize,
    pub error: Option<io::Error>,
}

pub(super) struct Spool {
    name: &'static str,
    dir: PathBuf,
    max_bytes: u64,
    /// A segment takes no more appends past this size, so delivered records are reclaimed in
    /// steps of about an eighth of the bound even while the SIEM never quite catches up.
    segment_target: u64,
    state: Mutex<State>,
    // Mirrors of the state, readable without waiting for an fsync in progress.
    pending: AtomicU64,
    dropped: AtomicU64,
    bytes: AtomicU64,
}

struct Segment {
    first: u64,
    count: u64,
    bytes: u64,
}

impl Segment {
    fn end(&self) -> u64 {
        self.first + self.count
    }
}

struct Reader {
    segment_first: u64,
    file: BufReader<File>,
}

struct State {
    /// Oldest first; only the last one takes appends.
    segments: VecDeque<Segment>,
    /// The last segment, open for appending; `None` makes the next append start a segment.
    writer: Option<File>,
    /// Index the next appended record gets.
    next_index: u64,
    /// First index not known delivered, as persisted in the cursor file.
    cursor: u64,
    /// Next index to hand to delivery (ahead of the cursor while a batch is in flight).
    read_index: u64,
    reader: Option<Reader>,
    bytes: u64,
    /// Records refused since the current overflow episode began.
    overflow: Option<u64>,
}

enum Frame {
    Record(Vec<u8>),
    End,
    /// A frame cut short or failing its checksum: a torn write, or a damaged disk.
    Bad(&'static str),
}

impl Spool {
    /// Opens the spool in `dir` (creating it), truncating a torn tail and dropping segments
    /// the cursor says were delivered.
    pub(super) fn open(name: &'static str, dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        match fs::remove_file(dir.join(CURSOR_TMP)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let cursor = read_cursor(name, dir)?;
        let mut firsts = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if let Some(first) = entry.file_name().to_str().and_then(parse_segment_name) {
                firsts.push(first);
            }
        }
        firsts.sort_unstable();

        let mut segments = VecDeque::new();
        let mut bytes = 0;
        let mut pending = 0;
        for first in firsts {
            let path = segment_path(dir, first);
            let (count, valid) = scan_segment(name, &path)?;
            let end = first + count;
            // Segments overlapping an earlier one cannot come from this code; skip rather than
            // deliver the same indices twice in a muddled order.
            let overlaps = segments.back().is_some_and(|s: &Segment| first < s.end());
            if count == 0 || end <= cursor || overlaps {
                if overlaps {
                    tracing::error!(sink = name, segment = %path.display(), "spool segment overlaps the one before; removed");
                }
                fs::remove_file(&path)?;
                continue;
            }
            pending += end - first.max(cursor);
            bytes += valid;
            segments.push_back(Segment {
                first,
                count,
                bytes: valid,
            });
        }
        sync_dir(dir)?;
        let next_index = segments.back().map_or(cursor, |s| s.end().max(cursor));
        if pending > 0 {
            tracing::info!(
                sink = name,
                records = pending,
                "undelivered audit records recovered from the spool"
            );
        }
        Ok(Spool {
            name,
            dir: dir.to_path_buf(),
            max_bytes,
            segment_target: (max_bytes / 8).clamp(512, 8 << 20),
            state: Mutex::new(State {
                segments,
                writer: None,
                next_index,
                cursor,
                read_index: cursor,
                reader: None,
                bytes,
                overflow: None,
            }),
            pending: AtomicU64::new(pending),
            dropped: AtomicU64::new(0),
            bytes: AtomicU64::new(bytes),
        })
    }

    pub(super) fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Bytes of segment files on disk (the cursor file aside).
    pub(super) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state as consistent as an I/O error would:
        // counts only ever move after the file system has confirmed.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends the payloads in order and fsyncs them before returning. Once the bound refuses
    /// a record, everything is refused until the spool has drained to half the bound, so an
    /// overflow leaves one gap rather than a scatter of them.
    pub(super) fn append(&self, payloads: &[Vec<u8>]) -> Appended {
        let mut st = self.lock();
        let mut out = Appended::default();
        self.end_overflow_if_drained(&mut st);
        // Written to the current segment but not yet fsynced: (records, bytes).
        let mut staged = (0u64, 0u64);
        for (i, payload) in payloads.iter().enumerate() {
            let size = HEADER + payload.len() as u64;
            if size > self.max_bytes || payload.len() as u64 > MAX_PAYLOAD {
                tracing::error!(
                    sink = self.name,
                    bytes = size,
                    spool_max_bytes = self.max_bytes,
                    "audit record larger than the SIEM spool; dropped"
                );
                out.refused += 1;
                continue;
            }
            if let Some(n) = st.overflow.as_mut() {
                *n += 1;
                out.refused += 1;
                continue;
            }
            if st.bytes + staged.1 + size > self.max_bytes {
                tracing::error!(
                    sink = self.name,
                    spool_max_bytes = self.max_bytes,
                    "SIEM spool full; refusing audit records until it drains to half"
                );
                st.overflow = Some(1);
                out.refused += 1;
                continue;
            }
            let step = (|| {
                let roll = match (st.writer.is_some(), st.segments.back()) {
                    (true, Some(seg)) => {
                        staged.0 > 0 && seg.bytes + staged.1 >= self.segment_target
                    }
                    _ => true,
                };
                if roll {
                    self.commit_staged(&mut st, &mut staged)?;
                    self.start_segment(&mut st)?;
                }
                let writer = st
                    .writer
                    .as_mut()
                    .ok_or_else(|| io::Error::other("no segment open for appending"))?;
                writer.write_all(&frame(payload))?;
                staged.0 += 1;
                staged.1 += size;
                Ok::<_, io::Error>(())
            })();
            if let Err(e) = step {
                // What was written since the last fsync is cut off with the rest.
                out.accepted -= staged.0 as usize;
                out.failed = staged.0 as usize + (payloads.len() - i);
                self.abandon_staged(&mut st);
                out.error = Some(e);
                break;
            }
            out.accepted += 1;
        }
        if out.error.is_none() {
            if let Err(e) = self.commit_staged(&mut st, &mut staged) {
                out.accepted -= staged.0 as usize;
                out.failed = staged.0 as usize;
                self.abandon_staged(&mut st);
                out.error = Some(e);
            }
        }
        self.dropped
            .fetch_add((out.failed + out.refused) as u64, Ordering::Relaxed);
        out
    }

    /// Makes the staged records durable and counts them in.
    fn commit_staged(&self, st: &mut State, staged: &mut (u64, u64)) -> io::Result<()> {
        if staged.0 == 0 {
            return Ok(());
        }
        if let Some(w) = st.writer.as_mut() {
            w.sync_data()?;
        }
        let seg = st
            .segments
            .back_mut()
            .ok_or_else(|| io::Error::other("staged records without a segment"))?;
        seg.count += staged.0;
        seg.bytes += staged.1;
        st.next_index += staged.0;
        st.bytes += staged.1;
        self.pending.fetch_add(staged.0, Ordering::Relaxed);
        self.bytes.store(st.bytes, Ordering::Relaxed);
        *staged = (0, 0);
        Ok(())
    }

    /// Cuts what was written but not confirmed off the last segment, and closes it: the next
    /// append starts a fresh segment rather than trust a file that just failed.
    fn abandon_staged(&self, st: &mut State) {
        if let (Some(w), Some(seg)) = (st.writer.take(), st.segments.back()) {
            if let Err(e) = w.set_len(seg.bytes).and_then(|()| w.sync_all()) {
                // Recovery truncates a bad tail anyway; until then the reader stops at the
                // segment's confirmed count.
                tracing::warn!(sink = self.name, error = %e, "could not cut a failed append off the spool");
            }
        }
    }

    fn start_segment(&self, st: &mut State) -> io::Result<()> {
        if let Some(w) = st.writer.take() {
            w.sync_all()?;
        }
        // A segment left empty by a failed append would take the new one's name.
        if st.segments.back().is_some_and(|s| s.count == 0) {
            if let Some(seg) = st.segments.pop_back() {
                remove_if_exists(&segment_path(&self.dir, seg.first))?;
                st.bytes -= seg.bytes;
            }
        }
        let first = st.next_index;
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(segment_path(&self.dir, first))?;
        sync_dir(&self.dir)?;
        st.segments.push_back(Segment {
            first,
            count: 0,
            bytes: 0,
        });
        st.writer = Some(file);
        Ok(())
    }

    /// Up to `max` records (and about `max_bytes`, one record always) after the last ones
    /// handed out, in order. They stay in the spool (and come back after a restart) until
    /// [`Spool::commit`] passes them.
    pub(super) fn read(&self, max: usize, max_bytes: usize) -> io::Result<Vec<Spooled>> {
        let mut st = self.lock();
        let mut out = Vec::new();
        let mut bytes = 0;
        while out.len() < max && bytes < max_bytes && st.read_index < st.next_index {
            let Some((first, end)) = st
                .segments
                .iter()
                .find(|s| s.end() > st.read_index)
                .map(|s| (s.first, s.end()))
            else {
                break;
            };
            if st.read_index < first {
                // A gap left by a damaged segment: nothing there to deliver.
                st.read_index = first;
                st.reader = None;
            }
            if st.reader.as_ref().is_none_or(|r| r.segment_first != first) {
                st.reader = Some(self.open_reader(first, st.read_index)?);
            }
            let reader = st
                .reader
                .as_mut()
                .ok_or_else(|| io::Error::other("spool reader not open"))?;
            let problem = match read_frame(&mut reader.file) {
                Ok(Frame::Record(payload)) => {
                    bytes += payload.len();
                    out.push(Spooled {
                        index: st.read_index,
                        payload,
                    });
                    st.read_index += 1;
                    if st.read_index == end {
                        st.reader = None;
                    }
                    continue;
                }
                Ok(Frame::End) => "unexpected end".to_string(),
                Ok(Frame::Bad(why)) => why.to_string(),
                Err(e) => e.to_string(),
            };
            // Records confirmed on append and unreadable now: keep them for another attempt
            // rather than deliver around them.
            st.reader = None;
            if out.is_empty() {
                return Err(io::Error::other(format!(
                    "spool segment {first} unreadable at record {}: {problem}",
                    st.read_index
                )));
            }
            break;
        }
        Ok(out)
    }

    fn open_reader(&self, first: u64, at: u64) -> io::Result<Reader> {
        let mut file = BufReader::new(File::open(segment_path(&self.dir, first))?);
        for _ in first..at {
            let mut header = [0u8; HEADER as usize];
            file.read_exact(&mut header)?;
            let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
            file.seek_relative(i64::from(len))?;
        }
        Ok(Reader {
            segment_first: first,
            file,
        })
    }

    /// Everything before `upto` is delivered: `delivered` records. Persists the cursor, then
    /// removes segments wholly behind it.
    pub(super) fn commit(&self, upto: u64, delivered: u64) -> io::Result<()> {
        let mut st = self.lock();
        if upto <= st.cursor {
            return Ok(());
        }
        write_cursor(&self.dir, upto)?;
        st.cursor = upto;
        self.pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                Some(p.saturating_sub(delivered))
            })
            .ok();
        let caught_up = st.cursor >= st.next_index;
        let mut removed = false;
        while let Some(seg) = st.segments.front() {
            let last = st.segments.len() == 1;
            if seg.end() > st.cursor || (last && !caught_up) {
                break;
            }
            let (first, bytes) = (seg.first, seg.bytes);
            if last {
                st.writer = None;
            }
            if st.reader.as_ref().is_some_and(|r| r.segment_first == first) {
                st.reader = None;
            }
            remove_if_exists(&segment_path(&self.dir, first))?;
            st.segments.pop_front();
            st.bytes -= bytes;
            removed = true;
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        self.bytes.store(st.bytes, Ordering::Relaxed);
        self.end_overflow_if_drained(&mut st);
        Ok(())
    }

    fn end_overflow_if_drained(&self, st: &mut State) {
        if let Some(refused) = st.overflow {
            if st.bytes <= self.max_bytes / 2 {
                st.overflow = None;
                tracing::warn!(
                    sink = self.name,
                    refused,
                    "SIEM spool drained; accepting audit records again"
                );
            }
        }
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER as usize + payload.len());
    // The caller has held the payload to MAX_PAYLOAD, well inside u32.
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&CRC32C.checksum(payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn read_frame(r: &mut impl Read) -> io::Result<Frame> {
    let mut header = [0u8; HEADER as usize];
    let mut got = 0;
    while got < header.len() {
        match r.read(&mut header[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if got == 0 {
        return Ok(Frame::End);
    }
    if got < header.len() {
        return Ok(Frame::Bad("header cut short"));
    }
    let len = u64::from(u32::from_be_bytes([
        header[0], header[1], header[2], header[3],
    ]));
    let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_PAYLOAD {
        return Ok(Frame::Bad("length out of range"));
    }
    let mut payload = Vec::new();
    r.by_ref().take(len).read_to_end(&mut payload)?;
    if (payload.len() as u64) < len {
        return Ok(Frame::Bad("record cut short"));
    }
    if CRC32C.checksum(&payload) != crc {
        return Ok(Frame::Bad("checksum mismatch"));
    }
    Ok(Frame::Record(payload))
}

/// Counts the good frames of a segment and cuts anything after them off the file.
fn scan_segment(name: &'static str, path: &Path) -> io::Result<(u64, u64)> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let mut reader = BufReader::new(&file);
    let (mut count, mut valid) = (0u64, 0u64);
    loop {
        match read_frame(&mut reader)? {
            Frame::Record(p) => {
                count += 1;
                valid += HEADER + p.len() as u64;
            }
            Frame::End => break,
            Frame::Bad(why) => {
                tracing::warn!(
                    sink = name,
                    segment = %path.display(),
                    offset = valid,
                    file_bytes = len,
                    why,
                    "torn or damaged tail in the SIEM spool; cut off"
                );
                break;
            }
        }
    }
    drop(reader);
    if valid < len {
        file.set_len(valid)?;
        file.sync_all()?;
    }
    Ok((count, valid))
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("seg-{first:020}.log"))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn read_cursor(name: &'static str, dir: &Path) -> io::Result<u64> {
    match fs::read_to_string(dir.join(CURSOR)) {
        Ok(s) => Ok(s.trim().parse().unwrap_or_else(|_| {
            // Written by rename, so this is outside damage; sending everything again is the
            // at-least-once answer.
            tracing::warn!(
                sink = name,
                "SIEM spool cursor unreadable; redelivering what is spooled"
            );
            0
        })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

fn write_cursor(dir: &Path, cursor: u64) -> io::Result<()> {
    let tmp = dir.join(CURSOR_TMP);
    let mut f = File::create(&tmp)?;
    f.write_all(format!("{cursor}\n").as_bytes())?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dir.join(CURSOR))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
        range
            .map(|i| format!("{{\"n\":{i}}}").into_bytes())
            .collect()
    }

    fn drain(spool: &Spool) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        loop {
            let batch = spool.read(3, usize::MAX).expect("read");
            let Some(last) = batch.last() else { break };
            spool
                .commit(last.index + 1, batch.len() as u64)
                .expect("commit");
            all.extend(batch.into_iter().map(|s| s.payload));
        }
        all
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir)
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(parse_segment_name)
                    .is_some()
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn delivers_in_order_and_removes_delivered_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        // 4 KiB: segments of 512 bytes, so 40 records span several of them.
        let spool = Spool::open("t", dir.path(), 4096).expect("open");
        let r = spool.append(&payloads(0..40));
        assert_eq!((r.accepted, r.refused, r.failed), (40, 0, 0));
        assert_eq!(spool.pending(), 40);
        assert!(segment_files(dir.path()).len() > 1);
        assert_eq!(drain(&spool), payloads(0..40));
        assert_eq!(spool.pending(), 0);
        assert_eq!(spool.bytes(), 0);
        assert!(segment_files(dir.path()).is_empty());
        // Caught up and emptied: the next record starts a segment at the next index.
        spool.append(&payloads(40..41));
        drop(spool);
        let spool = Spool::open("t", dir.path(), 4096).expect("reopen");
        assert_eq!(spool.pending(), 1);
        let batch = spool.read(10, usize::MAX).expect("read");
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].index, 40);
    }

    #[test]
    fn uncommitted_records_come_back_after_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::open("t", dir.path(), 1 << 20).expect("open");
        spool.append(&payloads(0..10));
        let first = spool.read(4, usize::MAX).expect("read");
        spool.commit(first[3].index + 1, 4).expect("commit");
        // Handed out, never confirmed: a crash between delivery and commit.
        assert_eq!(spool.read(4, usize::MAX).expect("read").len(), 4);
        drop(spool);
        let spool = Spool::open("t", dir.path(), 1 << 20).expect("reopen");
        assert_eq!(spool.pending(), 6);
        assert_eq!(drain(&spool), payloads(4..10));
    }

    #[test]
    fn torn_tail_is_cut_off_and_appends_continue() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::open("t", dir.path(), 1 << 20).expect("open");
        spool.append(&payloads(0..5));
        drop(spool);
        let seg = segment_files(dir.path()).pop().expect("a segment");
        let good = fs::metadata(&seg).expect("meta").len();
        // Half a frame: a header promising 100 bytes and 3 of them.
        let mut f = OpenOptions::new()
            .append(true)
            .open(&seg)
            .expect("open seg");
        f.write_all(&[0, 0, 0, 100, 1, 2, 3, 4, b'a', b'b', b'c'])
            .expect("write");
        drop(f);
        let spool = Spool::open("t", dir.path(), 1 << 20).expect("reopen");
        assert_eq!(fs::metadata(&seg).expect("meta").len(), good);
        assert_eq!(spool.pending(), 5);
        spool.append(&payloads(5..7));
        assert_eq!(drain(&spool), payloads(0..7));
    }

    #[test]
    fn checksum_mismatch_ends_the_segment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::open("t", dir.path(), 1 << 20).expect("open");
        spool.append(&payloads(0..3));
        drop(spool);
        let seg = segment_files(dir.path()).pop().expect("a segment");
        let mut bytes = fs::read(&seg).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&seg, &bytes).expect("write");
        let spool = Spool::open("t", dir.path(), 1 << 20).expect("reopen");
        assert_eq!(drain(&spool), payloads(0..2));
    }

    #[test]
    fn bound_refuses_until_drained_to_half() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::open("t", dir.path(), 1000).expect("open");
        let mut accepted = 0;
        for i in 0..100 {
            let r = spool.append(&payloads(i..i + 1));
            accepted += r.accepted;
            assert!(spool.bytes() <= 1000);
            let on_disk: u64 = segment_files(dir.path())
                .iter()
                .map(|p| fs::metadata(p).map_or(0, |m| m.len()))
                .sum();
            assert!(on_disk <= 1000, "{on_disk} bytes on disk");
        }
        assert!(accepted > 0 && accepted < 100);
        assert_eq!(spool.dropped(), 100 - accepted as u64);
        // Room for one more would not end the episode; draining does.
        spool.read(1, usize::MAX).expect("read");
        spool.commit(1, 1).expect("commit");
        assert_eq!(spool.append(&payloads(200..201)).refused, 1);
        assert_eq!(drain(&spool).len(), accepted - 1);
        assert_eq!(spool.append(&payloads(300..301)).accepted, 1);
        // A record too large for the bound on its own is refused without an episode.
        assert_eq!(spool.append(&[vec![b'x'; 2000]]).refused, 1);
        assert_eq!(spool.append(&payloads(301..302)).accepted, 1);
    }
}
