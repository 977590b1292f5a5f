//! tmux layout strings (`#{window_layout}`, `%layout-change`): parsing into
//! a tree, printing back, and the checksum (reference §5).
//!
//! ```text
//! layout := CSUM "," cell [ "<" [ cell ("," cell)* ] ">" ]   ; <…>: floating panes, 3.7+
//! cell   := W "x" H "," X "," Y ( "," PANE                   ; leaf, pane id without '%'
//!                               | "{" cell ("," cell)* "}"    ; children side by side
//!                               | "[" cell ("," cell)* "]" )  ; children stacked
//! ```
//!
//! X and Y are signed (3.7 prints them with `%d`). The checksum is never
//! required when parsing, since tmux is the authority on what it sends; use
//! [`Layout::checksum_ok`] to check it and [`Layout::compute_checksum`] when
//! building a layout to send. This module does no I/O.

use std::fmt;
use std::str::FromStr;

use nom::branch::alt;
use nom::bytes::complete::take_while_m_n;
use nom::character::complete::{char, i32 as dec_i32, u32 as dec_u32};
use nom::combinator::{all_consuming, map_res};
use nom::{IResult, Parser as _};

use crate::ids::PaneId;

/// Deepest nesting of splits accepted; deeper input is rejected instead of
/// exhausting the stack.
pub const MAX_DEPTH: usize = 200;

/// A parsed layout: the tiled tree and, since tmux 3.7, floating panes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The checksum as printed (not verified when parsing).
    pub checksum: u16,
    /// The tiled tree; its size is the window's size.
    pub root: LayoutCell,
    /// Floating panes (the `<…>` section of tmux 3.7+), in printed order.
    pub floating: Vec<LayoutCell>,
}

/// One rectangle of a layout: its size, its offset from the window's
/// top-left corner, and what fills it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutCell {
    pub width: u32,
    pub height: u32,
    pub x: i32,
    pub y: i32,
    pub node: LayoutNode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutNode {
    /// A pane.
    Pane(PaneId),
    /// Children side by side (`{…}`), x increasing.
    LeftRight(Vec<LayoutCell>),
    /// Children stacked (`[…]`), y increasing.
    TopBottom(Vec<LayoutCell>),
}

/// A pane's place in a layout, as listed by [`Layout::panes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayoutPane {
    pub pane: PaneId,
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
    /// The pane is in the floating section (tmux 3.7+).
    pub floating: bool,
}

/// A layout string that does not follow the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid layout {text:?}: unexpected input at byte {offset}")]
pub struct LayoutError {
    /// Where parsing stopped.
    pub offset: usize,
    /// The start of the rejected string (lossy UTF-8, at most 200 bytes).
    pub text: String,
}

type In<'a> = &'a [u8];

fn children(mut i: In, depth: usize, close: char) -> IResult<In, Vec<LayoutCell>> {
    let mut out = Vec::new();
    loop {
        let (r, c) = cell(i, depth)?;
        out.push(c);
        if let Ok((r, _)) = char::<_, nom::error::Error<In>>(',').parse(r) {
            i = r;
            continue;
        }
        let (r, _) = char(close).parse(r)?;
        return Ok((r, out));
    }
}

fn cell(i: In, depth: usize) -> IResult<In, LayoutCell> {
    if depth > MAX_DEPTH {
        return Err(nom::Err::Failure(nom::error::Error::new(
            i,
            nom::error::ErrorKind::TooLarge,
        )));
    }
    let (i, (width, _, height, _, x, _, y)) = (
        dec_u32,
        char('x'),
        dec_u32,
        char(','),
        dec_i32,
        char(','),
        dec_i32,
    )
        .parse(i)?;
    let (i, open) = alt((char(','), char('{'), char('['))).parse(i)?;
    let (i, node) = match open {
        ',' => {
            let (i, id) = dec_u32(i)?;
            (i, LayoutNode::Pane(PaneId(id)))
        }
        '{' => {
            let (i, c) = children(i, depth + 1, '}')?;
            (i, LayoutNode::LeftRight(c))
        }
        _ => {
            let (i, c) = children(i, depth + 1, ']')?;
            (i, LayoutNode::TopBottom(c))
        }
    };
    Ok((
        i,
        LayoutCell {
            width,
            height,
            x,
            y,
            node,
        },
    ))
}

