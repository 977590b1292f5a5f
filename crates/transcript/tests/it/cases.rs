//! A generator of pane output for the differential test: byte streams made
//! of tokens (printable text, UTF-8 of every width class, invalid and
//! truncated UTF-8, C0 controls, ESC/CSI/OSC/DCS/APC sequences with random
//! parameters, wide characters at the margins, scroll regions), from a
//! seeded RNG so a failure is reproducible from its seed.
//!
//! Left out on purpose: OSC 8 hyperlinks (tmux 3.4+ prints them in
//! `capture-pane -e`; the model does not keep them) and sixel images
//! (`DCS q`; a tmux built with sixel support, as Debian's 3.7c is, moves
//! the cursor below the image).

use rand::Rng;
use rand::rngs::StdRng;

const TEXT: &[&str] = &[
    "a",
    "hello",
    "x y",
    "0123456789",
    "The quick brown fox",
    "$ ",
    "~",
    "{}[]",
    "  ",
];

/// Characters by width class.
const UTF8: &[&str] = &[
    // narrow
    "é",
    "ß",
    "Ω",
    "ж",
    "€",
    "→",
    "─",
    "│",
    "✓",
    "ŝ",
    // wide
    "日",
    "本",
    "語",
    "한",
    "글",
    "Ａ",
    "😀",
    "🎉",
    "🚀",
    "中文",
    // combining marks, zero width
    "e\u{301}",
    "a\u{300}\u{301}",
    "\u{301}",
    "\u{20dd}",
    "o\u{308}\u{304}\u{30c}\u{323}",
    "\u{200b}",
    "\u{200d}",
    "\u{fe0f}",
    "\u{200c}",
    "\u{2060}",
    // joined and modified emoji
    "👍\u{1f3fd}",
    "👨\u{200d}👩\u{200d}👧",
    "☺\u{fe0f}",
    "❤\u{fe0f}",
    "🇫🇷",
    "🇩🇪",
    "\u{1f1e6}",
    "\u{1f3fb}",
    "🏳\u{fe0f}\u{200d}🌈",
    "☝",
    "✌",
    "⛹",
    // Hangul jamo, filler, unassigned, C1, private use, ambiguous
    "\u{1100}\u{1161}\u{11a8}",
    "\u{1161}",
    "\u{11a8}",
    "\u{3164}",
    "\u{378}",
    "\u{85}",
    "\u{e000}",
    "\u{a1}",
    "\u{2e3b}",
    "\u{1f9ff}",
];

const BAD_UTF8: &[&[u8]] = &[
    b"\x80",
    b"\xbf",
    b"\xe6\x97",
    b"\xe6",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xfe",
    b"\xff",
    b"\xf0\x9f\x98",
    b"\xe6\xe6\x97\xa5",
    b"\xc3",
    b"\xc3(",
    b"\xe2\x82",
];

const C0: &[u8] = b"\x08\x09\x0a\x0d\x0b\x0c\x0e\x0f\x00\x07\x18\x1a\x09\x0a\x0d";

const ESC: &[&str] = &[
    "\x1b7",
    "\x1b8",
    "\x1bD",
    "\x1bE",
    "\x1bM",
    "\x1bH",
    "\x1b#8",
    "\x1b(0",
    "\x1b(B",
    "\x1b)0",
    "\x1b)B",
    "\x1b=",
    "\x1b>",
    "\x1bkwindow\x1b\\",
    "\x1bkname",
    "\x1b\\",
    "\x1bc",
    "\x1bZ",
    "\x1b ",
    "\x1b%G",
];

const CSI_FINALS: &[u8] = b"ABCDEFGHJKLMPSTXZ@bdfgrsu`";

const PRIVATE_MODES: &[u32] = &[1, 3, 6, 7, 12, 25, 47, 1000, 1002, 1006, 1047, 1049, 2004];

fn pick<'a, T>(rng: &mut StdRng, v: &'a [T]) -> &'a T {
    &v[rng.gen_range(0..v.len())]
}

fn param(rng: &mut StdRng, rows: u16, cols: u16) -> String {
    match rng.gen_range(0..10) {
        0 => String::new(),
        1 => "0".into(),
        2 => rows.to_string(),
        3 => cols.to_string(),
        4 => (cols + rng.gen_range(0..3)).to_string(),
        5 => rng.gen_range(100..100_000).to_string(),
        _ => rng.gen_range(1..12).to_string(),
    }
}

