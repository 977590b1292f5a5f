//! Lines as `tmux capture-pane -p [-e] -N` prints them (`grid_string_cells`
//! and `grid_string_cells_code` in grid.c), per tmux version: which cells a
//! line has (3.4+ walks every allocated cell, older versions stop at the
//! last written one), tab cells as `\t`, and the SGR codes between cells.

use super::grid::{COLOUR_256, COLOUR_DEFAULT, COLOUR_RGB, Cell, LineRef, Texts, attr, flag};
use super::profile::Profile;

/// Attribute codes in tmux's order; codes >= 10 print as `d:d`.
const ATTRS: [(u16, u8); 13] = [
    (attr::BRIGHT, 1),
    (attr::DIM, 2),
    (attr::ITALICS, 3),
    (attr::UNDERSCORE, 4),
    (attr::BLINK, 5),
    (attr::REVERSE, 7),
    (attr::HIDDEN, 8),
    (attr::STRIKETHROUGH, 9),
    (attr::UNDERSCORE_2, 42),
    (attr::UNDERSCORE_3, 43),
    (attr::UNDERSCORE_4, 44),
    (attr::UNDERSCORE_5, 45),
    (attr::OVERLINE, 53),
];

/// SGR parameters of a colour. `base` 30 (fg), 40 (bg) or 50 (underline,
/// which has no code for the 16 colours).
pub fn colour_codes(c: u32, base: u32, out: &mut Vec<u32>) {
    out.clear();
    if c & COLOUR_256 != 0 {
        out.extend_from_slice(&[base + 8, 5, c & 0xff]);
    } else if c & COLOUR_RGB != 0 {
        out.extend_from_slice(&[base + 8, 2, (c >> 16) & 0xff, (c >> 8) & 0xff, c & 0xff]);
    } else if base == 50 {
    } else {
        match c {
            0..=7 => out.push(base + c),
            COLOUR_DEFAULT => out.push(base + 9),
            90..=97 => out.push(if base == 30 { c } else { c + 10 }),
            _ => {}
        }
    }
}

fn push_num(out: &mut Vec<u8>, n: u32) {
    let mut buf = itoa_buf(n);
    out.append(&mut buf);
}

fn itoa_buf(n: u32) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// `grid_string_cells_add_code`.
fn add_code(out: &mut Vec<u8>, reset: bool, new: &[u32], old: &[u32], profile: Profile) {
    if new.is_empty() {
        return;
    }
    if !reset && new == old {
        return;
    }
    if profile.capture_empty_cells() && reset && (new[0] == 49 || new[0] == 39) {
        return;
    }
    out.extend_from_slice(b"\x1b[");
    for (i, v) in new.iter().enumerate() {
        if i > 0 {
            out.push(b';');
        }
        push_num(out, *v);
    }
    out.push(b'm');
}

/// `grid_string_cells_code`: what takes a terminal from `last` to `gc`.
pub fn cells_code(last: &Cell, gc: &Cell, profile: Profile, out: &mut Vec<u8>) {
    let mut s: [u8; 16] = [0; 16];
    let mut n = 0;
    let a = gc.attr;
    let mut lastattr = last.attr;
    let us_removed = last.us != COLOUR_DEFAULT && gc.us == COLOUR_DEFAULT;
    if ATTRS
        .iter()
        .any(|&(m, _)| (a & m == 0 && lastattr & m != 0) || us_removed)
    {
        s[n] = 0;
        n += 1;
        lastattr &= attr::CHARSET;
    }
    for &(m, code) in &ATTRS {
        if a & m != 0 && lastattr & m == 0 {
            s[n] = code;
            n += 1;
        }
    }
    if n > 0 {
        out.extend_from_slice(b"\x1b[");
        for (i, &c) in s[..n].iter().enumerate() {
            if i > 0 {
                out.push(b';');
            }
            if c < 10 {
                push_num(out, u32::from(c));
            } else {
                push_num(out, u32::from(c / 10));
                out.push(b':');
                push_num(out, u32::from(c % 10));
            }
        }
        out.push(b'm');
    }
    let reset = n != 0 && s[0] == 0;
    let (mut new, mut old) = (Vec::with_capacity(5), Vec::with_capacity(5));
    for (g, l, base) in [
        (gc.fg, last.fg, 30),
        (gc.bg, last.bg, 40),
        (gc.us, last.us, 50),
    ] {
        colour_codes(g, base, &mut new);
        colour_codes(l, base, &mut old);
        add_code(out, reset, &new, &old, profile);
    }
    if a & attr::CHARSET != 0 && lastattr & attr::CHARSET == 0 {
        out.push(0x0e);
    }
    if a & attr::CHARSET == 0 && lastattr & attr::CHARSET != 0 {
        out.push(0x0f);
    }
}

/// One line as `capture-pane -p -N` (`ansi` false) or `-p -e -N` prints
/// it, without the newline. `last` carries the previous cell's pen from
/// line to line, as tmux does within one capture.
pub fn line(
    l: LineRef<'_>,
    sx: usize,
    texts: &Texts,
    profile: Profile,
    ansi: bool,
    last: &mut Cell,
    out: &mut Vec<u8>,
) {
    let end = if profile.capture_empty_cells() {
        l.len()
    } else {
        usize::from(l.used)
    };
    for x in 0..sx.min(end) {
        let gc = l.get(x);
        if gc.is_padding() {
            continue;
        }
        if ansi {
            cells_code(last, &gc, profile, out);
            *last = gc;
        }
        if gc.flags & flag::TAB != 0 {
            out.push(b'\t');
        } else {
            texts.push_utf8(gc.text, out);
        }
    }
}
