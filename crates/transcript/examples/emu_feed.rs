//! Feeds a file (or a saved regression) to a pane model and prints what
//! `capture-pane` would: `cargo run -p transcript --example emu_feed --
//! VERSION COLSxROWS FILE`. A debugging aid for the differential test.

use transcript::emu::Profile;
use transcript::pane::PaneModel;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(version), Some(size), Some(file)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: emu_feed VERSION COLSxROWS FILE");
        std::process::exit(2);
    };
    let (c, r) = size.split_once('x').unwrap_or(("80", "24"));
    let bytes = std::fs::read(file).unwrap_or_default();
    let mut m = PaneModel::with_profile(
        c.parse().unwrap_or(80),
        r.parse().unwrap_or(24),
        2000,
        Profile::parse(version),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for (i, chunk) in bytes.split_inclusive(|&b| b == 0x1b).enumerate() {
        m.feed(chunk);
        if std::env::var_os("EMU_STEP").is_some() {
            println!(
                "after chunk {i} {:?}: cursor {:?}",
                String::from_utf8_lossy(chunk),
                m.cursor()
            );
        }
    }
    println!("cursor {:?}", m.cursor());
    for (t, a) in m.rows_text().iter().zip(m.rows_ansi()) {
        println!("{t:?}    {a:?}");
    }
}
