//! The grammar of one control-mode line outside a reply block, written with
//! nom over bytes: guards (`%begin`/`%end`/`%error`) and every notification
//! of tmux 3.2 to 3.7 (reference §3).
//!
//! This module turns one complete line (terminator already removed) into one
//! [`Event`]; it keeps no state and never fails: a line it cannot read
//! becomes [`Event::Malformed`] or [`Event::Unknown`]. Framing (lines,
//! blocks, limits) belongs to the parent module.

use bytes::{Bytes, BytesMut};
use nom::branch::alt;
use nom::bytes::complete::{tag, take_till1};
use nom::character::complete::{char, digit1, u32 as dec_u32, u64 as dec_u64};
use nom::combinator::{all_consuming, eof, map, map_opt, rest, value};
use nom::sequence::preceded;
use nom::{IResult, Parser as _};

use super::unescape::decode_payload;
use crate::event::{Event, LineError, LineErrorKind};
use crate::ids::{PaneId, SessionId, WindowId, parse_u32};

type In<'a> = &'a [u8];

/// A guard line's kind and its three numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Guard {
    pub kind: GuardKind,
    pub time: u64,
    pub number: u64,
    pub flags: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GuardKind {
    Begin,
    End,
    Error,
}

/// Whether the line starts like a guard (a cheap test before [`guard`]).
#[inline]
pub(crate) fn guard_prefix(line: &[u8]) -> bool {
    line.starts_with(b"%begin ") || line.starts_with(b"%end ") || line.starts_with(b"%error ")
}

/// `%begin T N F`, `%end T N F` or `%error T N F`, exactly (no extra
/// spaces, no trailing bytes).
pub(crate) fn guard(line: &[u8]) -> Option<Guard> {
    let kind = alt((
        value(GuardKind::Begin, tag(&b"%begin "[..])),
        value(GuardKind::End, tag(&b"%end "[..])),
        value(GuardKind::Error, tag(&b"%error "[..])),
    ));
    let mut p = all_consuming((kind, dec_u64, char(' '), dec_u64, char(' '), dec_u32));
    let parsed: IResult<In, _> = p.parse(line);
    let (_, (kind, time, _, number, _, flags)) = parsed.ok()?;
    Some(Guard {
        kind,
        time,
        number,
        flags,
    })
}

fn id_digits(i: In) -> IResult<In, u32> {
    map_opt(digit1, parse_u32).parse(i)
}

fn pane(i: In) -> IResult<In, PaneId> {
    map(preceded(char('%'), id_digits), PaneId).parse(i)
}

fn window(i: In) -> IResult<In, WindowId> {
    map(preceded(char('@'), id_digits), WindowId).parse(i)
}

fn session(i: In) -> IResult<In, SessionId> {
    map(preceded(char('$'), id_digits), SessionId).parse(i)
}

/// A space-free token.
fn token(i: In) -> IResult<In, In> {
    take_till1(|c| c == b' ')(i)
}

/// `X` alone, or `X` then a space then the rest of the line (possibly
/// empty); the rest is `None` when there is no space.
fn then_rest<'a, O>(
    first: impl nom::Parser<In<'a>, Output = O, Error = nom::error::Error<In<'a>>>,
) -> impl nom::Parser<In<'a>, Output = (O, Option<In<'a>>), Error = nom::error::Error<In<'a>>> {
    (
        first,
        alt((map(eof, |_| None), map(preceded(char(' '), rest), Some))),
    )
}

/// Parses `args` completely with `p`; `None` when anything is left over.
fn full<'a, O>(
    args: In<'a>,
    p: impl nom::Parser<In<'a>, Output = O, Error = nom::error::Error<In<'a>>>,
) -> Option<O> {
    all_consuming(p).parse(args).ok().map(|(_, o)| o)
}

/// Skips ` FIELD` tokens up to a lone `:` and returns the fields and what
/// follows `: ` (empty when the line ends at the `:`). Used by
/// `%extended-output` and `%subscription-changed`.
fn fields_then_colon(mut i: In) -> Option<(Vec<In>, In)> {
    let mut fields = Vec::new();
    loop {
        i = i.strip_prefix(b" ")?;
        if i == b":" {
            return Some((fields, &i[1..]));
        }
        if let Some(data) = i.strip_prefix(b": ") {
            return Some((fields, data));
        }
        let (r, t) = token(i).ok()?;
        fields.push(t);
        i = r;
    }
}

