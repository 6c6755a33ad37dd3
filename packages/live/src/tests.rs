//! The live channel's rules, natively, with virtual time: each test drives a [`LiveChannel`] and
//! checks the frames, closes and answers it asks the shell for.

use crate::admission::{self, BotSeen, Refusal};
use crate::idle::IdleTimer;
use crate::subscribers::Incoming;
use crate::{Ctx, Effect, Ended, LiveChannel, PublishAnswer, Step, ROOM_POLL_MS};
use serde_json::json;
use switchboard_core::live::{close, STALL_GRACE_MS, WINDOW_FRAMES};
use switchboard_core::{ApiError, ErrorCode};

const T0: i64 = 1_700_000_000_000;

fn ctx(now: i64) -> Ctx<'static> {
    Ctx::at(now)
}

const BOT: &str = "bot:kiloclaw:sb1";

/// The published line inside a line frame (`{"type":"line","from":BOT,"line":...}`).
fn raw(frame: &str) -> &str {
    frame
        .strip_prefix(r#"{"type":"line","from":"bot:kiloclaw:sb1","line":"#)
        .and_then(|f| f.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not a line frame of the bot: {frame}"))
}

fn start(c: &LiveChannel) -> u64 {
    let (id, refused) = c.publish_start(BOT, false);
    assert!(refused.is_none());
    id
}

/// The published lines of the broadcasts among `effects`.
fn broadcasts(effects: &[Effect]) -> Vec<&str> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Broadcast(f) => Some(raw(f)),
            _ => None,
        })
        .collect()
}

fn closes(effects: &[Effect]) -> Vec<(&str, u16)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Close { tag, code, .. } => Some((tag.as_str(), *code)),
            _ => None,
        })
        .collect()
}

fn ack(c: &LiveChannel, tag: &str, received: u64, now: i64) -> Vec<Effect> {
    let frame = json!({"type": "ack", "received": received}).to_string();
    c.message(Some(tag), Incoming::Text(&frame), &ctx(now))
}

/// Feeds `body` and pumps until done or waiting; answers the step and every effect.
fn feed(c: &LiveChannel, id: u64, body: &str, now: i64) -> (Step, Vec<Effect>) {
    c.publish_chunk(id, body.as_bytes());
    c.pump(id, &ctx(now))
}

#[test]
fn lines_are_broadcast_as_they_complete_and_the_final_line_is_committed() {
    let c = LiveChannel::new();
    let id = start(&c);
    let (step, e) = feed(&c, id, "{\"delta\":\"a\"}\nnot json\n{\"del", T0);
    assert_eq!(step, Step::Done);
    assert_eq!(broadcasts(&e), vec!["{\"delta\":\"a\"}"]);
    let (_, e) = feed(
        &c,
        id,
        "ta\":\"b\"}\n{\"final\":true,\"content\":[{\"type\":\"text\",\"text\":\"ab\"}],\"clientId\":\"k\"}",
        T0,
    );
    assert_eq!(broadcasts(&e), vec!["{\"delta\":\"b\"}"]);
    c.publish_end(id);
    let (step, e) = c.pump(id, &ctx(T0));
    assert_eq!(step, Step::Done);
    assert_eq!(broadcasts(&e).len(), 1, "the last line without a newline still counts");
    let f = c.publish_finish(id).unwrap();
    assert_eq!((f.tally.delivered, f.tally.skipped_invalid, f.tally.skipped_too_long), (3, 1, 0));
    let committed = f.committed.unwrap();
    assert_eq!(committed.client_id.as_deref(), Some("k"));
    assert_eq!(c.publishes_in_progress(), 0);
    let answer = PublishAnswer::new(&f.tally, Some(Ok("m1".into())));
    let v = serde_json::to_value(&answer).unwrap();
    assert_eq!(
        v,
        json!({"delivered": 3, "skipped": 1, "skippedInvalid": 1, "skippedTooLong": 0, "ended": "complete", "messageId": "m1"})
    );
    let failed = PublishAnswer::new(&f.tally, Some(Err(ApiError::invalid("bad content"))));
    let v = serde_json::to_value(&failed).unwrap();
    assert!(v["messageId"].is_null() && v["commitError"]["code"] == json!("invalid_request"), "{v}");
}

