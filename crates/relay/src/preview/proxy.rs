//! The preview listener (`--preview-listen`): every request's `Host` names a
//! preview (`<id>.<preview domain>`), its cookie proves the visitor
//! redeemed that preview's code, and the request is proxied over a fresh
//! tunnel to the dev server's port with hyper's HTTP/1 client (streaming
//! both ways; WebSocket upgrades are joined end to end).
//!
//! Before any byte reaches a runner: the preview exists and the cookie is
//! its own, the login that minted it is still live, the job is still the
//! owner's running dev server with that port detected, its runner is
//! connected, and the account is under its tunnel cap. Anything else is
//! one plain 404 (429 for the cap, 502/504 for a dev server that fails).
//! What reaches the dev server: the request without the preview cookie,
//! without hop-by-hop headers, with `Host: localhost:<port>`. What comes
//! back: the response without hop-by-hop headers, its cookies made
//! host-only and never named like ours. This module serves no app route
//! and reads no app cookie.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use protocol::runner::{DetectedPort, TunnelError};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::{debug, info, warn};

use super::grants::Preview;
use super::{ENTER_PATH, UrlTemplate};
use crate::auth::codes::random_token;
use crate::auth::now_ms;
use crate::jobs::lifecycle::RUNNING;
use crate::state::AppState;

/// The preview listener's router.
pub fn router(st: AppState) -> Router {
    let limit = st.previews.limits.max_body;
    Router::new()
        .route(ENTER_PATH, get(enter))
        .fallback(proxy)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(limit))
        .with_state(st)
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-store")],
        "no such preview, or it ended: open it again from the dev servers page\n",
    )
        .into_response()
}

fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST)?.to_str().ok()
}

fn template(st: &AppState) -> Option<&UrlTemplate> {
    st.previews.template.as_ref()
}

/// The query of `GET /__tb/enter`.
#[derive(Debug, Deserialize)]
pub struct Enter {
    code: String,
}

/// `GET /__tb/enter?code=…` on a preview's origin: the code, once and in
/// time, becomes this origin's HttpOnly cookie, then `303 /` (the code
/// leaves the address bar, and no referrer carries it).
pub async fn enter(
    State(st): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<Enter>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(t) = template(&st) else {
        return not_found();
    };
    let Some(id) = host(&headers).and_then(|h| t.id_from_host(h)) else {
        return not_found();
    };
    let Ok(Query(q)) = q else {
        return not_found();
    };
    if q.code.len() > 128 {
        return not_found();
    }
    let cookie = random_token(32);
    let redeemed = crate::preview::lock(&st.previews.grants).redeem(id, &q.code, &cookie, now_ms());
    if let Err(why) = redeemed {
        info!(preview = %id, %why, "preview code refused");
        return not_found();
    }
    let secure = if t.secure() { "; Secure" } else { "" };
    let set = format!(
        "{}={cookie}; HttpOnly; SameSite=Lax; Path=/{secure}",
        t.cookie_name()
    );
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&set) {
        h.insert(header::SET_COOKIE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// The preview cookie's value in `headers`, if sent.
fn preview_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The `Cookie` header without the preview cookie (`None`: nothing left).
pub fn strip_cookie(headers: &HeaderMap, name: &str) -> Option<HeaderValue> {
    let kept: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| pair.split_once('=').map_or(*pair, |(k, _)| k) != name)
        .collect();
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_str(&kept.join("; ")).ok()
}

/// A dev server's `Set-Cookie`, made host-only (no `Domain`), or `None` when
/// it would set a cookie named like the preview's.
pub fn rewrite_set_cookie(value: &str) -> Option<String> {
    let mut parts = value.split(';');
    let first = parts.next()?.trim();
    let name = first.split_once('=').map_or(first, |(k, _)| k).trim();
    if name.eq_ignore_ascii_case(super::COOKIE_PLAIN)
        || name.eq_ignore_ascii_case(super::COOKIE_SECURE)
    {
        return None;
    }
    let mut out = first.to_owned();
    for attr in parts {
        let a = attr.trim();
        if a.len() >= 7 && a[..7].eq_ignore_ascii_case("domain=") {
            continue;
        }
        if !a.is_empty() {
            out.push_str("; ");
            out.push_str(a);
        }
    }
    Some(out)
}

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded as they are.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(n);
    }
}

