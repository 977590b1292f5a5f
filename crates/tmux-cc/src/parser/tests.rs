//! Unit tests of the parser: one `check(input, expected)` helper, one line
//! per case. `expected` is the JSON form of the events (see `crate::json`).

use super::*;
use crate::json::event_to_json;

fn events(p: &mut Parser) -> Vec<Event> {
    p.by_ref().collect()
}

/// Parses `input` whole, then byte by byte, then in two halves at every
/// offset; all must give the same events, whose JSON must be `expected`.
fn check_with(limits: ParserLimits, input: &[u8], expected: &[&str]) {
    let mut p = Parser::with_limits(limits);
    p.push(input);
    p.finish();
    let whole = events(&mut p);
    let got: Vec<String> = whole.iter().map(event_to_json).collect();
    assert_eq!(got, expected, "input {:?}", String::from_utf8_lossy(input));

    let mut p = Parser::with_limits(limits);
    let mut bytewise = Vec::new();
    for b in input {
        p.push(std::slice::from_ref(b));
        bytewise.extend(events(&mut p));
    }
    p.finish();
    bytewise.extend(events(&mut p));
    assert_eq!(bytewise, whole, "byte-by-byte differs");

    for cut in 0..input.len() {
        let mut p = Parser::with_limits(limits);
        p.push(&input[..cut]);
        p.push(&input[cut..]);
        p.finish();
        assert_eq!(events(&mut p), whole, "split at {cut} differs");
        // Owned chunks, alone and after a copied one.
        let mut p = Parser::with_limits(limits);
        let owned = Bytes::copy_from_slice(input);
        p.push_bytes(owned.slice(..cut));
        p.push_bytes(owned.slice(cut..));
        p.finish();
        assert_eq!(events(&mut p), whole, "push_bytes split at {cut} differs");
        let mut p = Parser::with_limits(limits);
        p.push(&input[..cut]);
        p.push_bytes(owned.slice(cut..));
        p.finish();
        assert_eq!(
            events(&mut p),
            whole,
            "push + push_bytes split at {cut} differs"
        );
    }
}

fn check(input: &[u8], expected: &[&str]) {
    check_with(ParserLimits::default(), input, expected);
}

