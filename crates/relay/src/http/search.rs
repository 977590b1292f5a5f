//! `GET /api/search?q=…&idea=…&limit=…` (issue 11): lines the account's
//! terminals printed that contain every word of `q`, newest first, with two
//! lines of context. The words are text, never query syntax
//! (`store::search`); an empty or oversized query is a 400 with a reason.

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use store::search::{MAX_HITS, SearchQuery};

use super::error::AppError;
use crate::auth::CurrentUser;
use crate::state::AppState;

/// Longest query, in bytes.
pub const MAX_QUERY: usize = 256;
/// Most words in a query.
pub const MAX_WORDS: usize = 16;

#[derive(Deserialize)]
pub struct Params {
    #[serde(default)]
    q: String,
    idea: Option<String>,
    limit: Option<u32>,
}

#[derive(Serialize)]
struct Hit {
    session_id: String,
    idea: String,
    slot: String,
    pane: String,
    seq: u64,
    at: i64,
    line: String,
    before: Vec<String>,
    after: Vec<String>,
}

/// The query's words, or why it is refused.
pub fn words(q: &str) -> Result<Vec<String>, &'static str> {
    if q.len() > MAX_QUERY {
        return Err("the query is too long (at most 256 bytes)");
    }
    let words: Vec<String> = q
        .split_whitespace()
        .map(|w| w.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return Err("the query is empty");
    }
    if words.len() > MAX_WORDS {
        return Err("the query has too many words (at most 16)");
    }
    Ok(words)
}

pub async fn search(
    State(st): State<AppState>,
    user: CurrentUser,
    Query(p): Query<Params>,
) -> Result<Response, AppError> {
    let words = match words(&p.q) {
        Ok(w) => w,
        Err(why) => return Err(AppError::BadRequest(why.into())),
    };
    if p.idea.as_ref().is_some_and(|i| i.len() > 128) {
        return Err(AppError::BadRequest("the idea is too long".into()));
    }
    let query = SearchQuery {
        words,
        idea: p.idea.filter(|i| !i.is_empty()),
        limit: p.limit.unwrap_or(20).clamp(1, MAX_HITS),
        context: 2,
    };
    let hits = st.store.search(&user.id, &query).await?;
    let results: Vec<Hit> = hits
        .into_iter()
        .map(|h| Hit {
            session_id: h.session.to_string(),
            idea: h.idea,
            slot: h.slot,
            pane: h.pane,
            seq: h.seq,
            at: h.at,
            line: h.line,
            before: h.before,
            after: h.after,
        })
        .collect();
    Ok(Json(serde_json::json!({ "results": results })).into_response())
}

#[cfg(test)]
mod tests {
    use super::words;

    #[test]
    fn queries_are_words_with_limits() {
        assert_eq!(
            words("  make   test "),
            Ok(vec!["make".into(), "test".into()])
        );
        assert!(words("   ").is_err());
        assert!(words("\u{1b}").is_err());
        assert!(words(&"x".repeat(300)).is_err());
        assert!(words(&"a ".repeat(17)).is_err());
    }
}
