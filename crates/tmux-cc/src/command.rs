//! Encoder of every command the bridge sends to tmux over control mode.
//!
//! Owns quoting: each function returns a [`CommandLine`], one line that can be
//! written to `tmux -C`'s stdin as is. A `CommandLine` never contains `\n`,
//! `\r` or NUL before its terminator, is never empty (an empty line would
//! detach the client), and is exactly one tmux command, or an explicit group
//! built by [`join`]. It does no I/O.
//!
//! How injection is ruled out, for tmux 3.2 to 3.7:
//!
//! * Every argument that is not a flag, a number or hex digits is wrapped in
//!   single quotes (`'` becomes `'\''`): no `;` splitting, no `$VAR`, no `~`,
//!   no backslash escapes inside (see the tmux man page, "PARSING SYNTAX").
//! * `--` comes before positional text, so text starting with `-` is never a
//!   flag.
//! * `\n`, `\r` and NUL are refused ([`CommandError::ForbiddenByte`]) in any
//!   argument; such bytes only reach a pane through `send-keys -H`.
//! * Arguments tmux format-expands (window names, `display-message` text,
//!   3.4+ `send-keys` text, 3.4+ `split-window` commands) never carry a raw
//!   `#` from a user: names get `#` doubled with [`escape_format`] (and `%`
//!   too for `display-message`, which also applies `strftime`), key text
//!   containing `#` goes through `send-keys -H`, shell commands with `#` are
//!   refused because 3.3a and 3.4+ would read them differently.
//! * Targets are ids (`%P`, `@W`, `$S`) or `=NAME` exact matches of a
//!   [`SessionName`], whose alphabet is `[A-Za-z0-9_-]`.

use std::fmt::{self, Write as _};

use crate::ids::{PaneId, SessionId, WindowId};
use crate::naming::SessionName;

/// Most words one command line may hold. tmux's yacc parser overflows at
/// about 10 000 words per command (reference §9.2); iTerm2 stays at 1000.
pub const MAX_WORDS_PER_LINE: usize = 1000;
/// Most bytes [`send_input`] puts in one line (before the `\n`).
pub const MAX_INPUT_LINE_BYTES: usize = 4096;
/// Largest client size tmux accepts for `refresh-client -C`.
pub const MAX_CLIENT_SIZE: u32 = 10_000;

/// Why a command could not be encoded. Nothing is ever sent in that case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// An argument holds `\n`, `\r` or NUL: it would end or cut the line.
    #[error("{what} contains byte {byte:#04x}, which cannot be sent in a tmux argument")]
    ForbiddenByte { what: &'static str, byte: u8 },
    /// A size outside `1..=10000`.
    #[error("size {cols}x{rows} is outside 1..=10000")]
    SizeOutOfRange { cols: u32, rows: u32 },
    /// A required string is empty.
    #[error("{what} is empty")]
    Empty { what: &'static str },
    /// A shell command argument holds `#`, which tmux 3.4+ format-expands in
    /// some commands and 3.3a does not: refused so every version runs the same.
    #[error("{what} contains '#', which tmux versions expand differently")]
    FormatChar { what: &'static str },
    /// A name (subscription, user option) outside its alphabet.
    #[error("{what} {text:?} is not allowed: expected {expected}")]
    BadName {
        what: &'static str,
        text: String,
        expected: &'static str,
    },
    /// [`join`] was given nothing to join.
    #[error("cannot join an empty list of commands")]
    EmptyJoin,
}

/// One encoded command line: one tmux command, or a `;`-joined group.
///
/// Invariants: non-empty, no `\n`, `\r` or NUL except the final `\n`.
#[derive(Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// The line including its terminating `\n`.
    line: String,
    replies: usize,
}

impl CommandLine {
    /// Builds a line from already-quoted text. Private: only the encoder's
    /// functions produce command text.
    fn new(text: String, replies: usize) -> Self {
        debug_assert!(!text.is_empty());
        debug_assert!(!text.bytes().any(|b| matches!(b, b'\n' | b'\r' | 0)));
        let mut line = text;
        line.push('\n');
        CommandLine { line, replies }
    }

    /// The bytes to write to tmux's stdin, **including** the final `\n`.
    pub fn as_bytes(&self) -> &[u8] {
        self.line.as_bytes()
    }

    /// The command text without the final `\n` (for logs and tests).
    pub fn text(&self) -> &str {
        &self.line[..self.line.len() - 1]
    }

    /// How many `%begin … %end|%error` blocks tmux answers this line with
    /// when every command succeeds (one per command). When a command of a
    /// joined line fails, tmux skips the rest of the line and prints no block
    /// for the skipped commands: after an `%error`, expect nothing more from
    /// this line.
    pub fn replies(&self) -> usize {
        self.replies
    }
}

impl fmt::Debug for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandLine")
            .field("text", &self.text())
            .field("replies", &self.replies)
            .finish()
    }
}

