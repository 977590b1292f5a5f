//! `GET /preview/{job}/{port}` on the app's origin: for the logged-in owner
//! of a running dev server with that port detected, mints a preview and
//! its single-use code and sends the browser to the preview's own origin
//! (`303 <preview origin>/__tb/enter?code=…`). Everything else is 404, like
//! a missing job (another account's job included). It proxies nothing:
//! `preview::proxy` does, on the preview listener.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::info;

use crate::auth::CurrentLogin;
use crate::auth::codes::{new_id, random_token};
use crate::auth::now_ms;
use crate::http::error::AppError;
use crate::jobs::lifecycle::RUNNING;
use crate::preview::grants::MintRequest;
use crate::preview::{ENTER_PATH, lock, proxy::port_detected};
use crate::state::AppState;

/// Whether a navigation may mint: from the app itself, or typed/bookmarked
/// (`Sec-Fetch-Site: same-origin` or `none`); browsers that send no such
/// header are let through (the cookie is `SameSite=Strict` anyway).
fn same_site_navigation(headers: &HeaderMap) -> bool {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        None => true,
        Some(v) => v == "same-origin" || v == "none",
    }
}

/// `GET /preview/{job}/{port}`.
pub async fn open(
    State(st): State<AppState>,
    login: CurrentLogin,
    headers: HeaderMap,
    Path((job_id, port)): Path<(String, String)>,
) -> Result<Response, AppError> {
    if !same_site_navigation(&headers) {
        return Err(AppError::Forbidden("a preview opens from the app only"));
    }
    let Some(template) = st.previews.template.as_ref() else {
        return Err(AppError::NotFound);
    };
    let Ok(port) = port.parse::<u16>() else {
        return Err(AppError::NotFound);
    };
    if !protocol::runner::job::valid_job_id(&job_id) {
        return Err(AppError::NotFound);
    }
    let Some(job) = st.store.job(&job_id).await? else {
        return Err(AppError::NotFound);
    };
    if job.user_id != login.user.id
        || job.kind != "devserver"
        || job.state != RUNNING
        || !port_detected(&job.ports, port)
    {
        return Err(AppError::NotFound);
    }
    let id = new_id();
    let code = random_token(32);
    lock(&st.previews.grants).mint(
        &MintRequest {
            user_id: &login.user.id,
            login_id: &login.login_id,
            job: &job.id,
            port,
        },
        &id,
        &code,
        now_ms(),
    );
    info!(preview = %id, job = %job.id, port, "preview minted");
    let location = format!("{}{ENTER_PATH}?code={code}", template.origin(&id));
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(|e| AppError::Internal(e.to_string()))?,
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