#[test]
fn output_plain_and_escaped() {
    check(
        b"%output %0 hi\n",
        &[r#"{"kind":"output","pane":"%0","data":"aGk="}"#],
    );
    check(
        b"%output %12 a\\015\\012b\\134\n",
        &[r#"{"kind":"output","pane":"%12","data":"YQ0KYlw="}"#],
    );
    check(
        b"%output %1 \xc3\xa9\\033[m\n",
        &[r#"{"kind":"output","pane":"%1","data":"w6kbW20="}"#],
    );
    check(
        b"%output %1 \n",
        &[r#"{"kind":"output","pane":"%1","data":""}"#],
    );
    check(
        b"%output %1\n",
        &[r#"{"kind":"output","pane":"%1","data":""}"#],
    );
}

#[test]
fn output_bad_escape_kept_literally() {
    // `\9`, `\01` at the end and `\400` are never written by tmux; the bytes stay.
    check(
        b"%output %0 a\\9b\\400\\01\n",
        &[r#"{"kind":"output","pane":"%0","data":"YVw5Ylw0MDBcMDE="}"#],
    );
}

#[test]
fn output_is_zero_copy_without_escapes() {
    let mut p = Parser::new();
    p.push(b"%output %0 hello\n%output %0 world\n%output %0 he\\154lo\n");
    let datas: Vec<Bytes> = p
        .by_ref()
        .filter_map(|e| match e {
            Event::Output { data, .. } => Some(data),
            _ => None,
        })
        .collect();
    assert_eq!(datas, [&b"hello"[..], b"world", b"hello"]);
    // Both unescaped payloads are slices of the one buffer the chunk was copied to.
    assert_eq!(
        datas[1].as_ptr() as usize - datas[0].as_ptr() as usize,
        "hello\n%output %0 ".len()
    );
}

#[test]
fn output_bad_pane() {
    check(
        b"%output 0 hi\n",
        &[r#"{"kind":"error","error":"malformed %output line","line":"%output 0 hi"}"#],
    );
    check(
        b"%output %x hi\n",
        &[r#"{"kind":"error","error":"malformed %output line","line":"%output %x hi"}"#],
    );
    check(
        b"%output %1x\n",
        &[r#"{"kind":"error","error":"malformed %output line","line":"%output %1x"}"#],
    );
}

#[test]
fn extended_output() {
    check(
        b"%extended-output %0 3 : y\\015\\012\n",
        &[r#"{"kind":"output","pane":"%0","data":"eQ0K","age":3}"#],
    );
    check(
        b"%extended-output %0 3 x yz : a : b\n",
        &[r#"{"kind":"output","pane":"%0","data":"YSA6IGI=","age":3}"#],
    );
    check(
        b"%extended-output %0 3 :\n",
        &[r#"{"kind":"output","pane":"%0","data":"","age":3}"#],
    );
    check(
        b"%extended-output %0 3 y\n",
        &[
            r#"{"kind":"error","error":"malformed %extended-output line","line":"%extended-output %0 3 y"}"#,
        ],
    );
}

#[test]
fn pause_continue() {
    check(
        b"%pause %3\n%continue %3\n",
        &[
            r#"{"kind":"pause","pane":"%3"}"#,
            r#"{"kind":"continue","pane":"%3"}"#,
        ],
    );
    check(
        b"%pause @3\n",
        &[r#"{"kind":"error","error":"malformed %pause line","line":"%pause @3"}"#],
    );
}

#[test]
fn layout_change() {
    check(
        b"%layout-change @0 b25d,80x24,0,0,0 b25d,80x24,0,0,0 *\n",
        &[
            r#"{"kind":"layout-change","window":"@0","layout":"b25d,80x24,0,0,0","visible_layout":"b25d,80x24,0,0,0","flags":"*"}"#,
        ],
    );
    check(
        b"%layout-change @1 b25d,80x24,0,0,0 b25d,80x24,0,0,0 \n",
        &[
            r#"{"kind":"layout-change","window":"@1","layout":"b25d,80x24,0,0,0","visible_layout":"b25d,80x24,0,0,0","flags":""}"#,
        ],
    );
    check(
        b"%layout-change @1 b25d,80x24,0,0,0\n",
        &[
            r#"{"kind":"layout-change","window":"@1","layout":"b25d,80x24,0,0,0","visible_layout":null,"flags":null}"#,
        ],
    );
    check(
        b"%layout-change @1\n",
        &[r#"{"kind":"error","error":"malformed %layout-change line","line":"%layout-change @1"}"#],
    );
}

#[test]
fn windows() {
    check(
        b"%window-add @1\n",
        &[r#"{"kind":"window-add","window":"@1"}"#],
    );
    check(
        b"%window-close @1\n",
        &[r#"{"kind":"window-close","window":"@1"}"#],
    );
    check(
        b"%unlinked-window-add @2\n",
        &[r#"{"kind":"unlinked-window-add","window":"@2"}"#],
    );
    check(
        b"%unlinked-window-close @2\n",
        &[r#"{"kind":"unlinked-window-close","window":"@2"}"#],
    );
    check(
        b"%window-renamed @2 my name\n",
        &[r#"{"kind":"window-renamed","window":"@2","name":"my name"}"#],
    );
    check(
        b"%unlinked-window-renamed @2 x\n",
        &[r#"{"kind":"unlinked-window-renamed","window":"@2","name":"x"}"#],
    );
    check(
        b"%window-add @1 x\n",
        &[r#"{"kind":"error","error":"malformed %window-add line","line":"%window-add @1 x"}"#],
    );
    check(
        b"%window-add\n",
        &[r#"{"kind":"error","error":"malformed %window-add line","line":"%window-add"}"#],
    );
    check(
        b"%window-pane-changed @1 %4\n",
        &[r#"{"kind":"window-pane-changed","window":"@1","pane":"%4"}"#],
    );
    check(
        b"%pane-mode-changed %4\n",
        &[r#"{"kind":"pane-mode-changed","pane":"%4"}"#],
    );
}

#[test]
fn sessions_and_clients() {
    check(
        b"%session-changed $0 main\n",
        &[r#"{"kind":"session-changed","session":"$0","name":"main"}"#],
    );
    check(
        b"%session-renamed $0 a b\n",
        &[r#"{"kind":"session-renamed","session":"$0","name":"a b"}"#],
    );
    check(
        b"%client-session-changed /dev/pts/3 $1 work\n",
        &[
            r#"{"kind":"client-session-changed","client":"/dev/pts/3","session":"$1","name":"work"}"#,
        ],
    );
    check(b"%sessions-changed\n", &[r#"{"kind":"sessions-changed"}"#]);
    check(
        b"%sessions-changed x\n",
        &[
            r#"{"kind":"error","error":"malformed %sessions-changed line","line":"%sessions-changed x"}"#,
        ],
    );
    check(
        b"%session-window-changed $1 @2\n",
        &[r#"{"kind":"session-window-changed","session":"$1","window":"@2"}"#],
    );
    check(
        b"%client-detached client-123\n",
        &[r#"{"kind":"client-detached","client":"client-123"}"#],
    );
}

#[test]
fn subscription_changed() {
    check(
        b"%subscription-changed dead $0 @1 0 %2 : %2 0 \n",
        &[
            r#"{"kind":"subscription-changed","name":"dead","session":"$0","window":"@1","window_index":0,"pane":"%2","value":"%2 0 "}"#,
        ],
    );
    check(
        b"%subscription-changed s $0 - - - : v\n",
        &[
            r#"{"kind":"subscription-changed","name":"s","session":"$0","window":null,"window_index":null,"pane":null,"value":"v"}"#,
        ],
    );
    check(
        b"%subscription-changed s $0 @x - - : v\n",
        &[
            r#"{"kind":"error","error":"malformed %subscription-changed line","line":"%subscription-changed s $0 @x - - : v"}"#,
        ],
    );
}

#[test]
fn exit_and_3_4_notifications() {
    check(b"%exit\n", &[r#"{"kind":"exit","reason":null}"#]);
    check(
        b"%exit too far behind\n",
        &[r#"{"kind":"exit","reason":"too far behind"}"#],
    );
    check(
        b"%config-error /x:1: bad\n",
        &[r#"{"kind":"config-error","text":"/x:1: bad"}"#],
    );
    check(
        b"%paste-buffer-changed buffer0\n",
        &[r#"{"kind":"paste-buffer-changed","name":"buffer0"}"#],
    );
    check(
        b"%paste-buffer-deleted buffer0\n",
        &[r#"{"kind":"paste-buffer-deleted","name":"buffer0"}"#],
    );
    check(
        b"%message hello\n",
        &[r#"{"kind":"message","text":"hello"}"#],
    );
}

#[test]
fn unknown_stray_unmatched() {
    check(
        b"%frobnicate 1 2\n",
        &[r#"{"kind":"unknown","line":"%frobnicate 1 2"}"#],
    );
    check(b"%\n", &[r#"{"kind":"unknown","line":"%"}"#]);
    check(b"pane-hook\n", &[r#"{"kind":"stray","line":"pane-hook"}"#]);
    check(b"\n", &[r#"{"kind":"stray","line":""}"#]);
    check(
        b"%end 1 2 1\n",
        &[
            r#"{"kind":"error","error":"%end or %error without an open %begin","line":"%end 1 2 1"}"#,
        ],
    );
    check(
        b"%error 1 2 1\n",
        &[
            r#"{"kind":"error","error":"%end or %error without an open %begin","line":"%error 1 2 1"}"#,
        ],
    );
    check(
        b"%begin 1 x 1\n",
        &[r#"{"kind":"error","error":"malformed %begin line","line":"%begin 1 x 1"}"#],
    );
}

#[test]
fn blocks() {
    check(
        b"%begin 1 2 0\n%end 1 2 0\n",
        &[r#"{"kind":"reply","time":1,"number":2,"flags":0,"success":true,"lines":[]}"#],
    );
    check(
        b"%begin 1 2 1\nparse error: unknown command: x\n%error 1 2 1\n",
        &[
            r#"{"kind":"reply","time":1,"number":2,"flags":1,"success":false,"lines":["parse error: unknown command: x"]}"#,
        ],
    );
    // Payload lines are raw: no unescaping, `%begin` and `%exit` are text.
    check(
        b"%begin 1 2 1\na\\033b\n%begin 3 4 1\n%exit\n\n%end 1 2 1\n",
        &[
            r#"{"kind":"reply","time":1,"number":2,"flags":1,"success":true,"lines":["a\\033b","%begin 3 4 1","%exit",""]}"#,
        ],
    );
}

#[test]
fn spoofed_end_inside_block() {
    check(
        b"%begin 1 5 1\n%end 1 2 1\n%end 1 5 0\n%error 1 5 1 \nmore\n%end 1 5 1\n%window-add @1\n",
        &[
            r#"{"kind":"reply","time":1,"number":5,"flags":1,"success":true,"lines":["%end 1 2 1","%end 1 5 0","%error 1 5 1 ","more"]}"#,
            r#"{"kind":"window-add","window":"@1"}"#,
        ],
    );
}

#[test]
fn flags_zero_blocks_interleaved() {
    check(
        b"%begin 9 10 1\n%end 9 10 1\n%begin 9 11 0\nhook-ran\n%end 9 11 0\n",
        &[
            r#"{"kind":"reply","time":9,"number":10,"flags":1,"success":true,"lines":[]}"#,
            r#"{"kind":"reply","time":9,"number":11,"flags":0,"success":true,"lines":["hook-ran"]}"#,
        ],
    );
}

#[test]
fn notifications_inside_block() {
    check(
        b"%begin 1 278 1\n%pause %0\n%end 1 278 1\n",
        &[
            r#"{"kind":"pause","pane":"%0"}"#,
            r#"{"kind":"reply","time":1,"number":278,"flags":1,"success":true,"lines":[]}"#,
        ],
    );
    check(
        b"%begin 1 2 1\n%continue %0\n%pause %1\n%message hi there\n%end 1 2 1\n",
        &[
            r#"{"kind":"continue","pane":"%0"}"#,
            r#"{"kind":"pause","pane":"%1"}"#,
            r#"{"kind":"message","text":"hi there"}"#,
            r#"{"kind":"reply","time":1,"number":2,"flags":1,"success":true,"lines":[]}"#,
        ],
    );
    // A capture whose text merely contains such a line keeps it as payload.
    check(
        b"%begin 1 2 1\nuser@host:~$ cat\n%pause %0\n%end 1 2 1\n",
        &[
            r#"{"kind":"reply","time":1,"number":2,"flags":1,"success":true,"lines":["user@host:~$ cat","%pause %0"]}"#,
        ],
    );
    check(
        b"%begin 1 2 1\n%pause %0 x\n%end 1 2 1\n",
        &[
            r#"{"kind":"reply","time":1,"number":2,"flags":1,"success":true,"lines":["%pause %0 x"]}"#,
        ],
    );
}

#[test]
fn unterminated_block() {
    check(
        b"%begin 1 2 1\nabc\n",
        &[r#"{"kind":"error","error":"stream ended inside a %begin block","line":"%begin 1 2 1"}"#],
    );
}

#[test]
fn final_line_without_newline() {
    check(
        b"%window-add @1\n%exit",
        &[
            r#"{"kind":"window-add","window":"@1"}"#,
            r#"{"kind":"exit","reason":null}"#,
        ],
    );
}

#[test]
fn control_control_mode_framing() {
    check(
        b"\x1bP1000p%begin 1 260 0\r\n%end 1 260 0\r\n%output %0 a\\015\\012\r\n%exit\r\n\x1b\\",
        &[
            r#"{"kind":"reply","time":1,"number":260,"flags":0,"success":true,"lines":[]}"#,
            r#"{"kind":"output","pane":"%0","data":"YQ0K"}"#,
            r#"{"kind":"exit","reason":null}"#,
        ],
    );
    // A `\r` is removed only right before `\n`.
    check(
        b"%output %0 a\rb\r\r\n",
        &[r#"{"kind":"output","pane":"%0","data":"YQ1iDQ=="}"#],
    );
    // `ESC \` is only special after `%exit`.
    check(b"\x1b\\x\n", &[r#"{"kind":"stray","line":"\u001b\\x"}"#]);
}

#[test]
fn huge_line_is_cut_and_skipped() {
    let limits = ParserLimits {
        max_line_bytes: 16,
        max_block_bytes: 1 << 20,
    };
    check_with(
        limits,
        b"%output %0 0123456789abcdef\n%window-add @1\n%output %0 0123\n",
        &[
            r#"{"kind":"error","error":"line longer than 16 bytes was cut","line":"%output %0 01234"}"#,
            r#"{"kind":"window-add","window":"@1"}"#,
            r#"{"kind":"output","pane":"%0","data":"MDEyMw=="}"#,
        ],
    );
    // Exactly at the limit is fine; one more byte is not.
    check_with(
        limits,
        b"%output %0 abcde\n",
        &[r#"{"kind":"output","pane":"%0","data":"YWJjZGU="}"#],
    );
    check_with(
        limits,
        b"%output %0 abcdef",
        &[
            r#"{"kind":"error","error":"line longer than 16 bytes was cut","line":"%output %0 abcde"}"#,
        ],
    );
    // Inside a block the reply is marked truncated.
    check_with(
        limits,
        b"%begin 1 2 1\nok\n0123456789abcdefgh\n%end 1 2 1\n",
        &[
            r#"{"kind":"error","error":"line longer than 16 bytes was cut","line":"0123456789abcdef"}"#,
            r#"{"kind":"reply","time":1,"number":2,"flags":1,"success":true,"lines":["ok"],"truncated":true}"#,
        ],
    );
}

#[test]
fn endless_line_keeps_memory_bounded() {
    let limits = ParserLimits {
        max_line_bytes: 1000,
        max_block_bytes: 1 << 20,
    };
    let mut p = Parser::with_limits(limits);
    let chunk = [b'x'; 300];
    for _ in 0..10_000 {
        p.push(&chunk);
        assert!(p.buffered_bytes() <= 1000);
    }
    assert_eq!(p.pending_events(), 1);
    p.push(b"\n%window-add @1\n");
    p.finish();
    let evs = events(&mut p);
    assert!(
        matches!(&evs[0], Event::Malformed(LineError { kind: LineErrorKind::LineTooLong(1000), line }) if line.len() == 1000)
    );
    assert_eq!(
        evs[1],
        Event::WindowAdd {
            window: crate::WindowId(1)
        }
    );
    assert_eq!(evs.len(), 2);
}

#[test]
fn block_limit_truncates() {
    let limits = ParserLimits {
        max_line_bytes: 1000,
        max_block_bytes: 2 * (3 + LINE_OVERHEAD),
    };
    check_with(
        limits,
        b"%begin 1 2 1\naaa\nbbb\nccc\nd\n%end 1 2 1\n",
        &[
            r#"{"kind":"reply","time":1,"number":2,"flags":1,"success":true,"lines":["aaa","bbb"],"truncated":true}"#,
        ],
    );
}

#[test]
fn issue_2_split_octal_escape_and_utf8() {
    // `check` splits at every offset, including inside `\303` and inside é.
    check(
        b"%output %0 \\303\xc3\xa9\\012\n",
        &[r#"{"kind":"output","pane":"%0","data":"w8OpCg=="}"#],
    );
}

#[test]
fn encode_decode_round_trip_all_bytes() {
    let data: Vec<u8> = (0..=255u8).collect();
    let mut line = b"%output %7 ".to_vec();
    encode_output(&data, &mut line);
    line.push(b'\n');
    let mut p = Parser::new();
    p.push(&line);
    assert_eq!(
        p.next_event(),
        Some(Event::Output {
            pane: crate::PaneId(7),
            data: Bytes::from(data)
        })
    );
}
