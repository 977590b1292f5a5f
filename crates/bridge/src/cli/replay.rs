//! `tmux-bridge replay [FILE|-] [--size WxH] [--format text|ansi]`: replays
//! a raw control-mode stream through `tmux_cc::Parser` and
//! `transcript::session::SessionModel` and prints every pane alive at the
//! end, in pane-number order:
//!
//! ```text
//! === %N WxH cursor=X,Y
//! <the visible rows, as `tmux capture-pane -p -N` prints them, trailing spaces removed>
//! ```
//!
//! `--format ansi` prints the rows as `capture-pane -p -e -N` does. Other
//! tools depend on this output exactly (issue 3).

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
    let model = transcript::replay::replay(input, size);
    let format = match format {
        Format::Text => transcript::replay::RowFormat::Text,
        Format::Ansi => transcript::replay::RowFormat::Ansi,
    };
    transcript::replay::render(&model, format)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let input = super::read_input(args.file.as_deref())?;
    let text = render(&input, args.size, args.format);
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
}
