//! Sequencing: the relay's sequence numbers, pending records into frames,
//! the unacked frames, and joining the relay's sequence on every
//! `opened`.
//!
//! The model numbers records from 1; `seq_offset` (wrapping) maps them to
//! the relay's numbers. Each burst's records become one Batch frame, kept
//! in [`Unacked`] until acked and sent if a connection is live. When the
//! relay opens the session at `last_seq`, the frames after it are resent if
//! [`Unacked`] still holds every one of them; otherwise (the first
//! connection of this process, or frames dropped past the hard bound) our
//! sequence is rebased to continue the relay's with a full reset of every
//! pane, so a browser resuming at any seq converges on what tmux shows now.

use protocol::wire::{Frame, Record};
use tracing::{debug, info, warn};

use super::{Effect, Machine, ToRelay};
use crate::unacked::Unacked;

#[derive(Debug)]
pub(super) struct Sequencer {
    /// Records of this burst, numbered for the relay.
    records: Vec<Record>,
    /// Encoded size of `records` (kept, not recomputed, on the hot path).
    records_bytes: usize,
    unacked: Unacked,
    /// The live relay connection's generation, once `opened` arrived.
    pub(super) connection: Option<u64>,
    /// Whether the relay's sequence and ours have been joined once (the
    /// first connection always rebases: the relay may hold records of an
    /// earlier run of the bridge).
    epoch_started: bool,
    /// Added (wrapping) to the model's sequence numbers to get the relay's.
    seq_offset: u64,
}

impl Sequencer {
    pub(super) fn new(unacked: Unacked) -> Self {
        Sequencer {
            records: Vec::new(),
            records_bytes: 0,
            unacked,
            connection: None,
            epoch_started: false,
            seq_offset: 0,
        }
    }

    /// Encoded bytes of the records not framed yet.
    pub(super) fn pending_bytes(&self) -> usize {
        self.records_bytes
    }

    /// The relay's number for the model's sequence number `seq`.
    pub(super) fn relay_seq(&self, seq: u64) -> u64 {
        seq.wrapping_add(self.seq_offset)
    }
}

impl Machine {
    /// Queues records made by the model, renumbered for the relay.
    pub(super) fn push_records(&mut self, records: Vec<Record>) {
        for mut r in records {
            r.seq = self.seq.relay_seq(r.seq);
            self.seq.records_bytes += r.encoded_len();
            self.seq.records.push(r);
        }
    }

    /// The relay's sequence number of the last record made.
    fn last_seq(&self) -> u64 {
        self.seq.relay_seq(self.model.next_seq()).wrapping_sub(1)
    }

    /// Turns pending records into one Batch frame, keeps it until acked,
    /// and sends it on the live connection.
    pub(super) fn flush(&mut self) {
        if self.seq.records.is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.seq.records);
        self.seq.records_bytes = 0;
        let Some(frame) = Frame::batch(records) else {
            warn!("cannot frame a batch");
            return;
        };
        let (first, last) = (frame.first_seq, frame.last_seq);
        let bytes = frame.encode(true);
        if let Err(err) = self.seq.unacked.push(first, last, bytes.clone()) {
            warn!(%err, "unacked frames could not spill to disk");
        }
        if let Some(generation) = self.seq.connection {
            self.effects
                .push(Effect::Relay(ToRelay::Frame { generation, bytes }));
        }
    }

    /// The relay acknowledged every record through `seq`.
    pub(super) fn relay_ack(&mut self, seq: u64) {
        self.seq.unacked.ack(seq);
    }

    /// The relay serves the session on `generation` and holds records
    /// through `relay_last`: resend what it misses, or rebase onto its
    /// sequence when that is impossible; then a snapshot.
    pub(super) fn relay_opened(&mut self, generation: u64, relay_last: u64) {
        info!(generation, relay_last, "relay opened the session");
        // Records made but not framed yet are kept (and resent below) before
        // the connection counts as live, so nothing goes out twice.
        self.seq.connection = None;
        self.flush();
        self.seq.connection = Some(generation);
        let ours = self.last_seq();
        if self.seq.epoch_started && self.seq.unacked.covers_after(relay_last, ours) {
            self.seq.unacked.ack(relay_last);
            let frames = self
                .seq
                .unacked
                .frames_after(relay_last)
                .unwrap_or_else(|err| {
                    warn!(%err, "reading unacked frames back from disk");
                    Vec::new()
                });
            debug!(
                count = frames.len(),
                from = relay_last.wrapping_add(1),
                "resending unacked frames"
            );
            for bytes in frames {
                self.effects
                    .push(Effect::Relay(ToRelay::Frame { generation, bytes }));
            }
        } else {
            info!(
                relay_last,
                ours, "continuing the relay's sequence with a full reset"
            );
            self.seq.unacked.clear();
            // Before the reset's frames: the relay may have sent browsers
            // frames of the last connection that it never stored.
            self.effects
                .push(Effect::Relay(ToRelay::Rebase { generation }));
            // Wrapping arithmetic: the offset may be "negative" (the relay is
            // behind what we numbered before it answered).
            self.seq.seq_offset = relay_last
                .wrapping_add(1)
                .wrapping_sub(self.model.next_seq());
            let records = self.model.reset_records();
            self.push_records(records);
            self.seq.epoch_started = true;
            self.flush();
        }
        self.send_snapshot();
    }

    /// Connection `generation` is gone: nothing more is sent until the next
    /// `opened` (frames keep accumulating in [`Unacked`]).
    pub(super) fn relay_lost(&mut self, generation: u64) {
        if self.seq.connection == Some(generation) {
            self.seq.connection = None;
        }
    }
}
