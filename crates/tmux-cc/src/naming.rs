//! Session naming: (idea, slot) → a tmux session name that every tmux from
//! 3.2 to 3.7 stores unchanged, and back.
//!
//! Owns the scheme and the [`SessionName`] type; does no I/O.
//!
//! * Names use only `[A-Za-z0-9_-]`: 3.3a–3.7 rewrite `:` and `.` to `_`,
//!   every version format-expands `#`, names starting with `-` parse as
//!   flags, and `:`/`.` split targets (reference §10).
//! * Scheme: `tb_<idea>__<slot>`. In each part, `[A-Za-z0-9-]` stay as they
//!   are and every other byte of the UTF-8 text (including `_`) is written
//!   `_xx` (two lowercase hex digits). `__` separates the parts: an escape is
//!   `_` then a hex digit, so `__` can only be the separator. Decoding
//!   re-encodes and compares, so every name has exactly one meaning.
//! * The whole name is at most [`MAX_NAME_LEN`] bytes (longer ideas are an
//!   error, never truncated: truncation would merge ids).
//! * After creation, target the session by its `$id` (`new-session -P -F
//!   '#{session_id}'`), or by `=NAME` ([`crate::command::Target`]) when only
//!   the name is known. The logical id is also kept verbatim in the user
//!   option [`BRIDGE_ID_OPTION`] ([`logical_id`]), so a restarted bridge can
//!   rebuild its map with `list-sessions -F '#{session_id} #{@bridge_id}'`.

use std::fmt;

/// Prefix of every session the bridge names.
pub const PREFIX: &str = "tb_";
/// Longest session name produced or accepted.
pub const MAX_NAME_LEN: usize = 200;
/// The user option that holds the logical id `idea/slot`.
pub const BRIDGE_ID_OPTION: &str = "@bridge_id";

/// Why a name could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NamingError {
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("session name would be {len} bytes, more than {MAX_NAME_LEN}")]
    TooLong { len: usize },
    #[error("{text:?} is not a session name of the form [A-Za-z0-9_-]+ (not starting with '-')")]
    BadName { text: String },
    #[error("{text:?} is not a tmux-bridge session name (tb_<idea>__<slot>)")]
    NotOurs { text: String },
    #[error("{text:?} is not a logical id of the form <idea>/<slot>")]
    BadLogicalId { text: String },
}

/// A session name made only of `[A-Za-z0-9_-]`, not starting with `-`, 1 to
/// [`MAX_NAME_LEN`] bytes: safe to quote, stored unchanged by every tmux.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionName(String);

