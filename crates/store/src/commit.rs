//! Group commit of Batch frames: one task stores the frames that callers
//! queue, many per transaction ([`Store::append_frames`]), and answers
//! each frame on its own channel once the transaction holding it
//! committed (or failed).
//!
//! There is no timer: the task takes the first queued frame, then every
//! frame queued behind it up to a batch's limits, and commits them. While a
//! transaction commits, new frames queue; they form the next batch. So an
//! idle store commits a lone frame at once, and a busy one commits more
//! frames per transaction the slower each commit is.
//!
//! Bounded: the queue holds at most [`CommitOptions::queue_frames`]
//! frames and [`CommitOptions::queue_bytes`] bytes (a frame's bytes count
//! from [`FrameCommitter::submit`] until its batch's transaction ended).
//! `submit` waits while either is spent: a slow store back-pressures the
//! callers instead of buffering without bound. Frames submitted by one
//! caller are stored in submission order (one queue, one task, one
//! transaction at a time).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::{Appended, NewFrame, Store, StoreError};

/// Limits of a [`FrameCommitter`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CommitOptions {
    /// Frames queued or committing, at most.
    pub queue_frames: usize,
    /// Bytes of frames queued or committing, at most (a larger frame
    /// counts as this many and waits for an empty queue).
    pub queue_bytes: usize,
    /// Frames per transaction, at most.
    pub batch_frames: usize,
    /// A batch stops taking frames once it holds this many bytes.
    pub batch_bytes: usize,
}

impl Default for CommitOptions {
    fn default() -> Self {
        CommitOptions {
            queue_frames: 4096,
            queue_bytes: 64 * 1024 * 1024,
            batch_frames: 512,
            batch_bytes: 8 * 1024 * 1024,
        }
    }
}

impl CommitOptions {
    /// These limits with at most `n` frames per transaction (tests use
    /// small batches to know where one ends).
    pub fn with_batch_frames(mut self, n: usize) -> Self {
        self.batch_frames = n.max(1);
        self
    }
}

struct Request {
    frame: NewFrame,
    reply: oneshot::Sender<Result<Appended, StoreError>>,
    _bytes: OwnedSemaphorePermit,
}

/// Counters of a committer, for metrics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Transactions attempted.
    pub batches: u64,
    /// Frames they held.
    pub frames: u64,
    /// Transactions that failed (every frame of each was refused).
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    frames: AtomicU64,
    failed: AtomicU64,
}

/// The handle to the committing task. Cheap to clone; the task ends once
/// every handle is dropped and the frames queued before are answered.
#[derive(Debug, Clone)]
pub struct FrameCommitter {
    tx: mpsc::Sender<Request>,
    bytes: Arc<Semaphore>,
    max_permits: u32,
    counters: Arc<Counters>,
}

/// A submitted frame's answer: resolves once the transaction holding it
/// committed (`Ok(Stored)`, `Ok(Duplicate)`, or this frame's refusal) or
/// failed ([`StoreError::Batch`]).
#[derive(Debug)]
pub struct PendingFrame(oneshot::Receiver<Result<Appended, StoreError>>);

impl Future for PendingFrame {
    type Output = Result<Appended, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(StoreError::CommitterGone)))
    }
}

impl FrameCommitter {
    /// Spawns the committing task on the current Tokio runtime.
    pub fn spawn(store: Store, opts: CommitOptions) -> FrameCommitter {
        let (tx, rx) = mpsc::channel(opts.queue_frames.max(1));
        let max_permits = u32::try_from(opts.queue_bytes.max(1)).unwrap_or(u32::MAX);
        let counters = Arc::new(Counters::default());
        tokio::spawn(run(store, rx, opts, counters.clone()));
        FrameCommitter {
            tx,
            bytes: Arc::new(Semaphore::new(max_permits as usize)),
            max_permits,
            counters,
        }
    }

    /// Queues `frame`, waiting while the queue is full; the returned
    /// future resolves with the frame's answer. Frames submitted one after
    /// the other (each `submit` awaited before the next) are stored in that
    /// order.
    pub async fn submit(&self, frame: NewFrame) -> Result<PendingFrame, StoreError> {
        let want = u32::try_from(frame.bytes.len())
            .unwrap_or(u32::MAX)
            .clamp(1, self.max_permits);
        let permit = self
            .bytes
            .clone()
            .acquire_many_owned(want)
            .await
            .map_err(|_| StoreError::CommitterGone)?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request {
                frame,
                reply,
                _bytes: permit,
            })
            .await
            .map_err(|_| StoreError::CommitterGone)?;
        Ok(PendingFrame(rx))
    }

    /// [`FrameCommitter::submit`], then its answer.
    pub async fn append(&self, frame: NewFrame) -> Result<Appended, StoreError> {
        self.submit(frame).await?.await
    }

    /// Transactions and frames so far.
    pub fn stats(&self) -> CommitStats {
        CommitStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            frames: self.counters.frames.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
        }
    }
}

async fn run(
    store: Store,
    mut rx: mpsc::Receiver<Request>,
    opts: CommitOptions,
    counters: Arc<Counters>,
) {
    let mut batch: Vec<Request> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut bytes = first.frame.bytes.len();
        batch.push(first);
        while batch.len() < opts.batch_frames && bytes < opts.batch_bytes {
            match rx.try_recv() {
                Ok(r) => {
                    bytes += r.frame.bytes.len();
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        let frames: Vec<NewFrame> = batch.iter().map(|r| r.frame.clone()).collect();
        counters.batches.fetch_add(1, Ordering::Relaxed);
        counters
            .frames
            .fetch_add(frames.len() as u64, Ordering::Relaxed);
        match store.append_frames(&frames).await {
            Ok(answers) => {
                for (r, answer) in batch.drain(..).zip(answers) {
                    // A caller that gave up does not stop the others.
                    let _ = r.reply.send(answer);
                }
            }
            Err(e) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(frames = frames.len(), bytes, error = %e, "a batch of frames failed to commit");
                let e = Arc::new(e);
                for r in batch.drain(..) {
                    let _ = r.reply.send(Err(StoreError::Batch(e.clone())));
                }
            }
        }
    }
}
