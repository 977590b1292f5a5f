//! Hands back the code pages a quiet runner stopped using (issue 16).
//!
//! Most of an idle runner's resident memory is not its own data but pages
//! of its executable and libraries: code and constants that start-up, a
//! flood or a reconnect ran once, and relocation tables the loader read.
//! The kernel maps 64 KiB around every page a fault touches, so a function
//! called once keeps its neighbours mapped too, until memory runs short.
//! Once the runner has had no pane traffic for a while (`--trim-after`),
//! [`trim`] drops its mappings of those pages with `MADV_DONTNEED`: they
//! stay in the page cache, and what the runner runs next maps them again
//! from there (a minor fault, no disk read). The process's resident set
//! falls to what its idle loop touches (README, "Where the runner's idle
//! memory goes").
//!
//! Only pages that hold the file's own bytes are dropped: those of private,
//! read-only mappings of a file whose page table entry points into the page
//! cache (`/proc/self/pagemap`'s file bit). A private copy (relocated data,
//! `.data.rel.ro` after the loader wrote it) is anonymous memory and is
//! never touched, nor is anything writable, so no byte the program reads
//! changes. The runner never unloads a library (no `dlclose`), so a mapping
//! read from `/proc/self/maps` stays what it was until the `madvise`.
//!
//! Pure parts: [`read_only_file_mappings`], [`clean_runs`], [`Quiet`].
//! [`trim`] reads `/proc` and calls `madvise`; [`trim_when_quiet`] is the
//! task.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

/// Pane traffic through the uplink, counted: [`trim_when_quiet`] trims
/// once it stops moving. Cheap to bump on every message (one relaxed
/// atomic add, no wake-up).
#[derive(Debug, Clone, Default)]
pub struct Activity(Arc<AtomicU64>);

impl Activity {
    /// Something went to or came from the relay.
    pub fn touch(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// When to trim, from the activity count read at each tick (pure): once
/// after `ticks` ticks in a row without a change, then not again until the
/// count moved. A runner that never sees traffic trims once, `ticks` ticks
/// after it started.
#[derive(Debug, Clone)]
pub struct Quiet {
    ticks: u32,
    last: Option<u64>,
    still: u32,
    trimmed: bool,
}

impl Quiet {
    pub fn new(ticks: u32) -> Quiet {
        Quiet {
            ticks: ticks.max(1),
            last: None,
            still: 0,
            trimmed: false,
        }
    }

    /// The count at this tick; `true` when it is time to trim.
    pub fn tick(&mut self, count: u64) -> bool {
        if self.last != Some(count) {
            self.last = Some(count);
            self.still = 0;
            self.trimmed = false;
            return false;
        }
        self.still = self.still.saturating_add(1);
        if self.still >= self.ticks && !self.trimmed {
            self.trimmed = true;
            return true;
        }
        false
    }
}

/// Ticks per quiet period: a trim comes between one period and a third
/// more after the last traffic.
const TICKS: u32 = 3;

/// Trims whenever the runner has been quiet for `after` (see [`Quiet`]),
/// until `cancel`.
pub async fn trim_when_quiet(activity: Activity, after: Duration, cancel: CancellationToken) {
    let period = (after / TICKS).max(Duration::from_millis(100));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut quiet = Quiet::new(TICKS);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if !quiet.tick(activity.count()) {
            continue;
        }
        let started = std::time::Instant::now();
        match trim() {
            Ok(t) => info!(
                dropped_kb = t.bytes / 1024,
                ranges = t.ranges,
                took_us = started.elapsed().as_micros(),
                "quiet: handed back the code pages no longer in use"
            ),
            Err(err) => {
                // /proc unreadable (a sandbox, another kernel): nothing to
                // gain by trying again.
                debug!(%err, "cannot trim resident code pages; not trying again");
                return;
            }
        }
    }
}

/// What one [`trim`] dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Trimmed {
    /// Bytes of resident file pages no longer mapped.
    pub bytes: usize,
    /// `madvise` calls (runs of contiguous such pages).
    pub ranges: usize,
}

