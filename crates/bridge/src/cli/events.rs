//! `tmux-bridge events [FILE|-]`: prints the events of a raw control-mode
//! stream (as `tmux -C` or `-CC` writes it) as JSON lines, one object per
//! event, in the form of [`tmux_cc::json`].
//!
//! The input is read in chunks and every event is printed as soon as its
//! line is complete, so a large capture is never held in memory twice. A
//! zstd-compressed file (recognised by its magic number) is decompressed on
//! the fly. Malformed lines are printed as `"kind":"error"` events and do not
//! change the exit status.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use tmux_cc::Parser;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A raw control-mode stream as `tmux -C` or `-CC` writes it; `-` or absent: standard input.
    pub file: Option<PathBuf>,
}

const CHUNK: usize = 64 << 10;
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (input, name): (Box<dyn Read>, String) = match args.file.as_deref() {
        None => (Box::new(io::stdin().lock()), "standard input".into()),
        Some(p) if p == Path::new("-") => (Box::new(io::stdin().lock()), "standard input".into()),
        Some(p) => {
            let f = File::open(p).with_context(|| format!("opening {}", p.display()))?;
            (Box::new(f), p.display().to_string())
        }
    };
    let mut input = BufReader::with_capacity(CHUNK, input);
    let compressed = input
        .fill_buf()
        .with_context(|| format!("reading {name}"))?
        .starts_with(&ZSTD_MAGIC);
    let input: Box<dyn Read> = if compressed {
        Box::new(
            zstd::Decoder::with_buffer(input)
                .with_context(|| format!("reading zstd stream {name}"))?,
        )
    } else {
        Box::new(input)
    };
    let stdout = io::stdout().lock();
    match print_events(input, BufWriter::new(stdout), &name) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // `tmux-bridge events x | head` is not a failure.
        Err(e)
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e),
    }
}

/// Parses `input` to its end and writes one JSON line per event to `out`.
pub fn print_events(mut input: impl Read, mut out: impl Write, name: &str) -> anyhow::Result<()> {
    let mut parser = Parser::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {name}")),
        };
        parser.push(&buf[..n]);
        write_pending(&mut parser, &mut out)?;
    }
    parser.finish();
    write_pending(&mut parser, &mut out)?;
    out.flush()?;
    Ok(())
}

fn write_pending(parser: &mut Parser, out: &mut impl Write) -> io::Result<()> {
    for event in parser.by_ref() {
        tmux_cc::json::write_event_json(&mut *out, &event)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The command's output on each recorded fixture is the committed
    /// `<name>.expected.jsonl` (the contract other tools read), whatever
    /// the read size.
    #[test]
    fn fixtures_print_their_expected_events() -> anyhow::Result<()> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tmux-cc");
        for name in ["cc", "hooks", "flood-pause", "binary"] {
            let input = std::fs::read(dir.join(format!("{name}.log")))?;
            let expected = std::fs::read(dir.join(format!("{name}.expected.jsonl")))?;
            // A reader that returns 7 bytes at a time.
            let mut out = Vec::new();
            print_events(SmallReads(&input), &mut out, name)?;
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&expected),
                "{name}"
            );
        }
        Ok(())
    }

    struct SmallReads<'a>(&'a [u8]);

    impl Read for SmallReads<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(7);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
}
