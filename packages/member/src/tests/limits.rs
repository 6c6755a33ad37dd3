//! The member's rate limits and caps, in virtual time: conversation creations (rate and the rolling
//! daily cap, which survives a restart), connect tickets, the hub's session cap, a hub socket's
//! frame rate and flood close.

use super::*;
use crate::limits::Limited;
use switchboard_core::limits::{close, Limits, CONVERSATIONS_WINDOW_MS};
use switchboard_core::rate::Rate;
use switchboard_core::ErrorCode;

fn with(limits: Limits) -> Sim {
    let mut sim = Sim::new();
    sim.m = Member::with_limits(SqliteStore::new(), limits);
    sim.m.ensure_schema().unwrap();
    sim
}

fn allow(sim: &Sim, what: Limited) -> Result<u16, (ErrorCode, Option<u64>)> {
    match sim.run(Command::Allow { what }).0 {
        Ok(r) => Ok(r.status),
        Err(e) => Err((e.code, e.retry_after_ms)),
    }
}

#[test]
fn conversation_creations_are_rate_limited_and_capped_per_rolling_day() {
    let mut sim =
        with(Limits { conversation_creates: Rate::per_min(2, 2), max_conversations_per_day: 3, ..Limits::DEFAULT });
    assert_eq!(allow(&sim, Limited::CreateConversation), Ok(204));
    assert_eq!(allow(&sim, Limited::CreateConversation), Ok(204));
    assert_eq!(allow(&sim, Limited::CreateConversation), Err((ErrorCode::RateLimited, Some(30_000))));
    sim.now += 30_000;
    assert_eq!(allow(&sim, Limited::CreateConversation), Ok(204), "the third of the day");
    sim.now += 60_000;
    // The fourth in 24 hours: refused until the first one is a day old.
    let first = T0;
    let want = first + CONVERSATIONS_WINDOW_MS - sim.now;
    assert_eq!(allow(&sim, Limited::CreateConversation), Err((ErrorCode::RateLimited, Some(want as u64))));
    // The cap is stored: a restarted object (fresh memory, same storage) still refuses.
    let store = std::mem::replace(&mut sim.m, Member::new(SqliteStore::new()));
    let limits = Limits { conversation_creates: Rate::per_min(2, 2), max_conversations_per_day: 3, ..Limits::DEFAULT };
    sim.m = Member::with_limits(store.store, limits);
    assert!(allow(&sim, Limited::CreateConversation).is_err());
    sim.now = first + CONVERSATIONS_WINDOW_MS + 1;
    assert_eq!(allow(&sim, Limited::CreateConversation), Ok(204), "rolling: the first has aged out");
    assert_eq!(
        sim.m.scalar("SELECT COUNT(*) AS v FROM creations", &[]).unwrap(),
        Some(2),
        "rows older than a day are gone: at most the cap are kept"
    );
}

#[test]
fn connect_tickets_are_rate_limited() {
    let mut sim = with(Limits { connect_tickets: Rate::per_min(1, 2), ..Limits::DEFAULT });
    assert_eq!(allow(&sim, Limited::ConnectTicket), Ok(204));
    assert_eq!(allow(&sim, Limited::ConnectTicket), Ok(204));
    assert_eq!(allow(&sim, Limited::ConnectTicket), Err((ErrorCode::RateLimited, Some(60_000))));
    // Tickets and creations do not share a bucket.
    assert_eq!(allow(&sim, Limited::CreateConversation), Ok(204));
    sim.now += 60_000;
    assert_eq!(allow(&sim, Limited::ConnectTicket), Ok(204));
}

#[test]
fn a_user_has_at_most_the_session_cap_of_hub_sockets() {
    let mut sim = with(Limits { max_hub_sessions: 2, ..Limits::DEFAULT });
    let a = sim.open();
    let _b = sim.open();
    let e = sim.connect(None, None).unwrap_err();
    assert_eq!((e.code, e.status()), (ErrorCode::TooManyConnections, 429));
    // Reconnecting an open session replaces its socket: always allowed.
    let s = sim.session(a);
    let (_, c, _) = sim.connect(None, Some(&s)).unwrap();
    assert_eq!(c.replace, vec![a]);
    // A closed socket makes room.
    sim.close(a);
    assert!(sim.connect(None, None).is_err(), "the replacement still counts");
    let live: Vec<usize> =
        (0..sim.sockets.len()).filter(|i| sim.sockets[*i].as_ref().is_some_and(|s| !s.replaced)).collect();
    sim.close(live[0]);
    sim.open();
}

#[test]
fn a_flooding_hub_socket_gets_error_frames_then_is_closed() {
    let mut sim = with(Limits { socket_frames: Rate::per_sec(2, 2), flood_strikes: 2, ..Limits::DEFAULT });
    let s = sim.open();
    let t = sim.open();
    let ack = json!({"type": "ack", "seq": 0}).to_string();
    assert!(sim.frame(s, &ack).0.frames.is_empty());
    assert!(sim.frame(s, &ack).0.frames.is_empty());
    let (r, _) = sim.frame(s, &ack);
    let f = frame(&r.frames[0]);
    assert_eq!(
        (f["type"].as_str(), f["code"].as_str(), f["retryAfterMs"].as_u64()),
        (Some("error"), Some("rate_limited"), Some(500))
    );
    assert!(r.close.is_none());
    // Another socket of the same user has its own bucket.
    assert!(sim.frame(t, &ack).0.frames.is_empty());
    let (r, _) = sim.frame(s, &ack);
    assert_eq!(r.close, Some((close::RATE_LIMITED, "rate limited")));
    // A pause that refills the bucket forgives.
    sim.now += 1_000;
    for _ in 0..2 {
        assert!(sim.frame(t, &ack).0.frames.is_empty());
    }
}

#[test]
fn acks_that_release_events_do_not_count_against_the_frame_rate() {
    let mut sim = with(Limits { socket_frames: Rate::per_sec(2, 2), flood_strikes: 2, ..Limits::DEFAULT });
    sim.join(C1, None, T0);
    let s = sim.open();
    sim.subscribe(s, &[conv_ctx(C1)]);
    let ack = |seq: u64| json!({"type": "ack", "seq": seq}).to_string();
    // A client acking every event of a fast stream, far over 2 frames per second: never refused.
    for _ in 0..100 {
        let e = sim.deliver(&conv_ctx(C1), "message.created", false);
        let seq = received(&e)[0].1["seq"].as_u64().unwrap();
        let (r, _) = sim.frame(s, &ack(seq));
        assert!(r.frames.is_empty() && r.close.is_none(), "{r:?}");
    }
    // An ack that releases nothing (a repeat) is an ordinary frame: counted (the subscribe took the
    // first of the two), refused, then closed.
    let latest = sim.m.latest_seq().unwrap();
    let r = sim.frame(s, &ack(latest)).0;
    assert!(r.frames.is_empty(), "{r:?}");
    assert_eq!(frame(&sim.frame(s, &ack(latest)).0.frames[0])["code"], "rate_limited");
    assert_eq!(sim.frame(s, &ack(latest)).0.close, Some((close::RATE_LIMITED, "rate limited")));
}
