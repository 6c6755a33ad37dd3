use super::connection::close_reason;
use super::*;
use crate::limits::{
    GQL_ACK_TIMEOUT_MS, GQL_CONNECT_TIMEOUT_MS, GQL_KEEPALIVE_IDLE_MS, GQL_MAX_OPERATIONS, GQL_PONG_TIMEOUT_MS,
    MAX_EVENT_BYTES,
};
use proptest::prelude::*;
use serde_json::{json, Value};
use switchboard_core::backoff::BackoffPolicy;

const POLICY: BackoffPolicy = BackoffPolicy::BRIDGE;

fn drain(c: &mut GraphqlWs) -> Vec<Effect> {
    std::iter::from_fn(|| c.poll()).collect()
}

fn send(conn: ConnId, text: &str) -> Effect {
    Effect::Send { conn, text: text.into() }
}

fn op() -> Operation {
    Operation {
        query: "subscription S($r: String!) { s(r: $r) }".into(),
        operation_name: Some("S".into()),
        variables: json!({"r": "@x"}),
    }
}

/// A client that is connected and acknowledged at t = 0 on connection 1.
fn ready() -> GraphqlWs {
    let mut c = GraphqlWs::new(POLICY, json!({"token": "t"}));
    c.start(0);
    c.handle(0, 0, Input::Opened { conn: 1 });
    c.handle(0, 0, Input::Text { conn: 1, text: r#"{"type":"connection_ack"}"# });
    drain(&mut c);
    c
}

#[test]
fn handshake() {
    let mut c = GraphqlWs::new(POLICY, json!({"token": "t"}));
    assert_eq!(c.poll_timeout(), None);
    c.start(100);
    assert_eq!(drain(&mut c), vec![Effect::StateChanged(Phase::Connecting), Effect::Connect { conn: 1 }]);
    assert_eq!(c.poll_timeout(), Some(100 + GQL_CONNECT_TIMEOUT_MS));
    c.handle(200, 0, Input::Opened { conn: 1 });
    assert_eq!(
        drain(&mut c),
        vec![
            send(1, r#"{"payload":{"token":"t"},"type":"connection_init"}"#),
            Effect::StateChanged(Phase::AwaitingAck)
        ]
    );
    assert_eq!(c.poll_timeout(), Some(200 + GQL_ACK_TIMEOUT_MS));
    c.handle(300, 0, Input::Text { conn: 1, text: r#"{"type":"connection_ack","payload":{}}"# });
    assert_eq!(drain(&mut c), vec![Effect::StateChanged(Phase::Ready)]);
    assert!(c.is_ready());
    assert_eq!(c.poll_timeout(), Some(300 + GQL_KEEPALIVE_IDLE_MS));
    // A repeated start changes nothing.
    c.start(400);
    assert_eq!(drain(&mut c), vec![]);
}

#[test]
fn no_payload_means_a_bare_init() {
    let mut c = GraphqlWs::new(POLICY, Value::Null);
    c.start(0);
    c.handle(0, 0, Input::Opened { conn: 1 });
    assert_eq!(drain(&mut c)[2], send(1, r#"{"type":"connection_init"}"#));
}

#[test]
fn no_ack_within_the_timeout_closes_and_backs_off() {
    let mut c = GraphqlWs::new(POLICY, Value::Null);
    c.start(0);
    c.handle(0, 0, Input::Opened { conn: 1 });
    drain(&mut c);
    c.handle(GQL_ACK_TIMEOUT_MS - 1, 0, Input::Timeout);
    assert_eq!(drain(&mut c), vec![]);
    c.handle(GQL_ACK_TIMEOUT_MS, 0, Input::Timeout);
    assert_eq!(
        drain(&mut c),
        vec![
            Effect::Close {
                conn: 1,
                code: close::CONNECTION_ACKNOWLEDGEMENT_TIMEOUT,
                reason: "Connection acknowledgement timeout".into()
            },
            Effect::StateChanged(Phase::Waiting { retry_at_ms: GQL_ACK_TIMEOUT_MS + 500 })
        ]
    );
    // The wait runs out: the next attempt is connection 2.
    assert_eq!(c.poll_timeout(), Some(GQL_ACK_TIMEOUT_MS + 500));
    c.handle(GQL_ACK_TIMEOUT_MS + 500, 0, Input::Timeout);
    assert_eq!(drain(&mut c), vec![Effect::StateChanged(Phase::Connecting), Effect::Connect { conn: 2 }]);
}

#[test]
fn a_socket_that_never_opens_times_out_and_a_late_open_is_closed() {
    let mut c = GraphqlWs::new(POLICY, Value::Null);
    c.start(0);
    drain(&mut c);
    c.handle(GQL_CONNECT_TIMEOUT_MS, 7, Input::Timeout);
    assert_eq!(drain(&mut c), vec![Effect::StateChanged(Phase::Waiting { retry_at_ms: GQL_CONNECT_TIMEOUT_MS + 507 })]);
    c.handle(GQL_CONNECT_TIMEOUT_MS + 1, 0, Input::Opened { conn: 1 });
    assert_eq!(drain(&mut c), vec![Effect::Close { conn: 1, code: close::NORMAL, reason: "stale".into() }]);
    assert_eq!(c.phase(), Phase::Waiting { retry_at_ms: GQL_CONNECT_TIMEOUT_MS + 507 });
}

#[test]
fn a_failed_attempt_backs_off_with_growing_waits() {
    let mut c = GraphqlWs::new(POLICY, Value::Null);
    c.start(0);
    let mut now = 0;
    let mut waits = vec![];
    for conn in 1..=8 {
        c.handle(now, 0, Input::ConnectFailed { conn });
        let Phase::Waiting { retry_at_ms } = c.phase() else { panic!("{:?}", c.phase()) };
        waits.push(retry_at_ms - now);
        now = retry_at_ms;
        c.handle(now, 0, Input::Timeout);
        assert_eq!(c.conn(), Some(conn + 1));
    }
    assert_eq!(waits, vec![500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    assert_eq!(c.failures(), 8);
}

#[test]
fn a_stable_connection_resets_the_backoff() {
    // Up for less than stable_ms: the count goes on (second step).
    let mut c = ready();
    c.handle(0, 0, Input::Closed { conn: 1, code: close::ABNORMAL, reason: "" });
    c.handle(500, 0, Input::Timeout);
    c.handle(500, 0, Input::Opened { conn: 2 });
    c.handle(500, 0, Input::Text { conn: 2, text: r#"{"type":"connection_ack"}"# });
    c.handle(500 + POLICY.stable_ms - 1, 0, Input::Closed { conn: 2, code: close::ABNORMAL, reason: "" });
    assert_eq!(c.phase(), Phase::Waiting { retry_at_ms: 500 + POLICY.stable_ms - 1 + 1_000 });
    // Up for exactly stable_ms: the next failure waits the first step again.
    let mut c = ready();
    c.handle(0, 0, Input::Closed { conn: 1, code: close::INTERNAL_SERVER_ERROR, reason: "" });
    c.handle(500, 0, Input::Timeout);
    c.handle(500, 0, Input::Opened { conn: 2 });
    c.handle(500, 0, Input::Text { conn: 2, text: r#"{"type":"connection_ack"}"# });
    c.handle(500 + POLICY.stable_ms, 0, Input::Closed { conn: 2, code: close::ABNORMAL, reason: "" });
    assert_eq!(c.phase(), Phase::Waiting { retry_at_ms: 500 + POLICY.stable_ms + 500 });
    assert_eq!(c.failures(), 1);
}

#[test]
fn operations_get_unique_monotonic_ids_and_their_results() {
    let mut c = ready();
    let mut idle = GraphqlWs::new(POLICY, Value::Null);
    assert_eq!(idle.subscribe(&op()), Err(GqlError::NotReady));
    assert_eq!(c.subscribe(&op()), Ok("1".into()));
    let m = Operation { query: "mutation { m { ok } }".into(), operation_name: None, variables: Value::Null };
    assert_eq!(c.execute(&m), Ok("2".into()));
    assert_eq!(
        drain(&mut c),
        vec![
            send(
                1,
                r#"{"id":"1","payload":{"operationName":"S","query":"subscription S($r: String!) { s(r: $r) }","variables":{"r":"@x"}},"type":"subscribe"}"#
            ),
            send(1, r#"{"id":"2","payload":{"query":"mutation { m { ok } }"},"type":"subscribe"}"#),
        ]
    );
    c.handle(1, 0, Input::Text { conn: 1, text: r#"{"id":"1","type":"next","payload":{"data":{"s":1}}}"# });
    c.handle(2, 0, Input::Text { conn: 1, text: r#"{"id":"1","type":"next","payload":{"data":{"s":2}}}"# });
    // The mutation's one result completes it; the server's own complete after it is ignored.
    c.handle(3, 0, Input::Text { conn: 1, text: r#"{"id":"2","type":"next","payload":{"data":{"m":{"ok":true}}}}"# });
    c.handle(4, 0, Input::Text { conn: 1, text: r#"{"id":"2","type":"complete"}"# });
    c.handle(5, 0, Input::Text { conn: 1, text: r#"{"id":"1","type":"complete"}"# });
    // Frames for operations that are over, or never were, are ignored.
    c.handle(6, 0, Input::Text { conn: 1, text: r#"{"id":"1","type":"next","payload":{"data":{}}}"# });
    c.handle(6, 0, Input::Text { conn: 1, text: r#"{"id":"99","type":"error","payload":[]}"# });
    assert_eq!(
        drain(&mut c),
        vec![
            Effect::Next { id: "1".into(), payload: json!({"data": {"s": 1}}) },
            Effect::Next { id: "1".into(), payload: json!({"data": {"s": 2}}) },
            Effect::Next { id: "2".into(), payload: json!({"data": {"m": {"ok": true}}}) },
            Effect::Completed { id: "2".into() },
            Effect::Completed { id: "1".into() },
        ]
    );
    assert_eq!(c.subscribe(&op()), Ok("3".into()));
    c.handle(7, 0, Input::Text { conn: 1, text: r#"{"id":"3","type":"error","payload":[{"message":"no"}]}"# });
    assert_eq!(
        drain(&mut c)[1..],
        [Effect::OperationError { id: "3".into(), error: OpError::Graphql(json!([{"message": "no"}])) }]
    );
}

#[test]
fn completing_an_operation_tells_the_server_once() {
    let mut c = ready();
    let id = c.subscribe(&op()).unwrap();
    drain(&mut c);
    c.complete(&id);
    c.complete(&id);
    assert_eq!(drain(&mut c), vec![send(1, r#"{"id":"1","type":"complete"}"#)]);
}

#[test]
fn the_operation_limit_is_enforced() {
    let mut c = ready();
    for _ in 0..GQL_MAX_OPERATIONS {
        assert!(c.subscribe(&op()).is_ok());
    }
    assert_eq!(c.subscribe(&op()), Err(GqlError::TooManyOperations));
}

#[test]
fn operations_end_when_the_connection_drops_and_ids_are_never_reused() {
    let mut c = ready();
    c.subscribe(&op()).unwrap();
    c.execute(&op()).unwrap();
    drain(&mut c);
    c.handle(10, 0, Input::Closed { conn: 1, code: close::ABNORMAL, reason: "" });
    assert_eq!(
        drain(&mut c),
        vec![
            Effect::OperationError { id: "1".into(), error: OpError::ConnectionLost },
            Effect::OperationError { id: "2".into(), error: OpError::ConnectionLost },
            Effect::StateChanged(Phase::Waiting { retry_at_ms: 510 }),
        ]
    );
    c.handle(510, 0, Input::Timeout);
    c.handle(510, 0, Input::Opened { conn: 2 });
    c.handle(510, 0, Input::Text { conn: 2, text: r#"{"type":"connection_ack"}"# });
    assert_eq!(c.subscribe(&op()), Ok("3".into()));
}

#[test]
fn ping_pong_both_ways_and_a_silent_server_is_dropped() {
    let mut c = ready();
    // The server pings: we answer.
    c.handle(1_000, 0, Input::Text { conn: 1, text: r#"{"type":"ping"}"# });
    assert_eq!(drain(&mut c), vec![send(1, r#"{"type":"pong"}"#)]);
    let idle_at = 1_000 + GQL_KEEPALIVE_IDLE_MS;
    assert_eq!(c.poll_timeout(), Some(idle_at));
    c.handle(idle_at - 1, 0, Input::Timeout);
    assert_eq!(drain(&mut c), vec![]);
    c.handle(idle_at, 0, Input::Timeout);
    assert_eq!(drain(&mut c), vec![send(1, r#"{"type":"ping"}"#)]);
    assert_eq!(c.poll_timeout(), Some(idle_at + GQL_PONG_TIMEOUT_MS));
    // The pong comes: quiet again until the next idle period.
    c.handle(idle_at + 5, 0, Input::Text { conn: 1, text: r#"{"type":"pong"}"# });
    assert_eq!(c.poll_timeout(), Some(idle_at + 5 + GQL_KEEPALIVE_IDLE_MS));
    // Next time nothing answers.
    let ping_at = idle_at + 5 + GQL_KEEPALIVE_IDLE_MS;
    c.handle(ping_at, 0, Input::Timeout);
    drain(&mut c);
    c.handle(ping_at + GQL_PONG_TIMEOUT_MS, 0, Input::Timeout);
    assert_eq!(
        drain(&mut c),
        vec![
            Effect::Close { conn: 1, code: close::TERMINATED, reason: "keep-alive timeout".into() },
            Effect::StateChanged(Phase::Waiting { retry_at_ms: ping_at + GQL_PONG_TIMEOUT_MS + 500 })
        ]
    );
}

#[test]
fn a_refused_token_logs_in_again_once_then_backs_off() {
    let mut c = ready();
    c.handle(100, 0, Input::Closed { conn: 1, code: close::FORBIDDEN, reason: "Forbidden" });
    assert_eq!(
        drain(&mut c),
        vec![
            Effect::TokenRefused { code: close::FORBIDDEN },
            Effect::StateChanged(Phase::Connecting),
            Effect::Connect { conn: 2 }
        ]
    );
    c.set_init_payload(json!({"token": "new"}));
    c.handle(200, 0, Input::Opened { conn: 2 });
    assert_eq!(drain(&mut c)[0], send(2, r#"{"payload":{"token":"new"},"type":"connection_init"}"#));
    // Refused again (before any ack): now it waits, the second step of the backoff.
    c.handle(300, 0, Input::Closed { conn: 2, code: close::UNAUTHORIZED, reason: "" });
    assert_eq!(
        drain(&mut c),
        vec![
            Effect::TokenRefused { code: close::UNAUTHORIZED },
            Effect::StateChanged(Phase::Waiting { retry_at_ms: 1_300 })
        ]
    );
    // Even acknowledged in between, a refusal soon after is waited out.
    c.handle(1_300, 0, Input::Timeout);
    c.handle(1_300, 0, Input::Opened { conn: 3 });
    c.handle(1_300, 0, Input::Text { conn: 3, text: r#"{"type":"connection_ack"}"# });
    drain(&mut c);
    c.handle(1_400, 0, Input::Closed { conn: 3, code: close::FORBIDDEN, reason: "" });
    assert_eq!(
        drain(&mut c),
        vec![
            Effect::TokenRefused { code: close::FORBIDDEN },
            Effect::StateChanged(Phase::Waiting { retry_at_ms: 1_400 + 2_000 })
        ]
    );
}

#[test]
fn after_a_stable_connection_a_refusal_is_again_retried_at_once() {
    let mut c = ready();
    c.handle(0, 0, Input::Closed { conn: 1, code: close::FORBIDDEN, reason: "" });
    c.handle(0, 0, Input::Opened { conn: 2 });
    c.handle(0, 0, Input::Text { conn: 2, text: r#"{"type":"connection_ack"}"# });
    drain(&mut c);
    c.handle(POLICY.stable_ms, 0, Input::Closed { conn: 2, code: close::UNAUTHORIZED, reason: "" });
    assert_eq!(
        drain(&mut c),
        vec![
            Effect::TokenRefused { code: close::UNAUTHORIZED },
            Effect::StateChanged(Phase::Connecting),
            Effect::Connect { conn: 3 }
        ]
    );
}

#[test]
fn every_other_close_code_backs_off() {
    for code in [
        close::BAD_REQUEST,
        close::SUBPROTOCOL_NOT_ACCEPTABLE,
        close::CONNECTION_INITIALISATION_TIMEOUT,
        close::SUBSCRIBER_ALREADY_EXISTS,
        close::TOO_MANY_INITIALISATION_REQUESTS,
        close::INTERNAL_SERVER_ERROR,
        close::ABNORMAL,
        close::NORMAL,
        1001,
        4000,
    ] {
        let mut c = ready();
        c.handle(50, 0, Input::Closed { conn: 1, code, reason: "x" });
        assert_eq!(drain(&mut c), vec![Effect::StateChanged(Phase::Waiting { retry_at_ms: 550 })], "code {code}");
    }
}

#[test]
fn a_close_during_the_handshake_backs_off_too() {
    let mut c = GraphqlWs::new(POLICY, Value::Null);
    c.start(0);
    c.handle(0, 0, Input::Opened { conn: 1 });
    drain(&mut c);
    c.handle(5, 0, Input::Closed { conn: 1, code: close::SUBPROTOCOL_NOT_ACCEPTABLE, reason: "" });
    assert_eq!(drain(&mut c), vec![Effect::StateChanged(Phase::Waiting { retry_at_ms: 505 })]);
}

#[test]
fn inputs_about_an_old_connection_are_ignored() {
    let mut c = ready();
    c.handle(10, 0, Input::Closed { conn: 1, code: close::ABNORMAL, reason: "" });
    c.handle(510, 0, Input::Timeout);
    drain(&mut c);
    c.handle(511, 0, Input::Closed { conn: 1, code: close::ABNORMAL, reason: "" });
    c.handle(511, 0, Input::Text { conn: 1, text: r#"{"type":"connection_ack"}"# });
    c.handle(511, 0, Input::ConnectFailed { conn: 1 });
    assert_eq!(drain(&mut c), vec![]);
    assert_eq!(c.phase(), Phase::Connecting);
}

#[test]
fn bad_server_messages_close_with_4004() {
    for text in [
        "nope",
        "[]",
        r#"{"type":"subscribe","id":"1"}"#,
        r#"{"type":"next","id":"1"}"#,
        r#"{"type":"next","payload":{}}"#,
        r#"{"type":"complete","id":""}"#,
        r#"{"type":5}"#,
    ] {
        let mut c = ready();
        c.handle(5, 0, Input::Text { conn: 1, text });
        assert_eq!(
            drain(&mut c),
            vec![
                Effect::Close { conn: 1, code: close::BAD_RESPONSE, reason: "invalid message".into() },
                Effect::StateChanged(Phase::Waiting { retry_at_ms: 505 })
            ],
            "{text}"
        );
    }
    let mut c = GraphqlWs::new(POLICY, Value::Null);
    c.start(0);
    c.handle(0, 0, Input::Opened { conn: 1 });
    drain(&mut c);
    c.handle(1, 0, Input::Text { conn: 1, text: r#"{"type":"next","id":"1","payload":{}}"# });
    assert_eq!(
        drain(&mut c)[0],
        Effect::Close { conn: 1, code: close::BAD_RESPONSE, reason: "message before connection_ack".into() }
    );
    let mut c = ready();
    let big = format!(r#"{{"type":"ping","x":"{}"}}"#, "a".repeat(MAX_EVENT_BYTES));
    c.handle(1, 0, Input::Text { conn: 1, text: &big });
    assert_eq!(
        drain(&mut c)[0],
        Effect::Close { conn: 1, code: close::MESSAGE_TOO_BIG, reason: "message too big".into() }
    );
}

#[test]
fn stop_and_restart() {
    let mut c = ready();
    c.subscribe(&op()).unwrap();
    drain(&mut c);
    c.restart(10, 0, 4000, "join failed");
    assert_eq!(
        drain(&mut c),
        vec![
            Effect::Close { conn: 1, code: 4000, reason: "join failed".into() },
            Effect::OperationError { id: "1".into(), error: OpError::ConnectionLost },
            Effect::StateChanged(Phase::Waiting { retry_at_ms: 510 })
        ]
    );
    c.restart(20, 0, 4000, "again");
    assert_eq!(drain(&mut c), vec![], "nothing to restart while waiting");
    c.stop();
    assert_eq!(drain(&mut c), vec![Effect::StateChanged(Phase::Stopped)]);
    assert_eq!(c.poll_timeout(), None);
    c.handle(10_000, 0, Input::Timeout);
    assert_eq!(drain(&mut c), vec![]);
    c.start(10_000);
    assert_eq!(drain(&mut c), vec![Effect::StateChanged(Phase::Connecting), Effect::Connect { conn: 2 }]);
    let mut c = ready();
    c.stop();
    assert_eq!(
        drain(&mut c),
        vec![
            Effect::Close { conn: 1, code: close::NORMAL, reason: "stopped".into() },
            Effect::StateChanged(Phase::Stopped)
        ]
    );
}

#[test]
fn close_reasons_fit_a_close_frame() {
    assert_eq!(close_reason(&"é".repeat(100)).len(), 122);
    assert_eq!(close_reason("short"), "short");
}

proptest! {
    /// Whatever happens, in any order: no panic, a timeout is always in the future of the last input or absent
    /// only when idle/stopped, a wait never exceeds the cap, and effects only name the current or an older conn.
    #[test]
    fn random_inputs_keep_the_invariants(steps in proptest::collection::vec((0u8..8, 0u64..30_000, any::<u64>(), 0u8..6), 1..60)) {
        let mut c = GraphqlWs::new(POLICY, json!({"token": "t"}));
        c.start(0);
        let mut now = 0u64;
        let texts = [
            r#"{"type":"connection_ack"}"#, r#"{"type":"ping"}"#, r#"{"type":"pong"}"#,
            r#"{"id":"1","type":"next","payload":{"data":{}}}"#, r#"{"id":"1","type":"complete"}"#, "junk",
        ];
        for (kind, dt, random, pick) in steps {
            now += dt;
            let before = c.phase();
            let conn = c.conn().unwrap_or(0);
            let text = texts[usize::from(pick) % texts.len()];
            let codes = [4401u16, 4403, 4500, 1006, 4400, 1000];
            let code = codes[usize::from(pick) % codes.len()];
            match kind {
                0 => c.handle(now, random, Input::Opened { conn }),
                1 | 2 => c.handle(now, random, Input::Text { conn, text }),
                3 => c.handle(now, random, Input::Closed { conn, code, reason: "" }),
                4 => c.handle(now, random, Input::ConnectFailed { conn }),
                5 => { let _ = c.subscribe(&op()); }
                _ => if let Some(t) = c.poll_timeout() { now = now.max(t); c.handle(now, random, Input::Timeout) },
            }
            for e in drain(&mut c) {
                match e {
                    Effect::Connect { conn } | Effect::Send { conn, .. } | Effect::Close { conn, .. } => {
                        prop_assert!(conn <= c.last_conn)
                    }
                    _ => {}
                }
            }
            match c.phase() {
                Phase::Waiting { retry_at_ms } if before != c.phase() => {
                    prop_assert!(retry_at_ms > now && retry_at_ms - now <= POLICY.cap_ms)
                }
                Phase::Idle | Phase::Stopped => prop_assert!(c.poll_timeout().is_none()),
                _ => prop_assert!(c.poll_timeout().is_some()),
            }
        }
    }
}
