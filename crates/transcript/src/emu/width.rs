//! Character widths as tmux computes them (`utf8_width` in utf8.c): the
//! C library's `wcwidth` (tmux without utf8proc, as Debian builds it), then
//! tmux's own overrides by version.
//!
//! The table is glibc's (`width_table.rs`, generated from glibc 2.36's
//! `C.UTF-8`; glibc 2.43 gives the same). A tmux linked against another C
//! library (macOS, musl) or with utf8proc can disagree for recently assigned
//! or ambiguous code points, and 3.7's `codepoint-widths` option can change
//! any width at run time; the model assumes the defaults.

use super::profile::Profile;
use super::width_table::{FORCE_WIDE, WCWIDTH};

/// glibc's `wcwidth` for `c >= 0x80` as in [`WCWIDTH`]: the width, -1
/// when not printable, -2 when not a character at all.
fn wcwidth_raw(c: u32) -> i8 {
    if c > 0x10ffff {
        return -1;
    }
    let i = WCWIDTH.partition_point(|&(_, end, _)| end < c);
    match WCWIDTH.get(i) {
        Some(&(start, _, w)) if start <= c => w,
        _ => 1,
    }
}

/// In a [`bmp`] byte: the code point is in [`FORCE_WIDE`].
const BMP_FORCE: u8 = 0x10;

/// One byte per code point of the Basic Multilingual Plane, built on first
/// use from the tables: `wcwidth + 2` in the low bits, [`BMP_FORCE`]. (A
/// binary search per character was most of the time of feeding non-ASCII
/// text.)
fn bmp() -> &'static [u8] {
    static BMP: std::sync::OnceLock<Box<[u8]>> = std::sync::OnceLock::new();
    BMP.get_or_init(|| {
        let mut t = vec![3u8; 0x10000];
        for &(start, end, w) in WCWIDTH {
            for c in start..=end.min(0xffff) {
                t[c as usize] = (w + 2) as u8;
            }
        }
        for &c in FORCE_WIDE {
            if let Some(e) = t.get_mut(c as usize) {
                *e |= BMP_FORCE;
            }
        }
        t.into_boxed_slice()
    })
}

fn regional(c: u32) -> bool {
    (0x1F1E6..=0x1F1FF).contains(&c)
}

/// The width tmux gives a complete UTF-8 character, or `None` when tmux
/// rejects it (`UTF8_ERROR`: the character is dropped, or in 3.7+ becomes
/// U+FFFD).
pub fn char_width(c: char, profile: Profile) -> Option<u8> {
    cp_width(u32::from(c), profile)
}

/// [`char_width`] for a code point as glibc decodes it: values past
/// U+10FFFF (`F4 90 80 80` and up) are characters to glibc, of no width
/// (`wcwidth` -1).
pub fn cp_width(u: u32, profile: Profile) -> Option<u8> {
    if u < 0x80 {
        return Some(1);
    }
    let w = match bmp().get(u as usize) {
        Some(&e) => {
            if e & BMP_FORCE != 0 && profile.force_wide() {
                return Some(2);
            }
            (e & 0x7) as i8 - 2
        }
        None => {
            if profile.force_wide() {
                if regional(u) {
                    return Some(if profile.regional_narrow() { 1 } else { 2 });
                }
                if FORCE_WIDE.binary_search(&u).is_ok() {
                    return Some(2);
                }
            }
            wcwidth_raw(u)
        }
    };
    match w {
        -2 => None,
        -1 if profile.drop_unprintable() => None,
        -1 => Some(if (0x80..=0x9f).contains(&u) { 0 } else { 1 }),
        w => Some(w as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_by_version() {
        let old = Profile::V3_2;
        let new = Profile::V3_7;
        assert_eq!(char_width('é', new), Some(1));
        assert_eq!(char_width('日', new), Some(2));
        assert_eq!(char_width('\u{301}', new), Some(0));
        assert_eq!(char_width('\u{200d}', new), Some(0));
        assert_eq!(char_width('😀', new), Some(2));
        // Unassigned: dropped before 3.5, width 1 after.
        assert_eq!(char_width('\u{378}', old), None);
        assert_eq!(char_width('\u{378}', new), Some(1));
        assert_eq!(char_width('\u{85}', new), Some(0));
        // Forced wide (U+261D is width 1 in glibc).
        assert_eq!(char_width('\u{261d}', old), Some(1));
        assert_eq!(char_width('\u{261d}', Profile::V3_5), Some(2));
        assert_eq!(char_width('\u{1f1e6}', Profile::V3_5), Some(2));
        assert_eq!(char_width('\u{1f1e6}', new), Some(1));
    }

    /// The BMP table gives what the searches of the tables give.
    #[test]
    fn bmp_table_matches_the_tables() {
        for profile in [Profile::V3_2, Profile::V3_5, Profile::V3_7] {
            for u in 0x80..0x10000u32 {
                let want = if profile.force_wide() && FORCE_WIDE.binary_search(&u).is_ok() {
                    Some(2)
                } else {
                    match wcwidth_raw(u) {
                        -2 => None,
                        -1 if profile.drop_unprintable() => None,
                        -1 => Some(if (0x80..=0x9f).contains(&u) { 0 } else { 1 }),
                        w => Some(w as u8),
                    }
                };
                assert_eq!(cp_width(u, profile), want, "U+{u:04X} {profile:?}");
            }
        }
    }
}
