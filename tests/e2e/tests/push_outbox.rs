//! Side effects that survive (issue #18): a push is recorded with its message and delivered by the
//! conversation's alarm, so restarting the runtime (both workers) right after the send loses
//! nothing and counts nothing twice: each recipient gets the push once, and the badge is 1.

use std::time::Duration;
use switchboard_e2e::expo::FakeExpo;
use switchboard_e2e::serde_json::json;
use switchboard_e2e::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_push_survives_a_restart_right_after_the_send() {
    let fake = FakeExpo::start();
    let server = Server::start_with(&StartOptions { notifications_vars: fake.vars(), ..Default::default() });
    let api = Api::new(&server);
    let sb = uid("sb");
    let (alice, bob) = (api.user("alice").await, api.user("bob").await);
    let token = format!("ExponentPushToken[{}]", bob.id);
    let r = api.post("/v1/push-tokens", &bob, &json!({"token": token, "platform": "ios", "appVersion": "1.0.0"})).await;
    assert!(r.status == 201 || r.status == 200, "{}", r.text);
    let conv = api.create_conversation(&alice, &sb, Some("Plans"), &[&bob.id]).await;
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(api.send_text(&alice, &conv, &format!("m{i}")).await["id"].as_str().unwrap().to_string());
        // Restart at once after the first and the last send: whatever was not delivered yet is
        // delivered by the alarm after the restart.
        if i != 1 {
            let s = &server;
            tokio::task::block_in_place(|| s.restart());
        }
    }
    // A delivery cut short by the restart is handed out again by the restarted object at once (its claim was
    // memory), or, if the notifications worker had claimed it, when that claim's lease ends (2 min).
    fake.wait_for("3 pushes to bob", Duration::from_secs(180), |f| (f.delivered_to(&token).len() >= 3).then_some(()))
        .await;
    // No more come (a retry of something already delivered would show up here).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = fake.delivered_to(&token);
    let mut ids: Vec<String> = got.iter().map(|m| m["data"]["messageId"].as_str().unwrap_or("").to_string()).collect();
    ids.sort();
    let mut want = sent.clone();
    want.sort();
    assert_eq!(ids, want, "each message pushed exactly once: {got:#?}");
    let badges = api.get("/v1/badges", &bob).await.expect(200).clone();
    assert_eq!(badges["total"], 3, "{badges}");
}
