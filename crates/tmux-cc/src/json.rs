//! The JSON form of an [`Event`]: the contract of `tmux-bridge events`, one
//! object per event with a kebab-case `kind` field.
//!
//! Pane output (`%output` and `%extended-output`) is
//! `{"kind":"output","pane":"%N","data":"<standard base64>"}`, extended
//! output adds `"age":<ms>`. Text fields (names, reply lines, raw lines) are
//! JSON strings made with lossy UTF-8 conversion. A malformed line is
//! `{"kind":"error","error":"<why>","line":"<line>"}`. Ids print with their
//! sigil (`"@1"`), absent optional fields are `null`. This module only
//! converts; it does no I/O beyond writing into the given writer.

use std::borrow::Cow;
use std::io;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::event::Event;
use crate::ids::{PaneId, SessionId, WindowId};

fn text(b: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}

fn opt_text(b: Option<&bytes::Bytes>) -> Option<Cow<'_, str>> {
    b.map(|b| text(b))
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum Json<'a> {
    Reply {
        time: u64,
        number: u64,
        flags: u32,
        success: bool,
        lines: Vec<Cow<'a, str>>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        truncated: bool,
    },
    Output {
        pane: PaneId,
        data: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        age: Option<u64>,
    },
    Pause {
        pane: PaneId,
    },
    Continue {
        pane: PaneId,
    },
    LayoutChange {
        window: WindowId,
        layout: Cow<'a, str>,
        visible_layout: Option<Cow<'a, str>>,
        flags: Option<Cow<'a, str>>,
    },
    WindowAdd {
        window: WindowId,
    },
    WindowClose {
        window: WindowId,
    },
    UnlinkedWindowAdd {
        window: WindowId,
    },
    UnlinkedWindowClose {
        window: WindowId,
    },
    WindowRenamed {
        window: WindowId,
        name: Cow<'a, str>,
    },
    UnlinkedWindowRenamed {
        window: WindowId,
        name: Cow<'a, str>,
    },
    SessionChanged {
        session: SessionId,
        name: Cow<'a, str>,
    },
    ClientSessionChanged {
        client: Cow<'a, str>,
        session: SessionId,
        name: Cow<'a, str>,
    },
    SessionRenamed {
        session: SessionId,
        name: Cow<'a, str>,
    },
    SessionsChanged,
    SessionWindowChanged {
        session: SessionId,
        window: WindowId,
    },
    WindowPaneChanged {
        window: WindowId,
        pane: PaneId,
    },
    PaneModeChanged {
        pane: PaneId,
    },
    ClientDetached {
        client: Cow<'a, str>,
    },
    SubscriptionChanged {
        name: Cow<'a, str>,
        session: Option<SessionId>,
        window: Option<WindowId>,
        window_index: Option<u32>,
        pane: Option<PaneId>,
        value: Cow<'a, str>,
    },
    Exit {
        reason: Option<Cow<'a, str>>,
    },
    ConfigError {
        text: Cow<'a, str>,
    },
    PasteBufferChanged {
        name: Cow<'a, str>,
    },
    PasteBufferDeleted {
        name: Cow<'a, str>,
    },
    Message {
        text: Cow<'a, str>,
    },
    Unknown {
        line: Cow<'a, str>,
    },
    Stray {
        line: Cow<'a, str>,
    },
    Error {
        error: String,
        line: Cow<'a, str>,
    },
}

impl<'a> From<&'a Event> for Json<'a> {
    fn from(e: &'a Event) -> Self {
        match e {
            Event::Reply(r) => Json::Reply {
                time: r.time,
                number: r.number,
                flags: r.flags,
                success: r.success,
                lines: r.lines.iter().map(|l| text(l)).collect(),
                truncated: r.truncated,
            },
            Event::Output { pane, data } => Json::Output {
                pane: *pane,
                data: STANDARD.encode(data),
                age: None,
            },
            Event::ExtendedOutput { pane, age_ms, data } => Json::Output {
                pane: *pane,
                data: STANDARD.encode(data),
                age: Some(*age_ms),
            },
            Event::Pause { pane } => Json::Pause { pane: *pane },
            Event::Continue { pane } => Json::Continue { pane: *pane },
            Event::LayoutChange {
                window,
                layout,
                visible_layout,
                flags,
            } => Json::LayoutChange {
                window: *window,
                layout: text(layout),
                visible_layout: opt_text(visible_layout.as_ref()),
                flags: opt_text(flags.as_ref()),
            },
            Event::WindowAdd { window } => Json::WindowAdd { window: *window },
            Event::WindowClose { window } => Json::WindowClose { window: *window },
            Event::UnlinkedWindowAdd { window } => Json::UnlinkedWindowAdd { window: *window },
            Event::UnlinkedWindowClose { window } => Json::UnlinkedWindowClose { window: *window },
            Event::WindowRenamed { window, name } => Json::WindowRenamed {
                window: *window,
                name: text(name),
            },
            Event::UnlinkedWindowRenamed { window, name } => Json::UnlinkedWindowRenamed {
                window: *window,
                name: text(name),
            },
            Event::SessionChanged { session, name } => Json::SessionChanged {
                session: *session,
                name: text(name),
            },
            Event::ClientSessionChanged {
                client,
                session,
                name,
            } => Json::ClientSessionChanged {
                client: text(client),
                session: *session,
                name: text(name),
            },
            Event::SessionRenamed { session, name } => Json::SessionRenamed {
                session: *session,
                name: text(name),
            },
            Event::SessionsChanged => Json::SessionsChanged,
            Event::SessionWindowChanged { session, window } => Json::SessionWindowChanged {
                session: *session,
                window: *window,
            },
            Event::WindowPaneChanged { window, pane } => Json::WindowPaneChanged {
                window: *window,
                pane: *pane,
            },
            Event::PaneModeChanged { pane } => Json::PaneModeChanged { pane: *pane },
            Event::ClientDetached { client } => Json::ClientDetached {
                client: text(client),
            },
            Event::SubscriptionChanged {
                name,
                session,
                window,
                window_index,
                pane,
                value,
            } => Json::SubscriptionChanged {
                name: text(name),
                session: *session,
                window: *window,
                window_index: *window_index,
                pane: *pane,
                value: text(value),
            },
            Event::Exit { reason } => Json::Exit {
                reason: opt_text(reason.as_ref()),
            },
            Event::ConfigError { text: t } => Json::ConfigError { text: text(t) },
            Event::PasteBufferChanged { name } => Json::PasteBufferChanged { name: text(name) },
            Event::PasteBufferDeleted { name } => Json::PasteBufferDeleted { name: text(name) },
            Event::Message { text: t } => Json::Message { text: text(t) },
            Event::Unknown { line } => Json::Unknown { line: text(line) },
            Event::Stray { line } => Json::Stray { line: text(line) },
            Event::Malformed(err) => Json::Error {
                error: err.kind.to_string(),
                line: text(&err.line),
            },
        }
    }
}

/// The event as one line of JSON (no trailing newline).
pub fn event_to_json(event: &Event) -> String {
    // Serializing this borrowed enum into a String cannot fail: every map
    // key is a string and no custom serializer returns an error.
    serde_json::to_string(&Json::from(event)).unwrap_or_default()
}

/// Writes the event as one line of JSON followed by `\n`.
pub fn write_event_json<W: io::Write>(mut w: W, event: &Event) -> io::Result<()> {
    serde_json::to_writer(&mut w, &Json::from(event)).map_err(io::Error::from)?;
    w.write_all(b"\n")
}
