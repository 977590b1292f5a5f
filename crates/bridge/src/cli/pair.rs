//! `tmux-bridge pair --relay URL [--relay URL2 ...] [--name NAME] [--yes]`:
//! pairs this machine with an account on a relay, without ever seeing a
//! password. Pairing goes through the first URL; the others are relays of
//! the same cluster, saved as the runner's failover URLs.
//!
//! Asks the relay for a code (`POST /api/pair/start`), prints it with the
//! page to approve it on, polls `GET /api/pair/check` at the interval the
//! relay asks for (slowing down when told to, riding out network errors
//! until the code expires), then shows which account approved it and asks
//! the local user to confirm before saving anything (`--yes` skips the
//! question). Declining revokes the new runner at once. The credentials go
//! to [`crate::config::Credentials`] (0600).
//!
//! HTTP goes through [`crate::net::RelayClient`] (https with the built-in
//! roots plus `--ca-file`; cleartext http only to loopback or with
//! `--insecure`); it never logs tokens. A `--ca-file` is saved with the
//! credentials, so later runs trust the same CA without the flag.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::config::Credentials;
use crate::net::{RelayClient, TlsOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The relay's URL, e.g. https://relay.example. Repeat it (or separate
    /// URLs with commas) for the other relays of a cluster: pairing goes
    /// through the first, the runner fails over to the others.
    #[arg(
        long,
        env = "TMUX_BRIDGE_RELAY",
        required = true,
        value_delimiter = ','
    )]
    pub relay: Vec<String>,
    /// A name for this runner, shown on the relay's page (default: host name).
    #[arg(long)]
    pub name: Option<String>,
    /// Save the credentials without asking which account approved.
    ///
    /// Risky: whoever approves the code first gets this machine's tmux
    /// sessions (they can read them and type into them), and the account
    /// that approved is then only printed, not confirmed. Someone who saw
    /// the code (over a shoulder, on a shared screen, in a log) can approve
    /// it from their own account before you do. Use only where nobody else
    /// can see the code, and check the printed account afterwards (a wrong
    /// one: revoke the runner on that relay's Runners page, or delete the
    /// saved credentials).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub tls: TlsOptions,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(pair(args))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Start {
    code: String,
    poll_token: String,
    approve_url: String,
    interval: u64,
    expires_in: u64,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum Check {
    Pending {
        interval: u64,
    },
    SlowDown {
        interval: u64,
    },
    #[serde(rename_all = "camelCase")]
    Approved {
        relay_url: String,
        runner_id: String,
        runner_token: String,
        account: String,
    },
    Consumed,
    Expired,
}

