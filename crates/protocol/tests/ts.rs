//! The page's TypeScript declarations of the browser's messages
//! (`web/src/gen/protocol.ts`) are generated from these Rust types by ts-rs,
//! so the two sides cannot drift: this test fails when the committed file
//! differs from what the types give. `UPDATE_EXPECT=1 cargo test -p protocol
//! --features ts --test ts` rewrites it. The page's type check (tsc) then
//! checks every use.

use protocol::control::{
    BrowserToRelay, RelayToBrowser, SessionInfo, SplitDirection, TmuxOp, Viewer,
};
use protocol::topology::{PaneInfo, Topology, WindowInfo};
use ts_rs::{Config, TS};

fn generated() -> String {
    let cfg = Config::default();
    let mut out = String::from(
        "// Generated from the Rust crate `protocol` by ts-rs (crates/protocol/tests/ts.rs);\n\
         // do not edit. Regenerate with\n\
         // `UPDATE_EXPECT=1 cargo test -p protocol --features ts --test ts`.\n",
    );
    let decls = [
        BrowserToRelay::decl(&cfg),
        TmuxOp::decl(&cfg),
        SplitDirection::decl(&cfg),
        RelayToBrowser::decl(&cfg),
        Viewer::decl(&cfg),
        SessionInfo::decl(&cfg),
        Topology::decl(&cfg),
        WindowInfo::decl(&cfg),
        PaneInfo::decl(&cfg),
    ];
    for d in decls {
        out.push('\n');
        out.push_str("export ");
        out.push_str(d.trim());
        if !d.trim_end().ends_with(';') {
            out.push(';');
        }
        out.push('\n');
    }
    out
}

#[test]
fn web_types_match_the_rust_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/src/gen/protocol.ts");
    let want = generated();
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(path, &want).expect("write web/src/gen/protocol.ts");
        return;
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "web/src/gen/protocol.ts is not what the Rust types give; run \
         `UPDATE_EXPECT=1 cargo test -p protocol --features ts --test ts`\n--- generated ---\n{want}"
    );
}
