//! The search indexer: a background task that reads stored frames past
//! each session's indexed sequence, turns their output records into lines
//! ([`super::lines`]) and saves lines and progress in one transaction
//! (`Store::save_index`). It never touches the hot path: frames reach the
//! store and browsers first, the index trails by one pass (a second by
//! default). Two relays on one database may both run it; the store's
//! optimistic progress check keeps each frame indexed once.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use protocol::wire::{Frame, RecordBody};
use store::search::{IndexProgress, IndexedLine};
use store::{Store, StoreError, TerminalSessionId};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::lines::PaneLines;

/// Sessions looked at per pass.
const SESSIONS_PER_PASS: u32 = 64;
/// Frames read per session per pass (a bound on memory and on the length
/// of one transaction).
const FRAMES_PER_PASS: u32 = 64;
/// Lines written per transaction, at most (a little more: a frame's lines
/// stay together).
const LINES_PER_TRANSACTION: usize = 500;
/// Text written per transaction, at most (likewise).
const TEXT_PER_TRANSACTION: usize = 256 * 1024;
/// Lines kept from one frame; the rest of a frame that printed more (a
/// flood of short lines) is not indexed.
const MAX_LINES_PER_FRAME: usize = 2_000;
/// Pause between two write transactions of one pass, so the relay's own
/// writes (frames) are never kept waiting behind a row of them.
pub const PAUSE_BETWEEN_TRANSACTIONS: Duration = Duration::from_millis(20);
/// In-memory splitters kept (one set per session); beyond it they are
/// dropped and rebuilt from the stored unfinished lines.
const MAX_SESSIONS_IN_MEMORY: usize = 10_000;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassStats {
    pub frames: usize,
    pub lines: usize,
    pub bytes: usize,
    /// The pass stopped at one of its bounds ([`SESSIONS_PER_PASS`],
    /// [`FRAMES_PER_PASS`]): more is stored than it indexed.
    pub more: bool,
}

/// The indexer's state: each session's splitters and the sequence they
/// stand at.
pub struct Indexer {
    sessions: HashMap<TerminalSessionId, (u64, BTreeMap<String, PaneLines>)>,
    pause: Duration,
}

impl Default for Indexer {
    /// The relay's indexer: [`PAUSE_BETWEEN_TRANSACTIONS`] between two
    /// write transactions.
    fn default() -> Self {
        Indexer::with_pause(PAUSE_BETWEEN_TRANSACTIONS)
    }
}

fn restore(pending: &str) -> BTreeMap<String, PaneLines> {
    let saved: BTreeMap<String, String> = serde_json::from_str(pending).unwrap_or_default();
    saved
        .into_iter()
        .map(|(pane, line)| (pane, PaneLines::resume(&line)))
        .collect()
}

fn pending_json(panes: &BTreeMap<String, PaneLines>) -> String {
    let saved: BTreeMap<&str, &str> = panes
        .iter()
        .filter(|(_, p)| !p.pending().is_empty())
        .map(|(pane, p)| (pane.as_str(), p.pending()))
        .collect();
    serde_json::to_string(&saved).unwrap_or_else(|_| "{}".into())
}

impl Indexer {
    /// An indexer that waits `pause` between two write transactions of one
    /// session's pass (the search benchmark passes zero to time the
    /// indexing work alone).
    pub fn with_pause(pause: Duration) -> Indexer {
        Indexer {
            sessions: HashMap::new(),
            pause,
        }
    }

    /// Indexes what is stored and not indexed yet, a bounded amount per
    /// session.
    pub async fn pass(&mut self, store: &Store) -> Result<PassStats, StoreError> {
        let mut stats = PassStats::default();
        let sessions = store.sessions_to_index(SESSIONS_PER_PASS).await?;
        let full = sessions.len() >= SESSIONS_PER_PASS as usize;
        for progress in sessions {
            self.session(store, &progress, &mut stats).await?;
        }
        // More sessions may wait, but only a pass that moved on says so: a
        // full list of sessions whose frames are gone (pruned) must not
        // keep the indexer busy.
        stats.more |= full && stats.frames > 0;
        if self.sessions.len() > MAX_SESSIONS_IN_MEMORY {
            self.sessions.clear();
        }
        Ok(stats)
    }