#[test]
fn a_late_joiner_gets_what_the_publishes_in_progress_sent() {
    let c = LiveChannel::new();
    let id = start(&c);
    feed(&c, id, "{\"i\":1}\n{\"i\":2}\n", T0);
    let s = c.subscribe("late", &ctx(T0 + 1));
    assert_eq!(s.tag, "s:late");
    assert_eq!(s.replay.iter().map(|f| raw(f)).collect::<Vec<_>>(), vec!["{\"i\":1}", "{\"i\":2}"]);
    assert!(s.effects.is_empty());
    // The replayed frames count: acking two is fine, three is more than was sent.
    assert!(ack(&c, "s:late", 2, T0 + 2).is_empty());
    let e = ack(&c, "s:late", 3, T0 + 3);
    assert!(matches!(&e[..], [Effect::Reply(f)] if f.contains("invalid_request")), "{e:?}");
    // Once the publish is over, a new subscriber gets nothing.
    c.publish_end(id);
    c.pump(id, &ctx(T0));
    c.publish_finish(id).unwrap();
    assert!(c.subscribe("later", &ctx(T0 + 4)).replay.is_empty());
}

#[test]
fn a_stalled_subscriber_is_closed_after_one_window_and_the_grace() {
    let c = LiveChannel::new();
    let fast = c.subscribe("fast", &ctx(T0)).tag;
    let slow = c.subscribe("slow", &ctx(T0)).tag;
    let id = start(&c);
    let mut now = T0;
    // A window's worth of frames goes out without waiting; the fast subscriber acks as it reads
    // (in batches of 128: within its frame rate's burst).
    for i in 1..=WINDOW_FRAMES as u64 {
        let (step, e) = feed(&c, id, &format!("{{\"i\":{i}}}\n"), now);
        assert_eq!((step, broadcasts(&e).len()), (Step::Done, 1), "frame {i}");
        if i % 128 == 0 {
            assert!(ack(&c, &fast, i, now).is_empty());
        }
    }
    // The next line does not fit the slow one's window: the publish waits, polling.
    let (step, e) = feed(&c, id, "{\"i\":\"over\"}\n", now);
    assert_eq!(step, Step::WaitForRoom { retry_in_ms: ROOM_POLL_MS });
    assert!(e.is_empty());
    now += STALL_GRACE_MS - 1;
    let (step, e) = c.pump(id, &ctx(now));
    assert!(matches!(step, Step::WaitForRoom { .. }) && e.is_empty(), "still within the grace");
    now += 1;
    let (step, e) = c.pump(id, &ctx(now));
    assert_eq!(step, Step::Done);
    assert_eq!(closes(&e), vec![(slow.as_str(), close::TOO_SLOW)]);
    assert_eq!(broadcasts(&e), vec!["{\"i\":\"over\"}"], "the line goes on after the close");
    assert_eq!(c.subscriber_count(&ctx(now)), 1);
    // The next line does not wait: the fast subscriber has room.
    let (step, e) = feed(&c, id, "{\"i\":\"next\"}\n", now);
    assert_eq!((step, broadcasts(&e).len()), (Step::Done, 1));
}

#[test]
fn an_ack_during_the_grace_makes_room_and_nobody_is_closed() {
    let c = LiveChannel::new();
    let tag = c.subscribe("reader", &ctx(T0)).tag;
    let id = start(&c);
    for i in 1..=WINDOW_FRAMES as u64 {
        feed(&c, id, &format!("{{\"i\":{i}}}\n"), T0);
    }
    let (step, _) = feed(&c, id, "{\"i\":\"over\"}\n", T0);
    assert!(matches!(step, Step::WaitForRoom { .. }));
    assert!(ack(&c, &tag, 1, T0 + 500).is_empty());
    let (step, e) = c.pump(id, &ctx(T0 + 505));
    assert_eq!(step, Step::Done);
    assert!(closes(&e).is_empty());
    assert_eq!(broadcasts(&e).len(), 1);
    // The grace starts afresh for the next line that does not fit.
    let (step, _) = feed(&c, id, "{\"i\":\"again\"}\n", T0 + 600);
    assert!(matches!(step, Step::WaitForRoom { .. }));
    let (step, e) = c.pump(id, &ctx(T0 + 600 + STALL_GRACE_MS - 1));
    assert!(matches!(step, Step::WaitForRoom { .. }) && e.is_empty());
}

