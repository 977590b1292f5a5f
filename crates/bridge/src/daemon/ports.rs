//! The ports running dev servers listen on, as this runner detected them
//! (issue 12), shared between the jobs (which fill it) and the preview
//! tunnels (which dial only what it holds).
//!
//! The table is the runner's half of "no SSRF through the runner": a tunnel
//! names a dev server and a port, and [`PortTable::dial_addr`] answers with
//! a loopback address only when that dev server's port was detected, never
//! any other host.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use protocol::runner::DetectedPort;

/// Detected ports by job id. Cloning gives a handle on the same table.
#[derive(Debug, Clone, Default)]
pub struct PortTable(Arc<Mutex<HashMap<String, Vec<DetectedPort>>>>);

impl PortTable {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Vec<DetectedPort>>) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Sets `job`'s ports (sorted, without repeats); returns whether they
    /// changed. An empty set removes the job.
    pub fn set(&self, job: &str, mut ports: Vec<DetectedPort>) -> bool {
        ports.sort();
        ports.dedup();
        self.with(|t| {
            if ports.is_empty() {
                return t.remove(job).is_some_and(|old| !old.is_empty());
            }
            match t.get(job) {
                Some(old) if *old == ports => false,
                _ => {
                    t.insert(job.to_owned(), ports);
                    true
                }
            }
        })
    }

    /// Forgets `job` (it ended).
    pub fn remove(&self, job: &str) {
        self.with(|t| t.remove(job));
    }

    /// The address to connect to for `port` of `job`: loopback in the
    /// family it listens on (`127.0.0.1` for `0.0.0.0` and `127.x`, `::1`
    /// for `::` and `::1`), or `None` when that port was not detected for
    /// that job or listens only on another address.
    pub fn dial_addr(&self, job: &str, port: u16) -> Option<SocketAddr> {
        self.with(|t| {
            let ports = t.get(job)?;
            let mut found = ports.iter().filter(|p| p.port == port);
            found.find_map(|p| loopback_for(&p.addr).map(|ip| SocketAddr::new(ip, port)))
        })
    }
}

/// The loopback address that reaches a socket listening on `addr` (as
/// reported: `0.0.0.0`, `[::1]`…), if one does.
fn loopback_for(addr: &str) -> Option<IpAddr> {
    let ip: IpAddr = addr.trim_matches(['[', ']']).parse().ok()?;
    super::detect::loopback_peer(ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::runner::PortSource;

    fn port(port: u16, addr: &str) -> DetectedPort {
        DetectedPort {
            port,
            addr: addr.into(),
            source: PortSource::Socket,
        }
    }

    #[test]
    fn only_detected_ports_of_the_job_are_dialled_on_loopback() {
        let t = PortTable::default();
        assert!(t.set("j1", vec![port(5173, "0.0.0.0"), port(8000, "::1")]));
        assert!(!t.set("j1", vec![port(8000, "::1"), port(5173, "0.0.0.0")]));
        assert!(t.set(
            "j2",
            vec![port(9000, "192.168.1.5"), port(9001, "::ffff:127.0.0.1")]
        ));
        assert_eq!(
            t.dial_addr("j1", 5173),
            Some("127.0.0.1:5173".parse().expect("addr"))
        );
        assert_eq!(
            t.dial_addr("j1", 8000),
            Some("[::1]:8000".parse().expect("addr"))
        );
        // Another job's port, an undetected port, an unknown job.
        assert_eq!(t.dial_addr("j2", 5173), None);
        assert_eq!(t.dial_addr("j1", 22), None);
        assert_eq!(t.dial_addr("nope", 5173), None);
        // Listening only on a LAN address: not reachable on loopback.
        assert_eq!(t.dial_addr("j2", 9000), None);
        assert_eq!(
            t.dial_addr("j2", 9001),
            Some("127.0.0.1:9001".parse().expect("addr"))
        );
        assert!(t.set("j1", Vec::new()));
        assert_eq!(t.dial_addr("j1", 5173), None);
        t.remove("j2");
        assert_eq!(t.dial_addr("j2", 9001), None);
    }
}
