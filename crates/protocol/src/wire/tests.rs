use super::*;

fn out(seq: u64, pane: u32, b: &[u8]) -> Record {
    Record {
        seq,
        time: 0,
        body: RecordBody::Output {
            pane: PaneId(pane),
            bytes: Bytes::copy_from_slice(b),
        },
    }
}

fn topo(seq: u64) -> Record {
    Record {
        seq,
        time: 0,
        body: RecordBody::Topology(Bytes::from_static(br#"{"session":"$1","windows":[]}"#)),
    }
}

#[test]
fn record_layout_matches_protocol() {
    let mut r = out(0x0102, 7, b"hi");
    r.time = 0x0A0B;
    let e = r.encode();
    assert_eq!(
        &e[..],
        &[
            1, 2, 1, 0, 0, 0, 0, 0, 0, 0x0B, 0x0A, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 7, 0, 0, 0, b'h',
            b'i'
        ]
    );
    assert_eq!(Record::decode(&e), Ok((r, e.len())));
    let reset = Record {
        seq: 3,
        time: 1_700_000_000_000,
        body: RecordBody::PaneReset {
            pane: PaneId(1),
            cols: 80,
            rows: 24,
            bytes: Bytes::from_static(b"x"),
        },
    };
    let e = reset.encode();
    assert_eq!(e[0], 3);
    assert_eq!(&e[9..17], &1_700_000_000_000u64.to_le_bytes());
    assert_eq!(&e[17..21], &9u32.to_le_bytes());
    assert_eq!(&e[25..29], &[80, 0, 24, 0]);
    assert_eq!(Record::decode(&e), Ok((reset, e.len())));
}

#[test]
fn frame_header_matches_protocol() {
    let f = Frame::batch(vec![out(5, 1, b"a"), out(6, 2, b"b")]).expect("consecutive");
    let e = f.encode(false);
    assert_eq!(&e[..4], &[VERSION, 1, 0, 0]);
    assert_eq!(&e[4..12], &5u64.to_le_bytes());
    assert_eq!(&e[12..20], &6u64.to_le_bytes());
    assert_eq!(Frame::decode(&e), Ok(f));
}

#[test]
fn compressed_frames_round_trip_and_small_ones_stay_raw() {
    let big: Vec<u8> = b"hello world ".repeat(100);
    let f = Frame::batch(vec![out(1, 0, &big), topo(2)]).expect("consecutive");
    let e = f.encode(true);
    assert_eq!(e[2], 1, "flag bit 0 set");
    assert!(e.len() < big.len());
    assert_eq!(Frame::decode(&e), Ok(f));
    let small = Frame::batch(vec![out(1, 0, b"x")]).expect("one");
    assert_eq!(small.encode(true)[2], 0);
}

#[test]
fn batch_refuses_gaps_and_snapshot_refuses_bad_shape() {
    assert!(Frame::batch(vec![out(1, 0, b""), out(3, 0, b"")]).is_none());
    assert!(Frame::batch(vec![]).is_none());
    assert!(Frame::snapshot(4, vec![out(4, 0, b"")]).is_none());
    assert!(Frame::snapshot(4, vec![topo(4), out(3, 0, b"")]).is_none());
    let s = Frame::snapshot(4, vec![topo(4)]).expect("valid");
    assert_eq!(Frame::decode(&s.encode(true)), Ok(s));
}

#[test]
fn truncated_frames_are_typed_errors_at_every_cut() {
    let f = Frame::batch(vec![out(1, 0, b"abc"), topo(2)]).expect("consecutive");
    let e = f.encode(false);
    for cut in 0..e.len() {
        assert!(Frame::decode(&e[..cut]).is_err(), "cut at {cut} decoded");
    }
}

#[test]
fn lying_lengths_and_seqs_are_refused() {
    let f = Frame::batch(vec![out(1, 0, b"abc")]).expect("one");
    let mut e = f.encode(false).to_vec();
    // Record length claims 4 GiB.
    e[37..41].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        Frame::decode(&e),
        Err(WireError::Truncated { .. })
    ));
    let mut e = f.encode(false).to_vec();
    e[12..20].copy_from_slice(&9u64.to_le_bytes());
    assert!(matches!(
        Frame::decode(&e),
        Err(WireError::SeqMismatch { .. })
    ));
    let mut e = f.encode(false).to_vec();
    e[0] = 1;
    assert_eq!(Frame::decode(&e), Err(WireError::BadVersion(1)));
    let mut e = f.encode(false).to_vec();
    e[2] = 4;
    assert_eq!(Frame::decode(&e), Err(WireError::BadFlags(4)));
}