/// The data of `%extended-output %P AGE ... : DATA`: pane, age, offset of
/// DATA in `args`.
fn extended_output(args: In) -> Option<(PaneId, u64, In)> {
    let (r, (p, _, age)) = (pane, char(' '), dec_u64).parse(args).ok()?;
    let (_, data) = fields_then_colon(r)?;
    Some((p, age, data))
}

fn index(i: In) -> IResult<In, u32> {
    dec_u32(i)
}

/// `-` or an id parsed by `p`.
fn optional<T>(field: Option<&In>, p: impl Fn(In) -> IResult<In, T>) -> Result<Option<T>, ()> {
    match field {
        None => Ok(None),
        Some(f) if *f == b"-" => Ok(None),
        Some(f) => full(f, p).map(Some).ok_or(()),
    }
}

fn subscription_changed(line: &Bytes, args: In) -> Option<Event> {
    let (r, name) = token(args).ok()?;
    let (fields, value) = fields_then_colon(r)?;
    Some(Event::SubscriptionChanged {
        name: line.slice_ref(name),
        session: optional(fields.first(), session).ok()?,
        window: optional(fields.get(1), window).ok()?,
        window_index: optional(fields.get(2), index).ok()?,
        pane: optional(fields.get(3), pane).ok()?,
        value: line.slice_ref(value),
    })
}

fn layout_change(line: &Bytes, args: In) -> Option<Event> {
    let (r, (w, _, layout)) = (window, char(' '), token).parse(args).ok()?;
    let (visible_layout, flags) = match r.strip_prefix(b" ") {
        None if r.is_empty() => (None, None),
        None => return None,
        Some(r) => {
            let (r, visible) = token(r).ok()?;
            match r.strip_prefix(b" ") {
                None if r.is_empty() => (Some(visible), None),
                None => return None,
                Some(flags) => (Some(visible), Some(flags)),
            }
        }
    };
    Some(Event::LayoutChange {
        window: w,
        layout: line.slice_ref(layout),
        visible_layout: visible_layout.map(|v| line.slice_ref(v)),
        flags: flags.map(|f| line.slice_ref(f)),
    })
}

/// The text after a keyword: the rest of the line after one space, or
/// empty when the line is the keyword alone.
fn text(line: &Bytes, args: Option<In>) -> Bytes {
    args.map(|a| line.slice_ref(a)).unwrap_or_default()
}

/// `%output %P DATA`, the hot path: no allocation unless DATA has escapes.
pub(crate) fn output(line: &Bytes, args: In, scratch: &mut BytesMut) -> Option<Event> {
    let (r, p) = pane(args).ok()?;
    let start = match r {
        [] => line.len(),
        [b' ', ..] => line.len() - r.len() + 1,
        _ => return None,
    };
    Some(Event::Output {
        pane: p,
        data: decode_payload(line, start, scratch),
    })
}

