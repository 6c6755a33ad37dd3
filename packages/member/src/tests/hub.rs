//! The hub: connect, subscriptions and watches, delivery and the ack window, resume.

use super::*;
use crate::WatchCall;
use switchboard_core::hub::{
    self as rules, close, Delivery, HUB_REPLAY_WINDOW, MAX_CONTEXTS, MAX_DELIVERIES_PER_CALL, MAX_UNACKED,
};
use switchboard_core::ErrorCode;
use switchboard_sqlite_store::FailingStore;

fn watch(conv: &str, watching: bool, present: bool) -> WatchCall {
    WatchCall { member: "alice".into(), conversation_id: conv.into(), watching, present }
}

fn types(frames: &[String]) -> Vec<String> {
    frames
        .iter()
        .map(|f| {
            let v = frame(f);
            let t = if v["type"] == "event" { &v["event"] } else { &v["type"] };
            t.as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn a_new_socket_gets_hello_then_ready_and_arms_the_sweep() {
    let mut sim = Sim::new();
    let (i, c, e) = sim.connect(None, None).unwrap();
    assert_eq!(c.session.len(), 32);
    assert!(c.session.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(c.replace.is_empty());
    assert_eq!(
        frame(&c.frames[0]),
        json!({"type": "hello", "sessionId": c.session, "seq": 0, "member": "alice", "contexts": [], "restored": false})
    );
    assert_eq!(frame(&c.frames[1]), json!({"type": "ready", "seq": 0}));
    assert_eq!(e.alarm_at, Some(T0 + rules::SWEEP_EVERY_MS));
    assert_eq!(i, 0);
    // Bad `since` or `session`: refused, nothing stored.
    let before = sim.m.store().dump();
    assert_eq!(sim.connect(Some("-1"), None).unwrap_err().code, ErrorCode::InvalidRequest);
    assert_eq!(sim.connect(None, Some("xyz")).unwrap_err().code, ErrorCode::InvalidRequest);
    assert_eq!(sim.m.store().dump(), before);
}

#[test]
fn subscriptions_follow_the_list_and_drive_watches() {
    let mut sim = Sim::new();
    sim.join(C1, None, T0);
    let s = sim.open();
    let (frames, e) = sim.subscribe(s, &[conv_ctx(C1), presence_ctx(C1), conv_ctx(C2), "/presence/app".into()]);
    assert_eq!(frames[0]["code"], "forbidden_context");
    assert_eq!(frames[0]["context"], json!(conv_ctx(C2)));
    assert_eq!(
        frames[1],
        json!({"type": "context.subscribed", "contexts": [conv_ctx(C1), presence_ctx(C1), "/presence/app"]})
    );
    assert_eq!(e.watches, vec![watch(C1, true, true)]);
    // Dropping presence keeps the watch but ends presence; dropping the rest unwatches.
    let (r, e) = sim.frame(s, &json!({"type": "context.unsubscribe", "contexts": [presence_ctx(C1)]}).to_string());
    assert_eq!(frame(&r.frames[0]), json!({"type": "context.unsubscribed", "contexts": [presence_ctx(C1)]}));
    assert_eq!(e.watches, vec![watch(C1, true, false)]);
    let (_, e) = sim.frame(s, &json!({"type": "context.unsubscribe", "contexts": [conv_ctx(C1)]}).to_string());
    assert_eq!(e.watches, vec![watch(C1, false, false)]);
    // Bad frames are answered with errors and change nothing.
    for (text, code) in [("nope", "bad_frame"), (r#"{"type":"dance"}"#, "unknown_frame_type")] {
        let (r, e) = sim.frame(s, text);
        assert_eq!(frame(&r.frames[0])["code"], code);
        assert!(e.is_empty());
    }
    let (r, _) = sim.m.socket_frame(0, crate::hub::sessions::Incoming::Binary, &sim.ctx());
    assert_eq!(frame(&r.frames[0])["code"], "binary_not_supported");
}

/// A subscribe or unsubscribe frame lists at most `MAX_CONTEXTS` contexts and is taken with each
/// once; a session at its cap looks none of them up.
#[test]
fn context_frames_are_bounded_deduplicated_and_capped_before_any_lookup() {
    let mut sim = Sim::over(FailingStore::new());
    sim.join(C1, None, T0);
    let s = sim.open();
    // The frame's answer and how many statements it ran.
    let send = |sim: &Sim<FailingStore>, kind: &str, list: &[String]| {
        sim.m.store().count.set(0);
        let (r, e) = sim.frame(s, &json!({"type": kind, "contexts": list}).to_string());
        (r.frames.iter().map(|f| frame(f)).collect::<Vec<Value>>(), e, sim.m.store().count.get())
    };
    let many: Vec<String> = (0..=MAX_CONTEXTS).map(|i| format!("/kiloclaw/sb{i}")).collect();
    let before = sim.m.store().inner.dump();
    for kind in ["context.subscribe", "context.unsubscribe"] {
        let (frames, e, statements) = send(&sim, kind, &many);
        assert_eq!(frames.len(), 1, "{kind}");
        assert_eq!(frames[0]["code"], "invalid_request", "{kind}");
        assert!(e.is_empty() && statements == 0, "{kind}: {e:?}, {statements} statements");
    }
    assert_eq!(sim.m.store().inner.dump(), before, "nothing stored");
    // A full session: contexts past its cap are dropped without a lookup each.
    let (frames, _, _) = send(&sim, "context.subscribe", &many[..MAX_CONTEXTS]);
    assert_eq!(frames[0]["contexts"].as_array().map(Vec::len), Some(MAX_CONTEXTS));
    let convs: Vec<String> = (0..MAX_CONTEXTS).map(|i| conv_ctx(&format!("01ARZ3NDEKTSV4RRFFQ69G{i:04}"))).collect();
    let (frames, _, statements) = send(&sim, "context.subscribe", &convs);
    assert_eq!(frames[0]["code"], "too_many_contexts");
    assert_eq!(frames[1], json!({"type": "context.subscribed", "contexts": []}));
    assert!(statements < 10, "{statements} statements");
    // Listed over and over, a context is unsubscribed and subscribed once.
    let (frames, _, statements) = send(&sim, "context.unsubscribe", &vec![many[0].clone(); MAX_CONTEXTS]);
    assert_eq!(frames, vec![json!({"type": "context.unsubscribed", "contexts": [many[0]]})]);
    assert!(statements < 10, "{statements} statements");
    let (frames, e, _) = send(&sim, "context.subscribe", &vec![conv_ctx(C1); MAX_CONTEXTS]);
    assert_eq!(frames, vec![json!({"type": "context.subscribed", "contexts": [conv_ctx(C1)]})]);
    assert_eq!(e.watches, vec![watch(C1, true, false)]);
}

#[test]
fn a_typing_frame_is_forwarded_to_the_conversation() {
    let mut sim = Sim::new();
    let s = sim.open();
    let (r, e) = sim.frame(s, &json!({"type": "typing.stop", "conversationId": C1}).to_string());
    let t = r.typing.unwrap();
    assert_eq!((t.member.as_str(), t.conversation_id.as_str(), t.stop), ("alice", C1, true));
    assert!(r.frames.is_empty() && e.is_empty());
}

/// A member of C1 and C2 with two sockets subscribed to these contexts.
fn two_sockets(a_subs: &[String], b_subs: &[String]) -> (Sim, usize, usize) {
    let mut sim = Sim::new();
    sim.join(C1, None, T0);
    sim.join(C2, None, T0);
    let a = sim.open();
    let b = sim.open();
    sim.subscribe(a, a_subs);
    sim.subscribe(b, b_subs);
    (sim, a, b)
}

#[test]
fn an_event_goes_to_subscribed_sockets_with_the_next_seq() {
    let (sim, a, b) = two_sockets(&[conv_ctx(C1)], &[conv_ctx(C2)]);
    let e = sim.deliver(&conv_ctx(C1), "message.created", false);
    let got = received(&e);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, a);
    assert_eq!(
        got[0].1,
        json!({"type": "event", "context": conv_ctx(C1), "event": "message.created", "payload": {"n": 1}, "seq": 3})
    );
    // Ephemeral events carry no seq and take none.
    let got = received(&sim.deliver(&conv_ctx(C2), "typing", true));
    assert_eq!((got[0].0, got[0].1.get("seq")), (b, None));
    let got = received(&sim.deliver(&conv_ctx(C2), "message.created", false));
    assert_eq!(got[0].1["seq"], 4);
}

#[test]
fn too_many_unacked_events_close_the_socket_after_a_first_ack() {
    let mut sim = Sim::new();
    sim.join(C1, None, T0);
    let s = sim.open();
    sim.subscribe(s, &[conv_ctx(C1)]);
    // Never acked: never closed.
    for _ in 0..2 * MAX_UNACKED {
        assert!(sim.deliver(&conv_ctx(C1), "message.created", false).closes.is_empty());
    }
    let latest = sim.m.latest_seq().unwrap();
    sim.frame(s, &json!({"type": "ack", "seq": latest}).to_string());
    for _ in 0..MAX_UNACKED {
        assert!(sim.deliver(&conv_ctx(C1), "message.created", false).closes.is_empty());
    }
    let e = sim.deliver(&conv_ctx(C1), "message.created", false);
    assert_eq!(received(&e).len(), 1, "the event that overflows is still sent");
    assert_eq!(e.closes, vec![(s, close::TOO_MANY_UNACKED, "too many unacked events")]);
    // The session is over: nothing more goes to that socket, and it can be resumed.
    assert!(received(&sim.deliver(&conv_ctx(C1), "message.created", false)).is_empty());
}

fn delivery(context: String, n: usize, ephemeral: bool) -> Delivery {
    let event = if ephemeral { "typing" } else { "message.created" };
    Delivery { context, event: event.into(), payload: json!({"n": n}), ephemeral }
}

#[test]
fn deliver_all_is_each_deliver_in_order_in_one_command() {
    let (sim, a, b) = two_sockets(&[conv_ctx(C1)], &[conv_ctx(C1), conv_ctx(C2)]);
    let before = sim.m.latest_seq().unwrap();
    let events = vec![
        delivery(conv_ctx(C1), 0, false),
        delivery(conv_ctx(C2), 1, false),
        delivery(conv_ctx(C1), 2, true),
        delivery(conv_ctx(C1), 3, false),
    ];
    let (r, e) = sim.ok(Command::DeliverAll { events });
    assert_eq!(r.status, 204);
    // One send per event, in order, each to the sockets subscribed to its context.
    let got: Vec<(usize, u64, Option<u64>)> = received(&e)
        .iter()
        .map(|(i, f)| (*i, f["payload"]["n"].as_u64().unwrap_or(99), f.get("seq").and_then(Value::as_u64)))
        .collect();
    let s = |k| Some(before + k);
    assert_eq!(
        got,
        vec![(a, 0, s(1)), (b, 0, s(1)), (b, 1, s(2)), (a, 2, None), (b, 2, None), (a, 3, s(3)), (b, 3, s(3))]
    );
    assert_eq!(sim.m.latest_seq().unwrap(), before + 3);
    // Bounded: past the cap nothing is logged.
    let too_many: Vec<Delivery> = (0..=MAX_DELIVERIES_PER_CALL).map(|n| delivery(conv_ctx(C1), n, false)).collect();
    let (r, e) = sim.run(Command::DeliverAll { events: too_many });
    assert_eq!(r.map(|_| ()).unwrap_err().status(), 400);
    assert!(e.is_empty());
    assert_eq!(sim.m.latest_seq().unwrap(), before + 3);
}

#[test]
fn a_resumed_session_gets_exactly_what_it_missed_in_order() {
    let mut sim = Sim::new();
    sim.join(C1, None, T0);
    sim.join(C2, None, T0);
    let s = sim.open();
    sim.subscribe(s, &[conv_ctx(C1), presence_ctx(C1)]);
    let session = sim.session(s);
    let seen = received(&sim.deliver(&conv_ctx(C1), "message.created", false))[0].1["seq"].as_u64().unwrap();
    sim.now += 1_000;
    let e = sim.close(s);
    // Closed, the session still watches (its events are logged for it) but is not present.
    assert_eq!(e.watches, vec![watch(C1, true, false)]);
    assert_eq!(e.alarm_at, Some(sim.now + rules::RESUME_KEEP_MS + 1));
    sim.deliver(&conv_ctx(C1), "message.created", false);
    sim.deliver(&conv_ctx(C2), "message.created", false);
    sim.deliver(&conv_ctx(C1), "message.updated", false);
    let since = seen.to_string();
    let (_, c, e) = sim.connect(Some(&since), Some(&session)).unwrap();
    assert_eq!(c.session, session);
    let hello = frame(&c.frames[0]);
    assert_eq!((hello["restored"].clone(), hello["seq"].clone()), (json!(true), json!(seen + 3)));
    assert_eq!(hello["contexts"], json!([conv_ctx(C1), presence_ctx(C1)]));
    assert_eq!(types(&c.frames), vec!["hello", "message.created", "message.updated", "ready"]);
    assert_eq!(e.watches, vec![watch(C1, true, true)], "present again");
    // Without a session, `since` resumes the most recently closed one.
    let last = sim.sockets.len() - 1;
    sim.now += 1_000;
    sim.close(last);
    let (_, c, _) = sim.connect(Some(&since), None).unwrap();
    assert_eq!(c.session, session);
    assert_eq!(types(&c.frames), vec!["hello", "message.created", "message.updated", "ready"]);
}

#[test]
fn an_unknown_session_or_a_since_outside_the_log_resyncs() {
    let mut sim = Sim::new();
    let (_, c, _) = sim.connect(Some("0"), Some(&"a".repeat(32))).unwrap();
    assert_eq!(types(&c.frames), vec!["hello", "resync", "ready"]);
    assert_eq!(frame(&c.frames[0])["restored"], json!(false));
    sim.join(C1, None, T0);
    let s = sim.open();
    sim.subscribe(s, &[instance()]);
    let session = sim.session(s);
    sim.close(s);
    for _ in 0..HUB_REPLAY_WINDOW + 1 {
        sim.deliver(&instance(), "bot.status", false);
    }
    let (_, c, _) = sim.connect(Some("1"), Some(&session)).unwrap();
    assert_eq!(types(&c.frames), vec!["hello", "resync", "ready"], "seq 2 is no longer kept");
    let last = sim.sockets.len() - 1;
    sim.close(last);
    let (_, c, _) = sim.connect(Some("2"), Some(&session)).unwrap();
    assert_eq!(c.frames.len(), HUB_REPLAY_WINDOW as usize + 2, "hello, the whole window, ready");
}

#[test]
fn reconnecting_a_session_replaces_its_open_socket() {
    let mut sim = Sim::new();
    sim.join(C1, None, T0);
    let old = sim.open();
    sim.subscribe(old, &[conv_ctx(C1)]);
    let session = sim.session(old);
    let (new, c, _) = sim.connect(Some("0"), Some(&session)).unwrap();
    assert_eq!(c.replace, vec![old]);
    assert!(sim.sockets[old].as_ref().unwrap().replaced);
    // Only the new socket gets events; the replaced one closing changes nothing.
    assert_eq!(
        received(&sim.deliver(&conv_ctx(C1), "message.created", false)).iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![new]
    );
    let e = sim.close(old);
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(received(&sim.deliver(&conv_ctx(C1), "message.created", false)).len(), 1);
}

#[test]
fn leaving_a_conversation_drops_its_subscriptions_and_watch() {
    let mut sim = Sim::new();
    sim.join(C1, None, T0);
    let s = sim.open();
    sim.subscribe(s, &[instance(), conv_ctx(C1), presence_ctx(C1)]);
    let (_, e) = sim.ok(Command::Remove { conversation_id: C1.into(), removed_by: None });
    assert_eq!(received(&e)[0].1["event"], "conversation.left");
    assert_eq!(e.watches, vec![watch(C1, false, false)]);
    let (_, c, _) = sim.connect(None, Some(&sim.session(s))).unwrap();
    assert_eq!(frame(&c.frames[0])["contexts"], json!([instance()]));
}

#[test]
fn a_resume_over_the_byte_cap_resyncs_and_counts_only_the_sessions_contexts() {
    use switchboard_core::limits::MAX_REPLAY_BYTES;
    let mut sim = Sim::new();
    sim.join(C1, None, T0);
    sim.join(C2, None, T0);
    let s = sim.open();
    sim.subscribe(s, &[conv_ctx(C1)]);
    let session = sim.session(s);
    sim.close(s);
    let big = |context: String| Command::Deliver {
        context,
        event: "message.created".into(),
        payload: json!({"text": "x".repeat(100_000)}),
        ephemeral: false,
    };
    // Over 4 MiB logged for a context the session does not follow: its resume is not affected.
    for _ in 0..(MAX_REPLAY_BYTES / 100_000 + 2) {
        sim.ok(big(conv_ctx(C2)));
    }
    let (_, c, _) = sim.connect(Some("0"), Some(&session)).unwrap();
    assert_eq!(types(&c.frames), vec!["hello", "ready"], "nothing of its own was missed");
    let last = sim.sockets.len() - 1;
    sim.close(last);
    // Just under the cap of its own: replayed.
    let fits = MAX_REPLAY_BYTES / 100_100 - 1;
    for _ in 0..fits {
        sim.ok(big(conv_ctx(C1)));
    }
    let (_, c, _) = sim.connect(Some("0"), Some(&session)).unwrap();
    assert_eq!(c.frames.len(), fits + 2, "hello, every missed event, ready");
    let last = sim.sockets.len() - 1;
    sim.close(last);
    // Over it: resync, and nothing of the log is sent.
    for _ in 0..3 {
        sim.ok(big(conv_ctx(C1)));
    }
    let (_, c, _) = sim.connect(Some("0"), Some(&session)).unwrap();
    assert_eq!(types(&c.frames), vec!["hello", "resync", "ready"]);
}
