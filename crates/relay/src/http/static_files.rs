//! The page: `/`, `/s/{id}`, `/t/{idea}/{slot}` (a terminal by name),
//! `/search`, `/play/{id}`, `/jobs/{idea}` and `/v` (a share link) answer
//! `index.html`
//! (never cached), every other path a file of the built page (`web/dist`,
//! built by `scripts/web-build`), which is part of the binary: release
//! builds embed it (a relay run anywhere serves its page), debug builds read
//! web/dist from disk. A configured web dir (`--web-dir`) is served from
//! disk instead. Files named with a content hash (`app-4F2K9QZ1.js`) are
//! cached for a year as immutable; the build's `.br` and `.gz` copies are
//! sent to browsers that accept them. When no page was built, `/` answers
//! 503 saying how to build it. Every response of the router carries the
//! security headers set in `http::router`.

use std::borrow::Cow;
use std::path::{Component, Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// The Content-Security-Policy of every response: no inline scripts,
/// WebSockets and fetches only to this origin, no framing. Inline styles are
/// allowed because xterm.js's DOM renderer sizes and colours cells through
/// `<style>` elements it creates at run time (blocked otherwise: the
/// terminals render broken); styles cannot run script. `'wasm-unsafe-eval'`
/// lets the bundled playback (asciinema-player's terminal is WebAssembly)
/// compile its module; it allows no JavaScript eval and no inline script.
pub const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
     font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The built page. Release builds carry the files; debug builds read the
/// folder at run time. Plain `.woff` copies are left out (every browser
/// the page supports takes `.woff2`).
#[derive(rust_embed::Embed)]
#[folder = "$CARGO_MANIFEST_DIR/../../web/dist"]
#[allow_missing = true]
#[exclude = "*.woff"]
struct Page;

/// `Cache-Control` of files whose name carries a content hash.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `GET /`, `/s/{id}`, `/t/{idea}/{slot}`, `/search`, `/play/{id}`, `/jobs/{idea}`, `/v`:
/// the page's `index.html`, revalidated on every load.
pub async fn index(State(st): State<AppState>, headers: HeaderMap) -> Response {
    match load(&st.web_dir, "index.html", &headers).await {
        Some(file) => file.into_response_with("no-cache"),
        None => not_built(&st.web_dir),
    }
}

/// Every other path: a file of the page, or 404.
pub async fn asset(State(st): State<AppState>, req: Request) -> Response {
    let path = req.uri().path().trim_start_matches('/').to_owned();
    let Some(clean) = clean_path(&path) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    match load(&st.web_dir, &clean, req.headers()).await {
        Some(file) => {
            let cache = if is_hashed(&clean) {
                IMMUTABLE
            } else {
                "no-cache"
            };
            file.into_response_with(cache)
        }
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// A file ready to send: its bytes (maybe compressed), type, encoding and tag.
struct File {
    body: Cow<'static, [u8]>,
    content_type: &'static str,
    encoding: Option<&'static str>,
    etag: Option<String>,
    not_modified: bool,
}

impl File {
    fn into_response_with(self, cache: &'static str) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if let Some(tag) = self
            .etag
            .as_deref()
            .and_then(|t| HeaderValue::from_str(t).ok())
        {
            headers.insert(header::ETAG, tag);
        }
        if self.not_modified {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        if let Some(enc) = self.encoding {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
        }
        (StatusCode::OK, headers, self.body).into_response()
    }
}

/// Loads `path` (already cleaned) from the configured web dir, or from the
/// page in the binary when none is configured, in the best encoding the
/// request accepts.
async fn load(web_dir: &Path, path: &str, headers: &HeaderMap) -> Option<File> {
    let content_type = content_type(path);
    let encodings = accepted(headers);
    let candidates = encodings
        .iter()
        .map(|&(enc, ext)| (Some(enc), format!("{path}.{ext}")))
        .chain(std::iter::once((None, path.to_owned())));
    for (encoding, name) in candidates {
        let found: Option<(Cow<'static, [u8]>, Option<String>)> = if web_dir.as_os_str().is_empty()
        {
            Page::get(&name).map(|f| {
                let tag = format!("\"{}\"", hex(&f.metadata.sha256_hash()[..12]));
                (f.data, Some(tag))
            })
        } else {
            tokio::fs::read(web_dir.join(&name))
                .await
                .ok()
                .map(|b| (Cow::Owned(b), None))
        };
        if let Some((body, etag)) = found {
            let not_modified = etag.as_deref().is_some_and(|tag| {
                headers
                    .get(header::IF_NONE_MATCH)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.split(',').any(|t| t.trim() == tag))
            });
            return Some(File {
                body,
                content_type,
                encoding,
                etag,
                not_modified,
            });
        }
    }
    None
}

/// The compressed encodings the request accepts, best first, with the
/// file extension the build gives them.
fn accepted(headers: &HeaderMap) -> Vec<(&'static str, &'static str)> {
    let value = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ok = |name: &str| {
        value.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let token = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            token.eq_ignore_ascii_case(name) && !refused
        })
    };
    let mut out = Vec::new();
    if ok("br") {
        out.push(("br", "br"));
    }
    if ok("gzip") {
        out.push(("gzip", "gz"));
    }
    out
}

/// A relative path inside the page, or None for anything that could leave
/// it (`..`, absolute parts) or that names a precompressed copy directly.
fn clean_path(path: &str) -> Option<String> {
    if path.is_empty() || path.contains('\\') {
        return None;
    }
    let p = PathBuf::from(path);
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?.to_owned()),
            _ => return None,
        }
    }
    let joined = parts.join("/");
    if joined.ends_with(".br") || joined.ends_with(".gz") {
        return None;
    }
    Some(joined)
}