impl fmt::Display for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// Joins several command lines into one with ` ; `; tmux runs them back to
/// back in one pass of the command queue. `replies()` is the sum. If one
/// fails, tmux skips the rest of the line (verified on 3.3a).
pub fn join<I: IntoIterator<Item = CommandLine>>(lines: I) -> Result<CommandLine, CommandError> {
    let mut lines = lines.into_iter();
    let first = lines.next().ok_or(CommandError::EmptyJoin)?;
    Ok(join_nonempty(first, lines))
}

/// [`join`] for a list known to be non-empty.
pub(crate) fn join_nonempty(
    first: CommandLine,
    rest: impl IntoIterator<Item = CommandLine>,
) -> CommandLine {
    let mut text = first.text().to_owned();
    let mut replies = first.replies;
    for l in rest {
        text.push_str(" ; ");
        text.push_str(l.text());
        replies += l.replies;
    }
    CommandLine::new(text, replies)
}

// ---------------------------------------------------------------------------
// Quoting

/// Refuses `\n`, `\r` and NUL.
fn check_bytes(what: &'static str, s: &str) -> Result<(), CommandError> {
    match s.bytes().find(|b| matches!(b, b'\n' | b'\r' | 0)) {
        Some(byte) => Err(CommandError::ForbiddenByte { what, byte }),
        None => Ok(()),
    }
}

/// Single-quotes one argument for tmux's command parser: `'` becomes `'\''`.
/// Refuses `\n`, `\r` and NUL.
pub fn quote(what: &'static str, s: &str) -> Result<String, CommandError> {
    check_bytes(what, s)?;
    Ok(quote_unchecked(s))
}

fn quote_unchecked(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Doubles every `#`, so that tmux's format expansion gives back `s`
/// unchanged (`##` expands to `#`). Use it for user text placed in an
/// argument tmux format-expands (names, `display-message` text).
pub fn escape_format(s: &str) -> String {
    s.replace('#', "##")
}

/// Like [`escape_format`], and also doubles every `%`: for text placed in a
/// `display-message` format, which tmux passes through `strftime` before
/// format expansion (`%e` would print the day of the month).
pub fn escape_time_format(s: &str) -> String {
    s.replace('#', "##").replace('%', "%%")
}

/// Quotes user text for an argument that tmux format-expands.
fn quote_expanded(what: &'static str, s: &str) -> Result<String, CommandError> {
    quote(what, &escape_format(s))
}

/// A target for `-t`: always an id or an exact session name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Session(SessionId),
    Window(WindowId),
    Pane(PaneId),
    /// `=NAME:`: exact match of a session name, no prefix or pattern
    /// matching. The `:` makes it resolve for pane and window targets too
    /// (`display-message -t =NAME` alone resolves to nothing on 3.3a, and
    /// `set-option -t =NAME` fails).
    SessionName(SessionName),
}

impl Target {
    /// The quoted `-t` argument.
    fn quoted(&self) -> String {
        let raw = match self {
            Target::Session(s) => s.to_string(),
            Target::Window(w) => w.to_string(),
            Target::Pane(p) => p.to_string(),
            Target::SessionName(n) => format!("={}:", n.as_str()),
        };
        // Ids and safe names hold no quote or control byte.
        quote_unchecked(&raw)
    }
}

impl From<PaneId> for Target {
    fn from(p: PaneId) -> Self {
        Target::Pane(p)
    }
}
impl From<WindowId> for Target {
    fn from(w: WindowId) -> Self {
        Target::Window(w)
    }
}
impl From<SessionId> for Target {
    fn from(s: SessionId) -> Self {
        Target::Session(s)
    }
}
impl From<SessionName> for Target {
    fn from(n: SessionName) -> Self {
        Target::SessionName(n)
    }
}

fn one(text: String) -> CommandLine {
    CommandLine::new(text, 1)
}

// ---------------------------------------------------------------------------
// Input

