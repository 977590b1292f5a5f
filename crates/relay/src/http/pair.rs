//! Runner pairing over HTTP (issue 6; logic in `auth::pairing`):
//!
//! * `POST /api/pair/start` `{name?, host?}` (the runner, no auth; 3 per
//!   5 minutes per address, else 429 + Retry-After) →
//!   `{code, pollToken, approveUrl, interval, expiresIn}`.
//! * `GET /api/pair/check?code=…` with `Authorization: Bearer <pollToken>`
//!   → `{"status":"pending","interval":5}` | `slow_down` | `approved` (once,
//!   with `relayUrl, runnerId, runnerToken, account`) | `consumed` |
//!   `expired`.
//! * `POST /api/pair/approve` `{code}` (logged in, same origin) →
//!   `{runnerId, name, host}`; wrong codes are 400 and capped (429).
//! * `GET /pair`, `POST /pair`: the same approval as a server-rendered form.

use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{FromRef, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;

use super::auth::{esc, page};
use crate::auth::{Auth, AuthError, ClientAddr, CurrentUser, bearer_token};

/// Largest body of a pairing request.
const MAX_BODY: usize = 4 * 1024;

/// The pairing routes. Merge into the relay's router:
/// `.merge(http::pair::routes())`.
pub fn routes<S>() -> Router<S>
where
    Auth: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/pair/start", post(start))
        .route("/api/pair/check", get(check))
        .route("/api/pair/approve", post(approve))
        .route("/pair", get(pair_page).post(pair_form))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}

#[derive(Debug, Default, Deserialize)]
struct StartBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    host: String,
}

async fn start(
    State(auth): State<Auth>,
    ClientAddr(addr): ClientAddr,
    body: Option<Json<StartBody>>,
) -> Result<Response, AuthError> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let started = auth.pair_start(addr, &body.name, &body.host).await?;
    Ok(no_store(Json(started)))
}

#[derive(Debug, Deserialize)]
struct CheckQuery {
    code: String,
}

async fn check(
    State(auth): State<Auth>,
    headers: HeaderMap,
    Query(q): Query<CheckQuery>,
) -> Result<Response, AuthError> {
    let poll_token = bearer_token(&headers).ok_or(AuthError::Unauthenticated)?;
    let answer = auth.pair_check(&q.code, poll_token).await?;
    Ok(no_store(Json(answer)))
}

#[derive(Debug, Deserialize)]
struct ApproveBody {
    code: String,
}

async fn approve(
    State(auth): State<Auth>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    user: CurrentUser,
    body: Result<Json<ApproveBody>, JsonRejection>,
) -> Result<Response, AuthError> {
    auth.check_origin(&headers)?;
    let Json(body) =
        body.map_err(|_| AuthError::BadRequest("expected JSON {\"code\": \"ABC-DEFG\"}"))?;
    let approved = auth.pair_approve(&user, addr, &body.code).await?;
    Ok(no_store(Json(approved)))
}

fn no_store(body: impl IntoResponse) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], body).into_response()
}

const FORM: &str = r#"<form method="post" action="/pair">
<label>Code shown by <code>tmux-bridge pair</code> <input name="code" autocomplete="off" autocapitalize="characters" spellcheck="false" placeholder="ABC-DEFG" required autofocus></label>
<button type="submit">Approve</button>
</form>
<p>Approving gives this account a runner: a shell on the machine that showed the code. Only enter a code you started yourself.</p>"#;

async fn pair_page(user: Option<CurrentUser>) -> Response {
    match user {
        None => Redirect::to("/login?next=/pair").into_response(),
        Some(u) => page(
            StatusCode::OK,
            "Pair a runner",
            &format!(
                "<h1>Pair a runner</h1><p>Logged in as <b>{}</b>.</p>{FORM}",
                esc(&u.name)
            ),
        ),
    }
}

#[derive(Debug, Deserialize)]
struct PairForm {
    code: String,
}

async fn pair_form(
    State(auth): State<Auth>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    user: Option<CurrentUser>,
    form: Result<Form<PairForm>, FormRejection>,
) -> Response {
    if let Err(e) = auth.check_origin(&headers) {
        return e.into_response();
    }
    let Some(user) = user else {
        return Redirect::to("/login?next=/pair").into_response();
    };
    let Ok(Form(form)) = form else {
        return AuthError::BadRequest("expected a form with a code").into_response();
    };
    match auth.pair_approve(&user, addr, &form.code).await {
        Ok(a) => page(
            StatusCode::OK,
            "Runner paired",
            &format!(
                r#"<h1 class="ok">Runner paired</h1><p>Runner <b id="runner-name">{}</b> on <b id="runner-host">{}</b> is now paired to <b>{}</b>. It asks its own user to confirm, then connects.</p><p><a href="/runners">Your runners</a></p>"#,
                esc(&a.name),
                esc(&a.host),
                esc(&user.name)
            ),
        ),
        Err(AuthError::BadCode) => page(
            StatusCode::BAD_REQUEST,
            "Pair a runner",
            &format!(
                r#"<h1>Pair a runner</h1><p class="error" role="alert">Unknown or expired code.</p>{FORM}"#
            ),
        ),
        Err(AuthError::RateLimited(r)) => {
            let mut resp = page(
                StatusCode::TOO_MANY_REQUESTS,
                "Pair a runner",
                &format!(
                    r#"<h1>Pair a runner</h1><p class="error" role="alert">Too many wrong codes; try again in {} seconds.</p>"#,
                    r.secs()
                ),
            );
            if let Ok(v) = r.secs().to_string().parse() {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        Err(e) => e.into_response(),
    }
}
