//! Reading credentials from requests: the login cookie ([`CurrentUser`],
//! and with the login's id [`CurrentLogin`]),
//! bearer tokens, the browser token in `Sec-WebSocket-Protocol`, the client
//! address ([`ClientAddr`]) and the `Origin` check.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use super::{Auth, AuthError, now_ms};

/// Cookie name over http (`__Host-` requires `Secure`).
pub(crate) const COOKIE_PLAIN: &str = "tb_session";
/// Cookie name over https.
pub(crate) const COOKIE_SECURE: &str = "__Host-tb_session";

/// The logged-in user, from the login cookie. As an extractor it rejects
/// with 401; use `Option<CurrentUser>` where anonymous visitors are fine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUser {
    pub id: String,
    pub name: String,
}

impl<S> FromRequestParts<S> for CurrentUser
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Auth::from_ref(state);
        auth.user_from_headers(&parts.headers)
            .await?
            .ok_or(AuthError::Unauthenticated)
    }
}

impl<S> OptionalFromRequestParts<S> for CurrentUser
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let auth = Auth::from_ref(state);
        auth.user_from_headers(&parts.headers).await
    }
}

/// The logged-in user and which of their logins the cookie names. As an
/// extractor it rejects with 401. What the login opens (browser tokens,
/// event streams) ends with it ([`Auth::watch_login`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentLogin {
    pub user: CurrentUser,
    /// The login's public id (not a secret: the cookie is).
    pub login_id: String,
}

impl<S> FromRequestParts<S> for CurrentLogin
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Auth::from_ref(state);
        auth.login_from_headers(&parts.headers)
            .await?
            .ok_or(AuthError::Unauthenticated)
    }
}

impl<S> OptionalFromRequestParts<S> for CurrentLogin
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let auth = Auth::from_ref(state);
        auth.login_from_headers(&parts.headers).await
    }
}

/// The client's address for rate limits: the TCP peer from axum's
/// `ConnectInfo<SocketAddr>` (serve with
/// `into_make_service_with_connect_info::<SocketAddr>()`). Proxy headers
/// are not trusted. Without `ConnectInfo` every client shares one bucket
/// (`0.0.0.0`), which limits more, never less.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(ClientAddr(ip))
    }
}

impl Auth {
    /// The user of the request's login cookie, if it names a live login.
    pub async fn user_from_headers(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<CurrentUser>, AuthError> {
        Ok(self.login_from_headers(headers).await?.map(|l| l.user))
    }

    /// The login the request's cookie names, if it is live.
    pub async fn login_from_headers(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<CurrentLogin>, AuthError> {
        let Some(value) = self.cookie_value(headers) else {
            return Ok(None);
        };
        let hash = self.hash("login", &value);
        let now = now_ms();
        let login = self.store().browser_login(&hash, now).await?;
        if login.is_some() {
            self.touch_login(&hash, now).await?;
        }
        Ok(login.map(|(u, login_id)| CurrentLogin {
            user: CurrentUser {
                id: u.id,
                name: u.name,
            },
            login_id,
        }))
    }

    /// A use of a login: its idle timeout starts again (one write per
    /// minute at most).
    async fn touch_login(&self, hash: &str, now: i64) -> Result<(), AuthError> {
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4);
        let cfg = self.config();
        let idle = ms(cfg.login_idle.min(cfg.login_ttl));
        let slack = (idle / 10).min(60_000);
        self.store()
            .touch_browser_login(hash, now, idle, ms(cfg.login_ttl), slack)
            .await?;
        Ok(())
    }

    /// The login cookie's value in `headers`, if present.
    pub(crate) fn cookie_value(&self, headers: &HeaderMap) -> Option<String> {
        cookie(headers, self.cookie_name())
    }

    pub fn cookie_name(&self) -> &'static str {
        if self.secure_cookies() {
            COOKIE_SECURE
        } else {
            COOKIE_PLAIN
        }
    }

    /// `Set-Cookie` value for a login cookie holding `value`.
    pub fn set_cookie(&self, value: &str) -> String {
        self.cookie_header(value, self.config().login_ttl.as_secs())
    }

