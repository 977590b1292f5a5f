//! Newtypes for tmux object ids: sessions `$N`, windows `@N`, panes `%N`.
//!
//! tmux never reuses an id during the life of a server, so these are safe
//! keys for maps. They print and parse with their sigil, and serialize to
//! JSON as the string tmux prints (`"%3"`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An id that does not have the expected sigil and decimal number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} id {text:?}: expected {sigil} followed by a decimal number")]
pub struct IdError {
    pub what: &'static str,
    pub sigil: char,
    pub text: String,
}

macro_rules! tmux_id {
    ($(#[$doc:meta])* $name:ident, $sigil:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u32);

        impl $name {
            /// The sigil tmux prints before the number.
            #[allow(clippy::char_lit_as_u8)] // the sigils are ASCII
            pub const SIGIL: u8 = $sigil as u8;

            /// Parses `$sigil<digits>` from bytes; `None` on anything else
            /// (no sign, no spaces, no overflow).
            pub fn parse_bytes(b: &[u8]) -> Option<Self> {
                let (&first, digits) = b.split_first()?;
                if first != Self::SIGIL {
                    return None;
                }
                parse_u32(digits).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $sigil, self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse_bytes(s.as_bytes()).ok_or_else(|| IdError {
                    what: $what,
                    sigil: $sigil,
                    text: s.to_owned(),
                })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

tmux_id!(
    /// A tmux session id, printed `$N`.
    SessionId, '$', "session"
);
tmux_id!(
    /// A tmux window id, printed `@N`.
    WindowId, '@', "window"
);
tmux_id!(
    /// A tmux pane id, printed `%N`.
    PaneId, '%', "pane"
);

/// Parses a non-empty run of ASCII digits into a `u32`, refusing overflow.
pub(crate) fn parse_u32(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 10 {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(d - b'0');
    }
    u32::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse_with_their_sigil() {
        assert_eq!(PaneId(3).to_string(), "%3");
        assert_eq!("@12".parse::<WindowId>(), Ok(WindowId(12)));
        assert_eq!("$0".parse::<SessionId>(), Ok(SessionId(0)));
        assert!("%".parse::<PaneId>().is_err());
        assert!("%-1".parse::<PaneId>().is_err());
        assert!("@1".parse::<PaneId>().is_err());
        assert!("%99999999999".parse::<PaneId>().is_err());
        assert_eq!(
            serde_json::to_string(&PaneId(7)).ok().as_deref(),
            Some("\"%7\"")
        );
    }
}