/// Bytes that go through `send-keys -l` as they are: printable ASCII except
/// the characters some tmux version or some parsing context interprets
/// (`#` is format-expanded by 3.4+ `send-keys`, `%` would matter if a
/// version ever ran `strftime` there; the others are quoting or expansion
/// characters in tmux's parser). Everything else goes as `-H` hex.
fn literal_ok(b: u8) -> bool {
    (0x20..0x7f).contains(&b)
        && !matches!(b, b'#' | b'%' | b'$' | b'~' | b';' | b'\\' | b'\'' | b'"')
}

/// Encodes bytes typed into a pane: printable runs as
/// `send-keys -t %P -l -- '<text>'`, every other byte (control bytes, UTF-8,
/// invalid UTF-8, `#`, `%`, quotes…) as `send-keys -t %P -H <hex>…`. The pane
/// receives exactly `bytes`, on every tmux from 3.2 to 3.7, provided it is
/// not in a mode (copy/view mode keys go to the mode: check `pane_in_mode`).
///
/// Consecutive commands are packed into lines of at most
/// [`MAX_WORDS_PER_LINE`] words and about [`MAX_INPUT_LINE_BYTES`] bytes, so
/// a 1 MB paste becomes ~1000 lines. Empty input gives no lines.
pub fn send_input(pane: PaneId, bytes: &[u8]) -> Vec<CommandLine> {
    // Fixed cost of one command: `send-keys -t '%N' -l -- ` is 5 words.
    const CMD_WORDS: usize = 6;
    let prefix = format!("send-keys -t '{pane}'");
    let mut cmds: Vec<(String, usize)> = Vec::new(); // (text, words)
    for (lit, run) in input_runs(bytes) {
        // Each command stays well under a line's budget.
        let max = if lit {
            MAX_INPUT_LINE_BYTES - 64
        } else {
            MAX_WORDS_PER_LINE - 2 * CMD_WORDS
        };
        for chunk in run.chunks(max) {
            if lit {
                // Safe: every byte of `chunk` is printable ASCII without quotes.
                let text: String = chunk.iter().map(|&b| char::from(b)).collect();
                cmds.push((format!("{prefix} -l -- '{text}'"), CMD_WORDS));
            } else {
                let mut text = format!("{prefix} -H");
                for b in chunk {
                    // Writing to a String cannot fail.
                    let _ = write!(text, " {b:02x}");
                }
                cmds.push((text, CMD_WORDS + chunk.len()));
            }
        }
    }
    // Pack commands into lines.
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut cur_words = 0;
    let mut cur_cmds = 0;
    for (text, words) in cmds {
        let fits = cur.is_empty()
            || (cur_words + words < MAX_WORDS_PER_LINE
                && cur.len() + 3 + text.len() <= MAX_INPUT_LINE_BYTES);
        if !fits {
            lines.push(CommandLine::new(std::mem::take(&mut cur), cur_cmds));
            cur_words = 0;
            cur_cmds = 0;
        }
        if !cur.is_empty() {
            cur.push_str(" ; ");
        }
        cur.push_str(&text);
        cur_words += words + 1;
        cur_cmds += 1;
    }
    if !cur.is_empty() {
        lines.push(CommandLine::new(cur, cur_cmds));
    }
    lines
}

/// Splits input into maximal runs of `(literal, bytes)`. A short literal run
/// next to a hex run joins the hex run: `ESC [ A` is one `-H` command rather
/// than three commands.
fn input_runs(bytes: &[u8]) -> Vec<(bool, &[u8])> {
    const MIN_LITERAL: usize = 8;
    let mut runs: Vec<(bool, usize, usize)> = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        let lit = literal_ok(b);
        match runs.last_mut() {
            Some((l, _, end)) if *l == lit => *end = i + 1,
            _ => runs.push((lit, i, i + 1)),
        }
    }
    let n = runs.len();
    for k in 0..n {
        let (lit, start, end) = runs[k];
        let hex_neighbour = (k > 0 && !runs[k - 1].0) || (k + 1 < n && !runs[k + 1].0);
        if lit && end - start < MIN_LITERAL && hex_neighbour {
            runs[k].0 = false;
        }
    }
    let mut merged: Vec<(bool, usize, usize)> = Vec::new();
    for (lit, start, end) in runs {
        match merged.last_mut() {
            Some((l, _, e)) if *l == lit => *e = end,
            _ => merged.push((lit, start, end)),
        }
    }
    merged
        .into_iter()
        .map(|(lit, s, e)| (lit, &bytes[s..e]))
        .collect()
}