    async fn session(
        &mut self,
        store: &Store,
        progress: &IndexProgress,
        stats: &mut PassStats,
    ) -> Result<(), StoreError> {
        let frames = store
            .frames_page(progress.session, progress.indexed_seq, FRAMES_PER_PASS)
            .await?;
        if frames.is_empty() {
            return Ok(());
        }
        stats.more |= frames.len() >= FRAMES_PER_PASS as usize;
        let mut panes = match self.sessions.remove(&progress.session) {
            Some((at, panes)) if at == progress.indexed_seq => panes,
            _ => restore(&progress.pending),
        };
        let mut from = progress.indexed_seq;
        let mut lines = Vec::new();
        let mut text = 0usize;
        for stored in &frames {
            match Frame::decode(&stored.bytes) {
                Ok(frame) => {
                    stats.frames += 1;
                    let before = lines.len();
                    for record in frame.records {
                        if let RecordBody::Output { pane, bytes } = record.body {
                            stats.bytes += bytes.len();
                            let key = pane.to_string();
                            let splitter = panes.entry(key.clone()).or_default();
                            for line in splitter.feed(&bytes) {
                                if lines.len() - before >= MAX_LINES_PER_FRAME {
                                    continue;
                                }
                                text += line.len();
                                lines.push(IndexedLine {
                                    pane: key.clone(),
                                    seq: record.seq,
                                    at: i64::try_from(record.time).unwrap_or(0),
                                    line,
                                });
                            }
                        }
                    }
                }
                // The relay validates frames before storing them; one that
                // does not decode now is skipped, not retried forever.
                Err(e) => tracing::warn!(session = progress.session, first = stored.first_seq,
                    error = %e, "search: a stored frame does not decode; skipped"),
            }
            let last = stored.last_seq == frames.last().map_or(0, |f| f.last_seq);
            if lines.len() >= LINES_PER_TRANSACTION || text >= TEXT_PER_TRANSACTION || last {
                // Short write transactions, with a pause between them: the
                // store's appends (the hot path) wait for none of them long.
                let pending = pending_json(&panes);
                if !store
                    .save_index(progress.session, from, stored.last_seq, &lines, &pending)
                    .await?
                {
                    // Another indexer moved on: start again from the store.
                    return Ok(());
                }
                stats.lines += lines.len();
                from = stored.last_seq;
                lines.clear();
                text = 0;
                if !last && !self.pause.is_zero() {
                    tokio::time::sleep(self.pause).await;
                }
            }
        }
        self.sessions.insert(progress.session, (from, panes));
        Ok(())
    }
}

/// Runs [`Indexer::pass`] every `interval` until `shutdown`; at once
/// again (10 ms) while a backlog remains, that is after a pass that
/// stopped at one of its bounds. A pass that indexed everything waits the
/// whole interval even when output keeps flowing: output that trickles
/// in, such as a person's typing, is indexed once per interval rather
/// than in a pass every few milliseconds, each pass a few queries and a
/// write transaction beside the frames' own.
pub fn spawn_indexer(
    store: Store,
    interval: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut indexer = Indexer::default();
        loop {
            let wait = match indexer.pass(&store).await {
                Ok(stats) => {
                    if stats.frames > 0 {
                        tracing::debug!(
                            frames = stats.frames,
                            lines = stats.lines,
                            more = stats.more,
                            "search: indexed"
                        );
                    }
                    if stats.more {
                        Duration::from_millis(10)
                    } else {
                        interval
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "search: indexing pass failed");
                    interval
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use protocol::wire::{Frame, Record, RecordBody};

    use super::*;

    /// A session with `n` stored frames of one output line each.
    async fn session_with_frames(store: &Store, n: u64) -> TerminalSessionId {
        let s = store
            .upsert_session("r", "u", "idea", "main", "tb_idea__main")
            .await
            .expect("session")
            .id;
        for seq in 1..=n {
            let frame = Frame::batch(vec![Record {
                seq,
                time: 1,
                body: RecordBody::Output {
                    pane: tmux_cc::PaneId(1),
                    bytes: Bytes::from_static(b"a line\r\n"),
                },
            }])
            .expect("batch");
            store
                .append_frame(s, seq, seq, &frame.encode(true))
                .await
                .expect("append");
        }
        s
    }

    /// `more` (the spawned task's cue to pass again at once) holds while
    /// a pass stopped at its bound, and not once everything is indexed.
    #[tokio::test]
    async fn a_pass_says_more_only_while_a_backlog_remains() {
        let store = Store::connect("sqlite::memory:").await.expect("store");
        session_with_frames(&store, u64::from(FRAMES_PER_PASS) + 6).await;
        let mut indexer = Indexer::with_pause(Duration::ZERO);
        let first = indexer.pass(&store).await.expect("pass");
        assert_eq!((first.frames, first.more), (FRAMES_PER_PASS as usize, true));
        let second = indexer.pass(&store).await.expect("pass");
        assert_eq!((second.frames, second.more), (6, false));
        assert_eq!(second.lines, 6);
        let idle = indexer.pass(&store).await.expect("pass");
        assert_eq!((idle.frames, idle.more), (0, false));
    }
}
