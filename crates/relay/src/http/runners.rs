//! The user's runners (issue 6): `GET /api/runners` lists them (name, host,
//! last seen, online), `DELETE /api/runners/{id}` revokes one (same origin;
//! its token id is revoked and its live sockets are cut at once; another
//! user's runner is answered like a missing one, 404), and `GET /runners`
//! with `GET /runners/{id}/revoke` (asks first, saying when the runner
//! serves the page in use) and `POST /runners/{id}/revoke` (`confirm=1`)
//! is the same as a server-rendered page.
//! `POST /api/runner/revoke` (runner bearer token) lets a runner whose
//! local user declined the pairing revoke itself.

use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use super::auth::{esc, page};
use crate::auth::{Auth, AuthError, CurrentUser, RunnerInfo, bearer_token};

/// The runners routes. Merge into the relay's router:
/// `.merge(http::runners::routes())`.
pub fn routes<S>() -> Router<S>
where
    Auth: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/runners", get(list))
        .route("/api/runners/{id}", delete(revoke))
        .route("/api/runner/revoke", post(revoke_self))
        .route("/runners", get(runners_page))
        .route(
            "/runners/{id}/revoke",
            post(revoke_form).get(revoke_confirm),
        )
        .layer(axum::extract::DefaultBodyLimit::max(1024))
}

async fn list(State(auth): State<Auth>, user: CurrentUser) -> Result<Response, AuthError> {
    let runners = auth.list_runners(&user.id).await?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "runners": runners })),
    )
        .into_response())
}

