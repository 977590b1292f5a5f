//! The page: `/` and `/s/{id}` answer `index.html`, every other path a file
//! of the web dir (`web/dist`, built by `scripts/web-build`). Every response
//! of the router carries the security headers of [`security_headers`].
//! When the page has not been built, `/` answers 503 saying how to build it.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// The Content-Security-Policy of every response: no inline scripts,
/// WebSockets and fetches only to this origin, no framing. Inline styles are
/// allowed because xterm.js's DOM renderer sizes and colours cells through
/// `<style>` elements it creates at run time (blocked otherwise: the
/// terminals render broken); styles cannot run script.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
     font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `GET /` and `GET /s/{id}`: the page's `index.html`.
pub async fn index(State(st): State<AppState>) -> Response {
    let path = st.web_dir.join("index.html");
    match tokio::fs::read(&path).await {
        Ok(body) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "web page not found");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                )],
                format!(
                    "The tmux-bridge web page has not been built.\n\
                     Build it with `scripts/web-build` (needs node and npm), \
                     or point TMUX_RELAY_WEB_DIR at a built web/dist.\n\
                     Looked for: {}\n",
                    path.display()
                ),
            )
                .into_response()
        }
    }
}
