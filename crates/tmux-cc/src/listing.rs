//! The `list-windows` and `list-clients` formats the bridge uses, the
//! commands that send them, and the parsers of their reply lines.
//!
//! Owns the format text and its parsing, as [`crate::state`] does for pane
//! state; does no I/O. Fields are separated by single spaces (tmux versions
//! differ in whether command output escapes a tab, reference §8.1) and the
//! only field that may hold a space, the window name, comes last.

use bytes::Bytes;

use crate::command::{self, CommandError, CommandLine, Target, WindowScope};
use crate::event::Event;
use crate::ids::{SessionId, WindowId};

/// `list-windows -F`: fields that hold no space first, the name last (it may
/// hold anything, spaces included).
pub const WINDOWS_FORMAT: &str = "#{window_id} #{window_index} #{window_layout} #{window_visible_layout} #{window_raw_flags} #{window_active} #{window_name}";

/// `list-clients -F`: whether the client is a control client, its process
/// id, its session (empty while it has none) and its tty (empty for a
/// control client on a pipe).
pub const CLIENTS_FORMAT: &str = "#{client_control_mode} #{client_pid} #{session_id} #{client_tty}";

/// `display-message -p -t $S`: the size of the session's current window and
/// its `status` option (`on`, `off` or a number of lines): what a terminal
/// client must measure to attach without resizing the window.
pub const WINDOW_SIZE_FORMAT: &str = "#{window_width} #{window_height} #{status}";

/// A reply line that does not have the fields its format promises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{format} line: missing or invalid {field}: {line:?}")]
pub struct ListingError {
    /// `"list-windows"` or `"list-clients"`.
    pub format: &'static str,
    pub field: &'static str,
    /// The line, lossily decoded, at most 200 bytes of it.
    pub line: String,
}

impl ListingError {
    fn new(format: &'static str, field: &'static str, line: &[u8]) -> Self {
        let end = line.len().min(200);
        ListingError {
            format,
            field,
            line: String::from_utf8_lossy(&line[..end]).into_owned(),
        }
    }
}

/// `list-windows -t $S -F` [`WINDOWS_FORMAT`]: every window of a session.
pub fn list_windows(session: SessionId) -> Result<CommandLine, CommandError> {
    command::list_windows(
        &WindowScope::Session(Target::Session(session)),
        WINDOWS_FORMAT,
    )
}

/// `list-clients -F` [`CLIENTS_FORMAT`]: every client of the server.
pub fn list_clients() -> Result<CommandLine, CommandError> {
    command::list_clients(CLIENTS_FORMAT)
}

/// `display-message -p -t $S` [`WINDOW_SIZE_FORMAT`].
pub fn window_size(session: SessionId) -> CommandLine {
    command::display_message_const(&Target::Session(session), WINDOW_SIZE_FORMAT)
}

/// The terminal size at which a client attached to the session leaves its
/// current window as it is: the window's width, and its height plus the
/// status lines a terminal client gives up (reference §11.1). Parsed from a
/// [`WINDOW_SIZE_FORMAT`] reply line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    pub cols: u16,
    pub rows: u16,
}

impl TerminalSize {
    /// Parses one reply line.
    pub fn parse(line: &[u8]) -> Result<TerminalSize, ListingError> {
        let err = |field| ListingError::new("display-message", field, line);
        let mut f = line.split(|&b| b == b' ');
        let mut number = |field| {
            f.next()
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u16>().ok())
                .filter(|&n| n > 0 && u32::from(n) <= command::MAX_CLIENT_SIZE)
                .ok_or_else(|| err(field))
        };
        let cols = number("window_width")?;
        let height = number("window_height")?;
        let status = match f.next() {
            Some(b"off") => 0,
            Some(b"on") => 1,
            Some(n) => std::str::from_utf8(n)
                .ok()
                .and_then(|n| n.parse::<u16>().ok())
                .filter(|&n| n <= 5)
                .ok_or_else(|| err("status"))?,
            None => return Err(err("status")),
        };
        Ok(TerminalSize {
            cols,
            rows: height + status,
        })
    }
}

