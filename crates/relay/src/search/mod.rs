//! Full-text search over what terminals printed (issue 11), the relay's
//! half: [`lines`] turns a pane's output bytes into text lines (pure), the
//! [`indexer`] task feeds stored frames through it into the store's index
//! off the hot path (frames are stored and forwarded first; the index
//! trails by about a second), [`job_logs`] does the same for jobs' logs
//! (complete even in flood mode), and `http/search.rs` answers queries.
//! Storage and the query itself are `store::search`.

pub mod indexer;
pub mod job_logs;
pub mod lines;