/// Parses one line that starts with `%` and is not inside a block.
pub(crate) fn notification(line: &Bytes, scratch: &mut BytesMut) -> Event {
    let body = &line[1..];
    let (keyword, args) = match memchr::memchr(b' ', body) {
        Some(p) => (&body[..p], Some(&body[p + 1..])),
        None => (body, None),
    };
    let a = args.unwrap_or_default();
    let none = args.is_none();
    let parsed: Result<Option<Event>, &'static str> = match keyword {
        b"output" => output(line, a, scratch).map(Some).ok_or("output"),
        b"extended-output" => extended_output(a)
            .map(|(pane, age_ms, data)| {
                let start = line.len() - data.len();
                Some(Event::ExtendedOutput {
                    pane,
                    age_ms,
                    data: decode_payload(line, start, scratch),
                })
            })
            .ok_or("extended-output"),
        b"pause" => full(a, pane)
            .map(|pane| Some(Event::Pause { pane }))
            .ok_or("pause"),
        b"continue" => full(a, pane)
            .map(|pane| Some(Event::Continue { pane }))
            .ok_or("continue"),
        b"layout-change" => layout_change(line, a).map(Some).ok_or("layout-change"),
        b"window-add" => full(a, window)
            .map(|window| Some(Event::WindowAdd { window }))
            .ok_or("window-add"),
        b"window-close" => full(a, window)
            .map(|window| Some(Event::WindowClose { window }))
            .ok_or("window-close"),
        b"unlinked-window-add" => full(a, window)
            .map(|window| Some(Event::UnlinkedWindowAdd { window }))
            .ok_or("unlinked-window-add"),
        b"unlinked-window-close" => full(a, window)
            .map(|window| Some(Event::UnlinkedWindowClose { window }))
            .ok_or("unlinked-window-close"),
        b"window-renamed" => full(a, then_rest(window))
            .map(|(window, name)| {
                Some(Event::WindowRenamed {
                    window,
                    name: text(line, name),
                })
            })
            .ok_or("window-renamed"),
        b"unlinked-window-renamed" => full(a, then_rest(window))
            .map(|(window, name)| {
                Some(Event::UnlinkedWindowRenamed {
                    window,
                    name: text(line, name),
                })
            })
            .ok_or("unlinked-window-renamed"),
        b"session-changed" => full(a, then_rest(session))
            .map(|(session, name)| {
                Some(Event::SessionChanged {
                    session,
                    name: text(line, name),
                })
            })
            .ok_or("session-changed"),
        b"session-renamed" => full(a, then_rest(session))
            .map(|(session, name)| {
                Some(Event::SessionRenamed {
                    session,
                    name: text(line, name),
                })
            })
            .ok_or("session-renamed"),
        b"client-session-changed" => full(a, (token, char(' '), then_rest(session)))
            .map(|(client, _, (session, name))| {
                Some(Event::ClientSessionChanged {
                    client: line.slice_ref(client),
                    session,
                    name: text(line, name),
                })
            })
            .ok_or("client-session-changed"),
        b"sessions-changed" if none => Ok(Some(Event::SessionsChanged)),
        b"sessions-changed" => Err("sessions-changed"),
        b"session-window-changed" => full(a, (session, char(' '), window))
            .map(|(session, _, window)| Some(Event::SessionWindowChanged { session, window }))
            .ok_or("session-window-changed"),
        b"window-pane-changed" => full(a, (window, char(' '), pane))
            .map(|(window, _, pane)| Some(Event::WindowPaneChanged { window, pane }))
            .ok_or("window-pane-changed"),
        b"pane-mode-changed" => full(a, pane)
            .map(|pane| Some(Event::PaneModeChanged { pane }))
            .ok_or("pane-mode-changed"),
        b"client-detached" if !a.is_empty() => Ok(Some(Event::ClientDetached {
            client: line.slice_ref(a),
        })),
        b"client-detached" => Err("client-detached"),
        b"subscription-changed" => subscription_changed(line, a)
            .map(Some)
            .ok_or("subscription-changed"),
        b"exit" => Ok(Some(Event::Exit {
            reason: args.map(|r| line.slice_ref(r)),
        })),
        b"config-error" => Ok(Some(Event::ConfigError {
            text: text(line, args),
        })),
        b"paste-buffer-changed" => Ok(Some(Event::PasteBufferChanged {
            name: text(line, args),
        })),
        b"paste-buffer-deleted" => Ok(Some(Event::PasteBufferDeleted {
            name: text(line, args),
        })),
        b"message" => Ok(Some(Event::Message {
            text: text(line, args),
        })),
        b"begin" => Err("begin"),
        b"end" | b"error" => {
            return Event::Malformed(LineError {
                line: line.clone(),
                kind: LineErrorKind::UnmatchedGuard,
            });
        }
        _ => Ok(None),
    };
    match parsed {
        Ok(Some(e)) => e,
        Ok(None) => Event::Unknown { line: line.clone() },
        Err(kw) => Event::Malformed(LineError {
            line: line.clone(),
            kind: LineErrorKind::BadNotification(kw),
        }),
    }
}

/// Whether a line inside a block has the exact form of a notification that
/// tmux 3.2–3.7 prints inside the block of the command that caused it:
/// `%pause %N`, `%continue %N` or `%message …`.
pub(crate) fn is_in_block_notification(line: &[u8]) -> bool {
    if let Some(a) = line
        .strip_prefix(b"%pause ")
        .or_else(|| line.strip_prefix(b"%continue "))
    {
        return full(a, pane).is_some();
    }
    line == b"%message" || line.starts_with(b"%message ")
}
