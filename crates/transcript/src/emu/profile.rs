//! [`Profile`]: the tmux version a pane model follows. tmux's own emulator
//! changed between releases in ways a screen shows (which characters are
//! wide, what invalid UTF-8 becomes, how `capture-pane -e` ends a row), so
//! the model is told which tmux it stands for: from `#{version}` when the
//! bridge attaches, from `--tmux-version` in `tmux-bridge replay`.
//!
//! | Behaviour | 3.2–3.4 | 3.5 | 3.6 | 3.7+ |
//! |---|---|---|---|---|
//! | invalid UTF-8 | dropped | dropped | dropped | one U+FFFD per bad sequence |
//! | `wcwidth` < 0 | character dropped | width 1 (C1: 0) | same | same |
//! | forced wide (emoji table) | no | yes, regional indicators too | yes | yes, regional indicators width 1 |
//! | joining | ZWJ joins the next character; width-0 marks join | ZWJ, VS16, skin tones, regional indicators (modifier table) | same | + Hangul jamo, skin tones only after listed bases, regional pairs |
//! | bytes per cell (combining marks) | 21 | 21 | 32 | 32 |
//! | TAB over blank cells | moves the cursor | same | one tab cell (`capture-pane` prints `\t`) | same |
//! | REP (`CSI b`) | ASCII only | any character | same | same |
//! | `capture-pane -e` | to the last used cell | to the end of the line's cells, `0m` alone after a reset | same | same |
//! | writing over half a wide character at column 1 | keeps the character | same | erases it | same |
//! | padding of a wide character | default background | same | same | 3.8+: the character's background, kept when erased |
//! | a joined character widened past the right edge | cursor moves | same | same | cursor stays |
//! | a zero-width character that does not fit its cell | a cell of its own | same | same | 3.8+: dropped |
//!
//! Pure data; no I/O.

/// A tmux release as `major.minor` (letters dropped: `3.3a` is 3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Profile {
    major: u8,
    minor: u8,
}

impl Default for Profile {
    /// The newest behaviour this crate knows.
    fn default() -> Self {
        Profile::NEWEST
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Profile {
    /// tmux 3.2 to 3.4.
    pub const V3_2: Profile = Profile { major: 3, minor: 2 };
    /// tmux 3.5.
    pub const V3_5: Profile = Profile { major: 3, minor: 5 };
    /// tmux 3.6.
    pub const V3_6: Profile = Profile { major: 3, minor: 6 };
    /// tmux 3.7 and later.
    pub const V3_7: Profile = Profile { major: 3, minor: 7 };
    /// What [`Profile::default`] and unknown future versions get.
    pub const NEWEST: Profile = Profile::V3_7;

    /// Parses what `#{version}` or `tmux -V` prints: `3.3a`, `tmux 3.5a`,
    /// `next-3.8`, `3.8-rc`, `master`. Unparseable text (a build from
    /// master) gives [`Profile::NEWEST`]; versions before 3.2 get 3.2.
    pub fn parse(version: &str) -> Profile {
        let v = version.trim();
        let v = v.strip_prefix("tmux ").unwrap_or(v);
        let v = v.strip_prefix("next-").unwrap_or(v);
        let mut parts = v.splitn(2, '.');
        let major = parts.next().and_then(|m| m.parse::<u8>().ok());
        let minor = parts.next().and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u8>().ok()
        });
        match (major, minor) {
            (Some(major), Some(minor)) => Profile { major, minor }.clamp_known(),
            _ => Profile::NEWEST,
        }
    }

    fn clamp_known(self) -> Profile {
        self.max(Profile::V3_2)
    }

    fn at_least(self, other: Profile) -> bool {
        self >= other
    }

    /// Invalid UTF-8 becomes U+FFFD (3.7+) instead of nothing.
    pub(crate) fn utf8_replacement(self) -> bool {
        self.at_least(Profile::V3_7)
    }

    /// The emoji force-wide table is applied (3.5+).
    pub(crate) fn force_wide(self) -> bool {
        self.at_least(Profile::V3_5)
    }

    /// Regional indicators are width 1 (3.7's default `codepoint-widths`).
    pub(crate) fn regional_narrow(self) -> bool {
        self.at_least(Profile::V3_7)
    }

    /// Characters `wcwidth` rejects are dropped (before 3.5) instead of
    /// taking width 1 (C1 controls: 0).
    pub(crate) fn drop_unprintable(self) -> bool {
        !self.at_least(Profile::V3_5)
    }

    /// 3.5's combining rules (`screen_write_combine` with a modifier
    /// table) rather than 3.2's ZWJ flag.
    pub(crate) fn modern_combine(self) -> bool {
        self.at_least(Profile::V3_5)
    }

    /// 3.7's combining rules: Hangul jamo, `utf8_should_combine`.
    pub(crate) fn combine_37(self) -> bool {
        self.at_least(Profile::V3_7)
    }

    /// Bytes a cell holds (`UTF8_SIZE`): 21 before 3.6, then 32.
    pub(crate) fn cell_bytes(self) -> usize {
        if self.at_least(Profile::V3_6) { 32 } else { 21 }
    }

    /// A TAB over blank cells writes one tab cell (3.6+).
    pub(crate) fn tab_cells(self) -> bool {
        self.at_least(Profile::V3_6)
    }

    /// REP repeats any last character (3.5+), not only ASCII.
    pub(crate) fn rep_utf8(self) -> bool {
        self.at_least(Profile::V3_5)
    }

    /// Writing over the right half of a wide character erases the whole
    /// character even at column 0 (3.6+; before, only when the cell left of
    /// the padding was looked at).
    pub(crate) fn padding_erase_fix(self) -> bool {
        self.at_least(Profile::V3_6)
    }

    /// Padding cells carry their character's background and erasing one
    /// keeps it (3.8+, `screen_write_clear_cell`); a zero-width character
    /// that does not fit its cell is dropped (3.8+).
    pub(crate) fn padding_bg(self) -> bool {
        self >= (Profile { major: 3, minor: 8 })
    }

    /// `capture-pane` walks all of a line's cells (3.4+), and a reset
    /// followed by a default colour writes no colour code.
    pub(crate) fn capture_empty_cells(self) -> bool {
        self >= (Profile { major: 3, minor: 4 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_tmux_prints() {
        assert_eq!(
            Profile::parse("3.3a"),
            Profile::V3_2.max(Profile::parse("3.3"))
        );
        assert_eq!(Profile::parse("tmux 3.5a"), Profile::V3_5);
        assert_eq!(Profile::parse("next-3.8").to_string(), "3.8");
        assert_eq!(Profile::parse("master"), Profile::NEWEST);
        assert_eq!(Profile::parse("2.9"), Profile::V3_2);
        assert!(Profile::parse("3.3a").drop_unprintable());
        assert!(!Profile::parse("3.8").drop_unprintable());
        assert!(Profile::parse("3.4").capture_empty_cells());
        assert!(!Profile::parse("3.3").capture_empty_cells());
    }
}
