//! The streaming control-mode parser: bytes in, [`Event`]s out.
//!
//! [`Parser`] owns framing: splitting the stream into lines, the `-CC`
//! wrapper, `%begin … %end|%error` blocks, and the memory limits. The grammar
//! of a single line lives in `grammar`, `%output` unescaping in `unescape`.
//! It does no I/O and reads no clock.
//!
//! # Rules
//!
//! * A line ends at `\n`; one `\r` before it is removed (`-CC` writes
//!   `\r\n`). A `-CC` stream's `ESC P 1000 p` introducer is removed from the
//!   start of the first line, and the `ESC \` that ends the stream is removed
//!   from the start of the line after `%exit`.
//! * Whatever the chunking given to [`Parser::push`], the events are the same.
//! * A block opened by `%begin T N F` ends only at a line that is exactly
//!   `%end T N F` or `%error T N F` with the same three numbers. Every other
//!   line inside it, `%begin` included, is a raw payload line of the
//!   [`Reply`] (no unescaping).
//! * **Notifications inside a block.** tmux 3.2–3.7 print `%pause %N` and
//!   `%continue %N` inside the block of the `refresh-client -A` that caused
//!   them, and 3.4+ print `%message …` inside the block of a
//!   `display-message`. Such commands print nothing else, while a pane
//!   capture could print a line that merely looks like one (a hostile
//!   program can show `%pause %0` on screen). So the parser decides at the
//!   end of the block: when *every* line of the block has the exact form
//!   `%pause %<digits>`, `%continue %<digits>` or `%message …`, those lines
//!   are emitted as events, in order, before the [`Event::Reply`], and the
//!   reply has no lines; otherwise all of them stay payload lines.
//!   `capture-pane -p` prints one line per row, empty rows included (see the
//!   `hooks` fixture), so a capture is misread only if *every* row of the
//!   captured range shows such text; the caller, who knows which command a
//!   block answers, can still tell.
//! * `%end`/`%error` outside a block is [`LineErrorKind::UnmatchedGuard`];
//!   a line outside a block that does not start with `%` is
//!   [`Event::Stray`]; an unknown `%word` is [`Event::Unknown`]; a known
//!   keyword with arguments that do not parse is
//!   [`LineErrorKind::BadNotification`]. Parsing always goes on.
//! * `%output` payloads: see `unescape` (a backslash that does not start a
//!   valid escape is kept literally, without an error, so no output is lost).
//!   A payload without escapes is a slice of the chunk it arrived in (no
//!   copy), so holding it keeps that chunk alive: copy what you keep long.
//!
//! # Limits
//!
//! A line longer than [`ParserLimits::max_line_bytes`] (counting everything
//! before its `\n`) is reported as [`LineErrorKind::LineTooLong`] carrying
//! its first bytes (at most 4 KiB), and skipped up to the next `\n`; nothing
//! beyond the limit is kept, so a line that never ends costs bounded memory.
//! Inside a block such a line also marks the reply truncated. A block whose
//! lines exceed [`ParserLimits::max_block_bytes`] keeps its first lines and
//! is marked [`truncated`](crate::Reply::truncated).

mod grammar;
mod unescape;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::event::{Event, LineError, LineErrorKind, Reply};
use grammar::GuardKind;
pub use unescape::encode_output;
pub(crate) use unescape::octal3;

/// The `-CC` introducer (DCS with parameter 1000).
const DCS_START: &[u8] = b"\x1bP1000p";
/// The string terminator tmux `-CC` writes after `%exit`.
const ST: &[u8] = b"\x1b\\";
/// Most bytes of a too-long line kept in its error event.
const REPORT_BYTES: usize = 4096;
/// Memory accounted for each line kept in a block, besides its bytes.
const LINE_OVERHEAD: usize = std::mem::size_of::<Bytes>();

/// Bounds that keep the parser's memory finite on hostile input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParserLimits {
    /// Longest line kept; longer lines are cut and reported.
    pub max_line_bytes: usize,
    /// Most bytes kept for one `%begin` block; the rest is dropped and the
    /// reply is marked truncated.
    pub max_block_bytes: usize,
}

impl Default for ParserLimits {
    fn default() -> Self {
        ParserLimits {
            max_line_bytes: 16 << 20,
            max_block_bytes: 256 << 20,
        }
    }
}

/// An open `%begin` block.
#[derive(Debug)]
struct Block {
    begin: Bytes,
    time: u64,
    number: u64,
    flags: u32,
    lines: Vec<Bytes>,
    /// Accounted memory of `lines` (bytes plus [`LINE_OVERHEAD`] each).
    bytes: usize,
    truncated: bool,
    /// Every line so far has the exact form of an in-block notification.
    only_notifications: bool,
}

