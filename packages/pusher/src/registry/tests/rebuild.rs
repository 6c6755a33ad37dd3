//! Rebuilt from records == incrementally built (property-tested), and no frame panics.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Op {
    Connect(u64),
    Subscribe(u64, usize, usize, usize),
    Unsubscribe(u64, usize),
    Disconnect(u64),
    Signin(u64, usize),
    ClientEvent(u64, usize),
}

const CHANNELS: [&str; 5] = ["public-a", "private-b", "presence-c", "presence-d", "private-encrypted-e"];
const USERS: [&str; 3] = ["u1", "u2", "u3"];
const INFOS: [Option<&str>; 3] = [None, Some(r#"{"n":1}"#), Some(r#""x""#)];

fn arb_op() -> impl Strategy<Value = Op> {
    let s = 1u64..6;
    prop_oneof![
        s.clone().prop_map(Op::Connect),
        (s.clone(), 0..CHANNELS.len(), 0..USERS.len(), 0..INFOS.len())
            .prop_map(|(a, b, c, d)| Op::Subscribe(a, b, c, d)),
        (s.clone(), 0..CHANNELS.len()).prop_map(|(a, b)| Op::Unsubscribe(a, b)),
        s.clone().prop_map(Op::Disconnect),
        (s.clone(), 0..USERS.len()).prop_map(|(a, b)| Op::Signin(a, b)),
        (s, 0..CHANNELS.len()).prop_map(|(a, b)| Op::ClientEvent(a, b)),
    ]
}

fn apply(r: &mut Registry, op: &Op, t: u64) -> Vec<Effect> {
    match *op {
        Op::Connect(n) => r.connect(sid(n)),
        Op::Subscribe(n, c, u, i) => {
            let ch = CHANNELS[c];
            if channel::kind(ch) == ChannelKind::Presence {
                sub_presence(r, &sid(n), ch, USERS[u], INFOS[i])
            } else if channel::kind(ch) == ChannelKind::Public {
                r.subscribe(&sid(n), ch, None, None)
            } else if i == 0 {
                sub_private(r, &sid(n), ch)
            } else {
                sub_private_for(r, &sid(n), ch, USERS[u])
            }
        }
        Op::Unsubscribe(n, c) => r.unsubscribe(&sid(n), CHANNELS[c]),
        Op::Disconnect(n) => r.disconnect(&sid(n)),
        Op::Signin(n, u) => {
            let ud = format!(r#"{{"id":"{}"}}"#, USERS[u]);
            let auth = auth::sign_user(&app(), sid(n).as_str(), &ud);
            r.signin(&sid(n), &auth, &ud)
        }
        Op::ClientEvent(n, c) => r.client_event(&sid(n), CHANNELS[c], "client-x", "{}", t),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn rebuilt_equals_incremental(ops in proptest::collection::vec(arb_op(), 0..60)) {
        let mut r = Registry::new(app());
        // per channel: occupied - vacated, per (channel, user): added - removed
        let mut occupancy: BTreeMap<String, i64> = BTreeMap::new();
        let mut membership: BTreeMap<(String, String), i64> = BTreeMap::new();
        for (t, op) in ops.iter().enumerate() {
            for e in apply(&mut r, op, t as u64 * 10) {
                match e {
                    Effect::Webhook(WebhookEvent::ChannelOccupied { channel }) => *occupancy.entry(channel).or_default() += 1,
                    Effect::Webhook(WebhookEvent::ChannelVacated { channel }) => *occupancy.entry(channel).or_default() -= 1,
                    Effect::Webhook(WebhookEvent::MemberAdded { channel, user_id }) => *membership.entry((channel, user_id)).or_default() += 1,
                    Effect::Webhook(WebhookEvent::MemberRemoved { channel, user_id }) => *membership.entry((channel, user_id)).or_default() -= 1,
                    Effect::Broadcast(d) => prop_assert!(!d.sockets.is_empty()),
                    _ => {}
                }
            }
            // webhooks mirror the state at every step
            for (ch, n) in &occupancy {
                prop_assert_eq!(*n, i64::from(r.channel_info(ch).occupied()), "{}", ch);
            }
            for ((ch, user), n) in &membership {
                prop_assert_eq!(*n, i64::from(r.presence_users(ch).contains(&user.as_str())));
            }
        }
        // every socket in a channel has it in its map, and the other way round
        for (name, ch) in &r.channels {
            prop_assert!(!ch.sockets.is_empty());
            for s in &ch.sockets {
                prop_assert!(r.sockets.get(s).is_some_and(|st| st.channels.contains_key(name)));
            }
            let member_sockets: usize = ch.members.values().map(|m| m.len()).sum();
            if channel::kind(name) == ChannelKind::Presence {
                prop_assert_eq!(member_sockets, ch.sockets.len());
            }
        }
        // rebuild from JSON records, in reverse order
        let records: Vec<SocketRecord> = r
            .sockets
            .keys()
            .rev()
            .filter_map(|s| r.record(s))
            .filter_map(|rec| SocketRecord::from_json(&rec.to_json()))
            .collect();
        let rebuilt = Registry::from_records(app(), records);
        prop_assert_eq!(&rebuilt.channels, &r.channels);
        let a: Vec<_> = r.sockets.keys().filter_map(|s| r.record(s)).collect();
        let b: Vec<_> = rebuilt.sockets.keys().filter_map(|s| rebuilt.record(s)).collect();
        prop_assert_eq!(a, b);
        for (name, _) in r.channels(None) {
            let d1 = r.channels.get(name).map(ChannelState::presence_data);
            let d2 = rebuilt.channels.get(name).map(ChannelState::presence_data);
            prop_assert_eq!(d1, d2);
        }
        // whose subscriptions are whose survives the rebuild
        let all: Vec<String> = CHANNELS.iter().map(|c| c.to_string()).collect();
        for user in USERS {
            prop_assert_eq!(r.subscribers_for(&all, user), rebuilt.subscribers_for(&all, user));
        }
    }

    #[test]
    fn frames_from_anyone_never_panic(texts in proptest::collection::vec(".{0,80}", 0..20)) {
        let (mut r, a) = connected(1);
        for t in texts {
            let _ = r.handle_frame(&a, &t, 0);
        }
    }
}