impl SessionName {
    /// Checks an arbitrary name against the safe alphabet.
    pub fn new(name: &str) -> Result<Self, NamingError> {
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && !name.starts_with('-')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(SessionName(name.to_owned()))
        } else {
            Err(NamingError::BadName {
                text: name.to_owned(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

fn encode_part(out: &mut String, part: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in part.as_bytes() {
        if plain(b) {
            out.push(char::from(b));
        } else {
            out.push('_');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// The session name for (idea, slot). Both must be non-empty.
pub fn session_name(idea: &str, slot: &str) -> Result<SessionName, NamingError> {
    if idea.is_empty() {
        return Err(NamingError::Empty("idea"));
    }
    if slot.is_empty() {
        return Err(NamingError::Empty("slot"));
    }
    let mut out = String::from(PREFIX);
    encode_part(&mut out, idea);
    out.push_str("__");
    encode_part(&mut out, slot);
    if out.len() > MAX_NAME_LEN {
        return Err(NamingError::TooLong { len: out.len() });
    }
    Ok(SessionName(out))
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Parses a session name made by [`session_name`] back into (idea, slot).
/// Any other name (a user's own session, a renamed one) is
/// [`NamingError::NotOurs`].
pub fn parse_name(name: &str) -> Result<(String, String), NamingError> {
    let not_ours = || NamingError::NotOurs {
        text: name.to_owned(),
    };
    let body = name.strip_prefix(PREFIX).ok_or_else(not_ours)?.as_bytes();
    let mut parts: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut which = 0;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if plain(b) {
            parts[which].push(b);
            i += 1;
        } else if b == b'_' {
            match body.get(i + 1) {
                Some(b'_') if which == 0 => {
                    which = 1;
                    i += 2;
                }
                Some(&h) => {
                    let lo = body
                        .get(i + 2)
                        .copied()
                        .and_then(hex_val)
                        .ok_or_else(not_ours)?;
                    let hi = hex_val(h).ok_or_else(not_ours)?;
                    parts[which].push(hi << 4 | lo);
                    i += 3;
                }
                None => return Err(not_ours()),
            }
        } else {
            return Err(not_ours());
        }
    }
    if which != 1 {
        return Err(not_ours());
    }
    let [idea, slot] = parts;
    let idea = String::from_utf8(idea).map_err(|_| not_ours())?;
    let slot = String::from_utf8(slot).map_err(|_| not_ours())?;
    // Only the canonical spelling is ours (no needless escapes, no upper-case
    // hex): one name per (idea, slot).
    match session_name(&idea, &slot) {
        Ok(n) if n.as_str() == name => Ok((idea, slot)),
        _ => Err(not_ours()),
    }
}

fn escape_id_part(out: &mut String, part: &str) {
    for c in part.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            c => out.push(c),
        }
    }
}

/// The logical id stored in [`BRIDGE_ID_OPTION`]: `idea/slot`, with `%` and
/// `/` inside either part written `%25` and `%2F`, so it splits back
/// unambiguously. Everything else is kept verbatim (the encoder quotes it).
pub fn logical_id(idea: &str, slot: &str) -> Result<String, NamingError> {
    if idea.is_empty() {
        return Err(NamingError::Empty("idea"));
    }
    if slot.is_empty() {
        return Err(NamingError::Empty("slot"));
    }
    let mut out = String::new();
    escape_id_part(&mut out, idea);
    out.push('/');
    escape_id_part(&mut out, slot);
    Ok(out)
}

fn unescape_id_part(part: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = part;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let esc = rest.get(pos..pos + 3)?;
        match esc {
            "%25" => out.push('%'),
            "%2F" => out.push('/'),
            _ => return None,
        }
        rest = &rest[pos + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// Parses a [`logical_id`] back into (idea, slot).
pub fn parse_logical_id(id: &str) -> Result<(String, String), NamingError> {
    let bad = || NamingError::BadLogicalId {
        text: id.to_owned(),
    };
    let (a, b) = id.split_once('/').ok_or_else(bad)?;
    let idea = unescape_id_part(a).ok_or_else(bad)?;
    let slot = unescape_id_part(b).ok_or_else(bad)?;
    if idea.is_empty() || slot.is_empty() {
        return Err(bad());
    }
    Ok((idea, slot))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(idea: &str, slot: &str, expected: &str) {
        let name = session_name(idea, slot).map(|n| n.as_str().to_owned());
        assert_eq!(name.as_deref(), Ok(expected));
        assert_eq!(parse_name(expected), Ok((idea.to_owned(), slot.to_owned())));
    }

    #[test]
    fn plain_ids_stay_readable() {
        check("idea42", "1", "tb_idea42__1");
        check("my-idea", "main", "tb_my-idea__main");
    }

    #[test]
    fn hostile_ids_are_escaped_reversibly() {
        check("a:b", "c.d", "tb_a_3ab__c_2ed");
        check("a_b", "_", "tb_a_5fb___5f");
        check("#{x}", "$x", "tb__23_7bx_7d___24x");
        check("-flag", "a b;c", "tb_-flag__a_20b_3bc");
        check("é", "😀", "tb__c3_a9___f0_9f_98_80");
    }

    #[test]
    fn empty_and_long_ids_are_errors() {
        assert_eq!(session_name("", "1"), Err(NamingError::Empty("idea")));
        assert_eq!(session_name("a", ""), Err(NamingError::Empty("slot")));
        assert!(matches!(
            session_name(&"x".repeat(300), "1"),
            Err(NamingError::TooLong { .. })
        ));
        assert!(matches!(
            session_name(&"#".repeat(66), "1"),
            Err(NamingError::TooLong { .. })
        ));
    }

    #[test]
    fn foreign_and_non_canonical_names_are_not_ours() {
        for n in [
            "main",
            "tb_",
            "tb_a",
            "tb_a__b__c",
            "tb_a_5Fb__c",
            "tb__61__b",
            "tb_a_5__b",
            "tb_a__b_",
            "tb_a__b_ff",
            "tb_a.b__c",
            "tb___b",
        ] {
            assert!(
                matches!(parse_name(n), Err(NamingError::NotOurs { .. })),
                "{n}"
            );
        }
    }

    #[test]
    fn session_name_new_checks_alphabet() {
        assert!(SessionName::new("tb_a__b").is_ok());
        for bad in ["", "-x", "a:b", "a.b", "a b", "#x", "é", "a\nb"] {
            assert!(SessionName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn logical_ids_round_trip() {
        for (i, s) in [
            ("idea", "slot"),
            ("a/b", "c%2Fd"),
            ("#{x}", "$y ~ ;"),
            ("é", "/"),
        ] {
            let id = logical_id(i, s).unwrap_or_default();
            assert_eq!(
                parse_logical_id(&id),
                Ok((i.to_owned(), s.to_owned())),
                "{id}"
            );
        }
        assert_eq!(logical_id("idea", "slot").as_deref(), Ok("idea/slot"));
        assert!(parse_logical_id("noslash").is_err());
        assert!(parse_logical_id("a/%zz").is_err());
        assert!(parse_logical_id("/b").is_err());
    }
}
