//! Reading what a dev server listens on (issue 12), without I/O: the
//! listening sockets in Linux's `/proc/net/tcp` and `tcp6`, a process's
//! parent in `/proc/<pid>/stat`, macOS's `lsof -F` and `ps` output, and
//! the local URLs a server prints (`http://localhost:5173/`, colours and
//! all). [`super::sockets`] reads the files and runs the programs;
//! [`super::jobs`] decides which ports a dev server has.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use protocol::runner::{DetectedPort, PortSource};

/// A listening TCP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Listener {
    pub addr: IpAddr,
    pub port: u16,
    /// The socket's inode (Linux), matched against `/proc/<pid>/fd`; 0 when
    /// unknown.
    pub inode: u64,
    /// The user owning the socket (Linux), when known.
    pub uid: Option<u32>,
}

impl Listener {
    /// Whether a connection to loopback reaches it (it listens on loopback
    /// or on every address).
    pub fn on_loopback(&self) -> bool {
        loopback_peer(self.addr).is_some()
    }
}

/// The loopback address that reaches a socket listening on `ip`, if one
/// does: `127.0.0.1` for `0.0.0.0`, `127.x` and their IPv4-mapped IPv6
/// forms, `::1` for `::` and `::1`; none for any other address. The one
/// rule for "reachable on loopback" (detection and the preview tunnels'
/// dialling both use it).
pub fn loopback_peer(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() || v4.is_loopback() => {
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        }
        IpAddr::V6(v6) if v6.is_unspecified() || v6.is_loopback() => {
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        }
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .filter(|v4| v4.is_loopback() || v4.is_unspecified())
            .map(|_| IpAddr::V4(Ipv4Addr::LOCALHOST)),
        IpAddr::V4(_) => None,
    }
}

/// `st` of a listening socket in `/proc/net/tcp*`.
const TCP_LISTEN: &str = "0A";

/// The listening sockets of a `/proc/net/tcp` (`v6` false) or
/// `/proc/net/tcp6` file. Addresses are the kernel's words in this
/// machine's byte order (the file is read on the machine that wrote it);
/// lines that do not parse are skipped.
pub fn parse_proc_net_tcp(text: &str, v6: bool) -> Vec<Listener> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, state, uid, inode) = (f.get(1)?, f.get(3)?, f.get(7)?, f.get(9)?);
            if *state != TCP_LISTEN {
                return None;
            }
            let (addr, port) = local.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let addr = if v6 { v6_addr(addr)? } else { v4_addr(addr)? };
            Some(Listener {
                addr,
                port,
                inode: inode.parse().ok()?,
                uid: uid.parse().ok(),
            })
        })
        .collect()
}

fn word(hex: &str) -> Option<[u8; 4]> {
    Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
}

fn v4_addr(hex: &str) -> Option<IpAddr> {
    (hex.len() == 8).then_some(())?;
    Some(IpAddr::V4(Ipv4Addr::from(word(hex)?)))
}

fn v6_addr(hex: &str) -> Option<IpAddr> {
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 16];
    for i in 0..4 {
        bytes[i * 4..i * 4 + 4].copy_from_slice(&word(hex.get(i * 8..i * 8 + 8)?)?);
    }
    Some(IpAddr::V6(Ipv6Addr::from(bytes)))
}

/// The parent pid in a `/proc/<pid>/stat` line (the field after the state,
/// which follows the command name in parentheses; the name may itself
/// hold spaces and parentheses).
pub fn parent_of_stat(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let _state = f.next()?;
    f.next()?.parse().ok()
}

/// `root` and its descendants, from (pid, parent) pairs.
pub fn tree(root: u32, parents: impl IntoIterator<Item = (u32, u32)>) -> BTreeSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, ppid) in parents {
        children.entry(ppid).or_default().push(pid);
    }
    let mut out = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        if out.insert(p)
            && let Some(kids) = children.get(&p)
        {
            todo.extend(kids);
        }
    }
    out
}

/// The inode of a `/proc/<pid>/fd/<n>` link target `socket:[12345]`.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// (pid, parent) pairs of `ps -A -o pid= -o ppid=`.
pub fn parse_ps(text: &str) -> Vec<(u32, u32)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect()
}