/// `send-keys -X -t %P cancel`: leaves copy/view mode so that typed keys
/// reach the program again (`pane_in_mode=1` in [`crate::state::PaneState`],
/// or after `%pane-mode-changed`). Fails with an `%error` if the pane is not
/// in a mode.
pub fn cancel_mode(pane: PaneId) -> CommandLine {
    one(format!("send-keys -X -t '{pane}' cancel"))
}

const PASTE_START: &[u8] = b"\x1b[200~";
const PASTE_END: &[u8] = b"\x1b[201~";

/// Removes every bracketed-paste marker (`ESC[200~`, `ESC[201~`) from pasted
/// text, repeatedly, so that removing one cannot assemble another
/// (`ESC[20ESC[201~1~`). Without this a paste could end the bracket early and
/// type the rest as commands (security-notes.md, "Paste").
pub fn strip_paste_markers(text: &[u8]) -> Vec<u8> {
    let mut cur = text.to_vec();
    loop {
        let mut out = Vec::with_capacity(cur.len());
        let mut i = 0;
        let mut changed = false;
        while i < cur.len() {
            let rest = &cur[i..];
            if rest.starts_with(PASTE_START) || rest.starts_with(PASTE_END) {
                i += PASTE_START.len();
                changed = true;
            } else {
                out.push(cur[i]);
                i += 1;
            }
        }
        if !changed {
            return out;
        }
        cur = out;
    }
}

/// Encodes a paste: markers stripped with [`strip_paste_markers`], then, if
/// `bracketed` (the pane's program enabled bracketed paste), wrapped in
/// `ESC[200~ … ESC[201~`. Bytes are otherwise unchanged (line ends included).
pub fn send_paste(pane: PaneId, text: &[u8], bracketed: bool) -> Vec<CommandLine> {
    let clean = strip_paste_markers(text);
    if !bracketed {
        return send_input(pane, &clean);
    }
    let mut wrapped = Vec::with_capacity(clean.len() + 12);
    wrapped.extend_from_slice(PASTE_START);
    wrapped.extend_from_slice(&clean);
    wrapped.extend_from_slice(PASTE_END);
    send_input(pane, &wrapped)
}

// ---------------------------------------------------------------------------
// Client: sizes, flags, flow control, subscriptions

fn check_size(cols: u32, rows: u32) -> Result<(), CommandError> {
    let ok = |v: u32| (1..=MAX_CLIENT_SIZE).contains(&v);
    if ok(cols) && ok(rows) {
        Ok(())
    } else {
        Err(CommandError::SizeOutOfRange { cols, rows })
    }
}

/// `refresh-client -C WxH`: this control client's size.
pub fn resize_client(cols: u32, rows: u32) -> Result<CommandLine, CommandError> {
    check_size(cols, rows)?;
    Ok(one(format!("refresh-client -C {cols}x{rows}")))
}

/// `refresh-client -C '@W:WxH'`: a size for one window for this client. It
/// clamps the window for every client (reference §11); prefer
/// [`resize_client`].
pub fn resize_window_for_client(
    window: WindowId,
    cols: u32,
    rows: u32,
) -> Result<CommandLine, CommandError> {
    check_size(cols, rows)?;
    Ok(one(format!("refresh-client -C '{window}:{cols}x{rows}'")))
}

/// `refresh-client -C '@W:'`: clears a per-window size.
pub fn clear_window_size_for_client(window: WindowId) -> CommandLine {
    one(format!("refresh-client -C '{window}:'"))
}

/// A control client flag for `refresh-client -f` (3.2+). `false` / `None`
/// turns a flag off (`!flag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientFlag {
    /// Pause a pane once its output is this many seconds behind.
    PauseAfter(Option<u32>),
    NoOutput(bool),
    WaitExit(bool),
    ReadOnly(bool),
    IgnoreSize(bool),
    ActivePane(bool),
}

impl ClientFlag {
    fn encode(self) -> String {
        let flag = |name: &str, on: bool| {
            if on {
                name.to_owned()
            } else {
                format!("!{name}")
            }
        };
        match self {
            ClientFlag::PauseAfter(Some(s)) => format!("pause-after={s}"),
            ClientFlag::PauseAfter(None) => "!pause-after".to_owned(),
            ClientFlag::NoOutput(on) => flag("no-output", on),
            ClientFlag::WaitExit(on) => flag("wait-exit", on),
            ClientFlag::ReadOnly(on) => flag("read-only", on),
            ClientFlag::IgnoreSize(on) => flag("ignore-size", on),
            ClientFlag::ActivePane(on) => flag("active-pane", on),
        }
    }
}

