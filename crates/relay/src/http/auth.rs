//! Login and logout (issues 6, 10 and 14): `GET /login` (form), `POST /login`
//! (form POST, same-origin, rate limited), `GET /login/once?code=…&next=/path`
//! (the one-time link `tmux-bridge up` and `tmux-bridge login-link` print:
//! sets the cookie, redirects to `next`, a local path, or `/`),
//! `POST /logout` (ends this login and closes its sockets),
//! `POST /logout/everywhere` (every login of the account), `GET /password`
//! and `POST /password` (a form) or `POST /api/password` (JSON): change
//! the password, which logs out everywhere and logs this browser in again,
//! and `GET /api/me`. Also the small HTML helpers the server-rendered
//! pairing and runners pages share. No secrets are logged.

use axum::extract::rejection::FormRejection;
use axum::extract::{FromRef, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;

use crate::auth::{Auth, AuthError, ClientAddr, CurrentUser};
use crate::http::api::CSRF_HEADER;

/// Largest body of a login form.
const MAX_FORM: usize = 4 * 1024;

/// `/login`, `/login/once`, `/logout`, `/api/me`. Merge into the relay's
/// router: `.merge(http::auth::routes())`.
pub fn routes<S>() -> Router<S>
where
    Auth: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/login", get(login_page).post(login_submit))
        .route("/login/once", get(login_once))
        .route("/logout", post(logout))
        .route("/logout/everywhere", post(logout_everywhere))
        .route("/password", get(password_page).post(password_form))
        .route("/api/password", post(password_api))
        .route("/api/me", get(me))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM))
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Only local paths are followed after login (no open redirect).
pub(crate) fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains(['\\', '\r', '\n'])
                && n.len() < 512 =>
        {
            n
        }
        _ => "/",
    }
}

async fn login_page(Query(q): Query<NextQuery>) -> Response {
    login_form(StatusCode::OK, safe_next(q.next.as_deref()), None)
}

fn login_form(status: StatusCode, next: &str, error: Option<&str>) -> Response {
    let error = error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, esc(e)))
        .unwrap_or_default();
    let body = format!(
        r#"<h1>Log in</h1>{error}
<form method="post" action="/login">
<input type="hidden" name="next" value="{next}">
<label>User <input name="name" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button>
</form>"#,
        next = esc(next)
    );
    page_anon(status, "Log in", &body)
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
    next: Option<String>,
}

async fn login_submit(
    State(auth): State<Auth>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    if let Err(e) = auth.check_origin(&headers) {
        return e.into_response();
    }
    let Ok(Form(form)) = form else {
        return login_form(
            StatusCode::BAD_REQUEST,
            "/",
            Some("Enter a user name and a password."),
        );
    };
    let next = safe_next(form.next.as_deref()).to_owned();
    match auth.login_password(&form.name, &form.password, addr).await {
        Ok((_, cookie)) => with_cookie(
            Redirect::to(&next).into_response(),
            &auth.set_cookie(&cookie),
        ),
        Err(AuthError::BadLogin) => login_form(
            StatusCode::UNAUTHORIZED,
            &next,
            Some("Wrong user name or password."),
        ),
        Err(AuthError::RateLimited(retry)) => {
            let mut r = login_form(
                StatusCode::TOO_MANY_REQUESTS,
                &next,
                Some(&format!(
                    "Too many attempts; try again in {} seconds.",
                    retry.secs()
                )),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry.secs()));
            r
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct OnceQuery {
    code: Option<String>,
    /// Where to go once logged in (a local path; `tmux-bridge up` points
    /// at its terminal).
    next: Option<String>,
}

async fn login_once(State(auth): State<Auth>, Query(q): Query<OnceQuery>) -> Response {
    match auth.login_once(q.code.as_deref().unwrap_or_default()).await {
        Ok(cookie) => with_cookie(
            Redirect::to(safe_next(q.next.as_deref())).into_response(),
            &auth.set_cookie(&cookie),
        ),
        Err(AuthError::BadCode) => page_anon(
            StatusCode::BAD_REQUEST,
            "Link expired",
            r#"<h1>This login link has expired or was used already</h1><p>Run <code>tmux-bridge login-link</code> for a fresh one (while <code>tmux-bridge up</code> runs), or <a href="/login">log in</a>.</p>"#,
        ),
        Err(e) => e.into_response(),
    }
}

async fn logout(State(auth): State<Auth>, headers: HeaderMap) -> Response {
    if let Err(e) = auth.check_origin(&headers) {
        return e.into_response();
    }
    if let Err(e) = auth.logout(&headers).await {
        return e.into_response();
    }
    with_cookie(Redirect::to("/login").into_response(), &auth.clear_cookie())
}

async fn logout_everywhere(
    State(auth): State<Auth>,
    headers: HeaderMap,
    user: Option<CurrentUser>,
) -> Response {
    if let Err(e) = auth.check_origin(&headers) {
        return e.into_response();
    }
    if let Some(user) = user
        && let Err(e) = auth.logout_everywhere(&user).await
    {
        return e.into_response();
    }
    with_cookie(Redirect::to("/login").into_response(), &auth.clear_cookie())
}

fn password_form_page(status: StatusCode, user: &CurrentUser, message: Option<&str>) -> Response {
    let message = message
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, esc(e)))
        .unwrap_or_default();
    let body = format!(
        r#"<h1>Change password</h1><p>Logged in as <b>{name}</b>. Changing the password logs out every browser of this account (this one logs in again).</p>{message}
<form method="post" action="/password">
<input type="hidden" name="name" value="{name}" autocomplete="username">
<label>Current password <input name="current" type="password" autocomplete="current-password" required autofocus></label>
<label>New password <input name="new" type="password" autocomplete="new-password" required></label>
<label>New password again <input name="again" type="password" autocomplete="new-password" required></label>
<button type="submit" id="change-password">Change password</button>
</form>
<form method="post" action="/logout/everywhere"><p>Or end every login of this account without changing the password: <button type="submit" id="logout-everywhere">Log out everywhere</button></p></form>"#,
        name = esc(&user.name)
    );
    page(status, "Change password", &body)
}

