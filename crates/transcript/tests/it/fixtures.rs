//! Loading the recorded fixtures of `fixtures/tmux-cc/`.

use std::path::PathBuf;

pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tmux-cc")
}

/// One pane's state as tmux reported it at the end of a recording.
#[derive(Debug, serde::Deserialize)]
pub struct PaneEnd {
    pub width: u16,
    pub height: u16,
    pub cursor_x: u16,
    pub cursor_y: u16,
    pub text: Vec<String>,
    pub ansi: Vec<String>,
}

pub struct Fixture {
    pub name: String,
    /// `_meta.tmux_version`: what recorded it (`tmux 3.3a`).
    pub version: String,
    pub log: Vec<u8>,
    /// Pane id (`%N`) to its end state.
    pub panes: std::collections::BTreeMap<String, PaneEnd>,
}

/// Every fixture that has a `.panes.json`, sorted by name.
pub fn all() -> Vec<Fixture> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("fixtures/tmux-cc exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".panes.json"))
        .collect();
    entries.sort();
    for json in entries {
        let file = json
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = file.trim_end_matches(".panes.json").to_owned();
        let log = std::fs::read(dir().join(format!("{name}.log"))).expect("log beside panes.json");
        let value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json).expect("readable")).expect("valid JSON");
        let version = value["_meta"]["tmux_version"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let mut panes = std::collections::BTreeMap::new();
        for (k, v) in value.as_object().expect("object") {
            if k.starts_with('%') {
                panes.insert(
                    k.clone(),
                    serde_json::from_value(v.clone()).expect("pane shape"),
                );
            }
        }
        out.push(Fixture {
            name,
            version,
            log,
            panes,
        });
    }
    assert!(out.len() >= 10, "fixtures missing: found {}", out.len());
    out
}
