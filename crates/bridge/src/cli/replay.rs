//! `tmux-bridge replay [FILE|-] [--size WxH] [--format text|ansi]
//! [--tmux-version V]`: replays
//! a raw control-mode stream through `tmux_cc::Parser` and
//! `transcript::session::SessionModel` and prints every pane alive at the
//! end, in pane-number order:
//!
//! ```text
//! === %N WxH cursor=X,Y
//! <the visible rows, as `tmux capture-pane -p -N` prints them, trailing spaces removed>
//! ```
//!
//! `--format ansi` prints the rows as `capture-pane -p -e -N` does.
//! `--tmux-version` names the tmux that recorded the stream (`3.3a`, `3.5a`,
//! `3.7c`…; default: the newest this build knows), whose emulator the pane
//! models then follow (`transcript::emu::Profile`). Other tools depend on
//! this output exactly (issue 3).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// Plain text, as `capture-pane -p -N`.
    #[default]
    Text,
    /// With SGR escapes, as `capture-pane -p -e -N`.
    Ansi,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A raw control-mode stream; `-` or absent: standard input.
    pub file: Option<PathBuf>,
    /// Size of panes whose size the stream never states.
    #[arg(long, default_value = "80x24", value_parser = parse_size)]
    pub size: (u16, u16),
    /// Output format of the rows.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// The tmux version that recorded the stream (`#{version}`, e.g. 3.3a);
    /// default: the newest.
    #[arg(long)]
    pub tmux_version: Option<String>,
}

/// Parses `WxH` with both in 1..=1000.
fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected WxH, got {s:?}"))?;
    let w: u32 = w.parse().map_err(|_| format!("bad width in {s:?}"))?;
    let h: u32 = h.parse().map_err(|_| format!("bad height in {s:?}"))?;
    transcript::pane::check_size(w, h).map_err(|e| e.to_string())
}

/// Replays `input` and renders the panes alive at the end.
pub fn render(input: &[u8], size: (u16, u16), format: Format) -> String {
    render_with(input, size, format, transcript::emu::Profile::NEWEST)
}

/// [`render`] following the emulator of the tmux version `profile`.
pub fn render_with(
    input: &[u8],
    size: (u16, u16),
    format: Format,
    profile: transcript::emu::Profile,
) -> String {
    let model = transcript::replay::replay_with(input, size, profile);
    let format = match format {
        Format::Text => transcript::replay::RowFormat::Text,
        Format::Ansi => transcript::replay::RowFormat::Ansi,
    };
    transcript::replay::render(&model, format)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let input = super::read_input(args.file.as_deref())?;
    let profile = args.tmux_version.as_deref().map_or(
        transcript::emu::Profile::NEWEST,
        transcript::emu::Profile::parse,
    );
    let text = render_with(&input, args.size, args.format, profile);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .context("writing standard output")?;
    stdout.flush().context("writing standard output")?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_argument_is_checked() {
        assert_eq!(parse_size("80x24"), Ok((80, 24)));
        assert!(parse_size("0x24").is_err());
        assert!(parse_size("80x1001").is_err());
        assert!(parse_size("80").is_err());
    }

    #[test]
    fn prints_header_and_rows_for_unsized_pane() {
        let stream = b"%begin 1 2 0\n%end 1 2 0\n%window-add @0\n%session-changed $0 s\n%output %0 hi  \\015\\012there\n";
        assert_eq!(
            render(stream, (10, 3), Format::Text),
            "=== %0 10x3 cursor=5,1\nhi\nthere\n\n"
        );
    }

    #[test]
    fn tmux_version_picks_the_emulator() {
        // An invalid byte: dropped by 3.3a, U+FFFD from 3.7.
        let stream =
            b"%begin 1 2 0\n%end 1 2 0\n%window-add @0\n%session-changed $0 s\n%output %0 \\377x\n";
        let old = render_with(
            stream,
            (10, 1),
            Format::Text,
            transcript::emu::Profile::parse("3.3a"),
        );
        let new = render_with(
            stream,
            (10, 1),
            Format::Text,
            transcript::emu::Profile::parse("3.7c"),
        );
        assert_eq!(old, "=== %0 10x1 cursor=1,0\nx\n");
        assert_eq!(new, "=== %0 10x1 cursor=2,0\n\u{fffd}x\n");
    }
}
