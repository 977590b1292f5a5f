//! Frames the relay has not acknowledged yet: kept in memory up to a bound,
//! then spilled to a file, and dropped past a hard bound (the core then
//! rebases the relay onto a full reset instead of resending).
//!
//! Frames enter in sequence order and leave from the front when acked, so
//! the spill file is always an older prefix of the memory queue.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use bytes::Bytes;

#[derive(Debug)]
struct Entry {
    first: u64,
    last: u64,
    bytes: Bytes,
}

#[derive(Debug)]
struct Spilled {
    first: u64,
    last: u64,
    offset: u64,
    len: u32,
}

/// The unacked frames of one terminal session.
#[derive(Debug)]
pub struct Unacked {
    mem: VecDeque<Entry>,
    mem_bytes: usize,
    mem_cap: usize,
    spilled: VecDeque<Spilled>,
    spill_bytes: u64,
    max_bytes: u64,
    spill_dir: PathBuf,
    file: Option<(PathBuf, File)>,
    /// Frames through this seq were dropped unacked; resending from before
    /// it is impossible.
    lost_through: u64,
}

impl Unacked {
    pub fn new(mem_cap: usize, max_bytes: u64, spill_dir: PathBuf) -> Self {
        Unacked {
            mem: VecDeque::new(),
            mem_bytes: 0,
            mem_cap,
            spilled: VecDeque::new(),
            spill_bytes: 0,
            max_bytes,
            spill_dir,
            file: None,
            lost_through: 0,
        }
    }

    /// Bytes held in memory and on disk.
    pub fn total_bytes(&self) -> u64 {
        self.mem_bytes as u64 + self.spill_bytes
    }

    /// Keeps a frame covering `first..=last`.
    pub fn push(&mut self, first: u64, last: u64, bytes: Bytes) -> std::io::Result<()> {
        self.mem_bytes += bytes.len();
        self.mem.push_back(Entry { first, last, bytes });
        while self.mem_bytes > self.mem_cap && self.mem.len() > 1 {
            let Some(e) = self.mem.pop_front() else { break };
            self.mem_bytes -= e.bytes.len();
            if let Err(err) = self.spill(&e) {
                // Disk trouble: lose this frame rather than memory bounds.
                self.lost_through = self.lost_through.max(e.last);
                return Err(err);
            }
        }
        while self.total_bytes() > self.max_bytes {
            if let Some(s) = self.spilled.pop_front() {
                self.spill_bytes -= u64::from(s.len);
                self.lost_through = self.lost_through.max(s.last);
            } else if let Some(e) = self.mem.pop_front() {
                self.mem_bytes -= e.bytes.len();
                self.lost_through = self.lost_through.max(e.last);
            } else {
                break;
            }
        }
        Ok(())
    }

    fn spill(&mut self, e: &Entry) -> std::io::Result<()> {
        if self.file.is_none() {
            std::fs::create_dir_all(&self.spill_dir)?;
            let path = self
                .spill_dir
                .join(format!("unacked-{}.spill", std::process::id()));
            let file = OpenOptions::new()
                .create(true)
                .read(true)
                .write(true)
                .truncate(true)
                .open(&path)?;
            self.file = Some((path, file));
        }
        let Some((_, file)) = self.file.as_mut() else {
            return Ok(());
        };
        let offset = file.seek(SeekFrom::End(0))?;
        file.write_all(&e.bytes)?;
        let len =
            u32::try_from(e.bytes.len()).map_err(|_| std::io::Error::other("frame too large"))?;
        self.spill_bytes += u64::from(len);
        self.spilled.push_back(Spilled {
            first: e.first,
            last: e.last,
            offset,
            len,
        });
        Ok(())
    }

    /// Forgets every frame whose records are all `<= seq`.
    pub fn ack(&mut self, seq: u64) {
        while self.spilled.front().is_some_and(|s| s.last <= seq) {
            if let Some(s) = self.spilled.pop_front() {
                self.spill_bytes -= u64::from(s.len);
            }
        }
        if self.spilled.is_empty() {
            self.truncate_spill();
        }
        while self.mem.front().is_some_and(|e| e.last <= seq) {
            if let Some(e) = self.mem.pop_front() {
                self.mem_bytes -= e.bytes.len();
            }
        }
    }

    fn truncate_spill(&mut self) {
        if let Some((_, file)) = self.file.as_mut() {
            let _ = file.set_len(0);
        }
        self.spill_bytes = 0;
    }