fn floating(i: In) -> IResult<In, Vec<LayoutCell>> {
    let (i, _) = char('<').parse(i)?;
    if let Ok((r, _)) = char::<_, nom::error::Error<In>>('>').parse(i) {
        return Ok((r, Vec::new()));
    }
    children(i, 1, '>')
}

fn layout(i: In) -> IResult<In, Layout> {
    let hex = map_res(
        take_while_m_n(4, 4, |c: u8| c.is_ascii_hexdigit()),
        |h: In| u16::from_str_radix(std::str::from_utf8(h).map_err(|_| ())?, 16).map_err(|_| ()),
    );
    let (i, (checksum, _)) = (hex, char(',')).parse(i)?;
    let (i, root) = cell(i, 0)?;
    let (i, floating) = if i.first() == Some(&b'<') {
        floating(i)?
    } else {
        (i, Vec::new())
    };
    Ok((
        i,
        Layout {
            checksum,
            root,
            floating,
        },
    ))
}

impl Layout {
    /// Parses a layout string as tmux prints it. The checksum is read but
    /// not verified.
    pub fn parse(s: &[u8]) -> Result<Layout, LayoutError> {
        match all_consuming(layout).parse(s) {
            Ok((_, l)) => Ok(l),
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(LayoutError {
                offset: s.len() - e.input.len(),
                text: String::from_utf8_lossy(&s[..s.len().min(200)]).into_owned(),
            }),
            Err(nom::Err::Incomplete(_)) => Err(LayoutError {
                offset: s.len(),
                text: String::from_utf8_lossy(&s[..s.len().min(200)]).into_owned(),
            }),
        }
    }

    /// tmux's layout checksum of `body` (everything after the checksum's
    /// comma): for each byte, rotate the 16-bit sum right by one, then add
    /// the byte.
    pub fn compute_checksum(body: &[u8]) -> u16 {
        body.iter().fold(0u16, |csum, &b| {
            csum.rotate_right(1).wrapping_add(u16::from(b))
        })
    }

    /// The layout without its checksum, as tmux prints it.
    pub fn body(&self) -> String {
        let mut s = self.root.to_string();
        if !self.floating.is_empty() {
            s.push('<');
            for (i, c) in self.floating.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(&c.to_string());
            }
            s.push('>');
        }
        s
    }

    /// Whether [`checksum`](Layout::checksum) matches the body.
    pub fn checksum_ok(&self) -> bool {
        Self::compute_checksum(self.body().as_bytes()) == self.checksum
    }

    /// The same layout with its checksum recomputed (for sending a layout
    /// built or edited locally with `select-layout`).
    pub fn with_checksum(mut self) -> Layout {
        self.checksum = Self::compute_checksum(self.body().as_bytes());
        self
    }

    /// Every pane with its rectangle: the tiled tree depth-first in printed
    /// order, then the floating panes.
    pub fn panes(&self) -> Vec<LayoutPane> {
        let mut out = Vec::new();
        self.root.collect_panes(false, &mut out);
        for c in &self.floating {
            c.collect_panes(true, &mut out);
        }
        out
    }
}

impl LayoutCell {
    fn collect_panes(&self, floating: bool, out: &mut Vec<LayoutPane>) {
        match &self.node {
            LayoutNode::Pane(pane) => out.push(LayoutPane {
                pane: *pane,
                x: self.x,
                y: self.y,
                width: self.width,
                height: self.height,
                floating,
            }),
            LayoutNode::LeftRight(c) | LayoutNode::TopBottom(c) => {
                for child in c {
                    child.collect_panes(floating, out);
                }
            }
        }
    }
}

impl fmt::Display for LayoutCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{},{},{}", self.width, self.height, self.x, self.y)?;
        let (open, close, children) = match &self.node {
            LayoutNode::Pane(p) => return write!(f, ",{}", p.0),
            LayoutNode::LeftRight(c) => ('{', '}', c),
            LayoutNode::TopBottom(c) => ('[', ']', c),
        };
        write!(f, "{open}")?;
        for (i, c) in children.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            write!(f, "{c}")?;
        }
        write!(f, "{close}")
    }
}

impl fmt::Display for Layout {
    /// The tmux form: `csum,body`, with the stored checksum.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x},{}", self.checksum, self.body())
    }
}

impl FromStr for Layout {
    type Err = LayoutError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Layout::parse(s.as_bytes())
    }
}

#[cfg(test)]
mod tests;