async fn pair(args: Args) -> anyhow::Result<ExitCode> {
    let (first, more) = args.relay.split_first().context("no relay URL (--relay)")?;
    let client = RelayClient::new(first, &args.tls)?;
    let base = client.base().to_owned();
    // The failover URLs get the token later: the same rules as the first.
    for url in more {
        crate::net::preflight(url, &args.tls).with_context(|| format!("the relay URL {url}"))?;
    }
    let host = host_name();
    let name = args.name.clone().unwrap_or_else(|| host.clone());
    let body = serde_json::json!({ "name": name, "host": host });
    let resp = client
        .post("/api/pair/start", None, Some(&body))
        .await
        .with_context(|| format!("contacting the relay at {base}"))?;
    match resp.status {
        200 => {}
        429 => bail!(
            "the relay refused: too many pairing attempts from this address; retry in {} seconds",
            resp.retry_after.unwrap_or(300)
        ),
        s => bail!("the relay answered {s} to the pairing request"),
    }
    let start: Start =
        serde_json::from_slice(&resp.body).context("reading the relay's pairing answer")?;
    println!("To pair this machine ({name}), open");
    println!();
    println!("    {}", start.approve_url);
    println!();
    println!("log in, and enter the code");
    println!();
    println!("    {}", start.code);
    println!();
    println!(
        "The code expires in {} minutes. Waiting for approval...",
        start.expires_in.div_ceil(60).max(1)
    );
    let _ = std::io::stdout().flush();

    let check_path = format!("/api/pair/check?code={}", start.code);
    let deadline = Instant::now() + Duration::from_secs(start.expires_in.max(1));
    let mut interval = Duration::from_secs(start.interval.clamp(1, 60));
    let mut failures = 0u32;
    let approved = loop {
        tokio::time::sleep(interval).await;
        if Instant::now() > deadline + Duration::from_secs(5) {
            bail!("the code expired before it was approved; run `tmux-bridge pair` again");
        }
        let resp = match client.get(&check_path, Some(&start.poll_token)).await {
            Ok(r) => r,
            // A certificate problem will not pass by waiting.
            Err(e) if is_tls_refusal(&e) => return Err(e.into()),
            Err(e) => {
                failures += 1;
                eprintln!("tmux-bridge: cannot reach the relay ({e:#}); still waiting");
                interval = (interval + Duration::from_secs(u64::from(failures.min(6))))
                    .min(Duration::from_secs(30));
                continue;
            }
        };
        failures = 0;
        if resp.status == 429 {
            // Too many polls from this address (several pairings behind one
            // NAT): wait as told, the code stays valid.
            let wait = resp.retry_after.unwrap_or(interval.as_secs()).clamp(1, 60);
            eprintln!("tmux-bridge: the relay asks to slow down; waiting {wait} s");
            interval = interval.max(Duration::from_secs(wait));
            continue;
        }
        if resp.status != 200 {
            if resp.status >= 500 {
                eprintln!(
                    "tmux-bridge: the relay answered {}; still waiting",
                    resp.status
                );
                continue;
            }
            bail!("the relay refused the pairing check ({})", resp.status);
        }
        match serde_json::from_slice::<Check>(&resp.body).context("reading the relay's answer")? {
            Check::Pending { interval: i } | Check::SlowDown { interval: i } => {
                interval = Duration::from_secs(i.clamp(1, 60))
            }
            Check::Approved {
                relay_url,
                runner_id,
                runner_token,
                account,
            } => {
                let failover_urls = super::run::failover_list(&relay_url, more);
                break Credentials {
                    relay_url,
                    failover_urls,
                    runner_id,
                    runner_token,
                    account: Some(account),
                    ca_file: args.tls.ca_file.clone(),
                };
            }
            Check::Consumed => {
                bail!("this pairing was collected already; run `tmux-bridge pair` again")
            }
            Check::Expired => {
                bail!("the code expired before it was approved; run `tmux-bridge pair` again")
            }
        }
    };
    let account = approved.account.clone().unwrap_or_default();
    println!();
    println!(
        "Approved by the account \"{account}\" on {}.",
        approved.relay_url
    );
    println!(
        "That account will see and type into this machine's tmux sessions served by tmux-bridge."
    );
    if !args.yes && !confirm(&format!("Pair this machine with \"{account}\"? [y/N] "))? {
        let revoked = client
            .post("/api/runner/revoke", Some(&approved.runner_token), None)
            .await;
        match revoked {
            Ok(r) if r.status == 204 => {
                println!("Not paired; the relay has forgotten this runner.")
            }
            _ => println!(
                "Not paired. The relay may still list this runner under \"{account}\"; nothing was saved here."
            ),
        }
        return Ok(ExitCode::FAILURE);
    }
    let path = approved.save().context("saving the credentials")?;
    println!(
        "Paired as runner {} with \"{account}\". Credentials saved to {}",
        approved.runner_id,
        path.display()
    );
    if !approved.failover_urls.is_empty() {
        println!(
            "Failover relays (same cluster): {}",
            approved.failover_urls.join(", ")
        );
    }
    println!("Run `tmux-bridge connect` to serve a session; later runs reuse these credentials.");
    Ok(ExitCode::SUCCESS)
}

/// Asks `question` on the terminal; only `y`/`yes` agrees. Without a
/// terminal on stdin, reads one line all the same (scripts pipe `y`), and
/// end of input declines.
fn confirm(question: &str) -> anyhow::Result<bool> {
    print!("{question}");
    std::io::stdout().flush().context("writing the question")?;
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        tracing::debug!("confirmation read from a non-terminal stdin");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the answer")?;
    let answer = line.trim().to_ascii_lowercase();
    Ok(answer == "y" || answer == "yes")
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Whether `err` is the relay's certificate being refused (which no
/// amount of waiting fixes).
fn is_tls_refusal(err: &crate::net::NetError) -> bool {
    use crate::net::NetError;
    matches!(
        err,
        NetError::Untrusted { .. }
            | NetError::NameMismatch { .. }
            | NetError::Certificate { .. }
            | NetError::Tls { .. }
    ) || err.is_definite()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_answers_deserialize() {
        let c: Check =
            serde_json::from_str(r#"{"status":"pending","interval":5}"#).expect("pending");
        assert!(matches!(c, Check::Pending { interval: 5 }));
        let c: Check = serde_json::from_str(
            r#"{"status":"approved","relayUrl":"http://x","runnerId":"r","runnerToken":"t","account":"a"}"#,
        )
        .expect("approved");
        assert!(matches!(c, Check::Approved { ref account, .. } if account == "a"));
        assert!(matches!(
            serde_json::from_str::<Check>(r#"{"status":"expired"}"#),
            Ok(Check::Expired)
        ));
    }
}