/// One line of a [`WINDOWS_FORMAT`] reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowLine {
    pub window: WindowId,
    pub index: u32,
    /// The layout string, as in `%layout-change`.
    pub layout: Bytes,
    /// The visible layout (differs from `layout` while a pane is zoomed).
    pub visible_layout: Bytes,
    /// `window_raw_flags` (`*`, `-`, `Z`, …).
    pub flags: Bytes,
    /// The session's current window.
    pub active: bool,
    /// The window name, raw (it may hold spaces or be empty).
    pub name: Bytes,
}

impl WindowLine {
    /// Parses one reply line.
    pub fn parse(line: &[u8]) -> Result<WindowLine, ListingError> {
        let err = |field| ListingError::new("list-windows", field, line);
        let mut f = line.splitn(7, |&b| b == b' ');
        let window = f
            .next()
            .and_then(WindowId::parse_bytes)
            .ok_or_else(|| err("window_id"))?;
        let index = f
            .next()
            .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
            .ok_or_else(|| err("window_index"))?;
        let layout = f.next().ok_or_else(|| err("window_layout"))?;
        let visible_layout = f.next().ok_or_else(|| err("window_visible_layout"))?;
        let flags = f.next().ok_or_else(|| err("window_raw_flags"))?;
        let active = match f.next() {
            Some(b"1") => true,
            Some(b"0") => false,
            _ => return Err(err("window_active")),
        };
        // A window with an empty name ends after the separator, or (if a
        // version trims) without it.
        let name = f.next().unwrap_or_default();
        Ok(WindowLine {
            window,
            index,
            layout: Bytes::copy_from_slice(layout),
            visible_layout: Bytes::copy_from_slice(visible_layout),
            flags: Bytes::copy_from_slice(flags),
            active,
            name: Bytes::copy_from_slice(name),
        })
    }

    /// The `%layout-change` tmux would have sent for this window's current
    /// layout, to feed a model the same way as the notification.
    pub fn layout_event(&self) -> Event {
        Event::LayoutChange {
            window: self.window,
            layout: self.layout.clone(),
            visible_layout: Some(self.visible_layout.clone()),
            flags: Some(self.flags.clone()),
        }
    }
}

/// One line of a [`CLIENTS_FORMAT`] reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientLine {
    /// A control client (`-C`/`-CC`), not a person's terminal.
    pub control: bool,
    pub pid: u32,
    /// The session it is attached to (`None` while it has none).
    pub session: Option<SessionId>,
    /// The client's tty path (empty for a control client on pipes).
    pub tty: Bytes,
}

impl ClientLine {
    /// Parses one reply line.
    pub fn parse(line: &[u8]) -> Result<ClientLine, ListingError> {
        let err = |field| ListingError::new("list-clients", field, line);
        let mut f = line.splitn(4, |&b| b == b' ');
        let (control, pid) = control_and_pid(&mut f, line)?;
        let session = match f.next().unwrap_or_default() {
            b"" => None,
            id => Some(SessionId::parse_bytes(id).ok_or_else(|| err("session_id"))?),
        };
        let tty = Bytes::copy_from_slice(f.next().unwrap_or_default());
        Ok(ClientLine {
            control,
            pid,
            session,
            tty,
        })
    }
}

/// The first two fields of a `list-clients` line: `#{client_control_mode}`
/// and `#{client_pid}`.
fn control_and_pid<'a>(
    f: &mut impl Iterator<Item = &'a [u8]>,
    line: &[u8],
) -> Result<(bool, u32), ListingError> {
    let err = |field| ListingError::new("list-clients", field, line);
    let control = match f.next() {
        Some(b"1") => true,
        Some(b"0") => false,
        _ => return Err(err("client_control_mode")),
    };
    let pid = f
        .next()
        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
        .ok_or_else(|| err("client_pid"))?;
    Ok((control, pid))
}

/// `list-sessions -F`: the server's pid, the session id, the
/// `@bridge_instance` option (empty when unset) and the name, last (a
/// person's own session may have spaces in its name).
pub const SESSIONS_FORMAT: &str = "#{pid} #{session_id} #{@bridge_instance} #{session_name}";

