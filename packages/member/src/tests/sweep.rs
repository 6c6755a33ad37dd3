//! The sweep, on a virtual clock: stale sockets (`STALE_SOCKET_MS` without a ping or a frame) and
//! sessions closed longer than `RESUME_KEEP_MS`.

use super::*;
use crate::WatchCall;
use switchboard_core::hub::{close, RESUME_KEEP_MS, STALE_SOCKET_MS, SWEEP_EVERY_MS};

fn sweep<S: Store>(sim: &Sim<S>, pinged: &dyn Fn(usize) -> Option<i64>) -> Effects {
    let (r, e) = sim.m.sweep(&sim.ctx(), pinged);
    r.unwrap();
    e
}

fn never(_: usize) -> Option<i64> {
    None
}

/// A member of C1 with one socket subscribed to it, the clock at the moment it is to close: the
/// sim, the socket, its session and that moment.
fn subscribed_in_c1() -> (Sim, usize, String, i64) {
    let mut sim = Sim::new();
    sim.join(C1, None, T0);
    let s = sim.open();
    sim.subscribe(s, &[conv_ctx(C1)]);
    let session = sim.session(s);
    let closed_at = T0 + 1_000;
    sim.now = closed_at;
    (sim, s, session, closed_at)
}

#[test]
fn a_silent_socket_is_closed_after_45_s_and_its_presence_ends() {
    let mut sim = Sim::new();
    sim.join(C1, None, T0);
    let s = sim.open();
    sim.subscribe(s, &[presence_ctx(C1)]);
    sim.now = T0 + STALE_SOCKET_MS;
    let e = sweep(&sim, &never);
    assert!(e.closes.is_empty(), "exactly 45 s is not yet stale");
    assert_eq!(e.alarm_at, Some(sim.now + SWEEP_EVERY_MS), "sockets open: sweep again");
    sim.now += 1;
    let e = sweep(&sim, &never);
    assert_eq!(e.closes, vec![(s, close::STALE, "no ping")]);
    // Gone from presence at once; still watching, for resume, until the window ends.
    let w = WatchCall { member: "alice".into(), conversation_id: C1.into(), watching: true, present: false };
    assert_eq!(e.watches, vec![w]);
    assert_eq!(e.alarm_at, Some(sim.now + RESUME_KEEP_MS + 1), "no socket left: next is the window's end");
    assert!(received(&sim.deliver(&presence_ctx(C1), "x", false)).is_empty(), "closed by us: no more sends");
}

#[test]
fn pings_and_frames_keep_a_socket_alive() {
    let mut sim = Sim::new();
    let s = sim.open();
    // The runtime answered a ping 10 s ago.
    sim.now = T0 + 60_000;
    let pinged = |_: usize| Some(T0 + 50_000);
    assert!(sweep(&sim, &pinged).closes.is_empty());
    // A frame from the client counts as well.
    sim.now = T0 + 100_000;
    sim.frame(s, r#"{"type":"ack","seq":0}"#);
    sim.now = T0 + 140_000;
    assert!(sweep(&sim, &never).closes.is_empty());
    sim.now = T0 + 145_001;
    assert_eq!(sweep(&sim, &never).closes, vec![(s, close::STALE, "no ping")]);
}

#[test]
fn a_session_is_resumable_for_the_window_then_forgotten() {
    let (mut sim, s, session, closed_at) = subscribed_in_c1();
    let e = sim.close(s);
    assert_eq!(e.alarm_at, Some(closed_at + RESUME_KEEP_MS + 1));
    // At the end of the window it is still there.
    sim.now = closed_at + RESUME_KEEP_MS - 1;
    let e = sweep(&sim, &never);
    assert!(e.watches.is_empty());
    assert_eq!(e.alarm_at, Some(closed_at + RESUME_KEEP_MS + 1));
    // After it, it is forgotten: the conversation is unwatched and a resume must resync.
    sim.now = closed_at + RESUME_KEEP_MS + 1;
    let e = sweep(&sim, &never);
    let w = WatchCall { member: "alice".into(), conversation_id: C1.into(), watching: false, present: false };
    assert_eq!(e.watches, vec![w]);
    assert_eq!(e.alarm_at, None, "nothing left to sweep");
    assert_eq!(sim.m.hub.sessions_held(), 0, "memory forgets the session with storage");
    let (_, c, _) = sim.connect(Some("0"), Some(&session)).unwrap();
    assert_eq!(frame(&c.frames[0])["restored"], json!(false));
    assert_eq!(frame(&c.frames[1])["type"], "resync");
}

/// The old socket of a session vanished (its client is gone without a close) and the client came
/// back on the same session: the sweep tells the old one again to close, and never takes the
/// session from the new socket, however long the old one stays silent.
#[test]
fn a_vanished_replaced_socket_never_costs_the_new_one_its_session() {
    let mut sim = Sim::new();
    sim.join(C1, None, T0);
    let old = sim.open();
    sim.subscribe(old, &[conv_ctx(C1)]);
    let session = sim.session(old);
    sim.now = T0 + 5_000;
    let (new, _, _) = sim.connect(Some("0"), Some(&session)).unwrap();
    for minute in 1..=3 {
        sim.now = T0 + minute * 60_000;
        let last_ping = sim.now - 10_000;
        let pinged = move |i: usize| (i == new).then_some(last_ping);
        let e = sweep(&sim, &pinged);
        assert_eq!(e.closes, vec![(old, close::REPLACED, "replaced by a newer connection")], "minute {minute}");
        assert!(e.watches.is_empty(), "minute {minute}: {e:?}");
        let got = received(&sim.deliver(&conv_ctx(C1), "message.created", false));
        assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), vec![new], "minute {minute}");
    }
}