async fn password_page(user: Option<CurrentUser>) -> Response {
    match user {
        None => Redirect::to("/login?next=/password").into_response(),
        Some(u) => password_form_page(StatusCode::OK, &u, None),
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    current: String,
    new: String,
    again: Option<String>,
}

async fn password_form(
    State(auth): State<Auth>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    user: Option<CurrentUser>,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Response {
    if let Err(e) = auth.check_origin(&headers) {
        return e.into_response();
    }
    let Some(user) = user else {
        return Redirect::to("/login?next=/password").into_response();
    };
    let Ok(Form(form)) = form else {
        return password_form_page(StatusCode::BAD_REQUEST, &user, Some("Fill in every field."));
    };
    if form.again.as_deref().is_some_and(|a| a != form.new) {
        return password_form_page(
            StatusCode::BAD_REQUEST,
            &user,
            Some("The new passwords differ."),
        );
    }
    match auth
        .change_password(&user, &form.current, &form.new, addr)
        .await
    {
        Ok(cookie) => with_cookie(
            page(
                StatusCode::OK,
                "Password changed",
                r#"<h1 class="ok">Password changed</h1><p>Every other browser of this account was logged out. <a href="/">Back to your sessions</a></p>"#,
            ),
            &auth.set_cookie(&cookie),
        ),
        Err(AuthError::BadLogin) => password_form_page(
            StatusCode::UNAUTHORIZED,
            &user,
            Some("The current password is wrong."),
        ),
        Err(AuthError::BadRequest(why)) => {
            password_form_page(StatusCode::BAD_REQUEST, &user, Some(why))
        }
        Err(AuthError::RateLimited(retry)) => {
            let mut r = password_form_page(
                StatusCode::TOO_MANY_REQUESTS,
                &user,
                Some(&format!(
                    "Too many attempts; try again in {} seconds.",
                    retry.secs()
                )),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry.secs()));
            r
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct PasswordBody {
    current: String,
    new: String,
}

/// `POST /api/password` `{"current","new"}` → 204 with a new login cookie;
/// every other login of the account has ended.
async fn password_api(
    State(auth): State<Auth>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    user: CurrentUser,
    body: Result<Json<PasswordBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, AuthError> {
    if !headers.contains_key(CSRF_HEADER) {
        return Err(AuthError::BadOrigin);
    }
    auth.check_origin(&headers)?;
    let Json(body) = body
        .map_err(|_| AuthError::BadRequest("expected JSON {\"current\": \"…\", \"new\": \"…\"}"))?;
    let cookie = auth
        .change_password(&user, &body.current, &body.new, addr)
        .await?;
    Ok(with_cookie(
        StatusCode::NO_CONTENT.into_response(),
        &auth.set_cookie(&cookie),
    ))
}

async fn me(user: CurrentUser) -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "id": user.id, "name": user.name })),
    )
        .into_response()
}

fn with_cookie(mut resp: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// HTML-escapes text for element content and quoted attributes.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A small server-rendered page (no script; the CSP allows inline styles)
/// with "Password" and "Log out" controls.
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    render_page(status, title, body, true)
}

/// [`page`] for visitors who are not logged in (no "Log out").
pub(crate) fn page_anon(status: StatusCode, title: &str, body: &str) -> Response {
    render_page(status, title, body, false)
}

fn render_page(status: StatusCode, title: &str, body: &str, logout: bool) -> Response {
    let logout = if logout {
        r#"<a href="/password">Password</a><form method="post" action="/logout" style="display:inline"><button type="submit" class="link" id="logout">Log out</button></form>"#
    } else {
        ""
    };
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · tmux-bridge</title>
<style>
body{{font:15px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;background:#111;color:#ddd}}
a{{color:#8cf}} label{{display:block;margin:.5rem 0}} input{{display:block;font:inherit;padding:.3rem;width:100%;box-sizing:border-box}}
button{{font:inherit;padding:.3rem 1rem;margin-top:.5rem}} .error{{color:#f88}} .ok{{color:#8f8}}
table{{border-collapse:collapse;width:100%}} td,th{{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #333}}
nav a{{margin-right:1rem}} button.link{{background:none;border:0;color:#8cf;padding:0;margin:0;cursor:pointer;text-decoration:underline}}
</style></head>
<body><nav><a href="/">Sessions</a><a href="/pair">Pair a runner</a><a href="/runners">Runners</a>{logout}</nav>
{body}
</body></html>"#,
        title = esc(title)
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_local_only() {
        assert_eq!(safe_next(Some("/pair")), "/pair");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn escaping() {
        assert_eq!(
            esc(r#"<a href="x">'&"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
        assert_eq!(esc("a\u{1b}[31mb"), "a\u{fffd}[31mb");
    }
}
