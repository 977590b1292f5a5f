//! Previews and their capabilities, as a table without I/O or clock (time
//! and random values are arguments).
//!
//! A *preview* is one dev server port shown on its own origin, minted for
//! one login of its owner. Minting gives a single-use *code* valid for
//! [`CODE_TTL_MS`]; the preview origin exchanges it once for a *cookie*
//! secret bound to that preview. Only SHA-256 digests of codes and cookies
//! are kept, compared in constant time. Whether the login, the job and the
//! port are still good is the caller's question (it needs the store); this
//! table only answers "which preview does this host and cookie name".

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How long a code may wait to be exchanged.
pub const CODE_TTL_MS: i64 = 60_000;
/// How long an unused preview (no request) is kept.
pub const IDLE_TTL_MS: i64 = 12 * 60 * 60 * 1000;
/// Most previews one account holds; minting another drops its oldest.
pub const MAX_PER_USER: usize = 32;
/// Most previews the relay holds in all; beyond it the oldest goes.
pub const MAX_TOTAL: usize = 10_000;

type Digest32 = [u8; 32];

fn digest(secret: &str) -> Digest32 {
    Sha256::digest(secret.as_bytes()).into()
}

/// One preview as minted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// Random, lowercase hex: the first label of the preview's host.
    pub id: String,
    pub user_id: String,
    /// The login that minted it: the preview ends with it.
    pub login_id: String,
    pub job: String,
    pub port: u16,
    pub created_at: i64,
    pub used_at: i64,
    code: Option<(Digest32, i64)>,
    cookie: Option<Digest32>,
}

/// Why a code or a cookie was not accepted (all answered alike outside).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    #[error("no such preview")]
    Unknown,
    #[error("the code is wrong, used or expired")]
    BadCode,
    #[error("the cookie is wrong")]
    BadCookie,
}

/// Every preview of this relay process.
#[derive(Debug, Default)]
pub struct Grants {
    previews: HashMap<String, Preview>,
}

/// What [`Grants::mint`] needs besides the clock and the randomness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintRequest<'a> {
    pub user_id: &'a str,
    pub login_id: &'a str,
    pub job: &'a str,
    pub port: u16,
}

impl Grants {
    /// A new preview with id `id` and its code `code` (both random, from
    /// the caller), valid from `now`. Drops expired codes, previews idle
    /// past [`IDLE_TTL_MS`], and the owner's oldest beyond
    /// [`MAX_PER_USER`].
    pub fn mint(&mut self, req: &MintRequest<'_>, id: &str, code: &str, now: i64) {
        self.sweep(now);
        let mine: Vec<(i64, String)> = self
            .previews
            .values()
            .filter(|p| p.user_id == req.user_id)
            .map(|p| (p.used_at, p.id.clone()))
            .collect();
        drop_oldest(&mut self.previews, mine, MAX_PER_USER - 1);
        let all: Vec<(i64, String)> = self
            .previews
            .values()
            .map(|p| (p.used_at, p.id.clone()))
            .collect();
        drop_oldest(&mut self.previews, all, MAX_TOTAL - 1);
        self.previews.insert(
            id.to_owned(),
            Preview {
                id: id.to_owned(),
                user_id: req.user_id.to_owned(),
                login_id: req.login_id.to_owned(),
                job: req.job.to_owned(),
                port: req.port,
                created_at: now,
                used_at: now,
                code: Some((digest(code), now + CODE_TTL_MS)),
                cookie: None,
            },
        );
    }

    /// Exchanges `code` for preview `id`'s cookie secret `cookie` (random,
    /// from the caller). The code works once, before it expires, and only
    /// on its own preview's host.
    pub fn redeem(&mut self, id: &str, code: &str, cookie: &str, now: i64) -> Result<(), Refused> {
        let p = self.previews.get_mut(id).ok_or(Refused::Unknown)?;
        let Some((want, expires)) = p.code.take() else {
            return Err(Refused::BadCode);
        };
        let matches: bool = want.ct_eq(&digest(code)).into();
        if !matches {
            // A wrong guess burns the code too: one try per mint.
            return Err(Refused::BadCode);
        }
        if now > expires {
            return Err(Refused::BadCode);
        }
        p.cookie = Some(digest(cookie));
        p.used_at = now;
        Ok(())
    }

    /// The preview whose host is `id`, if `cookie` is its cookie.
    pub fn check(&mut self, id: &str, cookie: &str, now: i64) -> Result<Preview, Refused> {
        let p = self.previews.get_mut(id).ok_or(Refused::Unknown)?;
        let Some(want) = p.cookie else {
            return Err(Refused::BadCookie);
        };
        let matches: bool = want.ct_eq(&digest(cookie)).into();
        if !matches {
            return Err(Refused::BadCookie);
        }
        if now - p.used_at > IDLE_TTL_MS {
            // Unused too long: it ends here, not only at the next mint's sweep.
            self.previews.remove(id);
            return Err(Refused::Unknown);
        }
        p.used_at = now;
        Ok(p.clone())
    }