/// A session closed `RESUME_KEEP_MS` ago is gone even when the sweep has not run yet: its
/// conversations may already be unwatched, so a resume of it must resync, never replay with a gap.
#[test]
fn a_session_past_its_window_resyncs_before_the_sweep_forgets_it() {
    let (mut sim, s, session, closed_at) = subscribed_in_c1();
    sim.close(s);
    // The window ends; before the alarm runs, another socket's connect stops the watch.
    sim.now = closed_at + RESUME_KEEP_MS;
    let (_, _, e) = sim.connect(None, None).unwrap();
    let w = WatchCall { member: "alice".into(), conversation_id: C1.into(), watching: false, present: false };
    assert_eq!(e.watches, vec![w], "the closed session no longer keeps C1 watched");
    // Neither by its id nor as the most recently closed one (new sessions stay open meanwhile).
    for asked in [None, Some(session.as_str())] {
        let (_, c, _) = sim.connect(Some("0"), asked).unwrap();
        assert_ne!(c.session, session, "{asked:?}: a new session");
        let hello = frame(&c.frames[0]);
        assert_eq!((hello["restored"].clone(), hello["contexts"].clone()), (json!(false), json!([])), "{asked:?}");
        assert_eq!(frame(&c.frames[1])["type"], "resync", "{asked:?}");
    }
    // One millisecond earlier it was still resumable.
    let mut sim = Sim::new();
    sim.join(C1, None, T0);
    let s = sim.open();
    sim.subscribe(s, &[conv_ctx(C1)]);
    let session = sim.session(s);
    sim.now = closed_at;
    sim.close(s);
    sim.now = closed_at + RESUME_KEEP_MS - 1;
    let (_, c, _) = sim.connect(Some("0"), Some(&session)).unwrap();
    assert_eq!((c.session.as_str(), frame(&c.frames[0])["restored"].clone()), (session.as_str(), json!(true)));
}

/// A watch call that failed is sent again by the next sweep, whichever way it went: the stored row
/// no longer says what the call carried, so the comparison finds the difference.
#[test]
fn a_failed_watch_call_is_sent_again_by_the_next_sweep() {
    let mut sim = Sim::new();
    sim.join(C1, None, T0);
    let s = sim.open();
    let (_, e) = sim.subscribe(s, &[conv_ctx(C1), presence_ctx(C1)]);
    let call = e.watches[0].clone();
    assert!(call.watching && call.present);
    // Without a failure, a sweep tells nothing.
    assert!(sweep(&sim, &|_| Some(sim.now)).watches.is_empty());
    let (r, e) = sim.m.watch_failed(&call, sim.now);
    r.unwrap();
    assert_eq!(e.alarm_at, Some(sim.now + crate::hub::watch::WATCH_RETRY_MS));
    sim.now += crate::hub::watch::WATCH_RETRY_MS;
    let e = sweep(&sim, &|_| Some(sim.now));
    assert_eq!(e.watches, vec![call.clone()], "told again");
    assert!(sweep(&sim, &|_| Some(sim.now)).watches.is_empty(), "once");
    // An unwatch that failed (the conversation may still count this hub as present) goes again too.
    let (_, e) =
        sim.frame(s, &json!({"type": "context.unsubscribe", "contexts": [conv_ctx(C1), presence_ctx(C1)]}).to_string());
    let unwatch = e.watches[0].clone();
    assert!(!unwatch.watching && !unwatch.present);
    sim.m.watch_failed(&unwatch, sim.now).0.unwrap();
    assert_eq!(sweep(&sim, &|_| Some(sim.now)).watches, vec![unwatch]);
    assert!(sweep(&sim, &|_| Some(sim.now)).watches.is_empty());
}
