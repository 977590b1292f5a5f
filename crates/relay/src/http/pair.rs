//! Runner pairing over HTTP (issue 6; logic in `auth::pairing`):
//!
//! * `POST /api/pair/start` `{name?, host?}` (the runner, no auth; 3 per
//!   5 minutes per address, else 429 + Retry-After) →
//!   `{code, pollToken, approveUrl, interval, expiresIn}`.
//! * `GET /api/pair/check?code=…` with `Authorization: Bearer <pollToken>`
//!   → `{"status":"pending","interval":5}` | `slow_down` | `approved` (once,
//!   with `relayUrl, runnerId, runnerToken, account`) | `consumed` |
//!   `expired`; 401 unless the poll token is that code's, whether or not
//!   the code exists; 60 per minute per address and 3,000 relay-wide, else
//!   429 + Retry-After.
//! * `POST /api/pair/approve` `{code}` (logged in, same origin) →
//!   `{runnerId, name, host}`; wrong codes are 400 and capped (429).
//! * `POST /api/pair/preview` `{code}` (same rules, counted alike) →
//!   `{name, host, expiresIn}` of the runner the code would pair.
//! * `GET /pair`, `POST /pair`: the same as a server-rendered form in two
//!   steps: the code, then the runner's name and host and an Approve button.

use super::error::no_store;
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{FromRef, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
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
        .route("/api/pair/preview", post(preview))
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
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Query(q): Query<CheckQuery>,
) -> Result<Response, AuthError> {
    let poll_token = bearer_token(&headers).unwrap_or_default();
    let answer = auth.pair_check_from(addr, &q.code, poll_token).await?;
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

async fn preview(
    State(auth): State<Auth>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    user: CurrentUser,
    body: Result<Json<ApproveBody>, JsonRejection>,
) -> Result<Response, AuthError> {
    auth.check_origin(&headers)?;
    let Json(body) =
        body.map_err(|_| AuthError::BadRequest("expected JSON {\"code\": \"ABC-DEFG\"}"))?;
    let preview = auth.pair_preview(&user, addr, &body.code).await?;
    Ok(no_store(Json(preview)))
}

const FORM: &str = r#"<form method="post" action="/pair">
<label>Code shown by <code>tmux-bridge pair</code> <input name="code" autocomplete="off" autocapitalize="characters" spellcheck="false" placeholder="ABC-DEFG" required autofocus></label>
<button type="submit">Next</button>
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
    /// Absent: show what the code would pair and ask. `"1"`: approve.
    confirm: Option<String>,
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
    if form.confirm.as_deref() != Some("1") {
        return match auth.pair_preview(&user, addr, &form.code).await {
            Ok(p) => page(
                StatusCode::OK,
                "Approve this runner?",
                &format!(
                    r#"<h1>Approve this runner?</h1><p>Runner <b id="preview-name">{name}</b> on host <b id="preview-host">{host}</b> asks to join the account <b>{account}</b> (the code expires in {mins} min).</p>
<p>Once approved and confirmed on that machine, this account can see and type into its tmux sessions, and that machine can show output in this browser. Approve only a runner you started yourself.</p>
<form method="post" action="/pair"><input type="hidden" name="code" value="{code}"><input type="hidden" name="confirm" value="1"><button type="submit" id="approve">Approve</button> <a href="/pair">Cancel</a></form>"#,
                    name = esc(&p.name),
                    host = esc(&p.host),
                    account = esc(&user.name),
                    mins = (p.expires_in + 59) / 60,
                    code = esc(&form.code),
                ),
            ),
            Err(e) => pair_error(e),
        };
    }
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
        Err(e) => pair_error(e),
    }
}

/// The page for a failed preview or approval.
fn pair_error(e: AuthError) -> Response {
    match e {
        AuthError::BadCode => page(
            StatusCode::BAD_REQUEST,
            "Pair a runner",
            &format!(
                r#"<h1>Pair a runner</h1><p class="error" role="alert">Unknown or expired code.</p>{FORM}"#
            ),
        ),
        AuthError::RateLimited(r) => {
            let mut resp = page(
                StatusCode::TOO_MANY_REQUESTS,
                "Pair a runner",
                &format!(
                    r#"<h1>Pair a runner</h1><p class="error" role="alert">Too many wrong codes; try again in {} seconds.</p>"#,
                    r.secs()
                ),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(r.secs()));
            resp
        }
        e => e.into_response(),
    }
}