    /// Whether the frames held can bring a relay at `relay_last` up to
    /// `ours` with no gap and no overlap (the relay refuses a frame that
    /// straddles its `last_seq`, so the first frame resent must start right
    /// after it).
    pub fn covers_after(&self, relay_last: u64, ours: u64) -> bool {
        if relay_last == ours {
            return true;
        }
        if relay_last > ours || relay_last < self.lost_through {
            return false;
        }
        let mut next = relay_last + 1;
        let ranges = self
            .spilled
            .iter()
            .map(|s| (s.first, s.last))
            .chain(self.mem.iter().map(|e| (e.first, e.last)));
        for (first, last) in ranges {
            if last <= relay_last {
                continue;
            }
            if first != next {
                return false;
            }
            next = last + 1;
        }
        next == ours + 1
    }

    /// The frames with records after `seq`, oldest first.
    pub fn frames_after(&mut self, seq: u64) -> std::io::Result<Vec<Bytes>> {
        let mut out = Vec::new();
        if let Some((_, file)) = self.file.as_mut() {
            for s in self.spilled.iter().filter(|s| s.last > seq) {
                file.seek(SeekFrom::Start(s.offset))?;
                let mut buf = vec![0u8; s.len as usize];
                file.read_exact(&mut buf)?;
                out.push(Bytes::from(buf));
            }
        }
        out.extend(
            self.mem
                .iter()
                .filter(|e| e.last > seq)
                .map(|e| e.bytes.clone()),
        );
        Ok(out)
    }

    /// Drops everything (the sequence is being rebased).
    pub fn clear(&mut self) {
        self.mem.clear();
        self.mem_bytes = 0;
        self.spilled.clear();
        self.truncate_spill();
        self.lost_through = 0;
    }
}

impl Drop for Unacked {
    fn drop(&mut self) {
        if let Some((path, _)) = self.file.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u8, len: usize) -> Bytes {
        Bytes::from(vec![n; len])
    }

    #[test]
    fn spills_to_disk_and_reads_back_in_order() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut u = Unacked::new(100, 10_000, dir.path().to_path_buf());
        for i in 0..10u8 {
            let seq = u64::from(i) * 2 + 1;
            u.push(seq, seq + 1, frame(i, 40))?;
        }
        assert!(u.mem_bytes <= 100);
        assert!(!u.spilled.is_empty(), "old frames went to disk");
        let all = u.frames_after(0)?;
        assert_eq!(all.len(), 10);
        for (i, f) in all.iter().enumerate() {
            assert_eq!(f[0], i as u8);
        }
        assert!(u.covers_after(0, 20));
        assert!(u.covers_after(6, 20));
        u.ack(6);
        assert_eq!(u.frames_after(0)?.len(), 7);
        assert!(!u.covers_after(2, 20), "frames 3..=6 are gone once acked");
        assert!(u.covers_after(6, 20));
        Ok(())
    }

    #[test]
    fn hard_bound_drops_oldest_and_refuses_resend_from_before() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut u = Unacked::new(50, 200, dir.path().to_path_buf());
        for i in 0..10u8 {
            let seq = u64::from(i) + 1;
            u.push(seq, seq, frame(i, 40))?;
        }
        assert!(u.total_bytes() <= 200);
        assert!(!u.covers_after(0, 10), "frame 1 was dropped");
        assert!(u.covers_after(u.lost_through, 10));
        Ok(())
    }

    #[test]
    fn a_gap_is_not_covered() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut u = Unacked::new(1000, 10_000, dir.path().to_path_buf());
        u.push(1, 3, frame(1, 10))?;
        u.push(6, 8, frame(2, 10))?;
        assert!(!u.covers_after(0, 8));
        assert!(u.covers_after(5, 8));
        assert!(u.covers_after(8, 8));
        assert!(!u.covers_after(9, 8));
        Ok(())
    }

    #[test]
    fn a_frame_straddling_the_relays_last_seq_is_not_a_cover() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut u = Unacked::new(1000, 10_000, dir.path().to_path_buf());
        u.push(1, 3, frame(1, 10))?;
        u.push(4, 5, frame(2, 10))?;
        assert!(u.covers_after(0, 5));
        assert!(u.covers_after(3, 5));
        assert!(!u.covers_after(2, 5), "resending 1..=3 would overlap 2");
        assert!(!u.covers_after(4, 5));
        Ok(())
    }
}