/// Drops this process's mappings of the clean file pages of its read-only
/// file mappings (the executable, its libraries): see the module docs.
/// Linux only (`/proc/self/pagemap`, `MADV_DONTNEED`'s meaning); elsewhere
/// an `Unsupported` error, and [`trim_when_quiet`] stops.
#[cfg(not(target_os = "linux"))]
pub fn trim() -> std::io::Result<Trimmed> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "trimming resident pages needs Linux's /proc/self/pagemap",
    ))
}

/// Drops this process's mappings of the clean file pages of its read-only
/// file mappings (the executable, its libraries): see the module docs.
#[cfg(target_os = "linux")]
pub fn trim() -> std::io::Result<Trimmed> {
    use std::io::{Read, Seek, SeekFrom};

    let page = rustix::param::page_size();
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut pagemap = std::fs::File::open("/proc/self/pagemap")?;
    let mut out = Trimmed::default();
    let mut raw = Vec::new();
    for mapping in read_only_file_mappings(&maps) {
        let pages = (mapping.end - mapping.start) / page;
        raw.resize(pages * 8, 0);
        pagemap.seek(SeekFrom::Start((mapping.start / page * 8) as u64))?;
        pagemap.read_exact(&mut raw)?;
        let entries: Vec<u64> = raw
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        for run in clean_runs(mapping.start, page, &entries) {
            drop_mapping(run.clone())?;
            out.bytes += run.end - run.start;
            out.ranges += 1;
        }
    }
    Ok(out)
}

/// `madvise(MADV_DONTNEED)` over `run`, which [`clean_runs`] found to be
/// clean file pages of a private read-only file mapping.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn drop_mapping(run: Range<usize>) -> std::io::Result<()> {
    let addr = std::ptr::without_provenance_mut::<std::ffi::c_void>(run.start);
    // SAFETY: `run` lies in a private, read-only mapping of a file, and
    // every page of it maps the file's page-cache page (pagemap's file
    // bit), not a private copy. Dropping such a mapping changes no byte
    // the program can read: the next access maps the same page-cache page
    // again. The mapping cannot have become writable or been replaced
    // since /proc/self/maps was read: nothing in this process changes its
    // protection or unloads a library. No reference into it is invalidated
    // (its contents stay the same).
    unsafe { rustix::mm::madvise(addr, run.end - run.start, rustix::mm::Advice::LinuxDontNeed) }
        .map_err(std::io::Error::from)
}

/// The private read-only mappings of files (`r--p`, `r-xp`) in a
/// `/proc/PID/maps` text, as address ranges (pure). Writable, shared and
/// anonymous mappings (heap, stacks, `[vdso]`) are left out.
pub fn read_only_file_mappings(maps: &str) -> Vec<Range<usize>> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            // offset, device, inode, then the path.
            let path = fields.nth(3)?;
            if !(perms == "r--p" || perms == "r-xp") || !path.starts_with('/') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (start < end).then_some(start..end)
        })
        .collect()
}

/// pagemap: the page is present.
const PRESENT: u64 = 1 << 63;
/// pagemap: the page is a file page (or shared anonymous memory, which a
/// private mapping does not hold); a private copy lacks it.
const FILE: u64 = 1 << 61;

