//! The relay's Prometheus metrics (issue 15), with `prometheus-client`:
//! one [`Metrics`] per relay (no global recorder, so several relays in one
//! process, as in the tests, count apart), rendered in the OpenMetrics
//! text format by [`Metrics::render`] for `GET /metrics`
//! (`crate::http::ops`).
//!
//! Counters and the store histogram are updated where the events happen
//! (runner frames in `ws/runner/channels.rs`, browser frames in
//! `ws/browser.rs`, HTTP responses in a middleware); the gauges and the
//! rate-limit refusals are read from the live state at each scrape (the
//! hub, the connected runners, the limiters), so they cannot drift.
//!
//! No label carries an account, a user, a runner, a session or an
//! address: the only labels are a status class (5 values) and a limiter
//! name (a fixed list in `crate::auth`), so the series count is bounded
//! whatever the load, and a scrape leaks nothing of any account.

use std::sync::Arc;

use axum::http::StatusCode;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::auth::Auth;
use crate::hub::Hub;
use crate::jobs::Jobs;
use crate::runners::Runners;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The label set of `tmux_relay_http_responses`: the status class.
type ClassLabel = [(&'static str, &'static str); 1];

/// Every metric of one relay.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Frames received from runners (valid or not: counted on arrival).
    pub frames_in: Counter,
    /// Bytes of those frames (without the channel prefix).
    pub bytes_in: Counter,
    /// Frames sent to browsers (live, catch-up and snapshots).
    pub frames_out: Counter,
    /// Bytes of those frames.
    pub bytes_out: Counter,
    /// Seconds from a Batch's arrival to the commit of the transaction
    /// holding it (the group committer's queue, then the transaction).
    pub store_append: Histogram,
    /// Browsers whose queue overflowed and that were moved to a snapshot.
    pub snapshot_moves: Counter,
    /// Browsers that resumed from a fresh snapshot asked of the runner
    /// because their missed records outweighed one.
    pub resume_snapshots: Counter,
    http: Family<ClassLabel, Counter>,
}

impl Metrics {
    /// The relay's metrics; the gauges and refusals are read from `hub`,
    /// `runners` and `auth` at each scrape.
    pub fn new(hub: Arc<Hub>, runners: Arc<Runners>, auth: Auth, jobs: Arc<Jobs>) -> Metrics {
        let mut registry = Registry::with_prefix("tmux_relay");
        let frames_in = Counter::default();
        let bytes_in = Counter::default();
        let frames_out = Counter::default();
        let bytes_out = Counter::default();
        // 0.25 ms .. ~4 s: a local SQLite commit is well under a
        // millisecond, a busy PostgreSQL takes tens of them.
        let store_append = Histogram::new(exponential_buckets(0.000_25, 2.0, 15));
        let snapshot_moves = Counter::default();
        let resume_snapshots = Counter::default();
        let http = Family::<ClassLabel, Counter>::default();
        registry.register(
            "frames_in",
            "Frames received from runners",
            frames_in.clone(),
        );
        registry.register(
            "bytes_in",
            "Bytes of the frames received from runners",
            bytes_in.clone(),
        );
        registry.register("frames_out", "Frames sent to browsers", frames_out.clone());
        registry.register(
            "bytes_out",
            "Bytes of the frames sent to browsers",
            bytes_out.clone(),
        );
        registry.register(
            "store_append_seconds",
            "Time from a batch of records' arrival to the commit of the transaction holding it",
            store_append.clone(),
        );
        registry.register(
            "browser_snapshot_moves",
            "Browsers whose send queue overflowed and were moved to a snapshot",
            snapshot_moves.clone(),
        );
        registry.register(
            "browser_resume_snapshots",
            "Browsers resumed from a fresh snapshot instead of the records they missed",
            resume_snapshots.clone(),
        );
        registry.register(
            "http_responses",
            "HTTP responses by status class (1xx is a WebSocket upgrade)",
            http.clone(),
        );
        registry.register_collector(Box::new(Live {
            hub,
            runners,
            auth,
            jobs,
        }));
        Metrics {
            registry,
            frames_in,
            bytes_in,
            frames_out,
            bytes_out,
            store_append,
            snapshot_moves,
            resume_snapshots,
            http,
        }
    }

    /// Counts one HTTP response.
    pub fn http_response(&self, status: StatusCode) {
        let class = match status.as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.http.get_or_create(&[("class", class)]).inc();
    }

    /// Counts one frame received from a runner.
    pub fn frame_in(&self, bytes: usize) {
        self.frames_in.inc();
        self.bytes_in.inc_by(bytes as u64);
    }

    /// Counts one frame sent to a browser.
    pub fn frame_out(&self, bytes: usize) {
        self.frames_out.inc();
        self.bytes_out.inc_by(bytes as u64);
    }

    /// Every metric in the OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// The metrics read from the live state at each scrape.
#[derive(Debug)]
struct Live {
    hub: Arc<Hub>,
    runners: Arc<Runners>,
    auth: Auth,
    jobs: Arc<Jobs>,
}

/// Writes one gauge; `help` ends with a period, as the registry writes
/// the help of the metrics it holds.
fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: usize,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (sessions, browsers) = self.hub.counts();
        gauge(
            &mut encoder,
            "runners",
            "Runner daemons connected.",
            self.runners.online_count(),
        )?;
        gauge(
            &mut encoder,
            "sessions",
            "Terminal sessions served by a connected runner.",
            sessions,
        )?;
        gauge(
            &mut encoder,
            "browser_sockets",
            "Browser WebSockets open on a session.",
            browsers,
        )?;
        let mut family = encoder.encode_descriptor(
            "rate_limited",
            "Requests and sockets refused by a rate limit or a WebSocket cap, by limiter.",
            None,
            MetricType::Counter,
        )?;
        let jobs = [
            ("job_create", self.jobs.refusals()),
            ("log_ingest", self.jobs.ingest_refusals()),
            ("agent_change", self.jobs.agents.change_limit.refused()),
        ];
        for (name, refused) in self.auth.refusals().into_iter().chain(jobs) {
            ConstCounter::new(refused).encode(family.encode_family(&[("limiter", name)])?)?;
        }
        Ok(())
    }
}