    /// `Set-Cookie` value that deletes the login cookie.
    pub fn clear_cookie(&self) -> String {
        self.cookie_header("", 0)
    }

    fn cookie_header(&self, value: &str, max_age: u64) -> String {
        let secure = if self.secure_cookies() {
            "; Secure"
        } else {
            ""
        };
        format!(
            "{}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}",
            self.cookie_name()
        )
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 256)
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The browser token of a WebSocket handshake offering
/// `Sec-WebSocket-Protocol: tmux-bridge.v1, bearer.<token>`.
pub fn browser_token_from_protocols(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|p| p.strip_prefix("bearer."))
        .filter(|t| !t.is_empty())
}

/// `scheme://host[:port]` of an http(s) URL, lower case, default port
/// dropped; `None` for anything else.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    Some(format!("{scheme}://{authority}"))
}

pub(crate) fn check_origin(public_origin: &str, headers: &HeaderMap) -> Result<(), AuthError> {
    let same_site_fetch =
        || headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("same-origin");
    match headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or_default())
    {
        // Browsers send `Origin: null` for form posts from a page served
        // with `Referrer-Policy: no-referrer` (ours), but also from
        // sandboxed frames and data: URLs; only the browser-set
        // `Sec-Fetch-Site` tells them apart, so that decides.
        Some("null") | None => {
            if same_site_fetch() {
                Ok(())
            } else {
                Err(AuthError::BadOrigin)
            }
        }
        Some(v) => {
            let origin = origin_of(v).ok_or(AuthError::BadOrigin)?;
            if origin == public_origin {
                Ok(())
            } else {
                Err(AuthError::BadOrigin)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn origins_normalize() {
        assert_eq!(
            origin_of("http://127.0.0.1:8080/x").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin_of("HTTPS://Relay.Example:443").as_deref(),
            Some("https://relay.example")
        );
        assert_eq!(
            origin_of("https://relay.example:8443").as_deref(),
            Some("https://relay.example:8443")
        );
        assert_eq!(origin_of("ftp://x"), None);
        assert_eq!(origin_of("http://user@evil"), None);
        assert_eq!(origin_of("null"), None);
    }

    #[test]
    fn origin_check() {
        let o = "http://127.0.0.1:8080";
        assert!(check_origin(o, &headers(&[("origin", "http://127.0.0.1:8080")])).is_ok());
        assert!(check_origin(o, &headers(&[("origin", "http://localhost:8080")])).is_err());
        assert!(
            check_origin(o, &headers(&[("origin", "http://127.0.0.1:8080.evil.com")])).is_err()
        );
        assert!(check_origin(o, &headers(&[("origin", "null")])).is_err());
        let null_same = headers(&[("origin", "null"), ("sec-fetch-site", "same-origin")]);
        assert!(check_origin(o, &null_same).is_ok(), "no-referrer form post");
        let null_cross = headers(&[("origin", "null"), ("sec-fetch-site", "cross-site")]);
        assert!(
            check_origin(o, &null_cross).is_err(),
            "sandboxed frame elsewhere"
        );
        let spoof = headers(&[
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert!(
            check_origin(o, &spoof).is_err(),
            "a real foreign Origin always loses"
        );
        assert!(check_origin(o, &headers(&[])).is_err());
        assert!(check_origin(o, &headers(&[("sec-fetch-site", "cross-site")])).is_err());
        assert!(check_origin(o, &headers(&[("sec-fetch-site", "same-origin")])).is_ok());
    }

    #[test]
    fn tokens_from_headers() {
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "bearer  abc ")])),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Basic abc")])),
            None
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Bearer ")])),
            None
        );
        let h = headers(&[("sec-websocket-protocol", "tmux-bridge.v1, bearer.t0k")]);
        assert_eq!(browser_token_from_protocols(&h), Some("t0k"));
        assert_eq!(
            browser_token_from_protocols(&headers(&[("sec-websocket-protocol", "tmux-bridge.v1")])),
            None
        );
        let c = headers(&[("cookie", "a=1; tb_session=xyz; b=2")]);
        assert_eq!(cookie(&c, COOKIE_PLAIN).as_deref(), Some("xyz"));
        assert_eq!(cookie(&c, COOKIE_SECURE), None);
    }
}
