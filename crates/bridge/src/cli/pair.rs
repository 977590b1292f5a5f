//! `tmux-bridge pair --relay URL [--name NAME] [--yes]`: pairs this machine
//! with an account on a relay, without ever seeing a password.
//!
//! Asks the relay for a code (`POST /api/pair/start`), prints it with the
//! page to approve it on, polls `GET /api/pair/check` at the interval the
//! relay asks for (slowing down when told to, riding out network errors
//! until the code expires), then shows which account approved it and asks
//! the local user to confirm before saving anything (`--yes` skips the
//! question). Declining revokes the new runner at once. The credentials go
//! to [`crate::config::Credentials`] (0600).
//!
//! The HTTP client is a small HTTP/1.1 one over `tokio::net::TcpStream`
//! (`http://` relays, like the uplink's `ws://`); it never logs tokens.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::Credentials;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The relay's URL, e.g. http://relay.example:8417
    #[arg(long, env = "TMUX_BRIDGE_RELAY")]
    pub relay: String,
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
    let base = args.relay.trim_end_matches('/').to_owned();
    let host = host_name();
    let name = args.name.clone().unwrap_or_else(|| host.clone());
    let body = serde_json::json!({ "name": name, "host": host }).to_string();
    let resp = request(
        "POST",
        &format!("{base}/api/pair/start"),
        None,
        Some(body.as_bytes()),
    )
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

    let check_url = format!("{base}/api/pair/check?code={}", start.code);
    let deadline = Instant::now() + Duration::from_secs(start.expires_in.max(1));
    let mut interval = Duration::from_secs(start.interval.clamp(1, 60));
    let mut failures = 0u32;
    let approved = loop {
        tokio::time::sleep(interval).await;
        if Instant::now() > deadline + Duration::from_secs(5) {
            bail!("the code expired before it was approved; run `tmux-bridge pair` again");
        }
        let resp = match request("GET", &check_url, Some(&start.poll_token), None).await {
            Ok(r) => r,
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
                break Credentials {
                    relay_url,
                    runner_id,
                    runner_token,
                    account: Some(account),
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
        let revoked = request(
            "POST",
            &format!("{base}/api/runner/revoke"),
            Some(&approved.runner_token),
            None,
        )
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

/// An HTTP response: status, `Retry-After` seconds, body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: Vec<u8>,
}

/// Largest response accepted.
const MAX_RESPONSE: usize = 1 << 20;

/// One HTTP/1.1 request to an `http://` URL with `Connection: close`.
pub async fn request(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<&[u8]>,
) -> anyhow::Result<Response> {
    let rest = match url.split_once("://") {
        Some(("http", rest)) => rest,
        Some(("https", _)) => bail!(
            "https relays are not supported by this build; use http:// (or a local TLS proxy)"
        ),
        _ => bail!("the relay URL must start with http://"),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains(['@', ' ']) || path.contains([' ', '\r', '\n']) {
        bail!("malformed relay URL");
    }
    let addr = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: tmux-bridge/{}\r\nAccept: application/json\r\nConnection: close\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(token) = bearer {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream
            .write_all(head.as_bytes())
            .await
            .context("sending the request")?;
        stream
            .write_all(body)
            .await
            .context("sending the request")?;
        let mut raw = Vec::new();
        let mut limited = (&mut stream).take(MAX_RESPONSE as u64 + 1);
        limited
            .read_to_end(&mut raw)
            .await
            .context("reading the response")?;
        if raw.len() > MAX_RESPONSE {
            bail!("response larger than {MAX_RESPONSE} bytes");
        }
        anyhow::Ok(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .context("the relay did not answer within 30 s")??;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> anyhow::Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("malformed HTTP response")?;
    let head = std::str::from_utf8(&raw[..split]).context("malformed HTTP response head")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("malformed HTTP status line")?;
    let mut retry_after = None;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "retry-after" => retry_after = v.parse().ok(),
            "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
            "content-length" => length = v.parse::<usize>().ok(),
            _ => {}
        }
    }
    let rest = &raw[split + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        match length {
            Some(n) if n <= rest.len() => rest[..n].to_vec(),
            Some(_) => bail!("truncated HTTP body"),
            None => rest.to_vec(),
        }
    };
    Ok(Response {
        status,
        retry_after,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("malformed chunk")?;
        let size_str = std::str::from_utf8(&data[..eol]).context("malformed chunk size")?;
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
            .context("malformed chunk size")?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_responses() {
        let r = parse_response(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 290\r\ncontent-length: 2\r\n\r\n{}",
        )
        .expect("parse");
        assert_eq!(
            (r.status, r.retry_after, r.body.as_slice()),
            (429, Some(290), &b"{}"[..])
        );
        let r = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").expect("parse");
        assert_eq!(r.body, b"abcde");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nabc").is_err());
        assert!(parse_response(b"garbage").is_err());
    }

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

    #[tokio::test]
    async fn refuses_non_http_urls() {
        assert!(request("GET", "https://x/", None, None).await.is_err());
        assert!(request("GET", "ftp://x/", None, None).await.is_err());
        assert!(request("GET", "http://a b/", None, None).await.is_err());
    }
}
