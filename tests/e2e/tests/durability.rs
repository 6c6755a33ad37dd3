//! Acknowledged writes survive a restart of the server (same persistence directory).

use serde_json::json;
use switchboard_e2e::*;

#[tokio::test]
async fn acknowledged_writes_survive_restart() {
    let server = Server::start(&[]);
    let api = Api::new(&server);
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let sb = uid("sb");
    let conv = api.create_conversation(&alice, &sb, Some("durable"), &[&bob.id]).await;
    let (mut ws, ready0) = Ws::connect_ready(&api, &conv, &bob).await;

    let mut ids = Vec::new();
    for i in 0..10 {
        let r = api
            .post(
                "/v1/messages",
                &alice,
                &json!({ "conversationId": conv, "content": text(&format!("m{i}")), "clientId": format!("c{i}") }),
            )
            .await;
        ids.push(r.expect(201)["messageId"].as_str().unwrap().to_string());
    }
    let t = now_ms();
    api.patch(
        &format!("/v1/messages/{}", ids[2]),
        &alice,
        &json!({ "conversationId": conv, "content": text("m2 edited"), "timestamp": t }),
    )
    .await
    .expect(200);
    api.post(&format!("/v1/messages/{}/reactions", ids[3]), &bob, &json!({ "conversationId": conv, "emoji": "👍" }))
        .await
        .expect(201);
    api.delete(&format!("/v1/messages/{}?conversationId={conv}", ids[4]), &alice).await.expect(204);
    api.patch(&format!("/v1/conversations/{conv}"), &alice, &json!({ "title": "durable 2" })).await.expect(200);
    // 14 events so far; read them so we know the last seq
    let mut last = ready0;
    for _ in 0..14 {
        let ev = ws.next_event().await;
        assert_eq!(ev["seq"], json!(last + 1));
        last += 1;
    }
    drop(ws);

    server.restart();

    let api = Api::new(&server);
    // tokens issued before the restart still work (same secret)
    let list = api.messages(&alice, &conv).await;
    let got: Vec<String> = list.iter().map(|m| m["id"].as_str().unwrap().to_string()).collect();
    let want: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(got, want, "acknowledged messages after restart");
    let by_id = |id: &str| list.iter().find(|m| m["id"] == json!(id)).unwrap().clone();
    assert_eq!(by_id(&ids[2])["content"], text("m2 edited"));
    assert_eq!(by_id(&ids[2])["clientUpdatedAt"], json!(t));
    assert_eq!(by_id(&ids[3])["reactions"], json!([{ "emoji": "👍", "count": 1, "memberIds": [bob.id] }]));
    assert_eq!(by_id(&ids[4])["deleted"], json!(true));
    assert_eq!(by_id(&ids[4])["content"], json!([]));
    assert_eq!(by_id(&ids[9])["content"], text("m9"));

    let d = api.get(&format!("/v1/conversations/{conv}"), &alice).await;
    let d = d.expect(200).clone();
    assert_eq!(d["title"], json!("durable 2"));
    assert_eq!(d["members"].as_array().unwrap().len(), 3, "{d}");
    let l = api.wait_listed(&bob, &conv, true).await;
    assert!(l.iter().any(|i| i["conversationId"] == json!(conv) && i["title"] == json!("durable 2")), "{l:?}");

    // idempotency records survive too
    let r = api
        .post("/v1/messages", &alice, &json!({ "conversationId": conv, "content": text("m0"), "clientId": "c0" }))
        .await;
    assert_eq!(r.expect(200)["messageId"], json!(ids[0]));

    // resume over the socket: the last three events replay, then ready, then live with the next seq
    let mut ws = Ws::connect(&api, &conv, &bob, Some(last - 3)).await;
    let (events, resync, ready) = ws.read_until_ready().await;
    assert!(resync.is_none(), "resync after restart: {resync:?}");
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, vec![last - 2, last - 1, last]);
    assert_eq!(events[2]["event"], json!("conversation.renamed"));
    assert_eq!(ready, last);
    let m = api.send_text(&alice, &conv, "after restart").await;
    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(last + 1), "seq continues after a restart");
    assert_eq!(ev["payload"]["messageId"], m["id"]);
}