/// The listening sockets of the processes in `pids` from
/// `lsof -nP -iTCP -sTCP:LISTEN -F pn` (macOS): `p<pid>` lines, then
/// `n<addr>:<port>` lines for that process (`*:5173`, `127.0.0.1:8000`,
/// `[::1]:3000`). Without root, lsof lists this user's processes only.
pub fn parse_lsof(text: &str, pids: &BTreeSet<u32>) -> Vec<Listener> {
    let mut out = Vec::new();
    let mut mine = false;
    for line in text.lines() {
        if let Some(pid) = line.strip_prefix('p') {
            mine = pid.parse().is_ok_and(|p| pids.contains(&p));
        } else if let Some(name) = line.strip_prefix('n')
            && mine
            && let Some((host, port)) = name.rsplit_once(':')
            && let Ok(port) = port.parse()
        {
            let addr = match host {
                "*" => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                h => h.trim_matches(['[', ']']).parse().ok(),
            };
            if let Some(addr) = addr {
                out.push(Listener {
                    addr,
                    port,
                    inode: 0,
                    uid: None,
                });
            }
        }
    }
    out
}

/// Strips terminal escape sequences (CSI, OSC, DCS and two-byte ESC
/// sequences) and other control characters but newline, so a URL printed
/// in colours reads as one string.
fn plain(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == 0x1b {
            match bytes.get(i + 1) {
                Some(b'[') => {
                    i += 2;
                    while i < bytes.len() && !(0x40..=0x7e).contains(&bytes[i]) {
                        i += 1;
                    }
                    i += 1;
                }
                Some(b']' | b'P' | b'_' | b'^') => {
                    i += 2;
                    while i < bytes.len() && bytes[i] != 0x07 && bytes[i] != 0x1b {
                        i += 1;
                    }
                    // BEL, or ESC \ (the ESC is skipped; `\` next).
                    i += if bytes.get(i) == Some(&0x1b) { 2 } else { 1 };
                }
                _ => i += 2,
            }
            continue;
        }
        if b == b'\n' || b >= 0x20 {
            out.push(b);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Hosts of a printed URL that mean this machine.
const LOCAL_HOSTS: [&str; 6] = [
    "localhost",
    "127.0.0.1",
    "0.0.0.0",
    "[::1]",
    "[::]",
    "[0:0:0:0:0:0:0:1]",
];

/// The ports of local `http://` and `https://` URLs in `output` (what a
/// dev server prints: `http://localhost:5173/`, `http://127.0.0.1:8000`).
/// A URL counts only where a word starts (after a space, a quote, a
/// bracket or `,`): one inside a logged request path or query
/// (`"GET /?next=http://127.0.0.1:6379/ HTTP/1.1" 404`) is someone else's
/// text, not the server's address. URLs naming another host, or no port, are
/// ignored.
pub fn printed_ports(output: &[u8]) -> BTreeSet<u16> {
    let text = plain(output);
    let b = text.as_bytes();
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("://") {
        let head = &b[..at];
        let start = if head.ends_with(b"https") {
            at - 5
        } else if head.ends_with(b"http") {
            at - 4
        } else {
            continue;
        };
        let starts_word = start == 0
            || matches!(
                b[start - 1],
                b' ' | b'\t' | b'\n' | b'"' | b'\'' | b'(' | b'<' | b'[' | b','
            );
        if !starts_word {
            continue;
        }
        let rest = &b[at + 3..];
        let Some(host) = LOCAL_HOSTS.iter().find(|h| {
            rest.get(..h.len())
                .is_some_and(|r| r.eq_ignore_ascii_case(h.as_bytes()))
        }) else {
            continue;
        };
        let Some(after) = rest[host.len()..].strip_prefix(b":") else {
            continue;
        };
        let n = after.iter().take_while(|c| c.is_ascii_digit()).count();
        let ends_well = after.get(n).is_none_or(|c| !c.is_ascii_alphanumeric());
        let port = std::str::from_utf8(&after[..n])
            .ok()
            .and_then(|d| d.parse::<u16>().ok());
        if let Some(port) = port
            && port != 0
            && ends_well
        {
            out.insert(port);
        }
    }
    out
}

/// Ports remembered from one server's output, at most this many.
pub const MAX_PRINTED: usize = 32;
/// Bytes kept from the end of one read for a URL split across reads.
const URL_TAIL: usize = 256;
/// Only the start of a server's output is read for its URLs: that is where
/// servers print where they listen, and later output (request logs) holds
/// text from whoever sends requests.
pub const URL_WINDOW: u64 = 64 * 1024;

/// The local URLs a server printed so far, fed its output in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrintedUrls {
    /// How much output was read.
    pub offset: u64,
    tail: Vec<u8>,
    pub ports: BTreeSet<u16>,
}

impl PrintedUrls {
    /// How many more bytes of output to read (0: the window is read).
    pub fn wants(&self) -> usize {
        usize::try_from(URL_WINDOW.saturating_sub(self.offset)).unwrap_or(0)
    }

    /// Reads the next piece of output (from [`offset`](Self::offset));
    /// what lies beyond [`URL_WINDOW`] is ignored.
    pub fn feed(&mut self, bytes: &[u8]) {
        let bytes = &bytes[..bytes.len().min(self.wants())];
        if bytes.is_empty() {
            return;
        }
        self.offset += bytes.len() as u64;
        let mut text = std::mem::take(&mut self.tail);
        text.extend_from_slice(bytes);
        for port in printed_ports(&text) {
            if self.ports.len() >= MAX_PRINTED {
                break;
            }
            self.ports.insert(port);
        }
        let keep = text.len().saturating_sub(URL_TAIL);
        self.tail = text.split_off(keep);
    }
}

/// A dev server's ports: the loopback-reachable sockets its process tree
/// listens on, then the printed ports that something else on this machine
/// serves on loopback; one entry per port (IPv4 before IPv6, a socket of
/// the tree before a printed URL), sorted by port.
pub fn detected(tree: &[Listener], all: &[Listener], printed: &BTreeSet<u16>) -> Vec<DetectedPort> {
    let mut by_port: BTreeMap<u16, (PortSource, bool, IpAddr)> = BTreeMap::new();
    let mut offer = |l: &Listener, source: PortSource| {
        if !l.on_loopback() {
            return;
        }
        let key = (source, !l.addr.is_ipv4(), l.addr);
        by_port
            .entry(l.port)
            .and_modify(|best| {
                if key < *best {
                    *best = key;
                }
            })
            .or_insert(key);
    };
    for l in tree {
        offer(l, PortSource::Socket);
    }
    for l in all.iter().filter(|l| printed.contains(&l.port)) {
        offer(l, PortSource::Output);
    }
    by_port
        .into_iter()
        .map(|(port, (source, _, addr))| DetectedPort {
            port,
            addr: addr.to_string(),
            source,
        })
        .collect()
}

/// The sockets among `listeners` whose inode is in `inodes`.
pub fn owned<'a>(
    listeners: &'a [Listener],
    inodes: &'a HashSet<u64>,
) -> impl Iterator<Item = &'a Listener> + 'a {
    listeners.iter().filter(|l| inodes.contains(&l.inode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_listeners() {
        // Lines as this kernel writes them (little-endian words).
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5462 1 0 100 0 0 10 0\n\
   1: 00000000:1435 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 777 1 0 100 0 0 10 0\n\
   2: 0100007F:9C40 0100007F:18EB 01 00000000:00000000 00:00000000 00000000  1000        0 778 1 0 100 0 0 10 0\n\
   garbage\n";
        let l = parse_proc_net_tcp(v4, false);
        if cfg!(target_endian = "little") {
            assert_eq!(
                l,
                [
                    Listener {
                        addr: "127.0.0.1".parse().expect("ip"),
                        port: 6379,
                        inode: 5462,
                        uid: Some(0),
                    },
                    Listener {
                        addr: "0.0.0.0".parse().expect("ip"),
                        port: 5173,
                        inode: 777,
                        uid: Some(1000),
                    },
                ]
            );
            assert!(l.iter().all(Listener::on_loopback));
        }
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000000000000000000001000000:1F40 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 901 1 0 100 0 0 10 0\n\
   1: 0000000000000000FFFF00000100007F:1F41 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 902 1 0 100 0 0 10 0\n\
   2: 000080FE00000000FF005450B6AD1DFE:1F42 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 903 1 0 100 0 0 10 0\n";
        let l = parse_proc_net_tcp(v6, true);
        assert_eq!(l.len(), 3);
        if cfg!(target_endian = "little") {
            assert_eq!(l[0].addr, "::1".parse::<IpAddr>().expect("ip"));
            assert_eq!(l[0].port, 8000);
            assert_eq!(l[1].addr, "::ffff:127.0.0.1".parse::<IpAddr>().expect("ip"));
            assert!(l[0].on_loopback() && l[1].on_loopback());
            // A link-local address is not reachable on loopback.
            assert!(!l[2].on_loopback());
        }
    }

    #[test]
    fn process_trees_from_stat_and_ps() {
        assert_eq!(
            parent_of_stat("4242 (my (odd) name) S 4000 4242 4242 0 -1"),
            Some(4000)
        );
        assert_eq!(parent_of_stat("no parens"), None);
        let t = tree(10, [(11, 10), (12, 11), (13, 1), (14, 12), (10, 1)]);
        assert_eq!(t.into_iter().collect::<Vec<_>>(), [10, 11, 12, 14]);
        // A cycle (pid reuse races) ends.
        assert_eq!(tree(1, [(2, 1), (1, 2)]).len(), 2);
        assert_eq!(parse_ps("  10     1\n 11 10\nbad\n"), [(10, 1), (11, 10)]);
        assert_eq!(socket_inode("socket:[5462]"), Some(5462));
        assert_eq!(socket_inode("pipe:[5462]"), None);
    }

    #[test]
    fn lsof_listeners_of_the_tree_only() {
        let out = "p100\nf5\nn*:5173\nf6\nn127.0.0.1:8000\np200\nf3\nn[::1]:3000\np300\nn*:22\n";
        let pids: BTreeSet<u32> = [100, 200].into();
        let l = parse_lsof(out, &pids);
        let ports: Vec<u16> = l.iter().map(|l| l.port).collect();
        assert_eq!(ports, [5173, 8000, 3000]);
        assert!(l.iter().all(Listener::on_loopback));
    }

    #[test]
    fn ports_of_a_dev_server() {
        let l = |addr: &str, port, inode| Listener {
            addr: addr.parse().expect("ip"),
            port,
            inode,
            uid: None,
        };
        let tree = [
            l("::", 5173, 1),
            l("0.0.0.0", 5173, 2),
            l("192.168.1.4", 9229, 3),
        ];
        let all = [
            tree[0],
            tree[1],
            tree[2],
            l("::1", 8080, 4),
            l("127.0.0.1", 5432, 5),
        ];
        let printed: BTreeSet<u16> = [8080, 5173, 3000].into();
        let d = detected(&tree, &all, &printed);
        let view: Vec<(u16, &str, PortSource)> = d
            .iter()
            .map(|p| (p.port, p.addr.as_str(), p.source))
            .collect();
        assert_eq!(
            view,
            [
                (5173, "0.0.0.0", PortSource::Socket),
                (8080, "::1", PortSource::Output),
            ]
        );
    }

    #[test]
    fn urls_split_across_reads() {
        let mut p = PrintedUrls::default();
        p.feed(b"ready at http://local");
        p.feed(b"host:4321/\n");
        assert_eq!(p.ports, [4321].into());
        assert_eq!(p.offset, 32);
        for port in 1..100u16 {
            p.feed(format!("http://localhost:{port}/ ").as_bytes());
        }
        assert_eq!(p.ports.len(), MAX_PRINTED);
        // Beyond the window nothing is read.
        let mut late = PrintedUrls::default();
        late.feed(&vec![b'.'; usize::try_from(URL_WINDOW).expect("fits") - 3]);
        late.feed(b"\nhttp://localhost:7777/\n");
        assert!(late.ports.is_empty());
        assert_eq!(late.wants(), 0);
        assert_eq!(late.offset, URL_WINDOW);
    }

    #[test]
    fn printed_local_urls() {
        let vite = b"  \x1b[32m\xe2\x9e\x9c\x1b[39m  \x1b[1mLocal\x1b[22m:   \x1b[36mhttp://localhost:\x1b[1m5173\x1b[22m/\x1b[39m\r\n";
        assert_eq!(printed_ports(vite), [5173].into());
        let many = b"Serving HTTP on 0.0.0.0 port 8000 (http://0.0.0.0:8000/) ...\n\
            listening at http://127.0.0.1:3000, also https://[::1]:3443/x\n\
            docs: https://example.com:8080/ http://localhost/ http://localhost:99999 \
            http://localhost:80a ftp://localhost:21 http://LOCALHOST:4000\n\
            \x1b]8;;http://localhost:1111\x1b\\link\x1b]8;;\x1b\\\n";
        assert_eq!(printed_ports(many), [3000, 3443, 4000, 8000].into());
        assert!(printed_ports(b"").is_empty());
        assert!(printed_ports(b"http://localhost:").is_empty());
        // Someone else's text in a request log, not the server's address.
        let log = b"127.0.0.1 - - [06/Dec/2026 09:30:00] \"GET /http://127.0.0.1:6379/ HTTP/1.1\" 404 -\n\
            GET /?next=http://localhost:5432 200\n";
        assert!(printed_ports(log).is_empty());
        // Multi-byte text right after a scheme never splits a character.
        for odd in [
            "http://ab日本語",
            "https://é",
            "x http://\u{1F600}:80",
            "http://localhost:８０",
        ] {
            assert!(printed_ports(odd.as_bytes()).is_empty(), "{odd}");
        }
    }
}
