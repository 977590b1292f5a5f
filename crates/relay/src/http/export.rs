//! `GET /api/sessions/{id}/asciicast?pane=%N&from=MS&to=MS` (issue 11): one
//! pane of a stored session as an asciicast v2 file (`asciinema play`
//! plays it; so does the page). Streamed page by page from the store, so a
//! long session never sits in memory; the conversion is `crate::export`.
//! Another user's session is answered like a missing one (404).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use protocol::wire::Frame;
use serde::Deserialize;
use store::{Store, TerminalSessionId};
use tmux_cc::PaneId;

use super::error::AppError;
use crate::auth::CurrentUser;
use crate::export::{CastRange, CastWriter};
use crate::state::AppState;

/// Frames read from the store per page of the response.
const FRAMES_PER_PAGE: u32 = 64;

#[derive(Deserialize)]
pub struct Params {
    pane: Option<String>,
    from: Option<u64>,
    to: Option<u64>,
}

struct Stream {
    store: Store,
    session: TerminalSessionId,
    after: u64,
    writer: CastWriter,
    /// The snapshot before the first stored frame, when older frames were
    /// pruned: played first.
    start: Option<Bytes>,
    finished: bool,
}

impl Stream {
    fn feed(&mut self, bytes: &[u8], out: &mut String) {
        match Frame::decode(bytes) {
            Ok(frame) => {
                for r in &frame.records {
                    for line in self.writer.record(r) {
                        out.push_str(&line);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(session = self.session, error = %e, "asciicast: a stored frame does not decode; skipped");
            }
        }
    }

    /// The next chunk of the file; `None` at the end.
    async fn next(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        if self.finished {
            return None;
        }
        let mut out = String::new();
        if let Some(snapshot) = self.start.take() {
            self.feed(&snapshot, &mut out);
        }
        let page = match self
            .store
            .frames_page(self.session, self.after, FRAMES_PER_PAGE)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                self.finished = true;
                return Some(Err(std::io::Error::other(e.to_string())));
            }
        };
        for f in &page {
            self.after = f.last_seq;
            self.feed(&f.bytes, &mut out);
        }
        if page.len() < FRAMES_PER_PAGE as usize || self.writer.done() {
            for line in self.writer.finish() {
                out.push_str(&line);
            }
            self.finished = true;
        }
        Some(Ok(Bytes::from(out)))
    }
}

pub async fn asciicast(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Query(p): Query<Params>,
) -> Result<Response, AppError> {
    let Ok(session) = id.parse::<TerminalSessionId>() else {
        return Err(AppError::NotFound);
    };
    let record = match st.store.session(session).await? {
        Some(r) if r.user_id == user.id => r,
        _ => return Err(AppError::NotFound),
    };
    let pane = match p.pane.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<PaneId>() {
            Ok(pane) => Some(pane),
            Err(_) => return Err(AppError::BadRequest("pane must look like %3".into())),
        },
    };
    if let (Some(from), Some(to)) = (p.from, p.to)
        && from > to
    {
        return Err(AppError::BadRequest("from is after to".into()));
    }
    // Older frames may be pruned: start from the snapshot right before the
    // first stored frame, which the pruner always keeps.
    let first = st.store.frames_page(session, 0, 1).await?;
    let start = match first.first() {
        Some(f) if f.first_seq > 1 => st
            .store
            .snapshot_at_or_after(session, f.first_seq - 1)
            .await?
            .filter(|s| s.at_seq == f.first_seq - 1)
            .map(|s| s.bytes),
        _ => None,
    };
    let stream = Stream {
        store: st.store.clone(),
        session,
        after: 0,
        writer: CastWriter::new(CastRange {
            pane,
            from: p.from,
            to: p.to,
        }),
        start,
        finished: false,
    };
    let body = futures_util::stream::unfold(stream, |mut s| async move {
        let chunk = s.next().await?;
        Some((chunk, s))
    });
    let name: String = format!("{}-{}.cast", record.idea, record.slot)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-asciicast".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
