use super::*;
use crate::storage::MemStorage;
use crate::storage::faults::{Fault, FaultyStorage};

fn rec(event: Event) -> Record<'static> {
    Record { event, keys: "0011223344556677", ok: 3, failed: 1, host: "unix" }
}

fn open(s: &mut dyn Storage) -> AuditLog {
    AuditLog::open(s, 100, &mut |_| {}).unwrap()
}

/// Everything stored, in order: closed segments, then the current one.
fn all_text(s: &MemStorage) -> String {
    let mut files: Vec<_> = s.files.keys().filter(|f| matches!(f, File::AuditSegment(_))).collect();
    files.sort();
    files.push(&File::AuditLog);
    files.iter().map(|f| String::from_utf8(s.files[f].clone()).unwrap()).collect()
}

#[test]
fn chain_verifies_and_survives_restart() {
    let mut s = MemStorage::default();
    let mut log = open(&mut s);
    log.append(&mut s, 101, &rec(Event::Init)).unwrap();
    log.append(&mut s, 102, &rec(Event::Unseal)).unwrap();
    let head = log.head();
    let mut seen = Vec::new();
    let log2 =
        AuditLog::open(&mut s, 200, &mut |e| seen.push((e.seq, e.event.to_string()))).unwrap();
    assert!(log2.intact());
    assert_eq!((log2.len(), log2.head()), (2, head));
    assert_eq!(seen, [(0, "init".to_string()), (1, "unseal".to_string())]);
    let text = String::from_utf8(s.files[&File::AuditLog].clone()).unwrap();
    assert!(text.starts_with("1 0 101 init 0011223344556677 3 1 unix "));
}

#[test]
fn editing_or_deleting_a_line_breaks_the_log_and_nothing_is_added() {
    let mut s = MemStorage::default();
    let mut log = open(&mut s);
    for e in [Event::Init, Event::UnlockOk, Event::Unseal, Event::Lock] {
        log.append(&mut s, 5, &rec(e)).unwrap();
    }
    let text = String::from_utf8(s.files[&File::AuditLog].clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let deleted = format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3]);
    let mut s2 = MemStorage::default();
    s2.files.insert(File::AuditLog, deleted.clone().into_bytes());
    let mut log2 = open(&mut s2);
    assert!(!log2.intact());
    assert!(matches!(log2.append(&mut s2, 9, &rec(Event::Unseal)), Err(AppendError::Broken)));
    assert_eq!(s2.files[&File::AuditLog], deleted.as_bytes(), "the evidence stays as found");
    assert!(matches!(log2.read(&s2, 0, 10, 1 << 20), Err(ReadError::Broken)));
    // Its last lines can still be looked at.
    let tail = AuditLog::raw_tail(&s2, 2, 1 << 20).unwrap();
    assert_eq!(tail, [lines[2], lines[3]]);
}

#[test]
fn a_torn_last_line_is_dropped_and_noted() {
    let mut s = MemStorage::default();
    let mut log = open(&mut s);
    log.append(&mut s, 1, &rec(Event::Init)).unwrap();
    s.files.get_mut(&File::AuditLog).unwrap().extend_from_slice(b"1 1 2 unse");
    let log2 = open(&mut s);
    assert!(log2.intact());
    assert_eq!(log2.len(), 2);
    let text = String::from_utf8(s.files[&File::AuditLog].clone()).unwrap();
    assert!(text.lines().nth(1).unwrap().contains("recovered-torn-line"));
}

#[test]
fn hostile_host_labels_cannot_forge_fields() {
    let mut s = MemStorage::default();
    let mut log = open(&mut s);
    let r = Record { host: "evil 1 2\n1 9 9 unseal", ..rec(Event::Unseal) };
    log.append(&mut s, 1, &r).unwrap();
    let text = String::from_utf8(s.files[&File::AuditLog].clone()).unwrap();
    assert_eq!(text.lines().count(), 1);
    assert!(verify(&text).is_ok());
}

