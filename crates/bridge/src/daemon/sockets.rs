//! The listening TCP sockets of a process tree, read from the system
//! (issue 12): on Linux `/proc/<pid>/stat` for the tree, `/proc/<pid>/fd`
//! for its socket inodes and `/proc/net/tcp{,6}` for the listeners; on
//! macOS `ps` and `lsof`. One look at the system serves every dev server
//! of a poll (the process list and the socket tables are read once).
//! Blocking: call it off the async threads. The parsing is
//! [`super::detect`].

use super::detect::{self, Listener};

/// What one look at the system found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// The sockets the tree under the root pid listens on.
    pub tree: Vec<Listener>,
    /// Every listening socket of this user (for ports a server printed
    /// that another of the user's processes serves: never a system
    /// service's, whatever a server prints).
    pub all: Vec<Listener>,
}

/// Scans the process trees under each of `roots` (one [`Scan`] each, in
/// order).
#[cfg(target_os = "linux")]
pub fn scan(roots: &[u32]) -> std::io::Result<Vec<Scan>> {
    use std::collections::HashSet;
    use std::fs;
    let mut parents = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may end between the listing and the read.
        if let Ok(stat) = fs::read_to_string(entry.path().join("stat"))
            && let Some(ppid) = detect::parent_of_stat(&stat)
        {
            parents.push((pid, ppid));
        }
    }
    let mut listeners = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        // No IPv6 on this machine: no tcp6 file.
        if let Ok(text) = fs::read_to_string(file) {
            listeners.extend(detect::parse_proc_net_tcp(&text, v6));
        }
    }
    let me = std::os::unix::fs::MetadataExt::uid(&fs::metadata("/proc/self")?);
    let all: Vec<Listener> = listeners
        .iter()
        .filter(|l| l.uid == Some(me))
        .copied()
        .collect();
    let scans = roots.iter().map(|&root| {
        let mut inodes = HashSet::new();
        for pid in detect::tree(root, parents.iter().copied()) {
            let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                if let Ok(link) = fs::read_link(fd.path())
                    && let Some(inode) = link.to_str().and_then(detect::socket_inode)
                {
                    inodes.insert(inode);
                }
            }
        }
        Scan {
            tree: detect::owned(&listeners, &inodes).copied().collect(),
            all: all.clone(),
        }
    });
    Ok(scans.collect())
}

/// Scans the process trees under each of `roots` (one [`Scan`] each, in
/// order).
#[cfg(target_os = "macos")]
pub fn scan(roots: &[u32]) -> std::io::Result<Vec<Scan>> {
    use std::collections::BTreeSet;
    use std::process::Command;
    let run = |cmd: &mut Command| -> std::io::Result<String> {
        let out = cmd.output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let ps = run(Command::new("ps").args(["-A", "-o", "pid=", "-o", "ppid="]))?;
    let parents = detect::parse_ps(&ps);
    let everyone: BTreeSet<u32> = parents.iter().map(|&(p, _)| p).collect();
    let lsof = run(Command::new("lsof").args(["-nP", "-iTCP", "-sTCP:LISTEN", "-F", "pn"]))?;
    let all = detect::parse_lsof(&lsof, &everyone);
    Ok(roots
        .iter()
        .map(|&root| Scan {
            tree: detect::parse_lsof(&lsof, &detect::tree(root, parents.iter().copied())),
            all: all.clone(),
        })
        .collect())
}

/// Scans process trees: not on this system.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub fn scan(_roots: &[u32]) -> std::io::Result<Vec<Scan>> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "port detection reads /proc (Linux) or lsof (macOS)",
    ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn finds_what_this_process_listens_on() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let me = std::process::id();
        // This process, and a pid that is no process (no sockets), in one look.
        let scans = scan(&[me, u32::MAX - 1]).expect("scan");
        let [s, none] = scans.as_slice() else {
            panic!("one scan per root: {scans:?}");
        };
        assert!(s.tree.iter().any(|x| x.port == port), "{s:?}");
        assert!(s.all.iter().any(|x| x.port == port));
        assert!(none.tree.is_empty());
        assert_eq!(none.all, s.all, "the machine's listeners are read once");
    }
}