#[test]
fn bad_frames_are_answered_and_count_against_the_window() {
    let c = LiveChannel::new();
    let tag = c.subscribe("x", &ctx(T0)).tag;
    let e = c.message(Some(&tag), Incoming::Text("{\"type\":\"hello\"}"), &ctx(T0));
    assert!(matches!(&e[..], [Effect::Reply(f)] if f.contains("unknown_frame_type")), "{e:?}");
    let e = c.message(Some(&tag), Incoming::Binary, &ctx(T0));
    assert!(matches!(&e[..], [Effect::Reply(f)] if f.contains("binary")), "{e:?}");
    // Two error frames were sent: acking them is fine.
    assert!(ack(&c, &tag, 2, T0).is_empty());
    // A frame from a socket that is not a subscriber is answered too, and counted nowhere.
    let e = c.message(None, Incoming::Text("nope"), &ctx(T0));
    assert!(matches!(&e[..], [Effect::Reply(_)]));
    assert!(c.message(None, Incoming::Text("{\"type\":\"ack\",\"received\":1}"), &ctx(T0)).is_empty());
}

#[test]
fn windows_are_rebuilt_from_the_socket_tags_after_a_restart() {
    let c = LiveChannel::new();
    let tags = || vec!["s:a".to_string(), "s:b".to_string(), "other".to_string()];
    let with_sockets = Ctx { now_ms: T0, socket_tags: &tags };
    assert_eq!(c.subscriber_count(&with_sockets), 2);
    c.forget("s:a", &with_sockets);
    assert_eq!(c.subscriber_count(&with_sockets), 1);
    assert_eq!(crate::subscriber_tag(tags()), Some("s:a".to_string()));
    assert_eq!(crate::subscriber_tag(vec!["other".to_string()]), None);
}

#[test]
fn the_bot_going_offline_closes_everyone_and_stops_the_publish() {
    let c = LiveChannel::new();
    c.subscribe("a", &ctx(T0));
    let id = start(&c);
    feed(&c, id, "{\"i\":1}\n", T0);
    let e = c.bot_offline(&ctx(T0 + 1));
    assert_eq!(e, vec![Effect::CloseAll { code: close::BOT_OFFLINE, reason: "bot is not online" }]);
    assert_eq!(c.subscriber_count(&ctx(T0)), 0);
    let (_, e) = feed(&c, id, "{\"i\":2}\n", T0 + 2);
    assert!(e.is_empty(), "the rest of the body is dropped");
    c.publish_end(id);
    assert_eq!(c.publish_finish(id).unwrap_err().code, ErrorCode::BotOffline);
    // A publish that starts afterwards is not affected.
    let id = start(&c);
    let (_, e) = feed(&c, id, "{\"i\":3}\n", T0 + 3);
    assert_eq!(broadcasts(&e).len(), 1);
}

#[test]
fn a_refused_publish_reads_and_drops_its_body() {
    let c = LiveChannel::new();
    c.subscribe("a", &ctx(T0));
    let (id, _) = c.publish_start(BOT, true);
    let (_, e) = feed(&c, id, "{\"i\":1}\n{\"i\":2}", T0);
    c.publish_end(id);
    assert!(e.is_empty() && c.pump(id, &ctx(T0)).1.is_empty());
    assert_eq!(c.publish_finish(id).unwrap().tally.delivered, 0);
}

#[test]
fn admission() {
    assert_eq!(admission::bot_status(BotSeen { online: true }), Ok(()));
    assert_eq!(admission::bot_status(BotSeen { online: false }), Err(Refusal::BotOffline));
    let not_member = admission::conversation_refused(ApiError::not_found("no such conversation"));
    assert!(matches!(not_member, Refusal::NotVisible(_)));
    assert_eq!(not_member.clone().subscriber_close().unwrap().0, close::UNKNOWN_CONVERSATION);
    assert_eq!(not_member.into_error().code, ErrorCode::NotFound);
    let fault = admission::conversation_refused(ApiError::internal("boom"));
    assert!(fault.clone().subscriber_close().is_err());
    assert_eq!(Refusal::BotOffline.subscriber_close().unwrap().0, close::BOT_OFFLINE);
    assert_eq!(Refusal::BotOffline.into_error().code, ErrorCode::BotOffline);
}

#[test]
fn the_idle_timeout_counts_from_the_last_chunk() {
    let mut t = IdleTimer::new(30_000, i64::MAX, T0);
    assert_eq!(t.wait_ms(T0), 30_000);
    assert!(!t.expired(T0 + 29_999));
    t.chunk(T0 + 10_000);
    assert!(!t.expired(T0 + 39_999), "a chunk restarts the wait");
    assert_eq!(t.wait_ms(T0 + 39_999), 1);
    assert!(t.expired(T0 + 40_000));
    assert_eq!(t.wait_ms(T0 + 50_000), 0);
    assert_eq!(IdleTimer::new(0, i64::MAX, T0).wait_ms(T0), 1, "at least 1 ms");
    assert_eq!(serde_json::to_value(Ended::IdleTimeout).unwrap(), json!("idle_timeout"));
}

