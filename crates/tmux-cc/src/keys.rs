//! tmux's key tables, resolved outside tmux: for tmux before 3.4, whose
//! `send-keys` cannot hand keys to a client's key table (3.4 added
//! `send-keys -K`), the runner runs the page's key presses through the
//! bindings itself, as tmux's `server_client_key_callback` does for a
//! terminal client (tmux 3.3a, server-client.c):
//!
//! * the prefix key (or `prefix2`) switches to the `prefix` table;
//! * a key bound in the current table runs its command; a repeatable
//!   binding (`bind -r`) keeps the table for `repeat-time`, any other goes
//!   back to the root table;
//! * a key not bound in a table other than root goes back to the root
//!   table and is tried there; not bound in root either, it goes to the
//!   pane (`send-keys`) if the search began in root (or while repeating),
//!   else it is dropped;
//! * a pane in a mode (copy-mode) uses the mode's table instead of root;
//! * the `Any` binding matches any key a table does not bind.
//!
//! [`KeyBindings::parse`] reads `list-keys` output (the commands stay in
//! tmux's own syntax, to be sent back as a command line); [`KeyTables`] is
//! one client's state. Pure: no I/O, the time is an argument.

use std::collections::HashMap;

/// One binding: the command line to run, and whether it repeats (`-r`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub command: String,
    pub repeat: bool,
}

/// Every table's bindings, as `list-keys` printed them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyBindings {
    tables: HashMap<String, HashMap<String, Binding>>,
}

/// A `list-keys` line that is not `bind-key [-r] -T TABLE KEY COMMAND`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a list-keys line: {line:?}")]
pub struct BindLineError {
    pub line: String,
}

impl KeyBindings {
    /// Parses `list-keys` output. Lines that do not parse are returned
    /// (and skipped); the rest is usable.
    pub fn parse(output: &str) -> (KeyBindings, Vec<BindLineError>) {
        let mut out = KeyBindings::default();
        let mut errors = Vec::new();
        for line in output.lines().filter(|l| !l.trim().is_empty()) {
            match parse_line(line) {
                Some((table, key, binding)) => {
                    out.tables.entry(table).or_default().insert(key, binding);
                }
                None => errors.push(BindLineError {
                    line: line.to_owned(),
                }),
            }
        }
        (out, errors)
    }

    /// The binding of `key` in `table`, if any.
    pub fn get(&self, table: &str, key: &str) -> Option<&Binding> {
        self.tables.get(table)?.get(key)
    }

    /// How many bindings `table` has.
    pub fn table_len(&self, table: &str) -> usize {
        self.tables.get(table).map_or(0, HashMap::len)
    }
}

/// `bind-key [-r] [-N NOTE] -T TABLE KEY COMMAND…` → (table, key, binding).
fn parse_line(line: &str) -> Option<(String, String, Binding)> {
    let mut rest = line.trim_start();
    let (first, r) = word(rest)?;
    if first != "bind-key" && first != "bind" {
        return None;
    }
    rest = r;
    let mut repeat = false;
    let mut table = None;
    loop {
        let (w, r) = word(rest)?;
        match w.as_str() {
            "-r" => repeat = true,
            "-n" => table = Some("root".to_owned()),
            "-T" => {
                let (t, r2) = word(r)?;
                table = Some(t);
                rest = r2;
                continue;
            }
            "-N" => {
                let (_, r2) = word(r)?;
                rest = r2;
                continue;
            }
            _ => {
                let command = r.trim().to_owned();
                if command.is_empty() {
                    return None;
                }
                return Some((table?, w, Binding { command, repeat }));
            }
        }
        rest = r;
    }
}

/// One word of a tmux command line (quotes and backslash escapes undone),
/// and the rest of the line after it.
fn word(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    let mut out = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            ' ' | '\t' => return Some((out, &s[i..])),
            '\\' => {
                chars.next();
                let (_, e) = chars.next()?;
                out.push(e);
            }
            '\'' => {
                chars.next();
                loop {
                    let (_, e) = chars.next()?;
                    if e == '\'' {
                        break;
                    }
                    out.push(e);
                }
            }
            '"' => {
                chars.next();
                loop {
                    let (_, e) = chars.next()?;
                    match e {
                        '"' => break,
                        '\\' => out.push(chars.next()?.1),
                        e => out.push(e),
                    }
                }
            }
            c => {
                chars.next();
                out.push(c);
            }
        }
    }
    Some((out, ""))
}