/// Streaming parser: [`push`](Parser::push) bytes, pull events with
/// [`next_event`](Parser::next_event) (or iterate), call
/// [`finish`](Parser::finish) at end of stream.
#[derive(Debug)]
pub struct Parser {
    limits: ParserLimits,
    /// The start of the current, unterminated line (never holds a `\n`
    /// between calls, never more than `max_line_bytes`).
    buf: BytesMut,
    /// Skipping the rest of a too-long line up to its `\n`.
    discarding: bool,
    /// No line has ended yet (the `-CC` introducer may be there).
    first_line: bool,
    /// `%exit` was seen (the `-CC` terminator may follow).
    after_exit: bool,
    block: Option<Block>,
    events: VecDeque<Event>,
    /// Unescaped payloads are written here and split off.
    scratch: BytesMut,
}

impl Default for Parser {
    fn default() -> Self {
        Self::with_limits(ParserLimits::default())
    }
}

impl Parser {
    /// A parser with the default limits (16 MiB lines, 256 MiB blocks).
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_limits(limits: ParserLimits) -> Self {
        Parser {
            limits,
            buf: BytesMut::new(),
            discarding: false,
            first_line: true,
            after_exit: false,
            block: None,
            events: VecDeque::new(),
            scratch: BytesMut::new(),
        }
    }

