//! A conversation at its limit of 1,000 members (docs/api.md) keeps working when someone writes in
//! it: the message is delivered, the conversation keeps answering, and the members' lists catch up
//! with its activity. On its own server (with a short flush period): a message fans out to every
//! member's object.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{json, Value};
use switchboard_e2e::*;

#[tokio::test]
async fn full_conversation_stays_usable_after_a_message() {
    // A 1,000-member room flushes activity every 41 × ACTIVITY_FLUSH_MS (alarm::flush_period_ms);
    // 250 ms keeps the whole pass within this test's wait.
    let server = Server::start(&[("ACTIVITY_FLUSH_MS", "250")]);
    let api = Api::new(&server);
    let alice = api.user("alice").await;
    let sb = uid("sb");
    let prefix = uid("m");
    let initial: Vec<String> = (0..100).map(|i| format!("{prefix}-c{i}")).collect();
    let refs: Vec<&str> = initial.iter().map(String::as_str).collect();
    let id = api.create_conversation(&alice, &sb, Some("crowd"), &refs).await;
    let members_path = format!("/v1/conversations/{id}/members");
    let added: Vec<String> = (0..898).map(|i| format!("{prefix}-a{i}")).collect();
    for chunk in added.chunks(10) {
        let bodies: Vec<Value> = chunk.iter().map(|u| json!({ "userId": u })).collect();
        for r in join_all(bodies.iter().map(|b| api.post(&members_path, &alice, b))).await {
            r.expect(201);
        }
    }
    let detail = format!("/v1/conversations/{id}");
    assert_eq!(api.get(&detail, &alice).await.expect(200)["members"].as_array().map(Vec::len), Some(1000));

    let bob = api.dev_token(&added[500]).await;
    let (mut ws, ready) = Ws::connect_ready(&api, &id, &bob).await;
    let m = api.send_text(&alice, &id, "hello, everyone").await;
    let ev = ws.expect_event("message.created").await;
    assert_eq!((ev["seq"].as_i64(), &ev["payload"]["messageId"]), (Some(ready + 1), &m["id"]), "{ev}");
    let created = m["createdAt"].as_i64().unwrap();

    // the conversation keeps answering (each request has the harness's 30 s limit) while the
    // activity reaches the members' lists
    let readers = [api.dev_token(&initial[0]).await, bob.clone(), api.dev_token(added.last().unwrap()).await];
    for (i, who) in readers.iter().enumerate() {
        let d = api.get(&detail, who).await;
        assert_eq!(d.expect(200)["members"].as_array().map(Vec::len), Some(1000), "reader {i}");
        let msgs = api.messages(who, &id).await;
        assert_eq!(msgs.first().map(|x| &x["id"]), Some(&m["id"]), "reader {i}: the message is listed");
    }
    for who in &readers {
        let api2 = api.clone();
        let who2 = who.clone();
        let conv = id.clone();
        poll_until(
            &format!("{}'s list shows the conversation's activity", who.id),
            Duration::from_secs(60),
            Duration::from_millis(500),
            move || {
                let api = api2.clone();
                let who = who2.clone();
                let conv = conv.clone();
                async move {
                    let list = api.all_conversations(&who, "").await;
                    let item = list.iter().find(|i| i["conversationId"] == json!(conv))?;
                    (item["lastActivityAt"].as_i64()? >= created).then_some(())
                }
            },
        )
        .await;
    }

    // and it still takes messages and membership changes
    let m2 = api.send_text(&bob, &id, "hi alice").await;
    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["payload"]["messageId"], m2["id"], "{ev}");
    api.post_empty(&format!("/v1/conversations/{id}/leave"), &readers[2]).await.expect(204);
    let ev = ws.expect_event("member.left").await;
    assert_eq!(ev["payload"]["memberId"], json!(readers[2].id), "{ev}");
    let newcomer = uid("newcomer");
    api.post(&members_path, &alice, &json!({ "userId": newcomer })).await.expect(201);
    let ev = ws.expect_event("member.joined").await;
    assert_eq!(ev["payload"]["memberId"], json!(newcomer), "{ev}");
}
