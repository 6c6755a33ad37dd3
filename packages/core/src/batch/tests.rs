//! The batcher's rules in virtual time.

use super::*;

fn frame(i: usize) -> String {
    format!(r#"{{"type":"event","seq":{i}}}"#)
}

fn lines(out: &[String]) -> Vec<String> {
    out.iter().flat_map(|b| split(b).map(str::to_string)).collect()
}

#[test]
fn join_keeps_order_and_limits() {
    let frames: Vec<String> = (1..=200).map(frame).collect();
    let out = join(&frames);
    assert_eq!(out.len(), 4, "64 + 64 + 64 + 8");
    assert!(out.iter().all(|b| split(b).count() <= MAX_BATCH_EVENTS && b.len() <= MAX_BATCH_BYTES));
    assert_eq!(lines(&out), frames);
}

#[test]
fn join_splits_by_bytes_and_sends_huge_frames_alone() {
    let big = "x".repeat(40 * 1024);
    let huge = "y".repeat(MAX_BATCH_BYTES + 1);
    let frames = vec![big.clone(), big.clone(), "a".to_string(), huge.clone(), "b".to_string()];
    let out = join(&frames);
    assert_eq!(out, vec![big.clone(), format!("{big}\na"), huge, "b".to_string()]);
    assert!(join::<String>(&[]).is_empty());
}

#[test]
fn a_lone_event_goes_at_once_and_the_tick_makes_it_idle() {
    let mut b: Batcher<u8> = Batcher::new();
    let out = b.ready(vec![frame(1)]);
    assert_eq!(out.all, vec![frame(1)]);
    assert!(out.schedule_tick && b.busy());
    let out = b.tick();
    assert!(out.is_empty() && !out.schedule_tick && !b.busy());
    // Idle again: the next one goes at once too.
    assert_eq!(b.ready(vec![frame(2)]).all, vec![frame(2)]);
}

#[test]
fn one_commands_frames_go_together_at_once() {
    let mut b: Batcher<u8> = Batcher::new();
    let out = b.ready((1..=3).map(frame).collect());
    assert_eq!(out.all, vec![format!("{}\n{}\n{}", frame(1), frame(2), frame(3))]);
}

#[test]
fn events_ready_while_busy_wait_for_the_tick_and_go_together() {
    let mut b: Batcher<u8> = Batcher::new();
    b.ready(vec![frame(1)]);
    for i in 2..=5 {
        assert!(b.ready(vec![frame(i)]).is_empty());
    }
    let out = b.tick();
    assert_eq!(lines(&out.all), (2..=5).map(frame).collect::<Vec<_>>());
    assert_eq!(out.all.len(), 1);
    assert!(out.schedule_tick && b.busy(), "still busy: one more turn");
    assert!(b.tick().is_empty());
    assert!(!b.busy());
}

#[test]
fn whole_batches_do_not_wait() {
    let mut b: Batcher<u8> = Batcher::new();
    b.ready(vec![frame(0)]);
    let mut sent = Vec::new();
    for i in 1..=150 {
        let out = b.ready(vec![frame(i)]);
        assert!(out.own.is_empty());
        sent.extend(out.all);
        assert!(b.waiting() < MAX_BATCH_EVENTS);
    }
    assert_eq!(sent.len(), 2, "two full batches of 64 went without a tick");
    sent.extend(b.tick().all);
    assert_eq!(lines(&sent), (1..=150).map(frame).collect::<Vec<_>>());
}

#[test]
fn a_reply_follows_the_events_that_wait() {
    let mut b: Batcher<u8> = Batcher::new();
    b.ready(vec![frame(1)]);
    // Nothing waits: the ack of event 1 goes at once.
    assert_eq!(b.reply(7, "ack1".into()), Some("ack1".into()));
    b.ready(vec![frame(2)]);
    assert_eq!(b.reply(7, "ack2".into()), None);
    b.ready(vec![frame(3)]);
    assert_eq!(b.reply(7, "ack3".into()), None);
    let out = b.tick();
    assert_eq!(lines(&out.all), vec![frame(2), frame(3)]);
    assert_eq!(out.own.len(), 1);
    assert_eq!(out.own[0].0, 7);
    assert_eq!(lines(&out.own[0].1), vec![frame(2), frame(3), "ack2".into(), "ack3".into()]);
}

#[test]
fn a_reply_never_overtakes_one_still_held() {
    let mut b: Batcher<u8> = Batcher::new();
    b.ready(vec![frame(0)]);
    b.ready(vec![frame(1)]);
    assert_eq!(b.reply(7, "ack1".into()), None, "held behind event 1");
    // The queue fills: the whole batch goes now, the held ack stays for the tick.
    let out = b.ready((2..=MAX_BATCH_EVENTS).map(frame).collect());
    assert_eq!(lines(&out.all), (1..=MAX_BATCH_EVENTS).map(frame).collect::<Vec<_>>());
    assert_eq!(b.waiting(), 0);
    // Nothing waits, but ack1 is held: the next frame for that socket follows it.
    assert_eq!(b.reply(7, "err2".into()), None);
    assert_eq!(b.reply(8, "ack-of-another".into()), Some("ack-of-another".into()));
    let out = b.tick();
    assert_eq!(out.own.len(), 1);
    assert_eq!(lines(&out.own[0].1), vec!["ack1".to_string(), "err2".into()]);
}

#[test]
fn flush_sends_everything_and_keeps_the_tick_due() {
    let mut b: Batcher<u8> = Batcher::new();
    b.ready(vec![frame(1)]);
    b.ready(vec![frame(2)]);
    let out = b.flush();
    assert_eq!(out.all, vec![frame(2)]);
    assert!(b.busy());
    assert!(b.tick().is_empty());
    assert!(!b.busy());
}

#[test]
fn per_socket_a_lone_frame_goes_at_once_and_one_tick_serves_every_socket() {
    let mut p: PerSocket<u8> = PerSocket::new();
    let now = p.ready(1, vec![frame(1)]);
    assert_eq!(now, Now { frames: vec![frame(1)], schedule_tick: true });
    // Another idle socket: at once too, and the tick already due serves it.
    let now = p.ready(2, vec![frame(2), frame(3)]);
    assert_eq!(now, Now { frames: vec![format!("{}\n{}", frame(2), frame(3))], schedule_tick: false });
    assert_eq!(p.busy(), 2);
    let (out, again) = p.tick();
    assert!(out.is_empty() && !again && p.busy() == 0, "nothing new: every socket is idle, none held");
    assert!(p.ready(1, vec![frame(4)]).schedule_tick, "idle again: the next frame goes at once");
}

#[test]
fn per_socket_frames_ready_while_busy_wait_for_the_tick_per_socket() {
    let mut p: PerSocket<u8> = PerSocket::new();
    p.ready(1, vec![frame(1)]);
    for i in 2..=5 {
        assert!(p.ready(1, vec![frame(i)]).frames.is_empty());
    }
    // Socket 2 was idle: its frame does not wait for socket 1's.
    assert_eq!(p.ready(2, vec![frame(9)]).frames, vec![frame(9)]);
    let (out, again) = p.tick();
    assert!(again);
    assert_eq!(out.len(), 1, "only socket 1 had frames waiting: {out:?}");
    assert_eq!(out[0].0, 1);
    assert_eq!(out[0].1.len(), 1, "one text frame");
    assert_eq!(lines(&out[0].1), (2..=5).map(frame).collect::<Vec<_>>());
    assert_eq!(p.busy(), 1, "socket 2 went idle and is no longer held");
    let (out, again) = p.tick();
    assert!(out.is_empty() && !again && p.busy() == 0);
}

#[test]
fn per_socket_a_reply_follows_the_frames_that_wait_for_its_socket_only() {
    let mut p: PerSocket<u8> = PerSocket::new();
    assert_eq!(p.reply(&1, "r0".into()), Some("r0".into()), "idle socket: at once");
    p.ready(1, vec![frame(1)]);
    p.ready(2, vec![frame(2)]);
    assert_eq!(p.reply(&1, "r1".into()), Some("r1".into()), "nothing waits: at once");
    p.ready(1, vec![frame(3)]);
    assert_eq!(p.reply(&1, "r2".into()), None);
    assert_eq!(p.reply(&2, "r3".into()), Some("r3".into()), "nothing waits for socket 2");
    let (out, _) = p.tick();
    assert_eq!(out.len(), 1);
    assert_eq!(lines(&out[0].1), vec![frame(3), "r2".to_string()]);
}

#[test]
fn per_socket_flush_and_forget() {
    let mut p: PerSocket<u8> = PerSocket::new();
    p.ready(1, vec![frame(1)]);
    p.ready(2, vec![frame(2)]);
    p.ready(1, vec![frame(3)]);
    p.ready(2, vec![frame(4)]);
    assert_eq!(p.flush(&1), vec![frame(3)]);
    assert!(p.flush(&1).is_empty(), "sent once");
    assert!(p.flush(&7).is_empty());
    p.ready(1, vec![frame(5)]);
    assert_eq!(p.flush_all(), vec![(1, vec![frame(5)]), (2, vec![frame(4)])]);
    p.ready(2, vec![frame(6)]);
    p.forget(&2);
    let (out, again) = p.tick();
    assert!(out.is_empty(), "a forgotten socket's frames are dropped: {out:?}");
    assert!(!again && p.busy() == 0);
}

#[test]
fn per_socket_whole_batches_do_not_wait_and_order_is_kept() {
    let mut p: PerSocket<u8> = PerSocket::new();
    let mut sent = p.ready(1, vec![frame(0)]).frames;
    for i in 1..=150 {
        sent.extend(p.ready(1, vec![frame(i)]).frames);
    }
    assert_eq!(sent.len(), 3, "the first frame, then two full batches without a tick");
    let (out, _) = p.tick();
    for (_, f) in out {
        sent.extend(f);
    }
    assert!(sent.iter().all(|b| split(b).count() <= MAX_BATCH_EVENTS && b.len() <= MAX_BATCH_BYTES));
    assert_eq!(lines(&sent), (0..=150).map(frame).collect::<Vec<_>>());
}

#[test]
fn opt_in_parses_the_parameter() {
    assert_eq!(opt_in(None).ok(), Some(false));
    assert_eq!(opt_in(Some("0")).ok(), Some(false));
    assert_eq!(opt_in(Some("1")).ok(), Some(true));
    assert_eq!(opt_in(Some("true")).ok(), Some(true));
    assert!(opt_in(Some("yes")).is_err());
}

#[test]
fn split_ignores_empty_lines() {
    assert_eq!(split("a\nb\n").collect::<Vec<_>>(), vec!["a", "b"]);
}