/// Whether `headers` ask for a WebSocket upgrade.
fn wants_websocket(headers: &HeaderMap) -> bool {
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let connection = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    upgrade && connection
}

/// Why a preview request is not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// Not this person's, or gone for good: 404.
    NotFound,
    /// The dev server runs but nothing listens on the port now: 503.
    NotListening,
    /// The store could not be read: 503.
    Unchecked,
}

impl Refused {
    fn answer(self) -> Response {
        match self {
            Refused::NotFound => not_found(),
            Refused::NotListening => status(
                StatusCode::SERVICE_UNAVAILABLE,
                "the dev server is not listening on this port right now (restarting?): reload in a moment\n",
            ),
            Refused::Unchecked => status(
                StatusCode::SERVICE_UNAVAILABLE,
                "the preview cannot be checked right now: reload in a moment\n",
            ),
        }
    }
}

/// Who may reach which dev server port through this request: the preview
/// its cookie names on its host, for a live login, a running dev server
/// and a detected port. `Err` is the answer: 404 for anything not the
/// person's or gone for good (the preview ends), 503 while the dev server
/// runs but does not listen on the port (a restart: the preview stays).
async fn authorize(st: &AppState, headers: &HeaderMap) -> Result<(Preview, String), Refused> {
    let t = template(st).ok_or(Refused::NotFound)?;
    let id = host(headers)
        .and_then(|h| t.id_from_host(h))
        .ok_or(Refused::NotFound)?;
    let cookie = preview_cookie(headers, t.cookie_name()).ok_or(Refused::NotFound)?;
    let checked = crate::preview::lock(&st.previews.grants).check(id, cookie, now_ms());
    let p = match checked {
        Ok(p) => p,
        Err(why) => {
            debug!(preview = %id, %why, "preview request refused");
            return Err(Refused::NotFound);
        }
    };
    let end = |why: &str| {
        info!(preview = %p.id, why, "preview ended");
        crate::preview::lock(&st.previews.grants).end(&p.id);
        Err(Refused::NotFound)
    };
    match st.auth.login_alive(&p.user_id, &p.login_id).await {
        Ok(true) => {}
        Ok(false) => return end("login ended"),
        Err(e) => {
            warn!(error = %e, "checking a preview's login failed");
            return Err(Refused::Unchecked);
        }
    }
    let job = match st.store.job(&p.job).await {
        Ok(Some(j)) => j,
        Ok(None) => return end("job gone"),
        Err(e) => {
            warn!(error = %e, "reading a preview's job failed");
            return Err(Refused::Unchecked);
        }
    };
    if job.user_id != p.user_id || job.kind != "devserver" || job.state != RUNNING {
        return end("dev server stopped");
    }
    if !port_detected(&job.ports, p.port) {
        return Err(Refused::NotListening);
    }
    let runner = job.runner_id.ok_or(Refused::Unchecked)?;
    Ok((p, runner))
}

/// Whether a request may go on as far as origins go: reads (GET, HEAD,
/// OPTIONS) from anywhere, as for any site; anything else, and WebSocket
/// upgrades, only without an `Origin` (not a browser) or from the preview's
/// own origin. Every preview shares one site (`*.localhost`, or the preview
/// domain), so its `SameSite=Lax` cookie rides along with another
/// preview's POSTs and WebSockets: this stops one preview's page from
/// acting on another through the person's browser.
fn same_origin_or_safe(st: &AppState, preview: &Preview, req: &Request) -> bool {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe && !wants_websocket(req.headers()) {
        return true;
    }
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Some(t) = template(st) else {
        return false;
    };
    origin
        .to_str()
        .is_ok_and(|o| o.eq_ignore_ascii_case(&t.origin(&preview.id)))
}

/// Whether `ports` (a job's stored JSON) holds `port`.
pub fn port_detected(ports: &str, port: u16) -> bool {
    serde_json::from_str::<Vec<DetectedPort>>(ports)
        .map(|ps| ps.iter().any(|p| p.port == port))
        .unwrap_or(false)
}

fn status(code: StatusCode, text: &'static str) -> Response {
    (code, [(header::CACHE_CONTROL, "no-store")], text).into_response()
}

