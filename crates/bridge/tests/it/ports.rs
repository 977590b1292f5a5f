//! Dev server port detection on the runner (issue 12), against real tmux
//! and real servers: a dev server's job is started by the runner's `Jobs`
//! in a window of a private tmux server, and its polls report the ports
//! its process tree listens on (a `python3 -m http.server`), the ports of
//! local URLs it prints that another process serves, and a port that
//! closes. The relay's side (events, API) is tested with the dev servers'
//! API.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use anyhow::bail;
use bridge::daemon::jobs::Jobs;
use bridge::daemon::server::Server;
use protocol::runner::{DetectedPort, JobKind, JobPhase, JobReport, JobSpec, PortSource};

use super::e2e::{server, session_name};
use testkit::*;

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn spec(job: &str, command: String) -> JobSpec {
    JobSpec {
        job: job.into(),
        kind: JobKind::Devserver,
        agent: None,
        idea: "ports".into(),
        slot: "primary".into(),
        name: "dev".into(),
        command,
        cwd: None,
        env: Default::default(),
    }
}

/// Polls until `job`'s ports satisfy `want`; returns the report and when.
async fn poll_until(
    jobs: &mut Jobs,
    srv: &Server,
    job: &str,
    want: impl Fn(&[DetectedPort]) -> bool,
) -> Result<(JobReport, Duration)> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        for r in jobs.poll(srv).await {
            if r.job == job && want(&r.ports) {
                return Ok((r, t.elapsed()));
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("{job}: ports never as wanted; now {:?}", jobs.known(job))
}

#[tokio::test]
async fn a_dev_servers_ports_are_detected_and_closed() -> Result<()> {
    let tmux = Tmux::new("ports");
    let name = session_name("ports", "primary")?;
    tmux.new_session(&name, 80, 24)?;
    let srv = Server::new(server(&tmux));
    let dir = tempfile::tempdir()?;
    let mut jobs = Jobs::new(dir.path());
    let target = format!("={name}:");

    // A server its own tree listens on.
    let port = free_port()?;
    let cmd = format!("exec python3 -m http.server {port} --bind 127.0.0.1");
    let started = jobs.start(&srv, &spec("dev1", cmd), &target, 1).await;
    let started = started.map_err(|e| anyhow::anyhow!("{}", e.message))?;
    assert!(started.ports.is_empty());
    let (r, took) = poll_until(&mut jobs, &srv, "dev1", |p| {
        p.iter().any(|p| p.port == port)
    })
    .await?;
    println!("port {port} detected {took:?} after the start (python's start included)");
    let p = r.ports.iter().find(|p| p.port == port).expect("port");
    assert_eq!(
        (p.addr.as_str(), p.source),
        ("127.0.0.1", PortSource::Socket)
    );
    assert_eq!(
        jobs.ports().dial_addr("dev1", port),
        Some(format!("127.0.0.1:{port}").parse()?)
    );
    assert_eq!(jobs.ports().dial_addr("dev1", port.wrapping_add(1)), None);

    // A URL printed for a port another process serves (the test's own
    // listener), and one for a port nothing serves.
    let other = TcpListener::bind("127.0.0.1:0")?;
    let served = other.local_addr()?.port();
    let unserved = free_port()?;
    let cmd = format!(
        "printf 'Local: \\033[36mhttp://localhost:\\033[1m{served}\\033[22m/\\033[39m\\n  also http://127.0.0.1:{unserved}/\\n'; exec sleep 600"
    );
    jobs.start(&srv, &spec("dev2", cmd), &target, 1)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let (r, _) = poll_until(&mut jobs, &srv, "dev2", |p| !p.is_empty()).await?;
    assert_eq!(r.ports.len(), 1, "{:?}", r.ports);
    assert_eq!(
        (r.ports[0].port, r.ports[0].source),
        (served, PortSource::Output)
    );
    // That listener closes: the next report has no ports.
    drop(other);
    let (r, _) = poll_until(&mut jobs, &srv, "dev2", <[DetectedPort]>::is_empty).await?;
    assert_eq!(r.phase, JobPhase::Running);
    assert_eq!(jobs.ports().dial_addr("dev2", served), None);

    // The python server ends: its job exits with no ports left.
    let pane = started.pane.expect("pane").to_string();
    tmux.run(&["send-keys", "-t", &pane, "C-c"])?;
    let t = Instant::now();
    loop {
        let ended = jobs
            .poll(&srv)
            .await
            .into_iter()
            .find(|r| r.job == "dev1" && r.phase == JobPhase::Exited);
        if let Some(r) = ended {
            assert!(r.ports.is_empty());
            break;
        }
        if t.elapsed() > Duration::from_secs(20) {
            bail!("dev1 never ended: {:?}", jobs.known("dev1"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(jobs.ports().dial_addr("dev1", port), None);
    Ok(())
}
