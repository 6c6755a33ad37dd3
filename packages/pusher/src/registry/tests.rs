use super::state::ChannelState;
use super::*;
use crate::auth;
use crate::channel::{self, ChannelKind};
use crate::http_api::ChannelInfo;
use crate::limits::{
    close, CLIENT_EVENT_BURST, MAX_CHANNELS_PER_SOCKET, MAX_CONSECUTIVE_REFUSED_CLIENT_EVENTS, MAX_EVENT_DATA_BYTES,
    MAX_PRESENCE_MEMBERS, MAX_RECORD_BYTES,
};

mod rebuild;

fn app() -> App {
    App::new("1", "key", "secret")
}

fn sid(n: u64) -> SocketId {
    SocketId::from_random(n, n)
}

fn connected(n: u64) -> (Registry, SocketId) {
    let mut r = Registry::new(app());
    let s = sid(n);
    r.connect(s.clone());
    (r, s)
}

fn sub_private(r: &mut Registry, s: &SocketId, ch: &str) -> Vec<Effect> {
    let auth = auth::sign_channel(&app(), s.as_str(), ch, None);
    r.subscribe(s, ch, Some(&auth), None)
}

/// A private subscription whose auth names `user` (as our `/pusher/auth` signs it).
fn sub_private_for(r: &mut Registry, s: &SocketId, ch: &str, user: &str) -> Vec<Effect> {
    let auth = auth::sign_private_for(&app(), s.as_str(), ch, user);
    r.subscribe(s, ch, Some(&auth), None)
}

fn sub_presence(r: &mut Registry, s: &SocketId, ch: &str, user: &str, info: Option<&str>) -> Vec<Effect> {
    let cd = match info {
        Some(i) => format!(r#"{{"user_id":"{user}","user_info":{i}}}"#),
        None => format!(r#"{{"user_id":"{user}"}}"#),
    };
    let auth = auth::sign_channel(&app(), s.as_str(), ch, Some(&cd));
    r.subscribe(s, ch, Some(&auth), Some(&cd))
}

fn sends_to(effects: &[Effect], socket: &SocketId) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { socket: s, frame } if s == socket => Some(frame.clone()),
            Effect::Broadcast(d) if d.sockets.contains(socket) => Some(d.frame.clone()),
            _ => None,
        })
        .collect()
}

