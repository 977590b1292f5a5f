//! The account's activity feed and live notices (protocol.md §5):
//! `GET /api/activity?before=ID&limit=N` pages the stored events newest
//! first; `GET /api/events` is a Server-Sent Events stream of the
//! account's notices (`sessions`, `runner`, `activity`), closed when the
//! login that opened it ends (at once on this relay, within one keepalive
//! period when the store says so) or the relay shuts down.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::error::AppError;
use crate::auth::{CurrentLogin, CurrentUser, LoginWatch};
use crate::notify::{Notice, event_json};
use crate::state::AppState;

/// Most events in one page.
pub const MAX_PAGE: u32 = 100;
/// Events in a page by default.
pub const DEFAULT_PAGE: u32 = 50;

#[derive(Debug, Deserialize)]
pub struct ActivityQuery {
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

/// `GET /api/activity`: `{"events": [Event…], "next_before": ID|null}`.
pub async fn activity(
    State(st): State<AppState>,
    user: CurrentUser,
    Query(q): Query<ActivityQuery>,
) -> Result<Response, AppError> {
    let before = match q.before.as_deref().filter(|b| !b.is_empty()) {
        None => None,
        Some(b) => match b.parse::<i64>() {
            Ok(v) => Some(v),
            Err(_) => {
                return Ok((
                    StatusCode::BAD_REQUEST,
                    Json(json!({ "error": "before must be an event id" })),
                )
                    .into_response());
            }
        },
    };
    let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let events = st.store.events_for_user(&user.id, before, limit).await?;
    let next_before = (events.len() == limit as usize)
        .then(|| events.last().map(|e| e.id.to_string()))
        .flatten();
    let events: Vec<_> = events.iter().map(event_json).collect();
    Ok((
        [("cache-control", "no-store")],
        Json(json!({ "events": events, "next_before": next_before })),
    )
        .into_response())
}

/// `GET /api/events`: the account's notices as Server-Sent Events.
pub async fn events(State(st): State<AppState>, login: CurrentLogin) -> Response {
    let watch = st.auth.watch_login(&login);
    let stream = notices(&st, login.user.id.clone(), login.login_id.clone(), watch);
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

struct Feed {
    st: AppState,
    rx: tokio::sync::broadcast::Receiver<(String, Notice)>,
    user_id: String,
    login_id: String,
    login: LoginWatch,
    /// Checks the login in the store (another relay process, or
    /// `tmux-relay user passwd`, may have ended it).
    ticks: tokio::time::Interval,
}

fn notices(
    st: &AppState,
    user_id: String,
    login_id: String,
    login: LoginWatch,
) -> impl Stream<Item = Result<Event, Infallible>> + use<> {
    let period = st.keepalive;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let feed = Feed {
        st: st.clone(),
        rx: st.notifier.subscribe(),
        user_id,
        login_id,
        login,
        ticks,
    };
    futures_util::stream::unfold(feed, |mut f| async move {
        loop {
            let got = tokio::select! {
                () = f.login.ended() => return None,
                () = f.st.shutdown.cancelled() => return None,
                _ = f.ticks.tick() => {
                    match f.st.auth.login_alive(&f.user_id, &f.login_id).await {
                        Ok(false) => return None,
                        Ok(true) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot check the login; keeping the event stream"),
                    }
                    continue;
                }
                got = f.rx.recv() => got,
            };
            let notice = match got {
                Ok((user, notice)) if user == f.user_id => notice,
                Ok(_) => continue,
                // Missed some: the page refetches the list.
                Err(RecvError::Lagged(_)) => Notice::Sessions,
                Err(RecvError::Closed) => return None,
            };
            let event = Event::default().event(notice.name()).data(notice.data());
            return Some((Ok(event), f));
        }
    })
}
