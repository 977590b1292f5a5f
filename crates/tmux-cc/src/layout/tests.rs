//! Layout parsing, printing and checksum cases.

use super::*;

/// Parses `s`, checks it prints back unchanged, and returns its panes as
/// `%id:WxH,X,Y` strings.
fn check(s: &str, checksum_ok: bool, expected: &[&str]) {
    let l: Layout = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(l.to_string(), s);
    assert_eq!(l.checksum_ok(), checksum_ok, "{s}");
    let panes: Vec<String> = l
        .panes()
        .iter()
        .map(|p| {
            format!(
                "{}:{}x{},{},{}{}",
                p.pane,
                p.width,
                p.height,
                p.x,
                p.y,
                if p.floating { "f" } else { "" }
            )
        })
        .collect();
    assert_eq!(panes, expected, "{s}");
}

fn bad(s: &str, offset: usize) {
    assert_eq!(
        s.parse::<Layout>().map_err(|e| e.offset),
        Err(offset),
        "{s}"
    );
}

#[test]
fn checksum_worked_example() {
    assert_eq!(Layout::compute_checksum(b"80x24,0,0,0"), 0xb25d);
    assert_eq!(
        Layout::compute_checksum(b"80x24,0,0{40x24,0,0,1,39x24,41,0,2}"),
        0x020a
    );
}

#[test]
fn layouts_from_tmux() {
    check("b25d,80x24,0,0,0", true, &["%0:80x24,0,0"]);
    check(
        "8205,80x24,0,0{40x24,0,0,0,39x24,41,0,1}",
        true,
        &["%0:40x24,0,0", "%1:39x24,41,0"],
    );
    check(
        "d67e,80x24,0,0{40x24,0,0,0,39x24,41,0[39x12,41,0,1,39x11,41,13,2]}",
        true,
        &["%0:40x24,0,0", "%1:39x12,41,0", "%2:39x11,41,13"],
    );
    check("b25e,80x24,0,0,1", true, &["%1:80x24,0,0"]);
    check(
        "020a,80x24,0,0{40x24,0,0,1,39x24,41,0,2}",
        true,
        &["%1:40x24,0,0", "%2:39x24,41,0"],
    );
}

#[test]
fn wrong_checksum_still_parses() {
    check(
        "b25d,80x24,0,0{40x24,0,0,1,39x24,41,0,2}",
        false,
        &["%1:40x24,0,0", "%2:39x24,41,0"],
    );
    let l: Result<Layout, _> = "b25d,80x24,0,0{40x24,0,0,1,39x24,41,0,2}".parse();
    assert_eq!(
        l.map(|l| l.with_checksum().to_string()).ok().as_deref(),
        Some("020a,80x24,0,0{40x24,0,0,1,39x24,41,0,2}")
    );
}

#[test]
fn floating_and_negative_offsets() {
    let body = "80x24,0,0,0<20x5,-3,-1,4,10x4,70,22,5>";
    let s = format!("{:04x},{body}", Layout::compute_checksum(body.as_bytes()));
    check(
        &s,
        true,
        &["%0:80x24,0,0", "%4:20x5,-3,-1f", "%5:10x4,70,22f"],
    );
    // An empty floating section is accepted (and not printed back).
    assert_eq!(
        "b25d,80x24,0,0,0<>"
            .parse::<Layout>()
            .map(|l| l.to_string())
            .as_deref(),
        Ok("b25d,80x24,0,0,0")
    );
}

#[test]
fn rejects_malformed() {
    bad("", 0);
    bad("b25d", 4);
    bad("zz5d,80x24,0,0,0", 0);
    bad("b25d,80x24,0,0", 14);
    bad("b25d,80x24,0,0,0 ", 16);
    bad("b25d,80x24,0,0{}", 15);
    bad("b25d,80x24,0,0{40x24,0,0,1", 26);
    bad("b25d,80x24,0,0,%1", 15);
}

#[test]
fn deep_nesting_is_refused_without_overflow() {
    let mut s = String::from("0000,");
    for _ in 0..10_000 {
        s.push_str("1x1,0,0{");
    }
    assert!(s.parse::<Layout>().is_err());
    // Nesting within the limit is fine.
    let depth = 50;
    let mut s = String::from("0000,");
    for _ in 0..depth {
        s.push_str("1x1,0,0{");
    }
    s.push_str("1x1,0,0,7");
    s.push_str(&"}".repeat(depth));
    assert_eq!(s.parse::<Layout>().map(|l| l.panes().len()), Ok(1));
}