fn webhooks(effects: &[Effect]) -> Vec<WebhookEvent> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Webhook(w) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn connect_answers_the_handshake() {
    let mut r = Registry::new(app());
    let s = SocketId::parse("123.456").unwrap();
    assert_eq!(
        r.connect(s.clone()),
        vec![
            Effect::Send {
                socket: s.clone(),
                frame: r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":30}"}"#.into()
            },
            Effect::SaveRecord { socket: s.clone() }
        ]
    );
    assert_eq!(
        r.handle_frame(&s, r#"{"event":"pusher:ping","data":{}}"#, 0),
        vec![Effect::Send { socket: s.clone(), frame: r#"{"event":"pusher:pong","data":"{}"}"#.into() }]
    );
    // a stranger is told to reconnect
    assert!(matches!(r.handle_frame(&sid(9), "{}", 0)[..], [Effect::Close { code: 4200, .. }]));
}

#[test]
fn public_subscribe_and_publish() {
    let (mut r, a) = connected(1);
    let b = sid(2);
    r.connect(b.clone());
    let e = r.handle_frame(&a, r#"{"event":"pusher:subscribe","data":{"channel":"news"}}"#, 0);
    assert_eq!(
        e,
        vec![
            Effect::Webhook(WebhookEvent::ChannelOccupied { channel: "news".into() }),
            Effect::Send {
                socket: a.clone(),
                frame: r#"{"event":"pusher_internal:subscription_succeeded","channel":"news","data":"{}"}"#.into()
            },
            Effect::SaveRecord { socket: a.clone() },
        ]
    );
    let e = r.subscribe(&b, "news", None, None);
    assert!(webhooks(&e).is_empty());
    let d = r.publish("news", "update", r#"{"x":1}"#, Some(&a)).unwrap();
    assert_eq!(d.sockets, vec![b.clone()]);
    assert_eq!(d.frame, r#"{"event":"update","channel":"news","data":"{\"x\":1}"}"#);
    assert_eq!(r.publish("news", "update", "d", None).unwrap().sockets.len(), 2);
    assert_eq!(r.publish("empty", "update", "d", None), None);
    assert_eq!(r.channel_info("news"), ChannelInfo { subscription_count: 2, user_count: None });
    // leaving
    assert!(webhooks(&r.unsubscribe(&a, "news")).is_empty());
    assert_eq!(webhooks(&r.disconnect(&b)), vec![WebhookEvent::ChannelVacated { channel: "news".into() }]);
    assert_eq!(r.channels(None), vec![]);
    assert_eq!(r.unsubscribe(&a, "news"), vec![]);
}

#[test]
fn private_channels_need_a_valid_auth() {
    let (mut r, a) = connected(1);
    let e = r.subscribe(&a, "private-x", None, None);
    assert_eq!(
        e,
        vec![Effect::Send {
            socket: a.clone(),
            frame: r#"{"event":"pusher:subscription_error","channel":"private-x","data":"{\"type\":\"AuthError\",\"error\":\"auth is required for this channel\",\"status\":403}"}"#.into()
        }]
    );
    // signed for another socket
    let other = auth::sign_channel(&app(), "9.9", "private-x", None);
    assert!(sends_to(&r.subscribe(&a, "private-x", Some(&other), None), &a)[0].contains("invalid signature"));
    assert!(sends_to(&sub_private(&mut r, &a, "private-x"), &a)[0].contains("subscription_succeeded"));
    // encrypted and invalid names are refused
    let auth = auth::sign_channel(&app(), a.as_str(), "private-encrypted-x", None);
    assert!(sends_to(&r.subscribe(&a, "private-encrypted-x", Some(&auth), None), &a)[0].contains("UnsupportedChannel"));
    assert!(sends_to(&r.subscribe(&a, "bad name", None, None), &a)[0].contains(r#"\"status\":400"#));
}

#[test]
fn presence_two_tabs_are_one_member() {
    let mut r = Registry::new(app());
    let (a1, a2, b) = (sid(1), sid(2), sid(3));
    for s in [&a1, &a2, &b] {
        r.connect(s.clone());
    }
    let ch = "presence-room";
    let e = sub_presence(&mut r, &b, ch, "bob", Some(r#"{"name":"Bob"}"#));
    assert_eq!(
        sends_to(&e, &b),
        vec![r#"{"event":"pusher_internal:subscription_succeeded","channel":"presence-room","data":"{\"presence\":{\"ids\":[\"bob\"],\"hash\":{\"bob\":{\"name\":\"Bob\"}},\"count\":1}}"}"#.to_string()]
    );
    assert_eq!(
        webhooks(&e),
        vec![
            WebhookEvent::ChannelOccupied { channel: ch.into() },
            WebhookEvent::MemberAdded { channel: ch.into(), user_id: "bob".into() }
        ]
    );
    // alice's first tab: bob hears member_added once
    let e = sub_presence(&mut r, &a1, ch, "alice", Some(r#"{"name":"Alice"}"#));
    assert_eq!(
        sends_to(&e, &b),
        vec![r#"{"event":"pusher_internal:member_added","channel":"presence-room","data":"{\"user_id\":\"alice\",\"user_info\":{\"name\":\"Alice\"}}"}"#.to_string()]
    );
    assert!(sends_to(&e, &a1)[0].contains(r#"\"count\":2"#));
    // her second tab: nobody hears anything, no webhook
    let e = sub_presence(&mut r, &a2, ch, "alice", Some(r#"{"name":"Alice"}"#));
    assert!(sends_to(&e, &b).is_empty());
    assert!(sends_to(&e, &a1).is_empty());
    assert!(webhooks(&e).is_empty());
    assert!(sends_to(&e, &a2)[0].contains(r#"\"count\":2"#));
    assert_eq!(r.channel_info(ch), ChannelInfo { subscription_count: 3, user_count: Some(2) });
    assert_eq!(r.presence_users(ch), vec!["alice", "bob"]);
    // closing one tab: nothing; the last: member_removed to bob only
    let e = r.disconnect(&a1);
    assert!(e.is_empty(), "{e:?}");
    let e = r.unsubscribe(&a2, ch);
    assert_eq!(
        sends_to(&e, &b),
        vec![
            r#"{"event":"pusher_internal:member_removed","channel":"presence-room","data":"{\"user_id\":\"alice\"}"}"#
                .to_string()
        ]
    );
    assert_eq!(webhooks(&e), vec![WebhookEvent::MemberRemoved { channel: ch.into(), user_id: "alice".into() }]);
    let e = r.disconnect(&b);
    assert_eq!(
        webhooks(&e),
        vec![
            WebhookEvent::MemberRemoved { channel: ch.into(), user_id: "bob".into() },
            WebhookEvent::ChannelVacated { channel: ch.into() }
        ]
    );
}

#[test]
fn presence_needs_signed_channel_data_and_has_a_member_limit() {
    let (mut r, a) = connected(1);
    let auth = auth::sign_channel(&app(), a.as_str(), "presence-x", None);
    assert!(sends_to(&r.subscribe(&a, "presence-x", Some(&auth), None), &a)[0].contains("AuthError"));
    // channel_data changed after signing
    let cd = r#"{"user_id":"1"}"#;
    let auth = auth::sign_channel(&app(), a.as_str(), "presence-x", Some(cd));
    assert!(sends_to(&r.subscribe(&a, "presence-x", Some(&auth), Some(r#"{"user_id":"2"}"#)), &a)[0]
        .contains("invalid signature"));
    for i in 0..MAX_PRESENCE_MEMBERS as u64 {
        let s = sid(100 + i);
        r.connect(s.clone());
        assert!(sends_to(&sub_presence(&mut r, &s, "presence-x", &format!("u{i}"), None), &s)[0].contains("succeeded"));
    }
    let s = sid(99);
    r.connect(s.clone());
    assert!(sends_to(&sub_presence(&mut r, &s, "presence-x", "late", None), &s)[0].contains("LimitReached"));
    // an existing member's new tab still gets in
    assert!(sends_to(&sub_presence(&mut r, &s, "presence-x", "u0", None), &s)[0].contains("succeeded"));
}

#[test]
fn client_events() {
    let mut r = Registry::new(app());
    let (a, b, c) = (sid(1), sid(2), sid(3));
    for s in [&a, &b, &c] {
        r.connect(s.clone());
    }
    sub_presence(&mut r, &a, "presence-p", "alice", None);
    sub_presence(&mut r, &b, "presence-p", "bob", None);
    sub_private(&mut r, &c, "private-q");
    let e = r.handle_frame(&a, r#"{"event":"client-typing","channel":"presence-p","data":{"on":true}}"#, 0);
    assert_eq!(
        e,
        vec![
            Effect::Broadcast(Delivery {
                frame: r#"{"event":"client-typing","channel":"presence-p","data":"{\"on\":true}","user_id":"alice"}"#
                    .into(),
                sockets: vec![b.clone()]
            }),
            Effect::Webhook(WebhookEvent::ClientEvent {
                channel: "presence-p".into(),
                event: "client-typing".into(),
                data: r#"{"on":true}"#.into(),
                socket_id: a.to_string(),
                user_id: Some("alice".into())
            })
        ]
    );
    // alone on a private channel: no frame, no user_id, the webhook still fires
    let e = r.client_event(&c, "private-q", "client-x", "d", 0);
    assert_eq!(
        e,
        vec![Effect::Webhook(WebhookEvent::ClientEvent {
            channel: "private-q".into(),
            event: "client-x".into(),
            data: "d".into(),
            socket_id: c.to_string(),
            user_id: None
        })]
    );
    let refused = |e: Vec<Effect>| match &e[..] {
        [Effect::Send { frame, .. }] => frame.contains(r#"\"code\":null"#) && frame.contains("rejected"),
        _ => false,
    };
    assert!(refused(r.client_event(&c, "presence-p", "client-x", "d", 0)), "not subscribed");
    assert!(refused(r.client_event(&c, "private-q", "typing", "d", 0)), "not a client- name");
    r.subscribe(&c, "open", None, None);
    assert!(refused(r.client_event(&c, "open", "client-x", "d", 0)), "public channel");
    let big = "x".repeat(MAX_EVENT_DATA_BYTES + 1);
    assert!(refused(r.client_event(&c, "private-q", "client-x", &big, 0)), "too big");
}

#[test]
fn client_event_rate_limit_in_virtual_time() {
    let (mut r, a) = connected(1);
    sub_private(&mut r, &a, "private-q");
    let ok = |e: &[Effect]| matches!(e, [Effect::Webhook(_)]);
    // a burst of 10 at t=0 passes, the 11th is refused with 4301
    for _ in 0..CLIENT_EVENT_BURST {
        assert!(ok(&r.client_event(&a, "private-q", "client-x", "d", 1_000)));
    }
    let e = r.client_event(&a, "private-q", "client-x", "d", 1_000);
    assert_eq!(
        e,
        vec![Effect::Send {
            socket: a.clone(),
            frame: r#"{"event":"pusher:error","data":"{\"code\":4301,\"message\":\"client event rejected: more than 10 per second\"}"}"#.into()
        }]
    );
    // 99 ms later: still empty; 100 ms: one token
    assert!(!ok(&r.client_event(&a, "private-q", "client-x", "d", 1_099)));
    assert!(ok(&r.client_event(&a, "private-q", "client-x", "d", 1_100)));
    assert!(!ok(&r.client_event(&a, "private-q", "client-x", "d", 1_100)));
    // a steady 10/s is fine forever
    for i in 1..=100u64 {
        assert!(ok(&r.client_event(&a, "private-q", "client-x", "d", 1_100 + i * 100)));
    }
    // flooding: closed with 4100 after the limit of refusals in a row, and forgotten
    let t = 1_100 + 100 * 100;
    let mut closed = None;
    for i in 0..(MAX_CONSECUTIVE_REFUSED_CLIENT_EVENTS + CLIENT_EVENT_BURST as u32 + 1) {
        let e = r.client_event(&a, "private-q", "client-x", "d", t);
        if let Some(Effect::Close { code, .. }) = e.first() {
            closed = Some((i, *code));
            break;
        }
    }
    assert_eq!(closed, Some((MAX_CONSECUTIVE_REFUSED_CLIENT_EVENTS - 1, close::OVER_CAPACITY)));
    assert!(!r.contains(&a));
    assert_eq!(r.channel_info("private-q").subscription_count, 0);
}

#[test]
fn signin() {
    let (mut r, a) = connected(1);
    let ud = r#"{"id":"u1","name":"A"}"#;
    let auth = auth::sign_user(&app(), a.as_str(), ud);
    let e = r.signin(&a, &auth, ud);
    assert_eq!(
        e,
        vec![
            Effect::Send {
                socket: a.clone(),
                frame: r#"{"event":"pusher:signin_success","data":"{\"user_data\":\"{\\\"id\\\":\\\"u1\\\",\\\"name\\\":\\\"A\\\"}\"}"}"#.into()
            },
            Effect::SaveRecord { socket: a.clone() }
        ]
    );
    assert_eq!(r.user(&a).map(|u| u.id.as_str()), Some("u1"));
    let (mut r, b) = connected(2);
    let e = r.signin(&b, &auth, ud);
    assert!(matches!(&e[..], [Effect::Send { .. }, Effect::Close { code: 4009, .. }]));
    assert!(!r.contains(&b));
}

#[test]
fn record_limits() {
    let (mut r, a) = connected(1);
    for i in 0..MAX_CHANNELS_PER_SOCKET {
        let e = r.subscribe(&a, &format!("c{i}"), None, None);
        assert!(sends_to(&e, &a)[0].contains("succeeded"));
    }
    assert!(sends_to(&r.subscribe(&a, "one-more", None, None), &a)[0].contains(r#"\"status\":403"#));
    let rec = r.record(&a).unwrap().to_json();
    assert!(rec.len() <= MAX_RECORD_BYTES);
    // large presence infos fill the record first
    let (mut r, b) = connected(2);
    let info = format!(r#""{}""#, "i".repeat(1000));
    let mut refused_at = None;
    for i in 0..MAX_CHANNELS_PER_SOCKET {
        let e = sub_presence(&mut r, &b, &format!("presence-{i}"), "u", Some(&info));
        if sends_to(&e, &b)[0].contains(r#"\"status\":413"#) {
            refused_at = Some(i);
            break;
        }
    }
    assert!(refused_at.is_some_and(|i| i > 5), "{refused_at:?}");
    assert!(r.record(&b).unwrap().to_json().len() <= MAX_RECORD_BYTES);
}

#[test]
fn queries() {
    let mut r = Registry::new(app());
    let (a, b) = (sid(1), sid(2));
    r.connect(a.clone());
    r.connect(b.clone());
    sub_presence(&mut r, &a, "presence-a", "u1", None);
    sub_presence(&mut r, &b, "presence-a", "u1", None);
    sub_presence(&mut r, &b, "presence-b", "u2", None);
    r.subscribe(&a, "public", None, None);
    r.subscribe(&a, "presencex", None, None);
    assert_eq!(
        r.channels(Some("presence-")),
        vec![
            ("presence-a", ChannelInfo { subscription_count: 2, user_count: Some(1) }),
            ("presence-b", ChannelInfo { subscription_count: 1, user_count: Some(1) })
        ]
    );
    assert_eq!(r.channels(None).len(), 4);
    assert_eq!(r.channels(Some("zzz")), vec![]);
    assert_eq!(r.channel_info("presence-c"), ChannelInfo { subscription_count: 0, user_count: Some(0) });
}

#[test]
fn a_private_auth_may_name_its_member_and_it_must_be_signed() {
    let (mut r, a) = connected(1);
    let signed_for = |r: &Registry, ch: &str| {
        r.record(&a).unwrap().channels.into_iter().find(|c| c.name == ch).and_then(|c| c.signed_for)
    };
    // ours: `<key>:<member in hex>:<signature>`, no channel_data needed
    let ours = auth::sign_private_for(&app(), a.as_str(), "private-x", "user:ü1");
    assert!(ours.starts_with("key:"), "{ours}");
    assert!(sends_to(&r.subscribe(&a, "private-x", Some(&ours), None), &a)[0].contains("subscription_succeeded"));
    assert_eq!(signed_for(&r, "private-x").as_deref(), Some("user:ü1"));
    // another member, another socket or another channel under the same signature: refused (403)
    let (_, sig) = ours.rsplit_once(':').unwrap();
    let forged = format!("key:{}:{sig}", hex::encode("user:u2"));
    for (ch, auth) in [
        ("private-y", forged),
        ("private-y", ours.replace("private-x", "private-y")),
        ("private-y", auth::sign_private_for(&app(), "9.9", "private-y", "user:ü1")),
        ("private-z", ours.clone()),
        ("private-y", format!("key:zz:{sig}")),
    ] {
        let e = r.subscribe(&a, ch, Some(&auth), None);
        assert!(sends_to(&e, &a)[0].contains(r#"\"status\":403"#), "{auth}: {e:?}");
    }
    // a standard auth signed with channel_data (as the `pusher` server libraries sign it) names its user_id
    let cd = r#"{"user_id":"u3"}"#;
    let sdk = auth::sign_channel(&app(), a.as_str(), "private-y", Some(cd));
    assert!(sends_to(&r.subscribe(&a, "private-y", Some(&sdk), Some(cd)), &a)[0].contains("subscription_succeeded"));
    assert_eq!(signed_for(&r, "private-y").as_deref(), Some("u3"));
    // channel_data the auth was not signed with: 403; signed but naming no user: 400; nothing recorded
    let plain = auth::sign_channel(&app(), a.as_str(), "private-z", None);
    let e = r.subscribe(&a, "private-z", Some(&plain), Some(r#"{"user_id":"u2"}"#));
    assert!(sends_to(&e, &a)[0].contains("invalid signature"), "{e:?}");
    let bad = r#"{"name":"u2"}"#;
    let auth = auth::sign_channel(&app(), a.as_str(), "private-z", Some(bad));
    assert!(sends_to(&r.subscribe(&a, "private-z", Some(&auth), Some(bad)), &a)[0].contains(r#"\"status\":400"#));
    assert_eq!(r.record(&a).unwrap().channels.len(), 2);
    // a plain auth names nobody; unsubscribing forgets whose it was
    r.unsubscribe(&a, "private-x");
    sub_private(&mut r, &a, "private-x");
    assert_eq!(signed_for(&r, "private-x"), None);
}

#[test]
fn a_departed_members_sockets_are_theirs_and_those_that_name_nobody() {
    let mut r = Registry::new(app());
    let s: Vec<SocketId> = (1..=6).map(sid).collect();
    for x in &s {
        r.connect(x.clone());
    }
    let (private, presence) = ("private-conversation-c", "presence-conversation-c");
    sub_private_for(&mut r, &s[0], private, "alice"); // alice's, by her auth
    sub_private_for(&mut r, &s[1], private, "bob"); // bob's
    sub_private(&mut r, &s[2], private); // signed without channel_data: nobody's
    sub_presence(&mut r, &s[3], presence, "alice", None); // alice present
    sub_presence(&mut r, &s[4], presence, "bob", None); // bob present
    let ud = r#"{"id":"alice"}"#; // signed in as alice, subscribed with a plain auth
    r.signin(&s[5], &auth::sign_user(&app(), s[5].as_str(), ud), ud);
    sub_private(&mut r, &s[5], private);
    sub_private_for(&mut r, &s[4], "private-elsewhere", "bob");
    let channels = vec![private.to_string(), presence.to_string()];
    let alice: Vec<&SocketId> = r.subscribers_for(&channels, "alice").into_iter().collect();
    let mut want = vec![&s[0], &s[2], &s[3], &s[5]];
    want.sort();
    assert_eq!(alice, want);
    let bob: Vec<&SocketId> = r.subscribers_for(&channels, "bob").into_iter().collect();
    let mut want = vec![&s[1], &s[2], &s[4]];
    want.sort();
    assert_eq!(bob, want);
    assert!(r.subscribers_for(&["private-none".to_string()], "alice").is_empty());
}

#[test]
fn records_round_trip_as_json() {
    let (mut r, a) = connected(1);
    sub_presence(&mut r, &a, "presence-a", "u1", Some(r#"{"n":1}"#));
    r.subscribe(&a, "pub", None, None);
    let rec = r.record(&a).unwrap();
    let json = rec.to_json();
    assert_eq!(
        json,
        format!(
            r#"{{"socket_id":"{a}","channels":[{{"name":"presence-a","member":{{"user_id":"u1","user_info":"{{\"n\":1}}"}}}},{{"name":"pub"}}]}}"#
        )
    );
    assert_eq!(SocketRecord::from_json(&json), Some(rec));
    assert_eq!(SocketRecord::from_json("nope"), None);
}

#[test]
fn every_frame_counts_against_the_sockets_rate_and_a_flood_is_closed() {
    use switchboard_core::rate::Rate;
    let mut r = Registry::new(app()).with_frame_limit(Rate::per_sec(2, 2), 2);
    let a = sid(1);
    let b = sid(2);
    r.connect(a.clone());
    r.connect(b.clone());
    let ping = r#"{"event":"pusher:ping","data":{}}"#;
    let pong = |e: &[Effect]| matches!(e, [Effect::Send { frame, .. }] if frame.contains("pusher:pong"));
    assert!(pong(&r.handle_frame(&a, ping, 1_000)));
    assert!(pong(&r.handle_frame(&a, ping, 1_000)));
    let e = r.handle_frame(&a, ping, 1_000);
    let [Effect::Send { frame, .. }] = e.as_slice() else { panic!("{e:?}") };
    assert!(frame.contains("pusher:error") && frame.contains("4301") && frame.contains("retry in 500 ms"), "{frame}");
    // Another socket has its own bucket.
    assert!(pong(&r.handle_frame(&b, ping, 1_000)));
    // The second refusal without a pause closes with 4100 and forgets the socket.
    let e = r.handle_frame(&a, ping, 1_000);
    assert!(matches!(e.first(), Some(Effect::Close { code, .. }) if *code == close::OVER_CAPACITY), "{e:?}");
    assert!(!r.contains(&a));
    // A socket that keeps to the rate is never refused.
    for i in 0..20 {
        assert!(pong(&r.handle_frame(&b, ping, 2_000 + i * 500)));
    }
}