/// `refresh-client -f 'flag,flag…'`.
pub fn set_client_flags(flags: &[ClientFlag]) -> Result<CommandLine, CommandError> {
    if flags.is_empty() {
        return Err(CommandError::Empty {
            what: "client flags",
        });
    }
    let list: Vec<String> = flags.iter().map(|f| f.encode()).collect();
    Ok(one(format!("refresh-client -f '{}'", list.join(","))))
}

/// Per-pane output switch for `refresh-client -A`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaneFlow {
    On,
    Off,
    Pause,
    Continue,
}

impl PaneFlow {
    fn as_str(self) -> &'static str {
        match self {
            PaneFlow::On => "on",
            PaneFlow::Off => "off",
            PaneFlow::Pause => "pause",
            PaneFlow::Continue => "continue",
        }
    }
}

/// `refresh-client -A '%P:state'`.
pub fn pane_flow(pane: PaneId, flow: PaneFlow) -> CommandLine {
    one(format!("refresh-client -A '{pane}:{}'", flow.as_str()))
}

/// `refresh-client -A '%P:state' -A '%Q:state'…`: one `-A` per pane (one
/// space-separated argument would be ignored by tmux).
pub fn pane_flows(panes: &[(PaneId, PaneFlow)]) -> Result<CommandLine, CommandError> {
    if panes.is_empty() {
        return Err(CommandError::Empty { what: "pane list" });
    }
    let mut text = String::from("refresh-client");
    for (p, f) in panes {
        let _ = write!(text, " -A '{p}:{}'", f.as_str());
    }
    Ok(one(text))
}

/// What a subscription watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionTarget {
    /// The attached session.
    Session,
    Pane(PaneId),
    /// `%*`: every pane of the attached session.
    AllPanes,
    Window(WindowId),
    /// `@*`: every window of the attached session.
    AllWindows,
}

/// Subscription and user-option names: `[A-Za-z0-9_-]`, 1 to 64 bytes.
fn check_ident(what: &'static str, s: &str) -> Result<(), CommandError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(CommandError::BadName {
            what,
            text: s.to_owned(),
            expected: "1 to 64 of [A-Za-z0-9_-]",
        })
    }
}

/// `refresh-client -B 'name:what:format'` (3.2+). `format` is a tmux format
/// chosen by the bridge; put user text in it only through [`escape_format`].
pub fn subscribe(
    name: &str,
    target: SubscriptionTarget,
    format: &str,
) -> Result<CommandLine, CommandError> {
    check_ident("subscription name", name)?;
    let what = match target {
        SubscriptionTarget::Session => String::new(),
        SubscriptionTarget::Pane(p) => p.to_string(),
        SubscriptionTarget::AllPanes => "%*".to_owned(),
        SubscriptionTarget::Window(w) => w.to_string(),
        SubscriptionTarget::AllWindows => "@*".to_owned(),
    };
    Ok(one(format!(
        "refresh-client -B {}",
        quote("subscription format", &format!("{name}:{what}:{format}"))?
    )))
}

/// `refresh-client -B 'name'`: removes a subscription.
pub fn unsubscribe(name: &str) -> Result<CommandLine, CommandError> {
    check_ident("subscription name", name)?;
    Ok(one(format!("refresh-client -B '{name}'")))
}

/// `detach-client`: detaches this client (never an empty line).
pub fn detach_client() -> CommandLine {
    one("detach-client".to_owned())
}

/// `list-clients -F 'format'`.
pub fn list_clients(format: &str) -> Result<CommandLine, CommandError> {
    Ok(one(format!("list-clients -F {}", quote("format", format)?)))
}

// ---------------------------------------------------------------------------
// Queries

/// Options of `capture-pane`; always printed (`-p`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureOptions {
    /// Start this many lines into the history (`-S -N`); `None` = visible
    /// screen only.
    pub history: Option<u32>,
    /// The alternate screen's saved grid (`-a`).
    pub alternate: bool,
    /// SGR escapes (`-e`).
    pub escapes: bool,
    /// Escape non-printables as octal (`-C`); decode with
    /// [`crate::state::decode_capture_escapes`].
    pub octal: bool,
    /// Join wrapped lines (`-J`).
    pub join: bool,
    /// Keep trailing spaces (`-N`).
    pub trailing_spaces: bool,
    /// Only the pending, not yet parsed input (`-P`).
    pub pending: bool,
    /// No error if there is no alternate screen (`-q`).
    pub quiet: bool,
}