#[test]
fn zip_bomb_is_refused_without_allocating_it() {
    // 100 MiB of zeros compresses to a few KiB.
    let zeros = vec![0u8; 100 << 20];
    let z = crate::codec::compress(&zeros).expect("compress");
    let mut e = vec![VERSION, 1, 1, 0];
    e.extend_from_slice(&1u64.to_le_bytes());
    e.extend_from_slice(&1u64.to_le_bytes());
    e.extend_from_slice(&z);
    assert_eq!(
        Frame::decode(&e),
        Err(WireError::TooLarge { limit: MAX_PAYLOAD })
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn encode_then_decode_is_identity(
        start in 0u64..1_000_000,
        bodies in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 1..8),
        compress in proptest::prelude::any::<bool>(),
    ) {
        let records: Vec<Record> = bodies.iter().enumerate().map(|(i, b)| out(start + i as u64, i as u32, b)).collect();
        let f = Frame::batch(records).expect("consecutive");
        proptest::prop_assert_eq!(Frame::decode(&f.encode(compress)), Ok(f));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
        let _ = Frame::decode(&bytes);
    }
}

/// `validate` and `decode` agree on every frame: the malformed batches of
/// issue 17 (a header claiming 3 records over 1, garbage compressed bytes, a
/// record running past the end, records out of order) and a zstd payload
/// without a declared size (issue 10) are refused by both.
#[test]
fn issue_17_validate_refuses_what_decode_refuses() {
    let good = Frame::batch(vec![out(1, 0, b"abc"), out(2, 0, b"def"), out(3, 1, b"g")])
        .expect("consecutive");
    let v = Frame::validate(&good.encode(true)).expect("valid");
    assert_eq!(
        (v.kind, v.first_seq, v.last_seq, v.records),
        (FrameKind::Batch, 1, 3, 3)
    );
    let snap = Frame::snapshot(7, vec![topo(7)])
        .expect("snapshot")
        .encode(false);
    assert_eq!(Frame::validate(&snap).map(|v| v.records), Ok(1));

    let header = |first: u64, last: u64, flags: u8| {
        let mut e = vec![VERSION, 1, flags, 0];
        e.extend_from_slice(&first.to_le_bytes());
        e.extend_from_slice(&last.to_le_bytes());
        e
    };
    // Says 1..=3, carries 1.
    let mut short = header(1, 3, 0);
    short.extend_from_slice(&out(1, 0, b"x").encode());
    // Garbage that claims to be zstd.
    let mut garbage = header(1, 1, 1);
    garbage.extend_from_slice(b"\x28\xb5\x2f\xfdgarbage garbage");
    // A record whose length runs past the end.
    let mut past = header(1, 1, 0);
    let mut rec = out(1, 0, b"abcdef").encode().to_vec();
    rec[17..21].copy_from_slice(&100u32.to_le_bytes());
    past.extend_from_slice(&rec);
    // Out of order.
    let mut order = header(1, 2, 0);
    order.extend_from_slice(&out(2, 0, b"b").encode());
    order.extend_from_slice(&out(1, 0, b"a").encode());
    // zstd without a content size.
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("encoder");
    enc.include_contentsize(false).expect("flag");
    std::io::Write::write_all(&mut enc, &out(1, 0, &[b'z'; 200]).encode()).expect("write");
    let mut nosize = header(1, 1, 1);
    nosize.extend_from_slice(&enc.finish().expect("finish"));
    for (name, bad) in [
        ("short", short),
        ("garbage", garbage),
        ("past the end", past),
        ("out of order", order),
        ("no content size", nosize),
    ] {
        let v = Frame::validate(&bad);
        assert!(v.is_err(), "{name}: validated");
        assert_eq!(
            v.err(),
            Frame::decode(&bad).err(),
            "{name}: validate and decode differ"
        );
    }
}