/// The options of the session that the resolution reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOptions {
    /// `prefix` (e.g. `C-b`).
    pub prefix: String,
    /// `prefix2`, unless `None`.
    pub prefix2: Option<String>,
    /// `repeat-time` in milliseconds (0: no repeating).
    pub repeat_time_ms: u64,
    /// `key-table` (the default table, normally `root`).
    pub default_table: String,
}

impl Default for KeyOptions {
    fn default() -> Self {
        KeyOptions {
            prefix: "C-b".into(),
            prefix2: None,
            repeat_time_ms: 500,
            default_table: "root".into(),
        }
    }
}

/// What one key press does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAction {
    /// The key switched tables (the prefix); nothing to run.
    Table(String),
    /// Run this command line (a binding's command, in tmux syntax).
    Run(String),
    /// Send the key to the pane (`send-keys -t %P KEY`).
    Forward(String),
    /// Unbound outside the root table: dropped, as tmux drops it.
    Drop,
}

/// One client's key-table state (which table, repeating until when).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTables {
    table: String,
    repeat_until: Option<u64>,
}

impl Default for KeyTables {
    fn default() -> Self {
        KeyTables {
            table: "root".into(),
            repeat_until: None,
        }
    }
}

impl KeyTables {
    /// The table the next key is looked up in (ignoring a pane's mode).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Resolves one key press at `now_ms`. `mode_table` is the key table of
    /// the pane's mode (`copy-mode` or `copy-mode-vi`) when the pane is in
    /// one.
    pub fn press(
        &mut self,
        bindings: &KeyBindings,
        opts: &KeyOptions,
        key: &str,
        mode_table: Option<&str>,
        now_ms: u64,
    ) -> KeyAction {
        if self.repeat_until.is_some_and(|t| now_ms >= t) {
            self.reset(opts);
        }
        let mut repeating = self.repeat_until.is_some();
        let mut table = if self.table == opts.default_table {
            mode_table.unwrap_or(&opts.default_table).to_owned()
        } else {
            self.table.clone()
        };
        let mut first = table.clone();
        // A bounded loop: each pass either returns or moves to the default
        // table, which it never leaves again.
        for _ in 0..4 {
            // The prefix always switches to the prefix table.
            let is_prefix = key == opts.prefix || opts.prefix2.as_deref().is_some_and(|p| p == key);
            if is_prefix && table != "prefix" {
                self.table = "prefix".into();
                self.repeat_until = None;
                return KeyAction::Table(self.table.clone());
            }
            let found = bindings
                .get(&table, key)
                .or_else(|| bindings.get(&table, "Any"));
            if let Some(b) = found {
                if repeating && !b.repeat {
                    // A non-repeating key ends the repeat: try it in root.
                    self.reset(opts);
                    table = opts.default_table.clone();
                    first = table.clone();
                    repeating = false;
                    continue;
                }
                if b.repeat && opts.repeat_time_ms > 0 {
                    self.table = table;
                    self.repeat_until = Some(now_ms + opts.repeat_time_ms);
                } else {
                    self.reset(opts);
                }
                return KeyAction::Run(b.command.clone());
            }
            if table != opts.default_table || repeating {
                self.reset(opts);
                table = opts.default_table.clone();
                if repeating {
                    first = table.clone();
                }
                repeating = false;
                continue;
            }
            if first != table {
                self.reset(opts);
                return KeyAction::Drop;
            }
            return KeyAction::Forward(key.to_owned());
        }
        KeyAction::Drop
    }

    fn reset(&mut self, opts: &KeyOptions) {
        self.table = opts.default_table.clone();
        self.repeat_until = None;
    }
}

#[cfg(test)]
mod tests;