/// `capture-pane -p -t %P [flags]`.
pub fn capture_pane(pane: PaneId, opts: CaptureOptions) -> CommandLine {
    let mut text = format!("capture-pane -p -t '{pane}'");
    for (on, flag) in [
        (opts.escapes, " -e"),
        (opts.octal, " -C"),
        (opts.join, " -J"),
        (opts.trailing_spaces, " -N"),
        (opts.quiet, " -q"),
        (opts.alternate, " -a"),
        (opts.pending, " -P"),
    ] {
        if on {
            text.push_str(flag);
        }
    }
    if let Some(h) = opts.history {
        let _ = write!(text, " -S -{h}");
    }
    one(text)
}

/// Which windows `list-windows` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowScope {
    /// `-a`: every session's windows.
    All,
    /// `-t`: one session's windows.
    Session(Target),
}

/// `list-windows (-a | -t T) -F 'format'`.
pub fn list_windows(scope: &WindowScope, format: &str) -> Result<CommandLine, CommandError> {
    let f = quote("format", format)?;
    Ok(one(match scope {
        WindowScope::All => format!("list-windows -a -F {f}"),
        WindowScope::Session(t) => format!("list-windows -t {} -F {f}", t.quoted()),
    }))
}

/// Which panes `list-panes` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaneScope {
    /// `-a`: every pane of the server.
    All,
    /// `-s -t S`: every pane of one session.
    Session(Target),
    /// `-t W`: the panes of one window (a pane target means its window).
    Window(Target),
}

/// `list-panes … -F 'format'`.
pub fn list_panes(scope: &PaneScope, format: &str) -> Result<CommandLine, CommandError> {
    let f = quote("format", format)?;
    Ok(one(match scope {
        PaneScope::All => format!("list-panes -a -F {f}"),
        PaneScope::Session(t) => format!("list-panes -s -t {} -F {f}", t.quoted()),
        PaneScope::Window(t) => format!("list-panes -t {} -F {f}", t.quoted()),
    }))
}

/// `list-sessions -F 'format'`.
pub fn list_sessions(format: &str) -> Result<CommandLine, CommandError> {
    Ok(one(format!(
        "list-sessions -F {}",
        quote("format", format)?
    )))
}

/// `display-message -p -t T -- 'format'`: prints the expanded format. tmux
/// runs the format through `strftime` first, so user text inside it must go
/// through [`escape_time_format`] (not only [`escape_format`]).
pub fn display_message(target: &Target, format: &str) -> Result<CommandLine, CommandError> {
    Ok(one(format!(
        "display-message -p -t {} -- {}",
        target.quoted(),
        quote("format", format)?
    )))
}

/// [`display_message`] for a format constant of this crate (checked by a
/// unit test to hold no forbidden byte).
pub(crate) fn display_message_const(target: &Target, format: &'static str) -> CommandLine {
    debug_assert!(check_bytes("format", format).is_ok());
    one(format!(
        "display-message -p -t {} -- {}",
        target.quoted(),
        quote_unchecked(format)
    ))
}

// ---------------------------------------------------------------------------
// Sessions, windows, panes

/// Quotes a shell command given as argv words (`--` first). One word is run
/// by tmux with `/bin/sh -c`; several are executed directly.
fn shell_command_args(cmd: Option<&[&str]>) -> Result<String, CommandError> {
    let Some(words) = cmd else {
        return Ok(String::new());
    };
    if words.is_empty() {
        return Err(CommandError::Empty {
            what: "shell command",
        });
    }
    let mut out = String::from(" --");
    for w in words {
        if w.contains('#') {
            return Err(CommandError::FormatChar {
                what: "shell command",
            });
        }
        out.push(' ');
        out.push_str(&quote("shell command", w)?);
    }
    Ok(out)
}

/// `new-session -d -s 'NAME' -x C -y R -P -F '#{session_id}' [-- cmd…]`: the
/// reply's one line is the new `$S`; target it by id from then on.
pub fn new_session(
    name: &SessionName,
    cols: u32,
    rows: u32,
    shell_command: Option<&[&str]>,
) -> Result<CommandLine, CommandError> {
    check_size(cols, rows)?;
    let cmd = shell_command_args(shell_command)?;
    Ok(one(format!(
        "new-session -d -s '{}' -x {cols} -y {rows} -P -F '#{{session_id}}'{cmd}",
        name.as_str()
    )))
}

