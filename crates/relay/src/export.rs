//! Stored records of one pane as an asciicast v2 recording (issue 11): a
//! header line with the pane's size, then `[time, "o", text]` for its
//! output and `[time, "r", "COLSxROWS"]` when tmux resized it. A PaneReset
//! (the runner's redraw: on a snapshot, after flood mode) becomes a reset
//! (`ESC c`) followed by its bytes, so playback shows what the pane showed.
//! Times come from the records (protocol 2 gives every record one) and
//! never run backwards. Pure: records in, lines out; `http/export.rs`
//! reads the store and streams them.

use protocol::topology::Topology;
use protocol::wire::{Record, RecordBody};
use serde_json::json;
use tmux_cc::PaneId;

/// Size used until the pane's size is known.
const DEFAULT_SIZE: (u16, u16) = (80, 24);

/// Which records a recording keeps: one pane, between two times (ms since
/// the epoch, inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CastRange {
    /// `None`: the first pane the records name.
    pub pane: Option<PaneId>,
    pub from: Option<u64>,
    pub to: Option<u64>,
}

/// Builds the recording record by record; each call returns the lines to
/// write (each ends with `\n`).
#[derive(Debug)]
pub struct CastWriter {
    range: CastRange,
    pane: Option<PaneId>,
    size: Option<(u16, u16)>,
    /// Time of the header (ms since the epoch), set by the first event.
    start: Option<u64>,
    last_t: f64,
    /// Bytes of a UTF-8 sequence cut by a record boundary.
    carry: Vec<u8>,
    /// Output before the header: the header needs a size and a time.
    held: Vec<(u64, String)>,
    done: bool,
}

fn pane_size(topology: &[u8], pane: PaneId) -> Option<(u16, u16)> {
    let t: Topology = serde_json::from_slice(topology).ok()?;
    t.windows
        .iter()
        .flat_map(|w| w.panes.iter())
        .find(|p| p.id == pane)
        .map(|p| (p.cols, p.rows))
}

fn first_pane(topology: &[u8]) -> Option<PaneId> {
    let t: Topology = serde_json::from_slice(topology).ok()?;
    let window = t
        .windows
        .iter()
        .find(|w| Some(w.id) == t.active_window)
        .or(t.windows.first())?;
    window.active_pane.or(window.panes.first().map(|p| p.id))
}

impl CastWriter {
    pub fn new(range: CastRange) -> CastWriter {
        CastWriter {
            range,
            pane: range.pane,
            size: None,
            start: None,
            last_t: 0.0,
            carry: Vec::new(),
            held: Vec::new(),
            done: false,
        }
    }

    /// True once a record past `to` was seen: nothing more will be written.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Decodes `bytes` after what was carried, keeping an unfinished
    /// UTF-8 sequence at the end for the next record; invalid bytes
    /// become U+FFFD.
    fn text(&mut self, bytes: &[u8]) -> String {
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(bytes);
        let mut out = String::with_capacity(buf.len());
        let mut rest = &buf[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{fffd}');
                            rest = &bad[n..];
                        }
                        None => {
                            self.carry = bad.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        out
    }

    fn event(&mut self, time: u64, kind: &str, data: String, out: &mut Vec<String>) {
        let Some(start) = self.start else {
            return;
        };
        let t = if time >= start {
            (time - start) as f64 / 1000.0
        } else {
            self.last_t
        };
        let t = t.max(self.last_t);
        self.last_t = t;
        out.push(format!("{}\n", json!([t, kind, data])));
    }

    fn header(&mut self, time: u64, out: &mut Vec<String>) {
        if self.start.is_some() {
            return;
        }
        let start = self.range.from.unwrap_or(time).min(time);
        self.start = Some(start);
        let (cols, rows) = self.size.unwrap_or(DEFAULT_SIZE);
        out.push(format!(
            "{}\n",
            json!({"version": 2, "width": cols, "height": rows, "timestamp": start / 1000})
        ));
        for (t, text) in std::mem::take(&mut self.held) {
            self.event(t, "o", text, out);
        }
    }

    /// Takes one record; returns the lines it adds.
    pub fn record(&mut self, record: &Record) -> Vec<String> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        if self.range.to.is_some_and(|to| record.time > to) {
            self.done = true;
            return out;
        }
        let shown = self.range.from.is_none_or(|from| record.time >= from);
        match &record.body {
            RecordBody::Topology(json) => {
                if self.pane.is_none() {
                    self.pane = first_pane(json);
                }
                let Some(pane) = self.pane else {
                    return out;
                };
                if let Some(size) = pane_size(json, pane) {
                    self.resized(record.time, size, shown, &mut out);
                }
            }
            RecordBody::PaneReset {
                pane,
                cols,
                rows,
                bytes,
            } => {
                if *self.pane.get_or_insert(*pane) != *pane {
                    return out;
                }
                self.resized(record.time, (*cols, *rows), shown, &mut out);
                self.carry.clear();
                let text = format!("\x1bc{}", self.text(bytes));
                self.output(record.time, text, shown, &mut out);
            }
            RecordBody::Output { pane, bytes } => {
                if *self.pane.get_or_insert(*pane) != *pane {
                    return out;
                }
                let text = self.text(bytes);
                if !text.is_empty() {
                    self.output(record.time, text, shown, &mut out);
                }
            }
        }
        out
    }

    fn resized(&mut self, time: u64, size: (u16, u16), shown: bool, out: &mut Vec<String>) {
        if self.size == Some(size) {
            return;
        }
        self.size = Some(size);
        match (self.start, self.held.first()) {
            (Some(_), _) if shown => {
                self.event(time, "r", format!("{}x{}", size.0, size.1), out);
            }
            (None, Some(&(first, _))) => self.header(first, out),
            _ => {}
        }
    }

    fn output(&mut self, time: u64, text: String, shown: bool, out: &mut Vec<String>) {
        if !shown {
            return;
        }
        if self.start.is_none() {
            // The header needs the pane's size: hold output a little while
            // no topology gave it yet.
            if self.size.is_none() && self.held.len() < 64 {
                self.held.push((time, text));
                return;
            }
            self.header(time, out);
        }
        self.event(time, "o", text, out);
    }

    /// Lines still owed at the end: the header (a recording with no output
    /// is a header alone) and held output.
    pub fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let time = self
            .held
            .first()
            .map_or(self.range.from.unwrap_or(0), |h| h.0);
        self.header(time, &mut out);
        out
    }
}

#[cfg(test)]
mod tests;
