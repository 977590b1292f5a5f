//! `GET /api/search?q=…&idea=…&limit=…` (issue 11): lines the account's
//! terminals printed, its jobs' logs held and other tools sent, that
//! contain every word of `q`, newest first, with two lines of context. The
//! words are text, never query syntax (`store::search`); an empty or
//! oversized query is a 400 with a reason.

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

/// A line a terminal printed (`kind: "session"`).
#[derive(Serialize)]
struct Hit {
    kind: &'static str,
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

/// A line of a job's log (`kind: "job"`) or one another tool sent
/// (`kind: "log"`).
#[derive(Serialize)]
struct LogHit {
    kind: &'static str,
    idea: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    job_id: Option<String>,
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pane: Option<String>,
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
    let logs = st.store.search_logs(&user.id, &query).await?;
    // A job's line is found twice when its pane's stream was indexed too:
    // the job's hit (whose log is complete) stands for both.
    let from_jobs: std::collections::HashSet<(String, String, &str)> = logs
        .iter()
        .filter_map(|h| Some((h.session?.to_string(), h.pane.clone()?, h.line.as_str())))
        .collect();
    let mut results: Vec<(i64, serde_json::Value)> = Vec::new();
    for h in hits {
        let key = (h.session.to_string(), h.pane.clone(), h.line.as_str());
        if from_jobs.contains(&key) {
            continue;
        }
        let hit = Hit {
            kind: "session",
            session_id: h.session.to_string(),
            idea: h.idea,
            slot: h.slot,
            pane: h.pane,
            seq: h.seq,
            at: h.at,
            line: h.line,
            before: h.before,
            after: h.after,
        };
        results.push((hit.at, serde_json::to_value(&hit).unwrap_or_default()));
    }
    for h in logs {
        let hit = LogHit {
            kind: if h.job_id.is_some() { "job" } else { "log" },
            idea: h.idea,
            job_id: h.job_id,
            source: h.source,
            session_id: h.session.map(|s| s.to_string()),
            pane: h.pane,
            at: h.at,
            line: h.line,
            before: h.before,
            after: h.after,
        };
        results.push((hit.at, serde_json::to_value(&hit).unwrap_or_default()));
    }
    // Newest first across both; stable, so each source keeps its order.
    results.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    results.truncate(query.limit as usize);
    let results: Vec<serde_json::Value> = results.into_iter().map(|(_, v)| v).collect();
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