#[test]
fn the_byte_window_stalls_a_subscriber_that_reads_nothing() {
    use switchboard_core::live::WINDOW_BYTES;
    let c = LiveChannel::new();
    let slow = c.subscribe("slow", &ctx(T0)).tag;
    let id = start(&c);
    let line = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(60_000));
    let bytes = line.len() - 1;
    let fits = WINDOW_BYTES / bytes;
    for i in 0..fits {
        let (step, e) = feed(&c, id, &line, T0);
        assert_eq!((step, broadcasts(&e).len()), (Step::Done, 1), "line {i}");
    }
    let (step, _) = feed(&c, id, &line, T0);
    assert!(matches!(step, Step::WaitForRoom { .. }), "line {fits} is past the byte window");
    let (step, e) = c.pump(id, &ctx(T0 + STALL_GRACE_MS));
    assert_eq!(step, Step::Done);
    assert_eq!(closes(&e), vec![(slow.as_str(), close::TOO_SLOW)]);
}

#[test]
fn a_late_joiner_gets_every_publish_in_progress_in_arrival_order() {
    let c = LiveChannel::new();
    let first = start(&c);
    let second = start(&c);
    feed(&c, second, "{\"p\":2}\n", T0);
    feed(&c, first, "{\"p\":1}\n", T0);
    let s = c.subscribe("late", &ctx(T0));
    assert_eq!(
        s.replay.iter().map(|f| raw(f)).collect::<Vec<_>>(),
        vec!["{\"p\":1}", "{\"p\":2}"],
        "by publish, oldest publish first"
    );
    assert_eq!(c.publishes_in_progress(), 2);
    assert!(c.publish_finish(first).is_ok());
    assert!(c.publish_finish(first).is_err(), "finished twice");
}

#[test]
fn a_flooding_subscriber_gets_error_frames_then_is_closed() {
    use switchboard_core::limits::{close::RATE_LIMITED, Limits};
    use switchboard_core::rate::Rate;
    let c =
        LiveChannel::with_limits(Limits { socket_frames: Rate::per_sec(2, 2), flood_strikes: 2, ..Limits::DEFAULT });
    let a = c.subscribe("a", &ctx(T0)).tag;
    let b = c.subscribe("b", &ctx(T0)).tag;
    assert!(ack(&c, &a, 0, T0).is_empty());
    assert!(ack(&c, &a, 0, T0).is_empty());
    let e = ack(&c, &a, 0, T0);
    let Some(Effect::Reply(f)) = e.first() else { panic!("{e:?}") };
    let f: serde_json::Value = serde_json::from_str(f).unwrap();
    assert_eq!(
        (f["type"].as_str(), f["code"].as_str(), f["retryAfterMs"].as_u64()),
        (Some("error"), Some("rate_limited"), Some(500))
    );
    // Another subscriber has its own bucket.
    assert!(ack(&c, &b, 0, T0).is_empty());
    assert_eq!(closes(&ack(&c, &a, 0, T0)), vec![(a.as_str(), RATE_LIMITED)]);
    assert_eq!(c.subscriber_count(&ctx(T0)), 1);
    // A subscriber that acks at the rate is never refused.
    for i in 0..10 {
        assert!(ack(&c, &b, 0, T0 + 1_000 + i * 500).is_empty());
    }
}

#[test]
fn acks_of_new_frames_do_not_count_against_the_frame_rate() {
    use switchboard_core::limits::Limits;
    use switchboard_core::rate::Rate;
    let c =
        LiveChannel::with_limits(Limits { socket_frames: Rate::per_sec(2, 2), flood_strikes: 2, ..Limits::DEFAULT });
    let a = c.subscribe("a", &ctx(T0)).tag;
    let id = start(&c);
    // A subscriber acking every line of a fast stream, far over 2 frames per second: never refused.
    for n in 1..=50u64 {
        let (_, e) = feed(&c, id, &format!("{{\"n\":{n}}}\n"), T0);
        assert_eq!(broadcasts(&e).len(), 1);
        assert!(ack(&c, &a, n, T0).is_empty(), "ack {n}");
    }
    // A repeated ack releases nothing: counted, so the third is refused.
    assert!(ack(&c, &a, 50, T0).is_empty());
    assert!(ack(&c, &a, 50, T0).is_empty());
    assert!(matches!(ack(&c, &a, 50, T0).first(), Some(Effect::Reply(_))));
}

