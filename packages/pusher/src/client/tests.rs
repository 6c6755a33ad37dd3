use super::*;
use proptest::prelude::*;

const ESTABLISHED: &str =
    r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":120}"}"#;
const SHORT: &str =
    r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":30}"}"#;

fn succeeded(ch: &str) -> String {
    format!(r#"{{"event":"pusher_internal:subscription_succeeded","channel":"{ch}","data":"{{}}"}}"#)
}

fn states(effects: &[ClientEffect]) -> Vec<ClientState> {
    effects
        .iter()
        .filter_map(|e| match e {
            ClientEffect::StateChanged { state, .. } => Some(*state),
            _ => None,
        })
        .collect()
}

fn sends(effects: &[ClientEffect]) -> Vec<&str> {
    effects
        .iter()
        .filter_map(|e| match e {
            ClientEffect::Send(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn connects(effects: &[ClientEffect]) -> Vec<u64> {
    effects
        .iter()
        .filter_map(|e| match e {
            ClientEffect::Connect { generation } => Some(*generation),
            _ => None,
        })
        .collect()
}

/// A client that is Live on `chatrooms.1.v2` at t = 0 (activity timeout 30 s).
fn live() -> Client {
    let mut c = Client::new(["chatrooms.1.v2".to_string()]);
    c.start(0);
    c.handle_text(1, SHORT, 0);
    c.handle_text(1, &succeeded("chatrooms.1.v2"), 0);
    assert_eq!(c.state(), ClientState::Live);
    c
}

#[test]
fn connects_subscribes_and_goes_live() {
    let mut c = Client::new(["chatrooms.1.v2".to_string(), "channel.9".to_string()]);
    assert_eq!(c.poll_timeout(), None);
    let e = c.start(1_000);
    assert_eq!(
        e,
        vec![
            ClientEffect::StateChanged { state: ClientState::Connecting, reason: "starting".into() },
            ClientEffect::Connect { generation: 1 }
        ]
    );
    assert_eq!(c.poll_timeout(), Some(1_000 + HANDSHAKE_TIMEOUT_MS));
    let e = c.handle_text(1, ESTABLISHED, 1_500);
    assert_eq!(states(&e), vec![ClientState::Connected]);
    assert_eq!(
        sends(&e),
        vec![
            r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"chatrooms.1.v2"}}"#,
            r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"channel.9"}}"#
        ]
    );
    assert_eq!(c.socket_id(), Some("1.2"));
    // activity timeout 120 s from the server
    assert_eq!(c.poll_timeout(), Some(1_500 + 120_000));
    assert!(states(&c.handle_text(1, &succeeded("chatrooms.1.v2"), 1_600)).is_empty());
    assert_eq!(states(&c.handle_text(1, &succeeded("channel.9"), 1_700)), vec![ClientState::Live]);
    let e = c.handle_text(
        1,
        r#"{"event":"App\\Events\\ChatMessageEvent","data":"{\"content\":\"hi\"}","channel":"chatrooms.1.v2"}"#,
        2_000,
    );
    assert_eq!(
        e,
        vec![ClientEffect::Event {
            channel: Some("chatrooms.1.v2".into()),
            event: r"App\Events\ChatMessageEvent".into(),
            data: r#"{"content":"hi"}"#.into()
        }]
    );
}

#[test]
fn activity_timeout_is_capped_and_defaulted() {
    let mut c = Client::new(Vec::<String>::new());
    c.start(0);
    let e = c.handle_text(
        1,
        r#"{"event":"pusher:connection_established","data":{"socket_id":"1.1","activity_timeout":9999}}"#,
        0,
    );
    // no channels: live at once
    assert_eq!(states(&e), vec![ClientState::Connected, ClientState::Live]);
    assert_eq!(c.poll_timeout(), Some(MAX_CLIENT_ACTIVITY_TIMEOUT_MS));
}

#[test]
fn pings_after_silence_and_pong_keeps_it_alive() {
    let mut c = live();
    // a frame at 10 s pushes the ping to 40 s
    c.handle_text(1, r#"{"event":"e","channel":"chatrooms.1.v2","data":"{}"}"#, 10_000);
    assert_eq!(c.poll_timeout(), Some(40_000));
    assert!(c.handle_timeout(39_999, 0).is_empty());
    let e = c.handle_timeout(40_000, 0);
    assert_eq!(e, vec![ClientEffect::Send(r#"{"event":"pusher:ping","data":{}}"#.into())]);
    assert_eq!(c.poll_timeout(), Some(40_000 + PONG_TIMEOUT_MS));
    assert!(c.handle_text(1, r#"{"event":"pusher:pong","data":"{}"}"#, 41_000).is_empty());
    assert_eq!(c.poll_timeout(), Some(71_000));
    assert_eq!(c.state(), ClientState::Live);
}

#[test]
fn pong_timeout_reconnects_at_once_and_resubscribes() {
    let mut c = live();
    c.handle_timeout(30_000, 0);
    let e = c.handle_timeout(30_000 + PONG_TIMEOUT_MS, 0);
    assert_eq!(
        e,
        vec![
            ClientEffect::Close { code: CLIENT_CLOSE_CODE, reason: "pong not received".into() },
            ClientEffect::StateChanged {
                state: ClientState::Connecting,
                reason: "no answer to ping: reconnecting".into()
            },
            ClientEffect::Connect { generation: 2 }
        ]
    );
    // the old socket's late close is ignored
    assert!(c.handle_close(1, 1006, "gone", 60_001, 0).is_empty());
    assert!(c.handle_text(1, SHORT, 60_001).is_empty());
    assert_eq!(c.state(), ClientState::Connecting);
    // subscription after reconnect
    let e = c.handle_text(2, SHORT, 60_500);
    assert_eq!(sends(&e), vec![r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"chatrooms.1.v2"}}"#]);
    assert_eq!(states(&c.handle_text(2, &succeeded("chatrooms.1.v2"), 60_600)), vec![ClientState::Live]);
}

#[test]
fn answers_server_ping() {
    let mut c = live();
    let e = c.handle_text(1, r#"{"event":"pusher:ping","data":"{}"}"#, 5_000);
    assert_eq!(e, vec![ClientEffect::Send(r#"{"event":"pusher:pong","data":{}}"#.into())]);
    assert_eq!(c.poll_timeout(), Some(35_000));
}

#[test]
fn fatal_close_fails_for_good() {
    let mut c = live();
    let e = c.handle_close(1, 4001, "App key not in this cluster", 5_000, 0);
    assert_eq!(
        e,
        vec![ClientEffect::StateChanged {
            state: ClientState::Failed,
            reason: "closed with 4001: App key not in this cluster".into()
        }]
    );
    assert_eq!(c.failure(), Some((4001, "App key not in this cluster")));
    assert_eq!(c.poll_timeout(), None);
    assert!(c.handle_timeout(1_000_000, 0).is_empty());
    // only an explicit start tries again
    assert_eq!(connects(&c.start(2_000_000)), vec![2]);
    assert_eq!(c.failure(), None);
}

#[test]
fn close_4200_reconnects_at_once_but_not_during_the_handshake() {
    let mut c = live();
    let e = c.handle_close(1, 4200, "reconnect", 5_000, 0);
    assert_eq!(connects(&e), vec![2]);
    assert_eq!(c.state(), ClientState::Connecting);
    // closed again before connection_established: back off instead
    let e = c.handle_close(2, 4201, "again", 5_100, 0);
    assert_eq!(states(&e), vec![ClientState::Waiting]);
    assert!(connects(&e).is_empty());
    assert_eq!(c.poll_timeout(), Some(5_100 + 500));
}

#[test]
fn close_4100_backs_off() {
    let mut c = live();
    let e = c.handle_close(1, 4100, "over capacity", 5_000, 0);
    assert_eq!(states(&e), vec![ClientState::Waiting]);
    assert_eq!(c.poll_timeout(), Some(5_500));
    assert_eq!(connects(&c.handle_timeout(5_500, 0)), vec![2]);
}

#[test]
fn abnormal_closes_back_off_growing_then_reset_after_stability() {
    let mut c = Client::new(["a".to_string()]);
    c.start(0);
    let mut now = 0;
    let mut waits = Vec::new();
    for _ in 0..8 {
        let g = c.generation();
        c.handle_close(g, 1006, "", now, 0);
        let at = c.poll_timeout().unwrap();
        waits.push(at - now);
        assert_eq!(c.state(), ClientState::Waiting);
        assert!(c.handle_timeout(at - 1, 0).is_empty());
        assert_eq!(connects(&c.handle_timeout(at, 0)), vec![g + 1]);
        now = at;
    }
    // random = 0 waits half the ceiling: 1 s, 2 s, 4 s ... capped at 60 s
    assert_eq!(waits, vec![500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    // a connection that lasts 60 s resets the count; a shorter one does not
    let g = c.generation();
    c.handle_text(g, SHORT, now);
    c.handle_close(g, 1006, "", now + 59_000, 0);
    assert_eq!(c.poll_timeout(), Some(now + 59_000 + 30_000));
    now += 89_000;
    c.handle_timeout(now, 0);
    let g = c.generation();
    c.handle_text(g, SHORT, now);
    // keep it alive with pings and pongs for 60 s
    for t in (now..=now + 60_000).step_by(10_000) {
        c.handle_text(g, r#"{"event":"pusher:pong","data":"{}"}"#, t);
    }
    c.handle_close(g, 1006, "", now + 60_000, 0);
    assert_eq!(c.poll_timeout(), Some(now + 60_000 + 500));
    assert_eq!(c.failures(), 1);
}

#[test]
fn handshake_timeout_backs_off() {
    let mut c = Client::new(["a".to_string()]);
    c.start(0);
    let e = c.handle_timeout(HANDSHAKE_TIMEOUT_MS, 0);
    assert_eq!(e[0], ClientEffect::Close { code: CLIENT_CLOSE_CODE, reason: "handshake timeout".into() });
    assert_eq!(states(&e), vec![ClientState::Waiting]);
    // the abandoned socket's events are ignored
    assert!(c.handle_text(1, SHORT, HANDSHAKE_TIMEOUT_MS + 1).is_empty());
    assert_eq!(c.poll_timeout(), Some(HANDSHAKE_TIMEOUT_MS + 500));
    assert_eq!(connects(&c.handle_timeout(HANDSHAKE_TIMEOUT_MS + 500, 0)), vec![3]);
}

#[test]
fn server_errors_and_subscription_errors_are_reported() {
    let mut c = live();
    assert_eq!(
        c.handle_text(1, r#"{"event":"pusher:error","data":{"code":4301,"message":"slow"}}"#, 1),
        vec![ClientEffect::ServerError { code: Some(4301), message: "slow".into() }]
    );
    let e = c.subscribe("private-x");
    assert_eq!(sends(&e), vec![r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"private-x"}}"#]);
    assert_eq!(states(&e), vec![ClientState::Connected]);
    let e = c.handle_text(
        1,
        r#"{"event":"pusher:subscription_error","channel":"private-x","data":"{\"type\":\"AuthError\",\"status\":401}"}"#,
        2,
    );
    assert_eq!(
        e,
        vec![ClientEffect::Event {
            channel: Some("private-x".into()),
            event: "pusher:subscription_error".into(),
            data: r#"{"type":"AuthError","status":401}"#.into()
        }]
    );
    let e = c.unsubscribe("private-x");
    assert_eq!(sends(&e), vec![r#"{"event":"pusher:unsubscribe","data":{"channel":"private-x"}}"#]);
    assert_eq!(states(&e), vec![ClientState::Live]);
    let e = c.stop();
    assert_eq!(e[0], ClientEffect::Close { code: CLIENT_CLOSE_CODE, reason: "stopped".into() });
    assert_eq!(c.state(), ClientState::Idle);
    assert_eq!(c.poll_timeout(), None);
}

proptest! {
    /// Whatever happens, the client is never without a timer while it should be doing something,
    /// never asks for a socket without a fresh generation, and never panics.
    #[test]
    fn always_has_a_way_forward(events in proptest::collection::vec((0u8..6, 0u64..100_000, any::<u64>(), prop_oneof![Just(1000u16), Just(1006), Just(4001), Just(4100), Just(4200), Just(4301)]), 0..80)) {
        let mut c = Client::new(["a".to_string()]);
        c.start(0);
        let mut now = 0u64;
        let mut last_gen = c.generation();
        for (kind, dt, r, code) in events {
            now += dt;
            let g = c.generation();
            let e = match kind {
                0 => c.handle_text(g, SHORT, now),
                1 => c.handle_text(g, &succeeded("a"), now),
                2 => c.handle_close(g, code, "x", now, r),
                3 => c.handle_text(g, "garbage", now),
                _ => match c.poll_timeout() { Some(t) => { now = now.max(t); c.handle_timeout(now, r) }, None => Vec::new() },
            };
            for g in connects(&e) {
                prop_assert!(g > last_gen);
                last_gen = g;
            }
            match c.state() {
                ClientState::Failed | ClientState::Idle => prop_assert_eq!(c.poll_timeout(), None),
                _ => prop_assert!(c.poll_timeout().is_some()),
            }
            if let Some(t) = c.poll_timeout() {
                prop_assert!(t <= now + MAX_CLIENT_ACTIVITY_TIMEOUT_MS.max(BackoffPolicy::BRIDGE.cap_ms).max(HANDSHAKE_TIMEOUT_MS));
            }
        }
    }
}