/// The runs of pages, from `start`, whose pagemap `entries` say present
/// and file-backed (pure).
pub fn clean_runs(start: usize, page: usize, entries: &[u64]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut open: Option<usize> = None;
    for (i, entry) in entries.iter().enumerate() {
        let at = start + i * page;
        let clean = entry & PRESENT != 0 && entry & FILE != 0;
        match (clean, open) {
            (true, None) => open = Some(at),
            (false, Some(from)) => {
                runs.push(from..at);
                open = None;
            }
            _ => {}
        }
    }
    if let Some(from) = open {
        runs.push(from..start + entries.len() * page);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0000000-55d0c0400000 r--p 00000000 fe:00 5311511                    /usr/bin/tmux-bridge
55d0c0400000-55d0c1000000 r-xp 00400000 fe:00 5311511                    /usr/bin/tmux-bridge
55d0c1000000-55d0c1100000 r--p 01000000 fe:00 5311511                    /usr/bin/tmux-bridge
55d0c1100000-55d0c1110000 rw-p 01100000 fe:00 5311511                    /usr/bin/tmux-bridge
55d0c2000000-55d0c2100000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000001000 r--s 00000000 fe:00 42                         /tmp/relay.db-shm
7f0000100000-7f0000200000 r-xp 00026000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000300000-7f0000301000 r--p 00000000 00:00 0 
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
7ffd00004000-7ffd00005000 r-xp 00000000 fe:00 9                          /deleted lib (deleted)
garbage line
";

    #[test]
    fn only_private_read_only_file_mappings() {
        assert_eq!(
            read_only_file_mappings(MAPS),
            vec![
                0x55d0c0000000..0x55d0c0400000,
                0x55d0c0400000..0x55d0c1000000,
                0x55d0c1000000..0x55d0c1100000,
                0x7f0000100000..0x7f0000200000,
                0x7ffd00004000..0x7ffd00005000,
            ]
        );
    }

    #[test]
    fn runs_take_present_file_pages_only() {
        let file = PRESENT | FILE | 0x1234;
        let copy = PRESENT | 0x99; // a private copy: present, anonymous
        let absent = 0;
        let swapped = 1 << 62;
        let entries = [file, file, copy, file, absent, swapped, file, file, file];
        assert_eq!(
            clean_runs(0x1000, 0x1000, &entries),
            vec![0x1000..0x3000, 0x4000..0x5000, 0x7000..0xa000]
        );
        assert!(clean_runs(0x1000, 0x1000, &[copy, absent]).is_empty());
        assert!(clean_runs(0, 0x1000, &[]).is_empty());
    }

    #[test]
    fn trims_once_per_quiet_spell() {
        let mut q = Quiet::new(3);
        // Start-up traffic, then quiet: the third still tick trims.
        let ticks: Vec<bool> = [1, 5, 5, 5, 5, 5, 5].iter().map(|&c| q.tick(c)).collect();
        assert_eq!(ticks, [false, false, false, false, true, false, false]);
        // Traffic again: one more trim after the next quiet spell.
        let ticks: Vec<bool> = [6, 9, 9, 9, 9, 9].iter().map(|&c| q.tick(c)).collect();
        assert_eq!(ticks, [false, false, false, false, true, false]);
        // A runner that never sees traffic trims once.
        let mut q = Quiet::new(2);
        let ticks: Vec<bool> = [0, 0, 0, 0, 0].iter().map(|&c| q.tick(c)).collect();
        assert_eq!(ticks, [false, false, true, false, false]);
    }

    /// The trim itself, on this process (Linux only).
    #[cfg(target_os = "linux")]
    mod live {
        use super::super::trim;

        /// A table of pointers: it lives in `.data.rel.ro`, which the
        /// loader relocated into private copies. If `trim` dropped those,
        /// the pointers would read as the file's unrelocated values.
        static WORDS: [&str; 4] = ["alpha", "beta", "gamma", "delta"];
        static CALLS: [fn(u32) -> u32; 2] = [double, square];

        fn double(x: u32) -> u32 {
            x * 2
        }

        fn square(x: u32) -> u32 {
            x * x
        }

        fn rss_file_kb() -> u64 {
            testkit::procfs::status_kb("self", "RssFile").unwrap_or(0)
        }

        #[test]
        fn trim_drops_file_pages_and_the_program_runs_on() {
            let before = rss_file_kb();
            let trimmed = trim().expect("trim");
            let after = rss_file_kb();
            assert!(trimmed.bytes > 0 && trimmed.ranges > 0, "{trimmed:?}");
            assert!(
                after < before,
                "RssFile {before} kB before the trim, {after} kB after"
            );
            // Relocated data, code and constants read as before.
            let joined: String = WORDS.iter().map(|w| w.len().to_string()).collect();
            assert_eq!(joined, "5455");
            assert_eq!(WORDS.join(" "), "alpha beta gamma delta");
            assert_eq!(CALLS.iter().map(|f| f(7)).sum::<u32>(), 14 + 49);
            let parsed: serde_json::Value =
                serde_json::from_str(r#"{"after":[1,2,3]}"#).expect("json after a trim");
            assert_eq!(parsed["after"][2], 3);
            // And again, with everything mapped back.
            assert!(trim().is_ok());
            assert_eq!(WORDS[2], "gamma");
        }
    }
}