    /// Feeds the next bytes of the stream. Complete lines are parsed now;
    /// their events wait in a queue for [`next_event`](Parser::next_event).
    pub fn push(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            if self.discarding {
                match memchr::memchr(b'\n', input) {
                    None => return,
                    Some(p) => {
                        input = &input[p + 1..];
                        self.discarding = false;
                        continue;
                    }
                }
            }
            match memchr::memrchr(b'\n', input) {
                Some(p) => {
                    self.buf.extend_from_slice(&input[..=p]);
                    input = &input[p + 1..];
                    self.drain_lines();
                }
                None => {
                    if self.buf.len() + input.len() > self.limits.max_line_bytes {
                        self.cut_unterminated(input);
                        return;
                    }
                    self.buf.extend_from_slice(input);
                    return;
                }
            }
        }
    }

    /// Like [`push`](Parser::push), but takes ownership of the bytes: the
    /// complete lines in `data` are parsed in place, so `%output` payloads
    /// without escapes share `data`'s buffer instead of a copy. Only a
    /// partial line at either end is copied. Mixing `push` and `push_bytes`
    /// gives the same events as either alone.
    pub fn push_bytes(&mut self, mut data: Bytes) {
        if self.discarding || !self.buf.is_empty() {
            // Finish the pending line (or the skipped one) by copying.
            match memchr::memchr(b'\n', &data) {
                None => {
                    self.push(&data);
                    return;
                }
                Some(p) => {
                    self.push(&data[..=p]);
                    data = data.slice(p + 1..);
                }
            }
        }
        if let Some(q) = memchr::memrchr(b'\n', &data) {
            self.lines(data.slice(..=q));
            data = data.slice(q + 1..);
        }
        self.push(&data);
    }

    /// The next event, if a complete line produced one.
    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Ends the stream: parses a last line that has no `\n`, and reports a
    /// block left open as [`LineErrorKind::UnterminatedBlock`] (carrying its
    /// `%begin` line; its lines are dropped). Afterwards the parser is ready
    /// for a new stream.
    pub fn finish(&mut self) {
        if self.discarding {
            self.discarding = false;
        } else if !self.buf.is_empty() {
            let chunk = self.buf.split().freeze();
            let end = if chunk.ends_with(b"\r") {
                chunk.len() - 1
            } else {
                chunk.len()
            };
            self.line(chunk.slice(..end));
        }
        if let Some(b) = self.block.take() {
            self.malformed(b.begin, LineErrorKind::UnterminatedBlock);
        }
        self.first_line = true;
        self.after_exit = false;
    }

    /// Bytes the parser holds for lines and blocks not yet complete (the
    /// partial line plus the accounted size of an open block). Bounded by
    /// `max_line_bytes + max_block_bytes`. Queued events are not counted:
    /// drain them.
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len() + self.block.as_ref().map_or(0, |b| b.bytes)
    }

    /// Number of events waiting in the queue.
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// Parses every complete line in `buf` (which ends with `\n`).
    fn drain_lines(&mut self) {
        let chunk = self.buf.split().freeze();
        self.lines(chunk);
    }

    /// Parses every line of `chunk`, which ends with `\n`.
    fn lines(&mut self, chunk: Bytes) {
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', &chunk) {
            let len = nl - start;
            if len > self.limits.max_line_bytes {
                let report = chunk.slice(start..start + len.min(self.report_len()));
                self.too_long(report);
            } else {
                let end = if len > 0 && chunk[nl - 1] == b'\r' {
                    nl - 1
                } else {
                    nl
                };
                self.line(chunk.slice(start..end));
            }
            start = nl + 1;
        }
    }

    fn report_len(&self) -> usize {
        REPORT_BYTES.min(self.limits.max_line_bytes)
    }

    /// The partial line plus `input` (no `\n`) exceed the line limit.
    fn cut_unterminated(&mut self, input: &[u8]) {
        let keep = self.report_len();
        let mut report = BytesMut::with_capacity(keep);
        report.extend_from_slice(&self.buf[..self.buf.len().min(keep)]);
        let more = keep - report.len();
        report.extend_from_slice(&input[..input.len().min(more)]);
        self.buf = BytesMut::new();
        self.discarding = true;
        self.too_long(report.freeze());
    }

    fn too_long(&mut self, report: Bytes) {
        self.first_line = false;
        if let Some(b) = &mut self.block {
            b.truncated = true;
            b.only_notifications = false;
        }
        self.malformed(
            report,
            LineErrorKind::LineTooLong(self.limits.max_line_bytes),
        );
    }

    fn malformed(&mut self, line: Bytes, kind: LineErrorKind) {
        self.events
            .push_back(Event::Malformed(LineError { line, kind }));
    }

    /// One complete line, terminator removed.
    fn line(&mut self, mut line: Bytes) {
        if self.first_line {
            self.first_line = false;
            if line.starts_with(DCS_START) {
                line = line.slice(DCS_START.len()..);
            }
        }
        if self.after_exit && line.starts_with(ST) {
            line = line.slice(ST.len()..);
            if line.is_empty() {
                return;
            }
        }
        if self.block.is_some() {
            self.block_line(line);
            return;
        }
        if line.first() != Some(&b'%') {
            self.events.push_back(Event::Stray { line });
            return;
        }
        // The hot path: most lines are `%output`.
        if let Some(args) = line.strip_prefix(b"%output ")
            && let Some(e) = grammar::output(&line, args, &mut self.scratch)
        {
            self.events.push_back(e);
            return;
        }
        if let Some(g) = grammar::guard_prefix(&line)
            .then(|| grammar::guard(&line))
            .flatten()
        {
            match g.kind {
                GuardKind::Begin => {
                    self.block = Some(Block {
                        begin: line,
                        time: g.time,
                        number: g.number,
                        flags: g.flags,
                        lines: Vec::new(),
                        bytes: 0,
                        truncated: false,
                        only_notifications: true,
                    });
                }
                GuardKind::End | GuardKind::Error => {
                    self.malformed(line, LineErrorKind::UnmatchedGuard)
                }
            }
            return;
        }
        let e = grammar::notification(&line, &mut self.scratch);
        if matches!(e, Event::Exit { .. }) {
            self.after_exit = true;
        }
        self.events.push_back(e);
    }

    fn block_line(&mut self, line: Bytes) {
        let Some(b) = &mut self.block else { return };
        if (line.starts_with(b"%end ") || line.starts_with(b"%error "))
            && let Some(g) = grammar::guard(&line)
            && g.kind != GuardKind::Begin
            && (g.time, g.number, g.flags) == (b.time, b.number, b.flags)
        {
            self.close_block(g.kind == GuardKind::End);
            return;
        }
        if b.only_notifications && !grammar::is_in_block_notification(&line) {
            b.only_notifications = false;
        }
        let cost = line.len() + LINE_OVERHEAD;
        if b.truncated || b.bytes + cost > self.limits.max_block_bytes {
            b.truncated = true;
        } else {
            b.bytes += cost;
            b.lines.push(line);
        }
    }

    fn close_block(&mut self, success: bool) {
        let Some(b) = self.block.take() else { return };
        let mut lines = b.lines;
        if b.only_notifications && !b.truncated && !lines.is_empty() {
            for l in lines.drain(..) {
                let e = grammar::notification(&l, &mut self.scratch);
                self.events.push_back(e);
            }
        }
        self.events.push_back(Event::Reply(Reply {
            time: b.time,
            number: b.number,
            flags: b.flags,
            success,
            lines,
            truncated: b.truncated,
        }));
    }
}

impl Iterator for Parser {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        self.next_event()
    }
}
