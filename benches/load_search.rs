//! `LOAD_ONLY=search`: the search index at scale (issue 11). Fills a fresh
//! store with generated terminal output (`SEARCH_MB`, default 1024 MB of
//! pane bytes, escape sequences included) as real Batch frames, zstd
//! compressed as the bridge sends them, spread over many sessions, panes
//! and ideas; indexes all of it with the relay's own indexer
//! (`relay::search::indexer::Indexer`, pass after pass as its task
//! runs them) and reports MB/s of terminal output indexed; then runs a set
//! of queries as `GET /api/search` builds them (`http::search::words`, 20
//! hits, two lines of context) and reports p50/p99 latency per kind.
//!
//! On SQLite (a file under `SEARCH_DIR`, default the system temp dir) and,
//! when `SEARCH_PG` names a PostgreSQL server (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`), on a private database
//! created for the run and dropped afterwards. Knobs: `SEARCH_DB`
//! (`sqlite`, `postgres`, or both: the default), `SEARCH_SESSIONS`
//! (default 240), `SEARCH_QUERY_RUNS` (per kind, default 60),
//! `SEARCH_PAUSE_MS` (the indexer's pause between two write transactions:
//! default 0, the work alone; the relay runs with 20).
//!
//! The frames go into the store in bulk (many per transaction, as no
//! relay would) because the load is setup, not what is measured; they are
//! the same bytes a relay stores, and the indexer decodes every one.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use protocol::wire::{Frame, Record, RecordBody};
use relay::search::indexer::Indexer;
use sqlx::Connection;
use store::search::SearchQuery;
use store::{Db, Store, StoreOptions, TerminalSessionId};

type Result<T> = anyhow::Result<T>;

const MB: f64 = 1e6;
/// Frames inserted per transaction during the load.
const FRAMES_PER_LOAD_TRANSACTION: usize = 500;
/// Vocabulary size; word `r` is drawn with weight 1/(r+1) (Zipf).
const VOCABULARY: usize = 30_000;
/// Words planted about once per this many lines each, for rare queries.
const RARE_EVERY_LINES: u64 = 2_000_000;
const RARE_WORDS: usize = 8;
const USER: &str = "bench";
const OTHER_USER: &str = "other";