/// `new-window -d -t '$S:' [-n 'NAME'] -P -F '#{window_id} #{pane_id}' [-- cmd…]`:
/// a window at the session's next free index; the reply is `@W %P`.
pub fn new_window(
    session: SessionId,
    name: Option<&str>,
    shell_command: Option<&[&str]>,
) -> Result<CommandLine, CommandError> {
    let mut text = format!("new-window -d -t '{session}:'");
    if let Some(n) = name {
        if n.is_empty() {
            return Err(CommandError::Empty {
                what: "window name",
            });
        }
        let _ = write!(text, " -n {}", quote_expanded("window name", n)?);
    }
    text.push_str(" -P -F '#{window_id} #{pane_id}'");
    text.push_str(&shell_command_args(shell_command)?);
    Ok(one(text))
}

/// `rename-window -t @W -- 'NAME'` (`#` doubled: tmux expands the name).
pub fn rename_window(window: WindowId, name: &str) -> Result<CommandLine, CommandError> {
    if name.is_empty() {
        return Err(CommandError::Empty {
            what: "window name",
        });
    }
    Ok(one(format!(
        "rename-window -t '{window}' -- {}",
        quote_expanded("window name", name)?
    )))
}

/// `kill-pane -t %P`.
pub fn kill_pane(pane: PaneId) -> CommandLine {
    one(format!("kill-pane -t '{pane}'"))
}

/// `kill-window -t @W`.
pub fn kill_window(window: WindowId) -> CommandLine {
    one(format!("kill-window -t '{window}'"))
}

/// `kill-session -t $S`.
pub fn kill_session(session: SessionId) -> CommandLine {
    one(format!("kill-session -t '{session}'"))
}

/// The scope flag `set-option`/`show-options` need for a target.
fn option_scope(target: &Target) -> &'static str {
    match target {
        Target::Pane(_) => " -p",
        Target::Window(_) => " -w",
        Target::Session(_) | Target::SessionName(_) => "",
    }
}

/// User option names: `@` then `[A-Za-z0-9_-]`.
fn check_user_option(name: &str) -> Result<(), CommandError> {
    match name.strip_prefix('@') {
        Some(rest) if check_ident("user option", rest).is_ok() => Ok(()),
        _ => Err(CommandError::BadName {
            what: "user option",
            text: name.to_owned(),
            expected: "@ followed by 1 to 64 of [A-Za-z0-9_-]",
        }),
    }
}

/// `set-option [-p|-w] -t T '@name' -- 'value'`: stores `value` verbatim (no
/// `-F`, so tmux does not expand it; `#{@name}` gives it back unchanged).
pub fn set_option_user(
    target: &Target,
    name: &str,
    value: &str,
) -> Result<CommandLine, CommandError> {
    check_user_option(name)?;
    Ok(one(format!(
        "set-option{} -t {} -- '{name}' {}",
        option_scope(target),
        target.quoted(),
        quote("option value", value)?
    )))
}

/// `set-option -u [-p|-w] -t T '@name'`: unsets a user option.
pub fn unset_option_user(target: &Target, name: &str) -> Result<CommandLine, CommandError> {
    check_user_option(name)?;
    Ok(one(format!(
        "set-option -u{} -t {} -- '{name}'",
        option_scope(target),
        target.quoted()
    )))
}

/// `show-options -v -q [-p|-w] -t T '@name'`: the reply's line is the value
/// (no line if unset).
pub fn show_option(target: &Target, name: &str) -> Result<CommandLine, CommandError> {
    check_user_option(name)?;
    Ok(one(format!(
        "show-options -v -q{} -t {} -- '{name}'",
        option_scope(target),
        target.quoted()
    )))
}

#[cfg(test)]
mod tests;

// ---------------------------------------------------------------------------
// The page's tmux controls and keys (docs/protocol.md §5.1)

/// A key name as the page sends it: 1..=32 bytes, no control characters.
fn check_key(key: &str) -> Result<(), CommandError> {
    if key.is_empty() {
        return Err(CommandError::Empty { what: "key name" });
    }
    if let Some(b) = key.bytes().find(|b| *b < 0x20 || *b == 0x7f) {
        return Err(CommandError::ForbiddenByte {
            what: "key name",
            byte: b,
        });
    }
    Ok(())
}

