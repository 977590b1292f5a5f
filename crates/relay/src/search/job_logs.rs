//! The job-log indexer: a background task that reads jobs' stored log
//! chunks past each job's indexed length, splits them into text lines
//! ([`super::lines`]) and saves lines and progress in one transaction
//! (`Store::save_job_index`), so `GET /api/search` finds what a job printed
//! even in flood mode, when the pane's live stream was not indexed. Off the
//! hot path like the transcript indexer; a job's unfinished last line is
//! indexed once the job ended.

use std::time::Duration;

use protocol::runner::job::MAX_LOG_CHUNK;
use store::log_search::JobToIndex;
use store::{Store, StoreError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::lines::PaneLines;
use crate::auth::now_ms;

/// Jobs looked at per pass.
const JOBS_PER_PASS: u32 = 32;
/// Log chunks read per job per pass (each at most 1 MiB of log).
const CHUNKS_PER_PASS: u32 = 4;
/// Lines kept from one chunk, half from its start and half from its end
/// (the transcript indexer likewise bounds a frame): the middle of a flood
/// of short lines is not indexed.
const MAX_LINES_PER_CHUNK: usize = 2_000;
/// Pause between two jobs' write transactions.
const PAUSE: Duration = Duration::from_millis(20);

/// Indexes one job's next chunks; returns how many lines were saved.
async fn index_job(store: &Store, job: &JobToIndex) -> Result<usize, StoreError> {
    let from = u64::try_from(job.indexed_bytes).unwrap_or(0);
    let chunks = store
        .job_log_chunks(&job.job_id, from, CHUNKS_PER_PASS)
        .await?;
    let mut splitter = PaneLines::resume(&job.pending);
    let mut at_byte = from;
    let mut lines = Vec::new();
    for c in &chunks {
        let (Ok(start), Ok(len)) = (u64::try_from(c.start_byte), u64::try_from(c.len)) else {
            continue;
        };
        let data = match protocol::codec::decompress(&c.data, MAX_LOG_CHUNK) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(job = %job.job_id, start, error = %e,
                    "search: a stored log chunk does not decode; skipped");
                Vec::new()
            }
        };
        // Pruned or skipped bytes before this chunk: go on from its start.
        let skip = usize::try_from(at_byte.saturating_sub(start)).unwrap_or(usize::MAX);
        // A flood keeps its first and its last lines (where a build says
        // what failed), not only its first.
        let mut head = 0;
        let mut tail = std::collections::VecDeque::new();
        for line in splitter.feed(data.get(skip.min(data.len())..).unwrap_or(&[])) {
            if head < MAX_LINES_PER_CHUNK / 2 {
                lines.push(line);
                head += 1;
            } else {
                if tail.len() == MAX_LINES_PER_CHUNK / 2 {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
        lines.extend(tail);
        at_byte = start + len;
    }
    let mut pending = splitter.pending().to_owned();
    let done = i64::try_from(at_byte).unwrap_or(i64::MAX) >= job.log_bytes;
    if done && job.ended_at.is_some() && !pending.trim().is_empty() {
        lines.push(pending.trim_end().to_owned());
        pending.clear();
    }
    if chunks.is_empty() && !(done && job.ended_at.is_some()) {
        return Ok(0);
    }
    let at = job.ended_at.map_or_else(now_ms, |e| e.min(now_ms()));
    let stamped: Vec<_> = lines.into_iter().map(|l| (at, l)).collect();
    let indexed = i64::try_from(at_byte).unwrap_or(i64::MAX);
    store
        .save_job_index(job, indexed, &pending, &stamped)
        .await?;
    Ok(stamped.len())
}

/// One pass over the jobs with log to index; returns the lines saved.
pub async fn pass(store: &Store) -> Result<usize, StoreError> {
    let mut total = 0;
    for job in store.jobs_to_index(JOBS_PER_PASS).await? {
        total += index_job(store, &job).await?;
        tokio::time::sleep(PAUSE).await;
    }
    Ok(total)
}

/// Spawns the job-log indexer: a pass every `interval` (at once again
/// while there is work), until `shutdown`.
pub fn spawn_job_log_indexer(
    store: Store,
    interval: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let wait = match pass(&store).await {
                Ok(n) if n > 0 => {
                    tracing::debug!(lines = n, "search: indexed job logs");
                    Duration::from_millis(10)
                }
                Ok(_) => interval,
                Err(e) => {
                    tracing::warn!(error = %e, "search: job-log indexing pass failed");
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