struct Config {
    bytes: u64,
    sessions: usize,
    query_runs: usize,
    pause: Duration,
    sqlite: bool,
    postgres: Option<String>,
    dir: std::path::PathBuf,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Config {
    fn from_env() -> Config {
        let dbs = std::env::var("SEARCH_DB").unwrap_or_default();
        let both = dbs.is_empty();
        Config {
            bytes: env_or("SEARCH_MB", 1024u64) * 1_000_000,
            sessions: env_or("SEARCH_SESSIONS", 240usize).max(1),
            query_runs: env_or("SEARCH_QUERY_RUNS", 60usize).max(1),
            pause: Duration::from_millis(env_or("SEARCH_PAUSE_MS", 0u64)),
            sqlite: both || dbs.contains("sqlite"),
            postgres: (both || dbs.contains("postgres"))
                .then(|| std::env::var("SEARCH_PG").ok())
                .flatten(),
            dir: std::env::var_os("SEARCH_DIR")
                .map(Into::into)
                .unwrap_or_else(std::env::temp_dir),
        }
    }
}

pub async fn run() -> Result<()> {
    let cfg = Config::from_env();
    println!(
        "search: {:.0} MB of terminal output, {} sessions, {} query runs per kind, \
         indexer pause {} ms; load average {}",
        cfg.bytes as f64 / MB,
        cfg.sessions,
        cfg.query_runs,
        cfg.pause.as_millis(),
        load_average()
    );
    if cfg.sqlite {
        let dir = tempfile::tempdir_in(&cfg.dir).context("temp dir for the SQLite file")?;
        let url = format!("sqlite://{}", dir.path().join("search.db").display());
        let store = Store::connect_with(&url, &StoreOptions::default())
            .await
            .context("open the SQLite store")?;
        let r = case(&cfg, &store).await;
        store.close().await;
        println!("SQLite file: {:.0} MB", dir_size(dir.path()) as f64 / MB);
        r?;
    }
    if let Some(admin) = &cfg.postgres {
        let name = format!("sbench_{}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .context("connect SEARCH_PG")?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .context("create the bench database")?;
        let base = admin.split('?').next().unwrap_or(admin);
        let slash = base.rfind('/').context("SEARCH_PG needs a database path")?;
        let url = format!("{}/{name}", &base[..slash]);
        let r = async {
            let store = Store::connect_with(&url, &StoreOptions::default()).await?;
            let r = case(&cfg, &store).await;
            if r.is_ok() {
                let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(pg_pool(&store)?)
                    .await?;
                println!("PostgreSQL database: {:.0} MB", size as f64 / MB);
            }
            store.close().await;
            r
        }
        .await;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .context("drop the bench database")?;
        r?;
    }
    Ok(())
}

fn pg_pool(store: &Store) -> Result<&sqlx::PgPool> {
    match store.db() {
        Db::Postgres(pool) => Ok(pool),
        Db::Sqlite(_) => anyhow::bail!("not PostgreSQL"),
    }
}

async fn case(cfg: &Config, store: &Store) -> Result<()> {
    println!("\n## search on {}", store.dialect());
    let t = Instant::now();
    let mut corpus = Corpus::new();
    let loaded = load(cfg, store, &mut corpus).await?;
    println!(
        "loaded {:.0} MB of output in {} frames ({:.0} MB stored, zstd), {} lines, {} sessions: {:.1} s",
        loaded.output as f64 / MB,
        loaded.frames,
        loaded.stored as f64 / MB,
        corpus.lines,
        cfg.sessions,
        t.elapsed().as_secs_f64()
    );

    let mut indexer = Indexer::with_pause(cfg.pause);
    let t = Instant::now();
    let (mut frames, mut lines, mut bytes, mut passes) = (0usize, 0usize, 0usize, 0usize);
    let mut last_report = Instant::now();
    loop {
        let s = indexer.pass(store).await.context("indexer pass")?;
        if s.frames == 0 {
            break;
        }
        passes += 1;
        frames += s.frames;
        lines += s.lines;
        bytes += s.bytes;
        if last_report.elapsed() > Duration::from_secs(60) {
            last_report = Instant::now();
            println!(
                "  … {:.0} MB indexed, {:.2} MB/s",
                bytes as f64 / MB,
                bytes as f64 / MB / t.elapsed().as_secs_f64()
            );
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "indexed {:.0} MB of output ({frames} frames, {lines} lines) in {passes} passes, {secs:.1} s: \
         {:.2} MB/s, {:.0} lines/s; load average {}",
        bytes as f64 / MB,
        bytes as f64 / MB / secs,
        lines as f64 / secs,
        load_average()
    );
    if frames != loaded.frames {
        anyhow::bail!("indexed {frames} frames of {}", loaded.frames);
    }
    if let Db::Postgres(pool) = store.db() {
        // What autovacuum does after a bulk load, done now so the plans
        // do not depend on when it last ran.
        sqlx::query("ANALYZE").execute(pool).await?;
    }
    queries(cfg, store, &corpus).await
}

struct Loaded {
    output: u64,
    stored: u64,
    frames: usize,
}

/// Writes `cfg.bytes` of output as frames: round after round, one frame
/// per session, so sessions interleave in the tables as they do live.
async fn load(cfg: &Config, store: &Store, corpus: &mut Corpus) -> Result<Loaded> {
    let t0: u64 = 1_780_000_000_000;
    let mut sessions = Vec::with_capacity(cfg.sessions);
    for i in 0..cfg.sessions {
        // One session in ten is another account's: the query must skip it.
        let user = if i % 10 == 9 { OTHER_USER } else { USER };
        let idea = idea_name(i);
        let slot = format!("s{i}");
        let id = store
            .upsert_session(&format!("runner{}", i % 4), user, &idea, &slot, "tb")
            .await
            .context("create a session")?
            .id;
        // 1 to 4 panes per session.
        let panes: Vec<u32> = (0..1 + (i % 4) as u32).map(|k| i as u32 * 4 + k).collect();
        sessions.push((id, panes, 0u64));
    }
    let mut loaded = Loaded {
        output: 0,
        stored: 0,
        frames: 0,
    };
    let mut batch: Vec<(TerminalSessionId, u64, u64, Bytes)> = Vec::new();
    let mut time = t0;
    while loaded.output < cfg.bytes {
        for (id, panes, seq) in sessions.iter_mut() {
            // Frames of 256 B to 16 KiB of output: keystroke echoes to
            // bursts of a build.
            let target = 256 + corpus.below(16 * 1024) as usize;
            let mut records = Vec::new();
            let mut size = 0;
            while size < target {
                let pane = panes[corpus.below(panes.len() as u64) as usize];
                let n = 1 + corpus.below(24) as usize;
                let text = corpus.chunk(n);
                size += text.len();
                *seq += 1;
                time += 3;
                records.push(Record {
                    seq: *seq,
                    time,
                    body: RecordBody::Output {
                        pane: tmux_cc::PaneId(pane),
                        bytes: Bytes::from(text),
                    },
                });
            }
            let frame = Frame::batch(records).context("consecutive records")?;
            let bytes = frame.encode(true);
            loaded.output += size as u64;
            loaded.stored += bytes.len() as u64;
            loaded.frames += 1;
            batch.push((*id, frame.first_seq, frame.last_seq, bytes));
            if batch.len() >= FRAMES_PER_LOAD_TRANSACTION {
                insert_frames(store, &mut batch).await?;
            }
            if loaded.output >= cfg.bytes {
                break;
            }
        }
    }
    insert_frames(store, &mut batch).await?;
    for (id, _, seq) in &sessions {
        let seq = i64::try_from(*seq)?;
        on_pool(
            store,
            "UPDATE terminal_sessions SET last_seq = $1 WHERE id = $2",
            seq,
            *id,
        )
        .await?;
    }
    Ok(loaded)
}

fn idea_name(session: usize) -> String {
    format!("idea{}", session % 24)
}

async fn on_pool(store: &Store, sql: &str, a: i64, b: i64) -> Result<()> {
    match store.db() {
        Db::Sqlite(pool) => {
            sqlx::query(sql).bind(a).bind(b).execute(pool).await?;
        }
        Db::Postgres(pool) => {
            sqlx::query(sql).bind(a).bind(b).execute(pool).await?;
        }
    }
    Ok(())
}

const INSERT_FRAME: &str =
    "INSERT INTO frames (session_id, first_seq, last_seq, size, bytes) VALUES ($1, $2, $3, $4, $5)";

async fn insert_frames(
    store: &Store,
    batch: &mut Vec<(TerminalSessionId, u64, u64, Bytes)>,
) -> Result<()> {
    macro_rules! insert {
        ($pool:expr) => {{
            let mut tx = $pool.begin().await?;
            for (id, first, last, bytes) in batch.drain(..) {
                sqlx::query(INSERT_FRAME)
                    .bind(id)
                    .bind(i64::try_from(first)?)
                    .bind(i64::try_from(last)?)
                    .bind(i64::try_from(bytes.len())?)
                    .bind(&bytes[..])
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }};
    }
    match store.db() {
        Db::Sqlite(pool) => insert!(pool),
        Db::Postgres(pool) => insert!(pool),
    }
    Ok(())
}

/// One kind of query: the words of each run (cycled) and an idea filter.
struct Kind {
    label: &'static str,
    queries: Vec<String>,
    idea: Option<String>,
    /// How often the generator printed the words (per query, mean).
    printed: f64,
}

async fn queries(cfg: &Config, store: &Store, corpus: &Corpus) -> Result<()> {
    let vocab = |r: usize| corpus.vocab[r].clone();
    let count =
        |rs: &[usize]| rs.iter().map(|&r| corpus.counts[r] as f64).sum::<f64>() / rs.len() as f64;
    // Ranks of head words that no template prints as well, so the counts
    // are exact.
    let common = [2, 3, 4, 6, 7];
    let medium: Vec<usize> = (1000..1010).collect();
    let scarce: Vec<usize> = (VOCABULARY - 10..VOCABULARY).collect();
    let rare_counts = corpus.rare_counts.iter().map(|&c| c as f64).sum::<f64>() / RARE_WORDS as f64;
    let one_idea = Some(idea_name(3));
    let kinds = vec![
        Kind {
            label: "common word (`Compiling`)",
            queries: vec!["Compiling".into()],
            idea: None,
            printed: corpus.compiling as f64,
        },
        Kind {
            label: "common word (Zipf rank 3-8)",
            queries: common.iter().map(|&r| vocab(r)).collect(),
            idea: None,
            printed: count(&common),
        },
        Kind {
            label: "medium word (Zipf rank 1000)",
            queries: medium.iter().map(|&r| vocab(r)).collect(),
            idea: None,
            printed: count(&medium),
        },
        Kind {
            label: "scarce word (Zipf rank 30000)",
            queries: scarce.iter().map(|&r| vocab(r)).collect(),
            idea: None,
            printed: count(&scarce),
        },
        Kind {
            label: "rare word (planted)",
            queries: corpus.rare.clone(),
            idea: None,
            printed: rare_counts,
        },
        Kind {
            label: "absent word",
            queries: (0..8).map(|i| format!("nowhere{i}x")).collect(),
            idea: None,
            printed: 0.0,
        },
        Kind {
            label: "two words (common + medium)",
            queries: medium
                .iter()
                .map(|&r| format!("{} {}", vocab(3), vocab(r)))
                .collect(),
            idea: None,
            printed: f64::NAN,
        },
        Kind {
            label: "phrase (`src/<medium>.rs`)",
            queries: medium
                .iter()
                .map(|&r| format!("src/{}.rs", vocab(r)))
                .collect(),
            idea: None,
            printed: f64::NAN,
        },
        Kind {
            label: "common word, one idea",
            queries: vec!["Compiling".into()],
            idea: one_idea.clone(),
            printed: f64::NAN,
        },
        Kind {
            label: "medium word, one idea",
            queries: medium.iter().map(|&r| vocab(r)).collect(),
            idea: one_idea.clone(),
            printed: f64::NAN,
        },
        Kind {
            label: "rare word, one idea",
            queries: corpus.rare.clone(),
            idea: one_idea.clone(),
            printed: f64::NAN,
        },
    ];
    println!(
        "{:<36} {:>10} {:>8} {:>10} {:>10} {:>10}",
        "query (20 hits, 2 lines of context)", "printed", "hits", "p50 ms", "p99 ms", "max ms"
    );
    for kind in &kinds {
        let mut lat = Vec::with_capacity(cfg.query_runs);
        let mut hits = 0usize;
        // One untimed run per query first: the figures are for a warm
        // cache, as a relay that has been serving is.
        for q in &kind.queries {
            search(store, q, kind.idea.as_deref()).await?;
        }
        for i in 0..cfg.query_runs {
            let q = &kind.queries[i % kind.queries.len()];
            let t = Instant::now();
            hits += search(store, q, kind.idea.as_deref()).await?;
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let printed = if kind.printed.is_nan() {
            "-".to_string()
        } else {
            format!("{:.0}", kind.printed)
        };
        println!(
            "{:<36} {:>10} {:>8.1} {:>10.2} {:>10.2} {:>10.2}",
            kind.label,
            printed,
            hits as f64 / cfg.query_runs as f64,
            super::percentile(&lat, 0.50),
            super::percentile(&lat, 0.99),
            super::percentile(&lat, 1.0),
        );
    }
    println!("load average {}", load_average());
    Ok(())
}

/// One query as `GET /api/search?q=…&idea=…` runs it; returns the hits.
async fn search(store: &Store, q: &str, idea: Option<&str>) -> Result<usize> {
    let words = relay::http::search::words(q)
        .map_err(|why| anyhow::anyhow!("query {q:?} refused: {why}"))?;
    let query = SearchQuery {
        words,
        idea: idea.map(str::to_owned),
        limit: 20,
        context: 2,
    };
    Ok(store.search(USER, &query).await?.len())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Generated terminal output: shell prompts and commands, colored `ls`,
/// compiler and test output, log lines, progress bars redrawn with CR,
/// prose-like lines; words from a Zipf vocabulary (so queries have a
/// spread of hit counts) plus a few planted rare words. Deterministic.
struct Corpus {
    rng: u64,
    vocab: Vec<String>,
    /// Cumulative Zipf weights, scaled to u64.
    cumulative: Vec<f64>,
    counts: Vec<u64>,
    rare: Vec<String>,
    rare_counts: Vec<u64>,
    compiling: u64,
    lines: u64,
}

const HEAD_WORDS: &[&str] = &[
    "the", "error", "warning", "build", "file", "test", "value", "request", "server", "config",
    "update", "cache", "module", "client", "target", "debug", "version", "path", "index", "user",
];
const SYLLABLES: &[&str] = &[
    "ka", "to", "ri", "me", "lo", "su", "na", "ve", "pi", "do", "ga", "be", "zu", "fi", "ho", "ce",
    "ty", "wa", "qui", "ro", "ne", "sa", "li", "mo", "tu", "ke", "pa", "di", "xe", "jo", "bu",
    "ly",
];
const COMMANDS: &[&str] = &[
    "ls -la",
    "cat",
    "git status",
    "git log --oneline",
    "grep -rn",
    "vim",
    "make",
    "cargo test -p",
    "less",
    "tail -f",
];
const EXTS: &[&str] = &["rs", "toml", "json", "log", "py", "sh", "md", "c"];

impl Corpus {
    fn new() -> Corpus {
        let mut vocab: Vec<String> = HEAD_WORDS.iter().map(|w| w.to_string()).collect();
        let mut r = 0usize;
        while vocab.len() < VOCABULARY {
            // Two to four syllables, from the digits of r in base 32.
            let mut w = String::new();
            let mut n = r;
            loop {
                w.push_str(SYLLABLES[n % SYLLABLES.len()]);
                n /= SYLLABLES.len();
                if n == 0 {
                    break;
                }
            }
            if w.len() >= 4 {
                vocab.push(w);
            }
            r += 1;
        }
        let mut acc = 0.0;
        let cumulative = (0..VOCABULARY)
            .map(|r| {
                acc += 1.0 / (r as f64 + 1.0);
                acc
            })
            .collect();
        let rare = (0..RARE_WORDS).map(|i| format!("quokka{i}zebra")).collect();
        Corpus {
            rng: 0x9E37_79B9_7F4A_7C15,
            vocab,
            cumulative,
            counts: vec![0; VOCABULARY],
            rare,
            rare_counts: vec![0; RARE_WORDS],
            compiling: 0,
            lines: 0,
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn word(&mut self) -> String {
        let total = self.cumulative[VOCABULARY - 1];
        let x = (self.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let r = self
            .cumulative
            .partition_point(|&c| c < x)
            .min(VOCABULARY - 1);
        self.counts[r] += 1;
        self.vocab[r].clone()
    }

    /// `n` lines of output.
    fn chunk(&mut self, n: usize) -> Vec<u8> {
        let mut out = String::new();
        for _ in 0..n {
            self.line(&mut out);
            self.lines += 1;
            if self.below(RARE_EVERY_LINES / RARE_WORDS as u64) == 0 {
                let i = self.below(RARE_WORDS as u64) as usize;
                self.rare_counts[i] += 1;
                out.push_str(&format!("note: {} seen\r\n", self.rare[i]));
                self.lines += 1;
            }
        }
        out.into_bytes()
    }

    fn line(&mut self, out: &mut String) {
        use std::fmt::Write;
        let (a, b) = (self.word(), self.word());
        match self.below(16) {
            0..=2 => {
                self.compiling += 1;
                let _ = write!(
                    out,
                    "\x1b[1m\x1b[32m   Compiling\x1b[0m {a}-{b} v0.{}.{} (/home/dev/src/{a}/crates/{b})\r\n",
                    self.below(20),
                    self.below(10)
                );
            }
            3..=4 => {
                let c = self.word();
                let (color, status) = if self.below(30) == 0 {
                    ("31", "FAILED")
                } else {
                    ("32", "ok")
                };
                let _ = write!(
                    out,
                    "test {a}::tests::{b}_{c} ... \x1b[{color}m{status}\x1b[0m\r\n"
                );
            }
            5..=7 => {
                let words: Vec<String> = (0..2 + self.below(5)).map(|_| self.word()).collect();
                let level =
                    ["\x1b[32m INFO", "\x1b[33m WARN", "\x1b[34mDEBUG"][self.below(3) as usize];
                let _ = write!(
                    out,
                    "\x1b[2m2026-12-06T05:{:02}:{:02}.{:03}Z\x1b[0m {level}\x1b[0m \x1b[2m{a}::{b}\x1b[0m: {} id={:08x}\r\n",
                    self.below(60),
                    self.below(60),
                    self.below(1000),
                    words.join(" "),
                    self.next() as u32
                );
            }
            8 => {
                let cmd = COMMANDS[self.below(COMMANDS.len() as u64) as usize];
                let ext = EXTS[self.below(EXTS.len() as u64) as usize];
                // The prompt, then the command typed and echoed.
                let _ = write!(
                    out,
                    "\x1b]0;dev@box: ~/{a}\x07\x1b[01;32mdev@box\x1b[00m:\x1b[01;34m~/src/{a}\x1b[00m$ {cmd} src/{b}.{ext}\r\n"
                );
            }
            9..=10 => {
                let ext = EXTS[self.below(EXTS.len() as u64) as usize];
                let (color, name) = if self.below(3) == 0 {
                    ("01;34", a.clone())
                } else {
                    ("00", format!("{a}_{b}.{ext}"))
                };
                let _ = write!(
                    out,
                    "-rw-r--r-- 1 dev dev {:>8} Dec  6 05:{:02} \x1b[{color}m{name}\x1b[0m\r\n",
                    self.below(1 << 20),
                    self.below(60)
                );
            }
            11 => {
                let c = self.word();
                let _ = write!(
                    out,
                    "\x1b[1m\x1b[31merror[E0{:03}]\x1b[0m\x1b[1m: {a} {b} `{c}::{a}`\x1b[0m\r\n   \x1b[1m\x1b[34m-->\x1b[0m src/{b}.rs:{}:{}\r\n",
                    self.below(800),
                    self.below(2000),
                    self.below(100)
                );
            }
            12 => {
                // A progress bar redrawn in place.
                for pct in [12, 47, 100] {
                    let bar = "#".repeat(pct / 5);
                    let _ = write!(out, "\r\x1b[KDownloading {a} [{bar:<20}] {pct}%");
                }
                out.push_str("\r\n");
            }
            _ => {
                let words: Vec<String> = (0..4 + self.below(10)).map(|_| self.word()).collect();
                let _ = write!(out, "{a} {b} {}\r\n", words.join(" "));
            }
        }
    }
}