/// Whether a file name carries esbuild's content hash (`name-HASH.ext`,
/// HASH being 8 upper-case letters or digits).
fn is_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.split('.').next().unwrap_or(name);
    stem.rsplit_once('-').is_some_and(|(_, h)| {
        h.len() == 8
            && h.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    })
}

fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit('.').next().unwrap_or("");
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "map" | "json" => "application/json",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn not_built(web_dir: &Path) -> Response {
    let looked = if web_dir.as_os_str().is_empty() {
        "the page built into this binary (web/dist was not built when it was compiled)".to_owned()
    } else {
        web_dir.join("index.html").display().to_string()
    };
    tracing::warn!(looked = %looked, "web page not found");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        format!(
            "The tmux-bridge web page has not been built.\n\
             Build it with `scripts/web-build` (needs node and npm) and rebuild, \
             or point TMUX_RELAY_WEB_DIR at a built web/dist.\n\
             Looked for: {looked}\n"
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names() {
        assert!(is_hashed("app-YWX65YOQ.js"));
        assert!(is_hashed(
            "assets/jetbrains-mono-latin-400-normal-C5JECUCT.woff2"
        ));
        assert!(is_hashed("style-TU2L22U6.css.map"));
        assert!(!is_hashed("favicon.svg"));
        assert!(!is_hashed("index.html"));
        assert!(!is_hashed("app-short.js"));
    }

    #[test]
    fn paths_stay_inside() {
        assert_eq!(clean_path("app.js").as_deref(), Some("app.js"));
        assert_eq!(
            clean_path("assets/x.woff2").as_deref(),
            Some("assets/x.woff2")
        );
        for bad in [
            "",
            "../etc/passwd",
            "a/../../b",
            "/etc/passwd",
            "a\\b",
            "app.js.br",
            "x.gz",
        ] {
            assert_eq!(clean_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn accept_encoding() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(v).expect("value"),
            );
            accepted(&m)
        };
        assert_eq!(
            h("gzip, deflate, br, zstd"),
            vec![("br", "br"), ("gzip", "gz")]
        );
        assert_eq!(h("gzip"), vec![("gzip", "gz")]);
        assert_eq!(h("br;q=0, gzip;q=0.5"), vec![("gzip", "gz")]);
        assert!(h("identity").is_empty());
        assert!(accepted(&HeaderMap::new()).is_empty());
    }
}