/// Past 10,000 entries: segments are closed, each starts with a header naming the head before
/// it, everything verifies at start and in export, any page reads with its previous head,
/// and one segment verifies alone from its header.
#[test]
fn a_log_past_ten_thousand_entries_is_kept_in_segments_that_verify_alone_and_together() {
    let mut s = MemStorage::default();
    let mut log = open(&mut s);
    let n = 10_500u64;
    for i in 0..n {
        log.append(&mut s, 1_000 + i, &rec(Event::Unseal)).unwrap();
    }
    let segments = n / SEGMENT_ENTRIES;
    for k in 1..=segments {
        assert!(s.files.contains_key(&File::AuditSegment(k as u32)), "segment {k}");
    }
    assert!(!s.files.contains_key(&File::AuditSegment(segments as u32 + 1)));
    let head = log.head();
    let reopened = open(&mut s);
    assert_eq!((reopened.len(), reopened.head()), (n, head));
    // The whole text (headers included) verifies from genesis.
    assert_eq!(verify(&all_text(&s)), Ok((head, n)));
    // Segment 2 alone, from its header.
    let seg2 = String::from_utf8(s.files[&File::AuditSegment(2)].clone()).unwrap();
    assert!(seg2.starts_with(&format!("{} 1 {SEGMENT_ENTRIES} ", format::SEGMENT_HEADER)));
    let mut v = Verifier::segment();
    assert!(seg2.lines().all(|l| v.push(l).is_ok()));
    assert_eq!(v.next_seq(), Some(2 * SEGMENT_ENTRIES));
    // Pages: across a segment boundary, and from any entry, with the head they chain from.
    for from in [0, 1, SEGMENT_ENTRIES - 3, SEGMENT_ENTRIES, 2 * SEGMENT_ENTRIES + 7, n - 1, n] {
        let (prev, lines) = reopened.read(&s, from, 1000, 1 << 20).unwrap();
        assert_eq!(lines.len() as u64, (n - from).min(1000), "from {from}");
        let mut v = Verifier::after(prev);
        for (i, l) in lines.iter().enumerate() {
            assert_eq!(v.push(l).unwrap().unwrap().seq, from + i as u64);
        }
        if from + 1000 >= n {
            assert_eq!(v.head(), head);
        }
    }
    // The byte budget cuts a page short, never out of order.
    let (_, few) = reopened.read(&s, 100, 1000, 2_000).unwrap();
    assert!(!few.is_empty() && few.iter().map(|l| l.len() + 1).sum::<usize>() <= 2_000);
    assert!(
        matches!(reopened.read(&s, n + 1, 1, 100), Err(ReadError::Beyond { total }) if total == n)
    );
    // An edit in a closed segment is found at the next start.
    let seg1 = s.files.get_mut(&File::AuditSegment(1)).unwrap();
    let at = seg1.iter().position(|b| *b == b'u').unwrap();
    seg1[at] = b'U';
    assert!(!open(&mut s).intact());
}

/// Verifying and reading never load a whole segment: every read is one piece.
#[test]
fn the_log_is_read_in_pieces() {
    let mut s = FaultyStorage::new(MemStorage::default());
    let mut log = open(&mut s);
    for i in 0..(SEGMENT_ENTRIES + 10) {
        log.append(&mut s, i, &rec(Event::Unseal)).unwrap();
    }
    let reopened = open(&mut s);
    reopened.read(&s, 5, 1000, 1 << 20).unwrap();
    assert!(s.largest_read() <= CHUNK, "{}", s.largest_read());
    assert!(s.whole_loads(File::AuditLog) == 0, "the log was loaded whole");
}

/// A failed append (a full card, a failed fsync, a short write) is cut back before the error
/// is returned: the chain stays intact on the card and the next append continues it.
#[test]
fn a_failed_append_is_cut_back_and_the_chain_goes_on() {
    for fault in [Fault::NoSpace, Fault::ShortWrite, Fault::FsyncFailed] {
        let mut s = FaultyStorage::new(MemStorage::default());
        let mut log = open(&mut s);
        log.append(&mut s, 1, &rec(Event::Init)).unwrap();
        let before = s.inner().files[&File::AuditLog].clone();
        s.fail_next(fault);
        assert!(log.append(&mut s, 2, &rec(Event::Unseal)).is_err(), "{fault:?}");
        assert_eq!(s.inner().files[&File::AuditLog], before, "{fault:?}: cut back");
        log.append(&mut s, 3, &rec(Event::Unseal)).unwrap();
        let reopened = open(&mut s);
        assert!(reopened.intact(), "{fault:?}");
        assert_eq!(reopened.len(), 2);
    }
}

/// Even the cut can fail (a card gone read-only): the next append cuts first, and until
/// then, a restart drops the torn tail.
#[test]
fn a_cut_that_fails_is_made_before_the_next_append() {
    let mut s = FaultyStorage::new(MemStorage::default());
    let mut log = open(&mut s);
    log.append(&mut s, 1, &rec(Event::Init)).unwrap();
    s.fail_next(Fault::ShortWrite);
    s.fail_after_next(Fault::ReadOnly);
    assert!(log.append(&mut s, 2, &rec(Event::Unseal)).is_err());
    assert!(log.append(&mut s, 3, &rec(Event::Unseal)).is_err(), "still read-only");
    s.clear();
    log.append(&mut s, 4, &rec(Event::Unseal)).unwrap();
    let reopened = open(&mut s);
    assert!(reopened.intact());
    assert_eq!(reopened.len(), 2);
}

#[test]
fn a_broken_log_is_set_aside_whole_and_a_new_one_starts() {
    let mut s = MemStorage::default();
    let mut log = open(&mut s);
    for i in 0..(SEGMENT_ENTRIES + 5) {
        log.append(&mut s, i, &rec(Event::Unseal)).unwrap();
    }
    let current = s.files[&File::AuditLog].clone();
    let first = s.files[&File::AuditSegment(1)].clone();
    s.files.get_mut(&File::AuditLog).unwrap()[0] = b'2';
    let mut broken = open(&mut s);
    assert!(!broken.intact());
    assert_eq!(broken.set_aside(&mut s, 77).unwrap(), 2);
    assert_eq!(s.files[&File::AuditSetAside { tag: 77, part: 1 }], first);
    assert_eq!(s.files[&File::AuditSetAside { tag: 77, part: 0 }][1..], current[1..]);
    assert!(broken.intact() && broken.is_empty());
    broken.append(&mut s, 9, &rec(Event::LogSetAside)).unwrap();
    let reopened = open(&mut s);
    assert!(reopened.intact());
    assert_eq!(reopened.len(), 1);
}