/// `send-keys -K -c 'CLIENT' -- 'KEY'…` (tmux 3.4 and later): the keys go
/// through CLIENT's key table as if typed on it (the prefix, bindings,
/// copy-mode's table). `#` is doubled: 3.4+ format-expands send-keys
/// arguments.
pub fn send_keys_to_client(client: &str, keys: &[String]) -> Result<CommandLine, CommandError> {
    if keys.is_empty() {
        return Err(CommandError::Empty { what: "keys" });
    }
    let mut text = format!("send-keys -K -c {} --", quote("client name", client)?);
    for k in keys {
        check_key(k)?;
        let _ = write!(text, " {}", quote_expanded("key name", k)?);
    }
    Ok(one(text))
}

/// `send-keys -t $S -- 'KEY'` for tmux before 3.4 (no format expansion
/// there): one key, by name, that no binding took, to the session's active
/// pane as tmux resolves it when the line runs (after any binding queued
/// before it switched windows); tmux encodes it for the pane (application
/// cursor keys, extended keys) as for a terminal's key.
pub fn send_key_name(session: SessionId, key: &str) -> Result<CommandLine, CommandError> {
    check_key(key)?;
    Ok(one(format!(
        "send-keys -t '{session}' -- {}",
        quote("key name", key)?
    )))
}

/// `list-keys`: every binding of every table, in tmux's own syntax (for
/// resolving the page's keys on tmux before 3.4, [`crate::keys`]).
pub fn list_keys() -> CommandLine {
    one("list-keys".to_owned())
}

/// `new-window -t '$S:'`: a window at the session's next free index, which
/// becomes the current one (the page's "+ window", like prefix c).
pub fn new_window_current(session: SessionId) -> CommandLine {
    one(format!("new-window -t '{session}:'"))
}

/// A key binding's command as `list-keys` printed it (tmux's own syntax,
/// from tmux itself, never from the page), to run as one line.
pub fn bound_command(command: &str) -> Result<CommandLine, CommandError> {
    check_bytes("bound command", command)?;
    if command.trim().is_empty() {
        return Err(CommandError::Empty {
            what: "bound command",
        });
    }
    Ok(one(command.trim().to_owned()))
}

/// `split-window -h|-v -t %P`: a new pane right of (`-h`) or below `pane`.
pub fn split_window(pane: PaneId, right: bool) -> CommandLine {
    one(format!(
        "split-window {} -t '{pane}'",
        if right { "-h" } else { "-v" }
    ))
}

/// `resize-pane -Z -t %P`: zoom the pane, or unzoom it.
pub fn zoom_pane(pane: PaneId) -> CommandLine {
    one(format!("resize-pane -Z -t '{pane}'"))
}

/// `select-window -t @W ; select-pane -t %P`, or only `select-pane` when
/// the window is not given: makes the pane tmux's active one.
pub fn select_pane(window: Option<WindowId>, pane: PaneId) -> CommandLine {
    match window {
        Some(w) => CommandLine::new(
            format!("select-window -t '{w}' ; select-pane -t '{pane}'"),
            2,
        ),
        None => one(format!("select-pane -t '{pane}'")),
    }
}

/// `select-window -t @W`.
pub fn select_window(window: WindowId) -> CommandLine {
    one(format!("select-window -t '{window}'"))
}

/// Moves `pane`'s right border by `dx` cells and its bottom border by `dy`
/// (`resize-pane -R|-L N`, `-D|-U N`; a dragged border). `None` when both
/// are 0.
pub fn resize_pane_by(pane: PaneId, dx: i16, dy: i16) -> Option<CommandLine> {
    let mut parts = Vec::new();
    if dx != 0 {
        parts.push(format!(
            "resize-pane -t '{pane}' -{} {}",
            if dx > 0 { 'R' } else { 'L' },
            dx.unsigned_abs()
        ));
    }
    if dy != 0 {
        parts.push(format!(
            "resize-pane -t '{pane}' -{} {}",
            if dy > 0 { 'D' } else { 'U' },
            dy.unsigned_abs()
        ));
    }
    let n = parts.len();
    (n > 0).then(|| CommandLine::new(parts.join(" ; "), n))
}

/// `copy-mode -t %P`.
pub fn copy_mode(pane: PaneId) -> CommandLine {
    one(format!("copy-mode -t '{pane}'"))
}
