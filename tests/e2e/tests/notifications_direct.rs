//! End-to-end tests of the notifications worker alone (issue 3), against a fake Expo server on
//! 127.0.0.1: the notifications worker is the primary worker, so its local-mode `/dev/rpc/...` and
//! `/dev/ledger` routes answer. Replays of one RPC payload, a short record lifetime and receipt
//! delay, the alarm. Through the chat worker: `notifications.rs`.
//!
//! Every test uses its own users and device tokens, so the tests share the server and run in parallel.

mod notifications_common;

use notifications_common::*;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use switchboard_e2e::expo::FakeExpo;
use switchboard_e2e::serde_json::{json, Value};
use switchboard_e2e::*;

/// The direct server's record lifetime and receipt delay.
const DIRECT_TTL_MS: i64 = 6000;
const DIRECT_RECEIPT_DELAY_MS: i64 = 1500;
const EXPO_ACCESS_TOKEN: &str = "e2e-expo-access-token";

fn direct() -> &'static Setup {
    static CELL: OnceLock<Result<Setup, String>> = OnceLock::new();
    start_once(&CELL, || {
        let fake = FakeExpo::start();
        let mut nvars = fake.vars();
        nvars.push(("IDEM_TTL_MS".into(), DIRECT_TTL_MS.to_string()));
        nvars.push(("RECEIPT_DELAY_MS".into(), DIRECT_RECEIPT_DELAY_MS.to_string()));
        nvars.push(("EXPO_ACCESS_TOKEN".into(), EXPO_ACCESS_TOKEN.into()));
        let server = Server::start_with(&StartOptions {
            notifications_vars: nvars,
            notifications_only: true,
            ..Default::default()
        });
        Setup { fake, server }
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A user of the direct server (no `/dev/token` there: the token is minted here).
fn direct_user(prefix: &str) -> Who {
    let id = uid(prefix);
    Who { token: mint_user_token(&id), id }
}

/// A fresh, valid ULID (Crockford base32 of 48 bits of ms and 80 bits from a counter and the clock).
fn ulid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let ms = now_ms() as u128;
    let rand = (std::process::id() as u128) << 48
        ^ (N.fetch_add(1, Ordering::Relaxed) as u128) << 16
        ^ (Instant::now().elapsed().as_nanos() & 0xffff);
    let v: u128 = (ms << 80) | (rand & ((1u128 << 80) - 1));
    (0..26).rev().map(|i| ALPHABET[((v >> (i * 5)) & 31) as usize] as char).collect()
}

fn payload(conv: &str, message: &str, sandbox: &str, sender: Option<&str>, recipients: &[Value]) -> Value {
    json!({
        "version": 1, "conversationId": conv, "messageId": message, "sandboxId": sandbox,
        "conversationTitle": "Ops", "senderUserId": sender, "text": "deploy finished",
        "recipients": recipients,
    })
}

fn offline(who: &Who) -> Value {
    json!({ "userId": who.id, "viewing": false, "lastViewedAt": null })
}

async fn rpc(api: &Api, method: &str, payload: &Value) -> Value {
    let r = api.send_raw("POST", &format!("/dev/rpc/{method}"), None, Some(payload.to_string())).await;
    r.expect(200).clone()
}

fn outcome_of(result: &Value, user: &str) -> String {
    result["outcomes"]
        .as_array()
        .and_then(|o| o.iter().find(|x| x["userId"] == user))
        .and_then(|x| x["outcome"].as_str())
        .unwrap_or_else(|| panic!("no outcome for {user} in {result}"))
        .to_string()
}

async fn ledger(api: &Api, who: &Who) -> Value {
    api.send("GET", &format!("/dev/ledger?userId={}", urlencode(&who.id)), None, None).await.expect(200).clone()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// A 400 from Expo is never retried; the chat side's retry of the same message then delivers it
/// without counting the badge again; a further replay is a duplicate.
#[tokio::test]
async fn retry_after_expo_failure_never_counts_twice() {
    let Setup { fake, server } = direct();
    let api = Api::new(server);
    let bob = direct_user("bob");
    let t = device(&bob);
    register(&api, &bob, &t).await;
    fake.fail_next(&t, 400, 1);
    let p = payload(&ulid(), &ulid(), &uid("sb"), Some("alice"), &[offline(&bob)]);
    let r = rpc(&api, "sendPushForConversation", &p).await;
    assert_eq!(outcome_of(&r, &bob.id), "failed", "{r}");
    assert_eq!(fake.sends_to(&t).len(), 1, "a 400 is never retried");
    assert_eq!(badges(&api, &bob).await["total"], 1, "the badge counted when pending was written");
    let l = ledger(&api, &bob).await;
    assert_eq!(
        (l["records"][0]["status"].as_str(), l["records"][0]["counted"].as_bool()),
        (Some("failed"), Some(true)),
        "{l}"
    );

    let r = rpc(&api, "sendPushForConversation", &p).await;
    assert_eq!(outcome_of(&r, &bob.id), "delivered", "{r}");
    let got = fake.delivered_to(&t);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["badge"], 1);
    assert_eq!(badges(&api, &bob).await["total"], 1, "the retry did not count again");
    let r = rpc(&api, "sendPushForConversation", &p).await;
    assert_eq!(outcome_of(&r, &bob.id), "duplicate");
    assert_eq!(fake.sends_to(&t).len(), 2);
    for s in fake.sends_to(&t) {
        assert_eq!(s.header("authorization"), Some(format!("Bearer {EXPO_ACCESS_TOKEN}").as_str()));
    }
}

/// 5xx is retried a bounded number of times (5 attempts), then the recipient is `failed`.
#[tokio::test]
async fn expo_5xx_retries_are_bounded() {
    let Setup { fake, server } = direct();
    let api = Api::new(server);
    let bob = direct_user("bob");
    let t = device(&bob);
    register(&api, &bob, &t).await;
    fake.fail_next(&t, 503, 8);
    let p = payload(&ulid(), &ulid(), &uid("sb"), None, &[offline(&bob)]);
    let r = rpc(&api, "sendPushForConversation", &p).await;
    assert_eq!(outcome_of(&r, &bob.id), "failed");
    assert_eq!(fake.sends_to(&t).len(), 5);
}

/// Concurrent replays of one message while Expo is slow: one push; the others are `pending` (another attempt
/// holds it) with `retryAt` at the end of that attempt's lease, so a caller keeps the push and asks again; a
/// replay after it was delivered is `duplicate`.
#[tokio::test]
async fn concurrent_replays_push_once() {
    let Setup { fake, server } = direct();
    let api = Api::new(server);
    let bob = direct_user("bob");
    let t = device(&bob);
    register(&api, &bob, &t).await;
    fake.hold_next(&t, Duration::from_millis(1500));
    let p = payload(&ulid(), &ulid(), &uid("sb"), None, &[offline(&bob)]);
    let results = futures_util::future::join_all((0..5).map(|_| rpc(&api, "sendPushForConversation", &p))).await;
    let mut outcomes: Vec<String> = results.iter().map(|r| outcome_of(r, &bob.id)).collect();
    outcomes.sort();
    assert_eq!(outcomes, vec!["delivered", "pending", "pending", "pending", "pending"]);
    for r in &results {
        let o = r["outcomes"].as_array().and_then(|o| o.iter().find(|x| x["userId"] == bob.id.as_str())).cloned();
        let o = o.unwrap_or_default();
        if o["outcome"] == "pending" {
            assert!(o["retryAt"].as_i64().is_some_and(|at| at > 0), "{o}");
        }
    }
    assert_eq!(fake.sends_to(&t).len(), 1);
    assert_eq!(outcome_of(&rpc(&api, "sendPushForConversation", &p).await, &bob.id), "duplicate");
    assert_eq!(badges(&api, &bob).await["total"], 1);
}

/// Presence and preferences as the payload states them, the skips, and the RPC's error answers.
#[tokio::test]
async fn rpc_decisions_and_errors() {
    let Setup { fake, server } = direct();
    let api = Api::new(server);
    let (viewer, recent, away, none) =
        (direct_user("viewer"), direct_user("recent"), direct_user("away"), direct_user("none"));
    for w in [&viewer, &recent, &away] {
        register(&api, w, &device(w)).await;
    }
    let now = now_ms();
    let recipients = [
        json!({ "userId": viewer.id, "viewing": true, "lastViewedAt": null }),
        json!({ "userId": recent.id, "viewing": false, "lastViewedAt": now - 2_000 }),
        json!({ "userId": away.id, "viewing": false, "lastViewedAt": now - 60_000 }),
        offline(&none),
    ];
    let r =
        rpc(&api, "sendPushForConversation", &payload(&ulid(), &ulid(), &uid("sb"), Some("alice"), &recipients)).await;
    assert_eq!(outcome_of(&r, &viewer.id), "suppressed_presence");
    assert_eq!(outcome_of(&r, &recent.id), "suppressed_presence", "within the 10 s grace period");
    assert_eq!(outcome_of(&r, &away.id), "delivered");
    assert_eq!(outcome_of(&r, &none.id), "no_tokens");
    assert_eq!(fake.delivered_to(&device(&away)).len(), 1);
    assert!(fake.sends_to(&device(&viewer)).is_empty() && fake.sends_to(&device(&recent)).is_empty());

    let r = rpc(&api, "sendPushForConversation", &payload(&ulid(), &ulid(), "", None, &[offline(&away)])).await;
    assert_eq!((r["skipped"].as_str(), r["outcomes"].as_array().map(Vec::len)), (Some("no_sandbox"), Some(0)));
    let r =
        rpc(&api, "sendPushForConversation", &payload(&ulid(), &ulid(), "sb", Some(&away.id), &[offline(&away)])).await;
    assert_eq!(r["skipped"], "no_recipients");

    let bad = api.send_raw("POST", "/dev/rpc/sendPushForConversation", None, Some("not json".into())).await;
    assert_eq!(bad.expect(200)["error"]["code"], "invalid_payload");
    let mut v2 = payload(&ulid(), &ulid(), "sb", None, &[offline(&away)]);
    v2["version"] = json!(2);
    assert_eq!(rpc(&api, "sendPushForConversation", &v2).await["error"]["code"], "unsupported_version");
    let mut extra = payload(&ulid(), &ulid(), "sb", None, &[offline(&away)]);
    extra["surprise"] = json!(true);
    assert_eq!(rpc(&api, "sendPushForConversation", &extra).await["error"]["code"], "invalid_payload");
    let clear = json!({ "version": 1, "userId": away.id, "badgeBucket": "nope" });
    assert_eq!(rpc(&api, "clearBadgeBucketForUser", &clear).await["error"]["code"], "invalid_payload");
}

/// `clearBadgeBucketForUser` lowers the next push's badge.
#[tokio::test]
async fn clear_badge_bucket_lowers_the_next_badge() {
    let Setup { fake, server } = direct();
    let api = Api::new(server);
    let bob = direct_user("bob");
    let t = device(&bob);
    register(&api, &bob, &t).await;
    let (sb, conv) = (uid("sb"), ulid());
    for _ in 0..2 {
        let r = rpc(&api, "sendPushForConversation", &payload(&conv, &ulid(), &sb, None, &[offline(&bob)])).await;
        assert_eq!(outcome_of(&r, &bob.id), "delivered");
    }
    let clear = json!({ "version": 1, "userId": bob.id, "badgeBucket": bucket(&sb, &conv) });
    assert_eq!(rpc(&api, "clearBadgeBucketForUser", &clear).await, json!({ "version": 1, "badgeCount": 0 }));
    rpc(&api, "sendPushForConversation", &payload(&conv, &ulid(), &sb, None, &[offline(&bob)])).await;
    let badges: Vec<i64> = fake.delivered_to(&t).iter().map(|m| m["badge"].as_i64().unwrap()).collect();
    assert_eq!(badges, vec![1, 2, 1]);
}

/// With a short TTL, the alarm removes every record within one alarm period of its expiry, is
/// never postponed by further traffic, and re-arms at the earliest remaining expiry; with nothing
/// left, no alarm remains.
#[tokio::test]
async fn short_ttl_alarm_removes_every_record_and_rearms() {
    let Setup { server, .. } = direct();
    let api = Api::new(server);
    let bob = direct_user("bob");
    register(&api, &bob, &device(&bob)).await;
    let (sb, conv) = (uid("sb"), ulid());
    let mut keys = Vec::new();
    for i in 0..3 {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
        let mid = ulid();
        let r = rpc(&api, "sendPushForConversation", &payload(&conv, &mid, &sb, None, &[offline(&bob)])).await;
        assert_eq!(outcome_of(&r, &bob.id), "delivered");
        keys.push(format!("chat:{mid}:{}", bob.id));
    }
    let first = ledger(&api, &bob).await;
    let expiry = |l: &Value, key: &str| -> Option<i64> {
        l["records"].as_array().unwrap().iter().find(|r| r["key"] == key).and_then(|r| r["expiresAt"].as_i64())
    };
    let expiries: Vec<i64> =
        keys.iter().map(|k| expiry(&first, k).unwrap_or_else(|| panic!("no record {k}: {first}"))).collect();
    assert!(expiries.windows(2).all(|w| w[0] < w[1]));
    let alarm = first["alarmAt"].as_i64().expect("an alarm is set while records exist");
    assert!(
        alarm <= expiries[0],
        "busy traffic did not postpone the alarm past the first expiry ({alarm} > {})",
        expiries[0]
    );

    // Watch until every record is gone.
    let slack = 2_500; // one alarm period's latency plus polling
    let start = Instant::now();
    let mut saw_rearm_at_next_expiry = false;
    loop {
        let l = ledger(&api, &bob).await;
        let now = l["now"].as_i64().unwrap();
        for (k, e) in keys.iter().zip(&expiries) {
            let present = expiry(&l, k).is_some();
            assert!(present || now >= *e, "{k} was removed before it expired");
            assert!(!present || now < e + slack, "{k} outlived its TTL by more than one alarm period: {l}");
        }
        let remaining: Vec<i64> = keys.iter().filter_map(|k| expiry(&l, k)).collect();
        let receipts_pending = !l["receipts"].as_array().unwrap().is_empty();
        if let (Some(min), Some(at)) = (remaining.iter().min(), l["alarmAt"].as_i64()) {
            assert!(at <= *min, "alarm {at} later than the earliest remaining expiry {min}");
            if !receipts_pending && at == *min && remaining.len() < keys.len() {
                saw_rearm_at_next_expiry = true;
            }
        }
        if remaining.is_empty() && !receipts_pending {
            assert!(l["records"].as_array().unwrap().is_empty(), "{l}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "records were not removed: {l}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(saw_rearm_at_next_expiry, "the alarm was never seen re-armed at the next remaining expiry");
    let l = poll_until("no alarm left", Duration::from_secs(10), Duration::from_millis(200), || {
        let api = api.clone();
        let bob = bob.clone();
        async move {
            let l = ledger(&api, &bob).await;
            l["alarmAt"].is_null().then_some(l)
        }
    })
    .await;
    assert_eq!(l["badges"]["total"], 3, "cleanup does not touch badges");
}

/// A receipt `DeviceNotRegistered`, checked by the alarm after RECEIPT_DELAY_MS, removes the token.
#[tokio::test]
async fn receipt_device_not_registered_removes_the_token() {
    let Setup { fake, server } = direct();
    let api = Api::new(server);
    let bob = direct_user("bob");
    let t = device(&bob);
    register(&api, &bob, &t).await;
    fake.receipt_error(&t, "DeviceNotRegistered");
    let (sb, conv) = (uid("sb"), ulid());
    let sent = Instant::now();
    let r = rpc(&api, "sendPushForConversation", &payload(&conv, &ulid(), &sb, None, &[offline(&bob)])).await;
    assert_eq!(outcome_of(&r, &bob.id), "delivered");
    let l = ledger(&api, &bob).await;
    assert_eq!(l["receipts"].as_array().map(Vec::len), Some(1), "{l}");
    fake.wait_for("a receipts request for the ticket", WAIT, |f| {
        (!f.receipt_requests_for(&t).is_empty()).then_some(())
    })
    .await;
    assert!(
        sent.elapsed() >= Duration::from_millis(DIRECT_RECEIPT_DELAY_MS as u64 - 100),
        "receipts were checked too early"
    );
    let r = poll_until("the token is forgotten", WAIT, Duration::from_millis(300), || {
        let (api, bob, sb, conv) = (api.clone(), bob.clone(), sb.clone(), conv.clone());
        async move {
            let r = rpc(&api, "sendPushForConversation", &payload(&conv, &ulid(), &sb, None, &[offline(&bob)])).await;
            (outcome_of(&r, &bob.id) == "no_tokens").then_some(r)
        }
    })
    .await;
    assert_eq!(outcome_of(&r, &bob.id), "no_tokens");
}

/// A recipient's token from another Expo project (a valid format: an Expo Go or development build)
/// makes Expo refuse the whole request (`PUSH_TOO_MANY_EXPERIENCE_IDS`); the request is sent again
/// per project, so the other recipients get their push, and so does that one.
#[tokio::test]
async fn a_token_of_another_expo_project_does_not_block_the_others() {
    let Setup { fake, server } = direct();
    let api = Api::new(server);
    let (bob, eve) = (direct_user("bob"), direct_user("eve"));
    let (tb, te) = (device(&bob), device(&eve));
    register(&api, &bob, &tb).await;
    register(&api, &eve, &te).await;
    fake.project_of(&te, "@eve/other-app");
    let p = payload(&ulid(), &ulid(), &uid("sb"), Some("alice"), &[offline(&bob), offline(&eve)]);
    let r = rpc(&api, "sendPushForConversation", &p).await;
    assert_eq!((outcome_of(&r, &bob.id), outcome_of(&r, &eve.id)), ("delivered".into(), "delivered".into()), "{r}");
    assert_eq!(fake.delivered_to(&tb).len(), 1);
    assert_eq!(fake.delivered_to(&te).len(), 1);
    let refused = fake.sends_to(&tb).into_iter().filter(|s| s.status == 400).count();
    assert_eq!(refused, 1, "the mixed request was refused once, then sent per project");
}