async fn revoke(
    State(auth): State<Auth>,
    headers: HeaderMap,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, AuthError> {
    auth.check_origin(&headers)?;
    auth.revoke_runner(&user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/runner/revoke` with the runner's own bearer token: a runner
/// whose local user declined the pairing gives its token back (204).
async fn revoke_self(State(auth): State<Auth>, headers: HeaderMap) -> Result<Response, AuthError> {
    let token = bearer_token(&headers).ok_or(AuthError::Unauthenticated)?;
    let runner = auth.authenticate_runner(token).await?;
    auth.revoke_runner(&runner.user_id, &runner.runner_id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn runners_page(
    State(auth): State<Auth>,
    user: Option<CurrentUser>,
) -> Result<Response, AuthError> {
    let Some(user) = user else {
        return Ok(Redirect::to("/login?next=/runners").into_response());
    };
    let runners = auth.list_runners(&user.id).await?;
    Ok(page(StatusCode::OK, "Runners", &render(&user, &runners)))
}

fn render(user: &CurrentUser, runners: &[RunnerInfo]) -> String {
    let mut rows = String::new();
    for r in runners {
        let seen = r.last_seen_at.map_or_else(
            || "never".to_owned(),
            |ms| format!(r#"<time data-ms="{ms}">{}</time>"#, utc(ms)),
        );
        rows.push_str(&format!(
            r#"<tr data-runner="{id}"><td class="name">{name}</td><td class="host">{host}</td><td class="seen">{seen}</td><td class="state">{state}</td><td><form method="get" action="/runners/{id}/revoke"><button type="submit">Revoke…</button></form></td></tr>"#,
            id = esc(&r.id),
            name = esc(&r.name),
            host = esc(&r.host),
            state = if r.online { "online" } else { "offline" },
        ));
    }
    if runners.is_empty() {
        rows.push_str(r#"<tr><td colspan="5">No runners yet. Run <code>tmux-bridge pair --relay URL</code> on a machine, then <a href="/pair">approve its code</a>.</td></tr>"#);
    }
    format!(
        r#"<h1>Runners of {}</h1><table id="runners"><thead><tr><th>Name</th><th>Host</th><th>Last seen (UTC)</th><th>State</th><th></th></tr></thead><tbody>{rows}</tbody></table>"#,
        esc(&user.name)
    )
}

/// `YYYY-MM-DD HH:MM:SS` of Unix milliseconds (civil-from-days).
fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[derive(serde::Deserialize)]
struct ConfirmForm {
    confirm: Option<String>,
}

/// `GET /runners/{id}/revoke`: asks before revoking, saying what it cuts
/// (issue 14, item 10): the runner's sessions go offline for every page,
/// and the runner built into `tmux-bridge up` also serves the page in use.
async fn revoke_confirm(
    State(auth): State<Auth>,
    user: Option<CurrentUser>,
    Path(id): Path<String>,
) -> Result<Response, AuthError> {
    let Some(user) = user else {
        return Ok(Redirect::to("/login?next=/runners").into_response());
    };
    let runners = auth.list_runners(&user.id).await?;
    let r = runners
        .iter()
        .find(|r| r.id == id)
        .ok_or(AuthError::NotFound)?;
    Ok(page(StatusCode::OK, "Revoke a runner", &render_confirm(r)))
}

fn render_confirm(r: &RunnerInfo) -> String {
    let warning = if r.embedded {
        "<p class=\"error\" id=\"serves-this-page\"><strong>This is the runner built into <code>tmux-bridge up</code>, the one serving this page.</strong> Revoking it stops <code>up</code>: its terminals go offline here and the page stops answering until you run <code>tmux-bridge up</code> again (which makes it a new runner).</p>"
    } else if r.online {
        "<p class=\"error\" id=\"online\">It is online now: its terminals go offline in every open page at once.</p>"
    } else {
        ""
    };
    format!(
        r#"<h1>Revoke runner {name} on {host}?</h1>{warning}
<p>The runner's token stops working: it is disconnected and has to be paired again (<code>tmux-bridge pair</code>). Its tmux sessions keep running on {host}.</p>
<form method="post" action="/runners/{id}/revoke"><input type="hidden" name="confirm" value="1"><button type="submit" id="confirm-revoke">Revoke {name}</button> <a href="/runners">Cancel</a></form>"#,
        name = esc(&r.name),
        host = esc(&r.host),
        id = esc(&r.id),
    )
}

async fn revoke_form(
    State(auth): State<Auth>,
    headers: HeaderMap,
    user: Option<CurrentUser>,
    Path(id): Path<String>,
    form: Result<axum::Form<ConfirmForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, AuthError> {
    let Some(user) = user else {
        return Ok(Redirect::to("/login?next=/runners").into_response());
    };
    auth.check_origin(&headers)?;
    // Without the confirmation step's field, ask first (an old form, a
    // script): nothing is revoked by one click.
    if form.ok().and_then(|f| f.0.confirm).as_deref() != Some("1") {
        return revoke_confirm(State(auth), Some(user), Path(id)).await;
    }
    auth.revoke_runner(&user.id, &id).await?;
    Ok(Redirect::to("/runners").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_700_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
    }

    #[test]
    fn names_are_escaped() {
        let u = CurrentUser {
            id: "u".into(),
            name: "<me>".into(),
        };
        let r = RunnerInfo {
            id: "r\"1".into(),
            name: "<script>alert(1)</script>".into(),
            host: "h&".into(),
            embedded: false,
            created_at: 0,
            last_seen_at: None,
            online: true,
            version: String::new(),
            tmux_version: String::new(),
        };
        let html = render(&u, &[r]);
        assert!(!html.contains("<script>"));
        assert!(
            html.contains("&lt;script&gt;") && html.contains("h&amp;") && html.contains("r&quot;1")
        );
        assert!(html.contains(">online<"));
    }

    /// Issue 14, item 10: revoking asks first, and says so when the runner
    /// is the one serving this page (`tmux-bridge up`'s).
    #[test]
    fn revoking_asks_and_names_the_runner_serving_this_page() {
        let mut r = RunnerInfo {
            id: "r1".into(),
            name: "<b>local</b>".into(),
            host: "box".into(),
            embedded: true,
            created_at: 0,
            last_seen_at: None,
            online: true,
            version: String::new(),
            tmux_version: String::new(),
        };
        let html = render_confirm(&r);
        assert!(html.contains("id=\"serves-this-page\""), "{html}");
        assert!(html.contains(r#"name="confirm" value="1""#));
        assert!(html.contains("&lt;b&gt;local") && !html.contains("<b>local"));
        r.embedded = false;
        let html = render_confirm(&r);
        assert!(!html.contains("serves-this-page") && html.contains("id=\"online\""));
        let u = CurrentUser {
            id: "u".into(),
            name: "me".into(),
        };
        assert!(render(&u, &[r]).contains(r#"method="get" action="/runners/r1/revoke""#));
    }
}