/// Every other request on a preview origin: proxied to the dev server.
pub async fn proxy(State(st): State<AppState>, mut req: Request) -> Response {
    let (preview, runner_id) = match authorize(&st, req.headers()).await {
        Ok(x) => x,
        Err(refused) => return refused.answer(),
    };
    if !same_origin_or_safe(&st, &preview, &req) {
        info!(preview = %preview.id, "a cross-origin write or WebSocket to a preview refused");
        return status(
            StatusCode::FORBIDDEN,
            "cross-origin requests that change things, and WebSockets, must come from the preview itself\n",
        );
    }
    let Some(tunnels) = st.previews.runner(&runner_id) else {
        return status(
            StatusCode::BAD_GATEWAY,
            "the dev server's runner is offline, or too old for previews (update tmux-bridge)\n",
        );
    };
    let Some(permit) = st.previews.permit(&preview.user_id) else {
        return status(
            StatusCode::TOO_MANY_REQUESTS,
            "too many open preview connections for this account\n",
        );
    };
    let stream = match tunnels.open(&preview.job, preview.port).await {
        Ok(s) => s,
        Err(code) => {
            info!(preview = %preview.id, code = code.as_str(), "preview tunnel refused");
            return match code {
                // The runner's view just changed (a restart of the server).
                TunnelError::PortNotDetected | TunnelError::PortClosed => {
                    Refused::NotListening.answer()
                }
                _ => status(
                    StatusCode::BAD_GATEWAY,
                    "the dev server did not accept the connection\n",
                ),
            };
        }
    };
    let websocket = wants_websocket(req.headers());
    let client_upgrade = if websocket {
        req.extensions_mut().remove::<OnUpgrade>()
    } else {
        None
    };
    let cookie_name = template(&st).map_or(super::COOKIE_PLAIN, UrlTemplate::cookie_name);
    let outgoing = match outgoing_request(req, &preview, cookie_name, websocket) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let (mut sender, conn) = match hyper::client::conn::http1::Builder::new()
        .handshake::<_, Body>(TokioIo::new(stream))
        .await
    {
        Ok(x) => x,
        Err(e) => {
            debug!(error = %e, "preview handshake failed");
            return status(
                StatusCode::BAD_GATEWAY,
                "the dev server's connection failed\n",
            );
        }
    };
    let permit = Arc::new(permit);
    let conn_permit = permit.clone();
    tokio::spawn(async move {
        let _permit = conn_permit;
        if let Err(e) = conn.with_upgrades().await {
            debug!(error = %e, "preview connection ended");
        }
    });
    let limit = st.previews.limits.response_timeout;
    let mut resp = match tokio::time::timeout(limit, sender.send_request(outgoing)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            debug!(error = %e, "preview request failed");
            return status(
                StatusCode::BAD_GATEWAY,
                "the dev server's response failed\n",
            );
        }
        Err(_) => {
            return status(
                StatusCode::GATEWAY_TIMEOUT,
                "the dev server did not answer in time\n",
            );
        }
    };
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return status(
                StatusCode::BAD_GATEWAY,
                "the dev server switched protocols unasked\n",
            );
        };
        let server_upgrade = hyper::upgrade::on(&mut resp);
        let idle = st.previews.limits.upgraded_idle;
        let watch = st.auth.logins().watch(&preview.user_id, &preview.login_id);
        let upgraded_permit = permit;
        tokio::spawn(async move {
            let _permit = upgraded_permit;
            let (client, server) = match tokio::join!(client_upgrade, server_upgrade) {
                (Ok(c), Ok(s)) => (c, s),
                _ => {
                    debug!("a preview upgrade did not complete");
                    return;
                }
            };
            tokio::select! {
                () = watch.ended() => debug!("preview WebSocket closed: the login ended"),
                r = splice(TokioIo::new(client), TokioIo::new(server), idle) => {
                    debug!(?r, "preview WebSocket ended");
                }
            }
        });
        let (mut parts, _) = resp.into_parts();
        clean_response_headers(&mut parts.headers, true);
        return Response::from_parts(parts, Body::empty());
    }
    let (mut parts, body) = resp.into_parts();
    clean_response_headers(&mut parts.headers, false);
    Response::from_parts(parts, Body::new(body))
}

