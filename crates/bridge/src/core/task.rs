//! The thin async loop around [`Machine`]: it owns the channels (tmux
//! events in, command lines out; relay events in, frames and messages
//! out), the timer and both clocks, and does nothing else. Every decision
//! is the machine's.
//!
//! One flat `select!`: cancellation, tmux output (a burst: everything ready
//! is drained into the machine before [`Input::Drained`], so a flood becomes
//! big frames and a keystroke goes out at once), relay events, the hidden
//! terminal client's news, and a timer set to [`Machine::next_wakeup`].
//! Sends to the bounded channels are awaited here, never inside the
//! machine. The hidden client ([`crate::hidden`]) is started and stopped
//! here when the machine says so; a start is answered to the machine
//! before any other input, so it knows the client's pid before tmux can
//! list it.

use std::collections::VecDeque;
use std::path::PathBuf;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{CoreConfig, Effect, HiddenEvent, HiddenOp, Input, Machine, Now, RelayEvent, ToRelay};
use crate::daemon::server::Server;
use crate::hidden::HiddenClient;
use crate::tmux::TmuxOutput;
use crate::unacked::Unacked;

/// How the loop ended (it also ends with `Err(session::Rejected)` when the
/// relay refused the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// tmux's stdout closed; `reason` is what `%exit` said, if anything
    /// (the session was killed, the server exited, …).
    TmuxExited { reason: Option<String> },
    /// `cancel` fired: the runner stops.
    Cancelled,
    /// The relay side dropped its sender.
    RelayGone,
}

/// Runs one session's [`Machine`] until tmux exits or `cancel` fires.
pub struct Core {
    machine: Machine,
    tmux: mpsc::Sender<Bytes>,
    uplink: mpsc::Sender<ToRelay>,
    /// Where and to which session a hidden client attaches (`None`: never).
    hidden_target: Option<(Server, String)>,
    /// The hidden client, from its start until it exited.
    hidden: Option<HiddenClient>,
}

/// Both clocks, now.
fn now() -> Now {
    let wall_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Now {
        at: Instant::now().into_std(),
        wall_ms,
    }
}

impl Core {
    /// A core writing command lines to `tmux` and frames and messages to
    /// `uplink`; unacked frames spill into `spill_dir`; `own_pid` is the
    /// control client's process id.
    pub fn new(
        cfg: CoreConfig,
        tmux: mpsc::Sender<Bytes>,
        uplink: mpsc::Sender<ToRelay>,
        spill_dir: PathBuf,
        own_pid: Option<u32>,
    ) -> Self {
        let unacked = Unacked::new(cfg.unacked_memory_bytes, cfg.unacked_max_bytes, spill_dir);
        Core {
            machine: Machine::new(&cfg, unacked, own_pid, now().at),
            tmux,
            uplink,
            hidden_target: None,
            hidden: None,
        }
    }

    /// Lets the machine attach hidden terminal clients to `session` (its
    /// exact name) on `server` during floods.
    pub fn with_hidden_client(mut self, server: Server, session: String) -> Self {
        self.hidden_target = Some((server, session));
        self
    }

    /// The main loop.
    pub async fn run(
        mut self,
        mut tmux_out: mpsc::Receiver<TmuxOutput>,
        mut uplink_in: mpsc::UnboundedReceiver<RelayEvent>,
        cancel: CancellationToken,
    ) -> anyhow::Result<Ended> {
        self.handle(Input::Start).await;
        loop {
            let wakeup = self.machine.next_wakeup().map(Instant::from_std);
            tokio::select! {
                _ = cancel.cancelled() => {
                    self.handle(Input::Shutdown).await;
                    return Ok(Ended::Cancelled);
                }
                out = tmux_out.recv() => {
                    let Some(TmuxOutput::Events(events)) = out else {
                        return Ok(self.tmux_closed().await);
                    };
                    self.events(events).await;
                    // Drain whatever else is ready before flushing.
                    while !self.machine.batch_full() {
                        match tmux_out.try_recv() {
                            Ok(TmuxOutput::Events(events)) => self.events(events).await,
                            Ok(TmuxOutput::Closed) => return Ok(self.tmux_closed().await),
                            Err(_) => break,
                        }
                    }
                    self.handle(Input::Drained).await;
                }
                ev = uplink_in.recv() => {
                    let input = match ev {
                        None => return Ok(Ended::RelayGone),
                        Some(RelayEvent::Rejected { reason }) => {
                            return Err(crate::session::Rejected(reason).into());
                        }
                        Some(RelayEvent::Opened { generation, last_seq }) => {
                            Input::RelayOpened { generation, last_seq }
                        }
                        Some(RelayEvent::Lost { generation }) => Input::RelayLost { generation },
                        Some(RelayEvent::Message(msg)) => Input::Relay(msg),
                    };
                    self.handle(input).await;
                }
                ev = next_hidden(&mut self.hidden) => {
                    if ev == HiddenEvent::Exited {
                        self.hidden = None;
                    }
                    self.handle(Input::Hidden(ev)).await;
                }
                () = sleep_until(wakeup) => self.handle(Input::Tick).await,
            }
        }
    }

