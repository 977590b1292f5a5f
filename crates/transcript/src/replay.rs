//! The rendering behind `tmux-bridge replay`: a raw control-mode stream in,
//! every pane alive at the end out, as `capture-pane` prints them.
//!
//! Kept here (pure, no I/O) so the fixture tests check exactly what the
//! command prints. Output contract, per pane in pane-number order:
//!
//! ```text
//! === %N WxH cursor=X,Y
//! <each visible row as `tmux capture-pane -p -N` (or `-p -e -N`) prints it,
//!  trailing spaces removed>
//! ```

use crate::emu::Profile;
use crate::session::{SessionConfig, SessionModel};

/// How rows are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RowFormat {
    /// `capture-pane -p -N`.
    #[default]
    Text,
    /// `capture-pane -p -e -N`.
    Ansi,
}

/// Replays `stream` (as `tmux -C`/`-CC` wrote it) into a session model
/// following the newest tmux. `size` is the size of panes whose size the
/// stream never states.
pub fn replay(stream: &[u8], size: (u16, u16)) -> SessionModel {
    replay_with(stream, size, Profile::NEWEST)
}

/// [`replay`] for the tmux version `profile` (what recorded the stream).
pub fn replay_with(stream: &[u8], size: (u16, u16), profile: Profile) -> SessionModel {
    let mut model = SessionModel::new(SessionConfig {
        default_size: size,
        profile,
        ..SessionConfig::default()
    });
    let mut parser = tmux_cc::Parser::new();
    parser.push(stream);
    parser.finish();
    while let Some(event) = parser.next_event() {
        model.apply(&event);
    }
    model
}

/// Renders every live pane of `model` in the replay format.
pub fn render(model: &SessionModel, format: RowFormat) -> String {
    let mut out = String::new();
    for (id, pane) in model.live_panes() {
        let (cols, rows) = pane.size();
        let (x, y) = pane.cursor();
        out.push_str(&format!("=== {id} {cols}x{rows} cursor={x},{y}\n"));
        let lines = match format {
            RowFormat::Text => pane.rows_text(),
            RowFormat::Ansi => pane.rows_ansi(),
        };
        for line in lines {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_header_and_rows_for_an_unsized_pane() {
        let stream = b"%begin 1 2 0\n%end 1 2 0\n%window-add @0\n%session-changed $0 s\n%output %0 hi  \\015\\012there\n";
        assert_eq!(
            render(&replay(stream, (10, 3)), RowFormat::Text),
            "=== %0 10x3 cursor=5,1\nhi\nthere\n\n"
        );
    }
}