/// The request as the dev server gets it.
fn outgoing_request(
    req: Request,
    preview: &Preview,
    cookie_name: &str,
    websocket: bool,
) -> Result<hyper::Request<Body>, Box<Response>> {
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let uri: Uri = path
        .parse()
        .map_err(|_| Box::new(status(StatusCode::BAD_REQUEST, "bad request target\n")))?;
    let mut headers = parts.headers;
    let forwarded_host = headers.get(header::HOST).cloned();
    let cookies = strip_cookie(&headers, cookie_name);
    headers.remove(header::COOKIE);
    if let Some(c) = cookies {
        headers.insert(header::COOKIE, c);
    }
    strip_hop_by_hop(&mut headers);
    if websocket {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
    let dev_host = format!("localhost:{}", preview.port);
    if let Ok(h) = HeaderValue::from_str(&dev_host) {
        headers.insert(header::HOST, h);
    }
    if let Some(h) = forwarded_host {
        headers.insert(HeaderName::from_static("x-forwarded-host"), h);
    }
    let mut out = hyper::Request::new(body);
    *out.method_mut() = parts.method;
    *out.uri_mut() = uri;
    *out.headers_mut() = headers;
    Ok(out)
}

/// The dev server's response headers, cleaned for the browser.
fn clean_response_headers(headers: &mut HeaderMap, upgraded: bool) {
    let cookies: Vec<String> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(rewrite_set_cookie)
        .collect();
    headers.remove(header::SET_COOKIE);
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    let upgrade = headers.get(header::UPGRADE).cloned();
    strip_hop_by_hop(headers);
    if upgraded {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Some(u) = upgrade {
            headers.insert(header::UPGRADE, u);
        }
    }
}

/// `f`, failing as idle when it takes longer than `idle` (a peer that
/// stopped reading holds a write as long as it likes).
async fn within<T>(
    idle: Duration,
    f: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    tokio::time::timeout(idle, f)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle"))?
}

/// Copies both ways until both sides end, one fails, or nothing moved in
/// either direction for `idle` (a write included).
async fn splice<A, B>(a: A, b: B, idle: Duration) -> std::io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let mut abuf = vec![0u8; 16 * 1024];
    let mut bbuf = vec![0u8; 16 * 1024];
    let (mut a_open, mut b_open) = (true, true);
    let (mut a_to_b, mut b_to_a) = (0u64, 0u64);
    while a_open || b_open {
        tokio::select! {
            r = ar.read(&mut abuf), if a_open => {
                let n = r?;
                if n == 0 {
                    a_open = false;
                    within(idle, bw.shutdown()).await?;
                } else {
                    within(idle, bw.write_all(&abuf[..n])).await?;
                    a_to_b += n as u64;
                }
            }
            r = br.read(&mut bbuf), if b_open => {
                let n = r?;
                if n == 0 {
                    b_open = false;
                    within(idle, aw.shutdown()).await?;
                } else {
                    within(idle, aw.write_all(&bbuf[..n])).await?;
                    b_to_a += n as u64;
                }
            }
            () = tokio::time::sleep(idle) => {
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "idle"));
            }
        }
    }
    Ok((a_to_b, b_to_a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preview_cookie_never_reaches_the_dev_server() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; tb_preview=SECRET; b=2"),
        );
        assert_eq!(preview_cookie(&h, "tb_preview"), Some("SECRET"));
        assert_eq!(
            strip_cookie(&h, "tb_preview")
                .as_ref()
                .and_then(|v| v.to_str().ok()),
            Some("a=1; b=2")
        );
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("tb_preview=SECRET"),
        );
        assert_eq!(strip_cookie(&h, "tb_preview"), None);
    }

    #[test]
    fn dev_server_cookies_become_host_only_and_cannot_shadow_ours() {
        assert_eq!(
            rewrite_set_cookie("sid=1; Domain=localhost; Path=/; HttpOnly").as_deref(),
            Some("sid=1; Path=/; HttpOnly")
        );
        assert_eq!(rewrite_set_cookie("tb_preview=x; Path=/"), None);
        assert_eq!(rewrite_set_cookie("__Host-tb_preview=x"), None);
    }

    #[test]
    fn hop_by_hop_headers_go_and_upgrades_are_recognised() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("Upgrade, x-secret"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(wants_websocket(&h));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(!wants_websocket(&h));
    }

    #[test]
    fn stored_ports_are_read_strictly() {
        let ports = r#"[{"port":8000,"addr":"0.0.0.0","source":"socket"}]"#;
        assert!(port_detected(ports, 8000));
        assert!(!port_detected(ports, 8001));
        assert!(!port_detected("not json", 8000));
        assert!(!port_detected("[]", 8000));
    }
}