fn sgr(rng: &mut StdRng) -> String {
    let n = rng.gen_range(0..4);
    let mut parts = Vec::new();
    for _ in 0..n {
        parts.push(match rng.gen_range(0..14) {
            0 => "0".to_string(),
            1 => format!(
                "{}",
                pick(rng, &[1, 2, 3, 4, 5, 7, 8, 9, 21, 22, 23, 24, 25, 27, 53])
            ),
            2 => format!("3{}", rng.gen_range(0..10)),
            3 => format!("4{}", rng.gen_range(0..10)),
            4 => format!("9{}", rng.gen_range(0..8)),
            5 => format!("10{}", rng.gen_range(0..8)),
            6 => format!("38;5;{}", rng.gen_range(0..300)),
            7 => format!("48;5;{}", rng.gen_range(0..256)),
            8 => format!(
                "38;2;{};{};{}",
                rng.gen_range(0..256),
                rng.gen_range(0..256),
                rng.gen_range(0..256)
            ),
            9 => format!(
                "48:2::{}:{}:{}",
                rng.gen_range(0..256),
                rng.gen_range(0..256),
                7
            ),
            10 => format!("4:{}", rng.gen_range(0..6)),
            11 => format!("58;5;{}", rng.gen_range(0..256)),
            12 => "59".into(),
            _ => format!("{}", rng.gen_range(0..110)),
        });
    }
    format!("\x1b[{}m", parts.join(";"))
}

/// One token of output.
pub fn token(rng: &mut StdRng, cols: u16, rows: u16) -> Vec<u8> {
    match rng.gen_range(0..100) {
        0..=19 => pick(rng, TEXT).as_bytes().to_vec(),
        20..=34 => pick(rng, UTF8).as_bytes().to_vec(),
        35..=39 => pick(rng, BAD_UTF8).to_vec(),
        40..=49 => vec![*pick(rng, C0)],
        50..=54 => pick(rng, ESC).as_bytes().to_vec(),
        55..=69 => {
            let f = *pick(rng, CSI_FINALS) as char;
            let n = rng.gen_range(0..3);
            let ps: Vec<String> = (0..n).map(|_| param(rng, rows, cols)).collect();
            format!("\x1b[{}{f}", ps.join(";")).into_bytes()
        }
        70..=76 => sgr(rng).into_bytes(),
        77..=80 => {
            let m = pick(rng, PRIVATE_MODES);
            let hl = if rng.gen_bool(0.5) { 'h' } else { 'l' };
            format!("\x1b[?{m}{hl}").into_bytes()
        }
        81..=82 => {
            // A scroll region.
            let top = rng.gen_range(1..=rows);
            let bottom = rng.gen_range(1..=rows + 1);
            format!("\x1b[{top};{bottom}r").into_bytes()
        }
        83..=86 => {
            // A wide or joined character at a margin.
            let col = if rng.gen_bool(0.5) { cols } else { cols - 1 };
            let row = rng.gen_range(1..=rows);
            let c = pick(
                rng,
                &["日", "😀", "👨\u{200d}👩\u{200d}👧", "e\u{301}", "🇫🇷", "ab"],
            );
            format!("\x1b[{row};{col}H{c}").into_bytes()
        }
        87..=88 => {
            let end = pick(rng, &["\x07", "\x1b\\", "\x1bx", "\x18"]);
            format!(
                "\x1b]{};title {}{end}",
                pick(rng, &[0, 2, 1, 7, 133]),
                rng.gen_range(0..99)
            )
            .into_bytes()
        }
        89..=90 => {
            let body = pick(
                rng,
                &["1$r", "+q544e", "tmux;\x1b\x1b[31m", "x\x18y", "z\x1a"],
            );
            let end = pick(rng, &["\x1b\\", "\x1b\\", "\x07", "\x1bx\x1b\\"]);
            format!("\x1bP{body}{end}").into_bytes()
        }
        91 => format!("\x1b_apc {}\x1b\\", rng.gen_range(0..9)).into_bytes(),
        92 => b"\x1b[?25l\x1b[?25h".to_vec(),
        93 => format!("\x1b[{}b", rng.gen_range(0..5)).into_bytes(),
        94 => format!("\x1b[{} q", rng.gen_range(0..7)).into_bytes(),
        95 => b"\x1b[4h".to_vec(),
        96 => b"\x1b[4l".to_vec(),
        97 => format!("\x1b[{}g", pick(rng, &[0, 3])).into_bytes(),
        98 => {
            // Lines of text that scroll.
            let n = rng.gen_range(1..(rows * 2));
            (0..n)
                .flat_map(|i| format!("line {i}\r\n").into_bytes())
                .collect()
        }
        _ => {
            let n = rng.gen_range(1..(cols as usize * 2));
            (0..n).map(|i| b'a' + (i % 26) as u8).collect()
        }
    }
}

/// A case: its tokens (kept apart so a failure can be shrunk).
pub fn case(rng: &mut StdRng, cols: u16, rows: u16) -> Vec<Vec<u8>> {
    let n = rng.gen_range(1..40);
    (0..n).map(|_| token(rng, cols, rows)).collect()
}