/// The user option that holds a served session's instance id
/// (docs/protocol.md §4.2).
pub const INSTANCE_OPTION: &str = "@bridge_instance";

/// The session option in which the runner names its hidden terminal
/// client (issue 16) while that client runs: the client's pid, set and
/// unset by the runner's control client. Anything that lists clients (the
/// runner's `ls`) reads it through [`CLIENT_SESSIONS_FORMAT`] and leaves
/// that client out of a person's terminals.
pub const HIDDEN_CLIENT_OPTION: &str = "@bridge_hidden_client";

/// `list-clients -F`: whether the client is a control client, its pid, the
/// [`HIDDEN_CLIENT_OPTION`] of its session (empty when unset), its flags
/// and the name of its session (last: it may hold spaces).
pub const CLIENT_SESSIONS_FORMAT: &str = "#{client_control_mode} #{client_pid} #{@bridge_hidden_client} #{client_flags} #{client_session}";

/// One line of a [`CLIENT_SESSIONS_FORMAT`] reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSession {
    /// A control client (`-C`/`-CC`), not a terminal.
    pub control: bool,
    pub pid: u32,
    /// The pid its session's [`HIDDEN_CLIENT_OPTION`] names, if set.
    pub hidden_pid: Option<u32>,
    /// `#{client_flags}`: comma-separated names (tmux 3.2–3.7 print
    /// `read-only` and `ignore-size` alike for a terminal client).
    pub flags: String,
    /// The name of its session.
    pub session: String,
}

impl ClientSession {
    /// Parses one reply line.
    pub fn parse(line: &[u8]) -> Result<ClientSession, ListingError> {
        let err = |field| ListingError::new("list-clients", field, line);
        let mut f = line.splitn(5, |&b| b == b' ');
        let (control, pid) = control_and_pid(&mut f, line)?;
        let hidden_pid = match f.next().ok_or_else(|| err(HIDDEN_CLIENT_OPTION))? {
            b"" => None,
            v => Some(
                std::str::from_utf8(v)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| err(HIDDEN_CLIENT_OPTION))?,
            ),
        };
        let flags = f
            .next()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .ok_or_else(|| err("client_flags"))?;
        let session = String::from_utf8_lossy(f.next().unwrap_or_default()).into_owned();
        Ok(ClientSession {
            control,
            pid,
            hidden_pid,
            flags,
            session,
        })
    }

    /// Whether this is a person's terminal: not a control client, and not
    /// the runner's hidden client (the pid its session's
    /// [`HIDDEN_CLIENT_OPTION`] names, with the `read-only` and
    /// `ignore-size` flags that client always has; a person's own
    /// read-only, ignore-size client has another pid, and a stale option
    /// whose pid a person's new client reused lacks those flags unless the
    /// person asked for both).
    pub fn is_terminal(&self) -> bool {
        let flag = |name: &str| self.flags.split(',').any(|f| f == name);
        let hidden = self.hidden_pid == Some(self.pid) && flag("read-only") && flag("ignore-size");
        !self.control && !hidden
    }
}

/// One line of a [`SESSIONS_FORMAT`] reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLine {
    /// The tmux server's process id (a restarted server has another).
    pub server_pid: u32,
    pub id: SessionId,
    /// `@bridge_instance`, empty when unset.
    pub instance: String,
    pub name: String,
}

impl SessionLine {
    /// Parses one reply line.
    pub fn parse(line: &[u8]) -> Result<SessionLine, ListingError> {
        let err = |field| ListingError::new("list-sessions", field, line);
        let mut f = line.splitn(4, |&b| b == b' ');
        let server_pid = f
            .next()
            .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
            .ok_or_else(|| err("pid"))?;
        let id = f
            .next()
            .and_then(SessionId::parse_bytes)
            .ok_or_else(|| err("session_id"))?;
        let instance = f
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
            .ok_or_else(|| err("@bridge_instance"))?
            .to_owned();
        let name = f
            .next()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .ok_or_else(|| err("session_name"))?;
        Ok(SessionLine {
            server_pid,
            id,
            instance,
            name,
        })
    }
}

#[cfg(test)]
mod tests;
