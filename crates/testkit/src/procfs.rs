//! What `/proc/<pid>/status` says of a process's memory (Linux).

/// A field of `/proc/<pid>/status` given in kB (`VmRSS`, `RssAnon`,
/// `RssFile`, `VmHWM`, …), of process `pid` (`"self"`: this process);
/// `None` when the process or the field is gone.
pub fn status_kb(pid: &str, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// [`status_kb`] in MB (NaN when missing), as the load tool prints it.
pub fn status_mb(pid: &str, field: &str) -> f64 {
    status_kb(pid, field).map_or(f64::NAN, |kb| kb as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let rss = status_kb("self", "VmRSS").expect("VmRSS");
        assert!(rss > 0);
        assert!(status_kb("self", "VmRS").is_none(), "a prefix is no field");
        assert!(status_kb("self", "NoSuchField").is_none());
        assert!(status_mb("self", "RssAnon") > 0.0);
    }
}