    /// Ends preview `id` (its job stopped, its login ended).
    pub fn end(&mut self, id: &str) {
        self.previews.remove(id);
    }

    /// How many previews are held.
    pub fn len(&self) -> usize {
        self.previews.len()
    }

    /// Whether no preview is held.
    pub fn is_empty(&self) -> bool {
        self.previews.is_empty()
    }

    fn sweep(&mut self, now: i64) {
        self.previews.retain(|_, p| {
            if let Some((_, expires)) = p.code
                && now > expires
            {
                p.code = None;
            }
            // Never exchanged and its code is gone: useless.
            let dead = p.code.is_none() && p.cookie.is_none();
            !dead && now - p.used_at <= IDLE_TTL_MS
        });
    }
}

/// Removes the oldest of `ids` (by last use) until at most `keep` remain.
fn drop_oldest(previews: &mut HashMap<String, Preview>, mut ids: Vec<(i64, String)>, keep: usize) {
    if ids.len() <= keep {
        return;
    }
    ids.sort();
    let excess = ids.len() - keep;
    for (_, id) in ids.into_iter().take(excess) {
        previews.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(user: &'a str, job: &'a str) -> MintRequest<'a> {
        MintRequest {
            user_id: user,
            login_id: "l1",
            job,
            port: 8000,
        }
    }

    #[test]
    fn a_code_works_once_on_its_own_preview_before_it_expires() {
        let mut g = Grants::default();
        g.mint(&req("u1", "j1"), "p1", "code1", 1000);
        g.mint(&req("u2", "j2"), "p2", "code2", 1000);
        // Another preview's code, on this preview's host.
        assert_eq!(g.redeem("p1", "code2", "c", 1001), Err(Refused::BadCode));
        // The wrong guess burnt p1's code.
        assert_eq!(g.redeem("p1", "code1", "c", 1002), Err(Refused::BadCode));
        assert_eq!(g.redeem("p2", "code2", "cookie2", 1002), Ok(()));
        assert_eq!(
            g.redeem("p2", "code2", "cookie2", 1003),
            Err(Refused::BadCode),
            "reused"
        );
        g.mint(&req("u1", "j1"), "p3", "code3", 2000);
        assert_eq!(
            g.redeem("p3", "code3", "c3", 2000 + CODE_TTL_MS + 1),
            Err(Refused::BadCode),
            "expired"
        );
        assert_eq!(g.redeem("nope", "code3", "c", 2000), Err(Refused::Unknown));
    }

    #[test]
    fn a_cookie_opens_only_its_preview() {
        let mut g = Grants::default();
        g.mint(&req("u1", "j1"), "p1", "k1", 0);
        g.mint(&req("u2", "j2"), "p2", "k2", 0);
        assert_eq!(g.check("p1", "anything", 1), Err(Refused::BadCookie));
        assert_eq!(g.redeem("p1", "k1", "c1", 1), Ok(()));
        assert_eq!(g.redeem("p2", "k2", "c2", 1), Ok(()));
        let p = g.check("p1", "c1", 2).expect("own cookie");
        assert_eq!(
            (p.user_id.as_str(), p.job.as_str(), p.port),
            ("u1", "j1", 8000)
        );
        assert_eq!(g.check("p1", "c2", 2), Err(Refused::BadCookie));
        assert_eq!(g.check("p2", "c1", 2), Err(Refused::BadCookie));
        g.end("p1");
        assert_eq!(g.check("p1", "c1", 3), Err(Refused::Unknown));
        assert!(g.check("p2", "c2", 3).is_ok());
        // Unused for longer than the idle time: ended when next used.
        assert_eq!(g.check("p2", "c2", 4 + IDLE_TTL_MS), Err(Refused::Unknown));
        assert!(g.is_empty());
        g.end("p2");
    }

    #[test]
    fn the_table_stays_bounded() {
        let mut g = Grants::default();
        for i in 0..(MAX_PER_USER + 10) {
            let id = format!("p{i}");
            g.mint(&req("u1", "j"), &id, "k", i as i64);
        }
        assert_eq!(g.len(), MAX_PER_USER);
        // The newest survive.
        let last = format!("p{}", MAX_PER_USER + 9);
        assert_eq!(g.redeem(&last, "k", "c", 100), Ok(()));
        // Unredeemed previews go when their code expires; used ones when idle.
        g.mint(&req("u2", "j"), "q", "k", 100 + CODE_TTL_MS + 1);
        assert_eq!(g.len(), 2);
        g.mint(&req("u3", "j"), "r", "k", 100 + IDLE_TTL_MS + 1);
        assert_eq!(g.len(), 1);
    }
}
