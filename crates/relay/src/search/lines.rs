//! A pane's output bytes as lines of text for the search index: escape
//! sequences parsed (by `vte`) and dropped, printable characters kept, a
//! line ended by LF, CR, a cursor move to another row, or an erase of the
//! screen; backspace takes back the last character. This is not a screen:
//! full-screen programs give fragments, which is what a search needs
//! (words in the order they were printed). Pure: no I/O, no clock.

use vte::{Params, Parser, Perform};

/// Longest line kept, in characters; longer output is cut into lines of
/// this length (a bound on memory per pane).
pub const MAX_LINE: usize = 2048;

/// One pane's line splitter. The unfinished line can be saved
/// ([`PaneLines::pending`]) and restored ([`PaneLines::resume`]); the
/// parser's state inside an escape sequence is not (a restart in the middle
/// of one loses at most that sequence's tail as text).
#[derive(Default)]
pub struct PaneLines {
    parser: Parser,
    line: String,
    chars: usize,
}

struct Sink<'a> {
    line: &'a mut String,
    chars: &'a mut usize,
    out: &'a mut Vec<String>,
}

impl Sink<'_> {
    fn end_line(&mut self) {
        let text = self.line.trim_end();
        if !text.trim_start().is_empty() {
            self.out.push(text.to_string());
        }
        self.line.clear();
        *self.chars = 0;
    }
}

impl Perform for Sink<'_> {
    fn print(&mut self, c: char) {
        if c.is_control() {
            return;
        }
        if *self.chars >= MAX_LINE {
            self.end_line();
        }
        self.line.push(c);
        *self.chars += 1;
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\n' | b'\r' | 0x0b | 0x0c => self.end_line(),
            b'\t' => self.print(' '),
            0x08 if self.line.pop().is_some() => *self.chars -= 1,
            _ => {}
        }
    }

    fn csi_dispatch(&mut self, _: &Params, _: &[u8], _: bool, action: char) {
        // Moves to another row, and screen erases, end the line.
        if matches!(action, 'H' | 'f' | 'd' | 'E' | 'F' | 'A' | 'B' | 'J') {
            self.end_line();
        }
    }
}

impl PaneLines {
    /// A splitter whose unfinished line is `pending` (from
    /// [`PaneLines::pending`] of an earlier one).
    pub fn resume(pending: &str) -> PaneLines {
        let line: String = pending.chars().take(MAX_LINE).collect();
        let chars = line.chars().count();
        PaneLines {
            parser: Parser::new(),
            line,
            chars,
        }
    }

    /// Feeds output bytes; returns the lines they completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut sink = Sink {
            line: &mut self.line,
            chars: &mut self.chars,
            out: &mut out,
        };
        self.parser.advance(&mut sink, bytes);
        out
    }

    /// The unfinished line.
    pub fn pending(&self) -> &str {
        &self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> (Vec<String>, String) {
        let mut p = PaneLines::default();
        let mut lines = Vec::new();
        for c in chunks {
            lines.extend(p.feed(c));
        }
        (lines, p.pending().to_string())
    }

    #[test]
    fn colors_and_titles_are_dropped_and_lines_end_at_newlines() {
        let (lines, pending) = all(&[
            b"\x1b]0;title\x07\x1b[1;32mgreen\x1b[0m text\r\n",
            b"container_info.json\tCargo.toml\r\n$ ",
        ]);
        assert_eq!(lines, ["green text", "container_info.json Cargo.toml"]);
        assert_eq!(pending, "$ ");
    }

    #[test]
    fn typing_one_byte_per_frame_makes_one_line_and_backspace_takes_back() {
        let typed: Vec<&[u8]> = vec![b"$ ", b"m", b"a", b"x", b"\x08 \x08", b"k", b"e", b"\r\n"];
        let (lines, _) = all(&typed);
        assert_eq!(lines, ["$ make"]);
    }

    #[test]
    fn an_escape_split_across_chunks_is_still_an_escape() {
        let (lines, _) = all(&[b"a\x1b[3", b"1mb\x1b", b"[0mc\n"]);
        assert_eq!(lines, ["abc"]);
    }

    #[test]
    fn cursor_moves_to_other_rows_end_lines_and_blank_lines_are_skipped() {
        let (lines, _) = all(&[b"\x1b[H\x1b[2Jtop\x1b[2;1Hsecond\x1b[3;1H   \n\n"]);
        assert_eq!(lines, ["top", "second"]);
    }

    #[test]
    fn long_output_is_cut_and_invalid_utf8_is_not_a_panic() {
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        let (lines, pending) = all(&[&long, b"\xff\xfe\xc3"]);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.chars().count() == MAX_LINE));
        assert!(pending.starts_with("xxxxx"));
    }

    #[test]
    fn resume_carries_the_unfinished_line() {
        let mut p = PaneLines::resume("$ car");
        assert_eq!(p.feed(b"go test\r\n"), ["$ cargo test"]);
    }
}