#[test]
fn only_the_bot_publishes_unless_widened() {
    use admission::{may_publish, Publishers};
    assert_eq!(Publishers::from_config(None), Publishers::Bot);
    assert_eq!(Publishers::from_config(Some("bot")), Publishers::Bot);
    assert_eq!(Publishers::from_config(Some("everyone")), Publishers::Bot, "a typo keeps the default");
    assert_eq!(Publishers::from_config(Some("members")), Publishers::Members);
    assert!(may_publish(Publishers::Bot, BOT, "sb1").is_ok());
    let refused = may_publish(Publishers::Bot, "alice", "sb1").unwrap_err();
    assert_eq!(refused.clone().into_error().status(), 403);
    assert!(may_publish(Publishers::Bot, "bot:kiloclaw:sb2", "sb1").is_err(), "another sandbox's bot");
    assert!(may_publish(Publishers::Members, "alice", "sb1").is_ok());
}

#[test]
fn every_frame_names_its_publisher() {
    let c = LiveChannel::new();
    let (id, _) = c.publish_start("alice", false);
    let (_, e) = feed(&c, id, "{\"from\":\"bot:kiloclaw:sb1\"}\n", T0);
    let frames: Vec<serde_json::Value> = e
        .iter()
        .filter_map(|e| match e {
            Effect::Broadcast(f) => serde_json::from_str(f).ok(),
            _ => None,
        })
        .collect();
    assert_eq!(frames, vec![json!({"type": "line", "from": "alice", "line": {"from": "bot:kiloclaw:sb1"}})]);
}

#[test]
fn concurrent_publishes_are_capped_and_a_slot_frees_when_one_ends() {
    use switchboard_core::live::MAX_CONCURRENT_PUBLISHES;
    let c = LiveChannel::new();
    let ids: Vec<u64> = (0..MAX_CONCURRENT_PUBLISHES).map(|_| start(&c)).collect();
    assert_eq!(c.room_for_publish().unwrap_err().code, ErrorCode::TooManyPublishes);
    let (over, refused) = c.publish_start(BOT, false);
    assert_eq!(refused.map(|e| (e.code, e.status())), Some((ErrorCode::TooManyPublishes, 409)));
    // The refused publish's body is dropped: nothing is delivered.
    let (_, e) = feed(&c, over, "{\"x\":1}\n", T0);
    assert!(broadcasts(&e).is_empty());
    c.publish_finish(over).unwrap();
    assert!(c.room_for_publish().is_err(), "a refused publish never held a slot, the others still do");
    c.publish_finish(ids[0]).unwrap();
    assert!(c.room_for_publish().is_ok());
}

#[test]
fn a_publish_ends_at_its_maximum_duration_even_when_busy() {
    let mut t = IdleTimer::new(30_000, 60_000, T0);
    for s in 1..=59 {
        t.chunk(T0 + s * 1_000);
        assert!(!t.expired(T0 + s * 1_000));
    }
    assert_eq!(t.wait_ms(T0 + 59_000), 1_000, "the end comes before the idle timeout would");
    assert!(t.expired(T0 + 60_000));
    assert_eq!(t.ending(T0 + 60_000), Ended::MaxDuration);
    let idle = IdleTimer::new(30_000, 60_000, T0);
    assert_eq!(idle.ending(T0 + 30_000), Ended::IdleTimeout);
    assert_eq!(serde_json::to_value(Ended::MaxDuration).unwrap(), json!("max_duration"));
}

/// A membership that ends while a subscription of that member is being admitted refuses it; other
/// members' admissions, and later ones, are not affected.
#[test]
fn a_membership_that_ends_during_an_admission_refuses_it() {
    let mut a = admission::Admissions::default();
    a.begin("bob");
    a.begin("bob");
    a.begin("carol");
    a.membership_ended("bob");
    a.membership_ended("dave"); // nobody being admitted: nothing kept
    assert!(a.end("bob") && a.end("bob"), "both of bob's admissions in progress");
    assert!(!a.end("carol"));
    // Done: a new admission of bob is not marked, and an end without a begin is not either.
    a.begin("bob");
    assert!(!a.end("bob"));
    assert!(!a.end("dave"));
}