    /// One read's worth of tmux events, which all arrived at the same time.
    async fn events(&mut self, events: Vec<tmux_cc::Event>) {
        let at = now();
        for ev in events {
            self.handle_at(Input::Tmux(ev), at).await;
        }
    }

    async fn tmux_closed(&mut self) -> Ended {
        self.handle(Input::TmuxClosed).await;
        Ended::TmuxExited {
            reason: self.machine.exit_reason().map(str::to_owned),
        }
    }

    /// Gives the machine one input and carries out its effects. The loop
    /// ends after the inputs that stop the machine ([`Input::TmuxClosed`],
    /// [`Input::Shutdown`]); it ignores [`Effect::Stop`], which says the same.
    async fn handle(&mut self, input: Input) {
        self.handle_at(input, now()).await;
    }

    async fn handle_at(&mut self, input: Input, now: Now) {
        // Inputs that answer an effect at once (a hidden client's start).
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            for effect in self.machine.handle(input, now) {
                if let Some(answer) = self.effect(effect).await {
                    inputs.push_back(Input::Hidden(answer));
                }
            }
        }
    }

    /// Carries out one effect; a hidden client's start is answered.
    async fn effect(&mut self, effect: Effect) -> Option<HiddenEvent> {
        match effect {
            Effect::Tmux(line) => {
                if self
                    .tmux
                    .send(Bytes::copy_from_slice(line.as_bytes()))
                    .await
                    .is_err()
                {
                    debug!("tmux writer is gone");
                }
            }
            Effect::Relay(msg) => {
                if matches!(msg, ToRelay::Frame { .. }) {
                    tracing::trace!(target: "latency", stage = "runner_frame_queued");
                }
                if self.uplink.send(msg).await.is_err() {
                    debug!("uplink is gone");
                }
            }
            Effect::Hidden(HiddenOp::Start { cols, rows }) => {
                return Some(self.start_hidden(cols, rows).await);
            }
            Effect::Hidden(HiddenOp::Stop) => {
                if let Some(client) = &mut self.hidden {
                    client.stop();
                }
            }
            Effect::Stop => {}
        }
        None
    }

    /// Starts the hidden client; what to tell the machine.
    async fn start_hidden(&mut self, cols: u16, rows: u16) -> HiddenEvent {
        let Some((server, session)) = &self.hidden_target else {
            return HiddenEvent::Failed;
        };
        if self.hidden.is_some() {
            // The machine keeps one at a time; never start a second.
            return HiddenEvent::Failed;
        }
        match HiddenClient::spawn(server, session, cols, rows).await {
            Ok(client) => {
                let pid = client.pid();
                debug!(pid, cols, rows, "hidden client started");
                self.hidden = Some(client);
                HiddenEvent::Spawned { pid }
            }
            Err(err) => {
                warn!("no hidden client for this flood, tmux escapes it all for us: {err}");
                HiddenEvent::Failed
            }
        }
    }
}

/// The hidden client's next event, or never when there is none (a client
/// whose events ended has exited).
async fn next_hidden(hidden: &mut Option<HiddenClient>) -> HiddenEvent {
    match hidden {
        Some(client) => client.next().await.unwrap_or(HiddenEvent::Exited),
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
