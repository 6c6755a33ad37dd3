//! Connect tickets (`POST /connect-ticket`, docs/api.md and docs/events.md): valid 30 s, for
//! `?ticket=` only; a ticket is no bearer token and a bearer token is no ticket.

use serde_json::{json, Value};
use switchboard_e2e::*;

fn api() -> Api {
    Api::new(shared())
}

/// Mints a ticket; returns it and its `expiresAt` in ms.
async fn ticket(api: &Api, who: &Who) -> (String, i64) {
    let r = api.post_empty("/connect-ticket", who).await;
    let b = r.expect(200);
    let t = b["ticket"].as_str().unwrap_or_else(|| panic!("no ticket: {}", r.text)).to_string();
    let exp = b["expiresAt"].as_str().unwrap_or_else(|| panic!("no expiresAt: {}", r.text));
    (t, parse_iso8601_ms(exp).unwrap_or_else(|| panic!("expiresAt is not ISO-8601: {exp}")))
}

fn assert_unauthorized(r: &Refused, what: &str) {
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{what}: expected 401 unauthorized, got {} {}",
        r.status,
        r.text
    );
}

/// The hub accepts the ticket: `hello` for `who` comes first.
async fn hub_accepts(api: &Api, auth: WsAuth<'_>, who: &Who, what: &str) {
    let (mut ws, _) = Ws::open_hub(api, auth, None, None, false, what)
        .await
        .unwrap_or_else(|r| panic!("{what}: hub refused: {} {}", r.status, r.text));
    let hello = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!((hello["type"].as_str(), &hello["member"]), (Some("hello"), &json!(who.id)), "{what}: {hello}");
    ws.close().await;
}

/// The conversation socket accepts: `ready` comes first.
async fn conv_accepts(api: &Api, conv: &str, auth: WsAuth<'_>, what: &str) {
    let mut ws = Ws::open(api, conv, auth, None, what)
        .await
        .unwrap_or_else(|r| panic!("{what}: refused: {} {}", r.status, r.text));
    let f: Value = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(f["type"], json!("ready"), "{what}: {f}");
    ws.close().await;
}

/// A ticket says it lives 30 s (`expiresAt`), works at once on `/connect` and on a conversation's
/// socket, and only once. That it is refused once its 30 s are over is a rule with time, tested
/// natively on a virtual clock instead of by waiting here: `switchboard-auth`
/// (`tickets_are_their_own_audience_and_short`: the signed expiry) and `switchboard-member`
/// (`a_ticket_is_redeemed_once_and_only_before_it_expires`: the redemption).
#[tokio::test]
async fn ticket_lives_30_s_and_works_once() {
    let api = api();
    let alice = api.user("alice").await;
    let conv = api.create_conversation(&alice, &uid("sb"), Some("tickets"), &[]).await;
    let issued = now_ms();
    let (hub_ticket, exp1) = ticket(&api, &alice).await;
    let (conv_ticket, exp2) = ticket(&api, &alice).await;
    for exp in [exp1, exp2] {
        // `expiresAt` is whole seconds: up to a second early.
        assert!(
            (issued + 28_000..=issued + 31_000).contains(&exp),
            "a ticket does not live 30 s: expiresAt {exp}, issued about {issued}"
        );
    }
    hub_accepts(&api, WsAuth::Ticket(&hub_ticket), &alice, "fresh hub ticket").await;
    conv_accepts(&api, &conv, WsAuth::Ticket(&conv_ticket), "fresh conversation ticket").await;
    // used up
    let r = Ws::refused_path(&api, "/connect", WsAuth::Ticket(&hub_ticket), None).await;
    assert_unauthorized(&r, "/connect with a used ticket");
    let r = Ws::refused(&api, &conv, WsAuth::Ticket(&conv_ticket), None).await;
    assert_unauthorized(&r, "conversation socket with a used ticket");
}

/// A ticket is not a bearer token (HTTP routes, `/connect`, conversation sockets), and refusing
/// it as one does not use it up; a bearer token is not a ticket.
#[tokio::test]
async fn ticket_and_bearer_are_not_interchangeable() {
    let api = api();
    let alice = api.user("alice").await;
    let conv = api.create_conversation(&alice, &uid("sb"), Some("tickets"), &[]).await;
    let (t, _) = ticket(&api, &alice).await;

    // the ticket as a bearer token
    for (method, path) in [
        ("GET", "/v1/conversations".to_string()),
        ("GET", format!("/v1/conversations/{conv}")),
        ("POST", "/connect-ticket".to_string()),
    ] {
        let r = api.send(method, &path, Some(&t), None).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{method} {path} with a ticket as bearer: {} {}",
            r.status,
            r.text
        );
    }
    let r = api
        .post(
            "/v1/messages",
            &Who { id: alice.id.clone(), token: t.clone() },
            &json!({ "conversationId": conv, "content": text("x") }),
        )
        .await;
    r.expect_error(401, "unauthorized");
    let r = Ws::refused_path(&api, "/connect", WsAuth::Bearer(&t), None).await;
    assert_unauthorized(&r, "/connect with a ticket as bearer");
    let r = Ws::refused(&api, &conv, WsAuth::Bearer(&t), None).await;
    assert_unauthorized(&r, "conversation socket with a ticket as bearer");
    assert!(api.messages(&alice, &conv).await.is_empty(), "a ticket as bearer created a message");
    // the refusals did not use the ticket up: it still works once as a ticket
    hub_accepts(&api, WsAuth::Ticket(&t), &alice, "the ticket as a ticket").await;

    // the bearer token as a ticket
    let r = Ws::refused_path(&api, "/connect", WsAuth::Ticket(&alice.token), None).await;
    assert_unauthorized(&r, "/connect with a bearer token as ticket");
    let r = Ws::refused(&api, &conv, WsAuth::Ticket(&alice.token), None).await;
    assert_unauthorized(&r, "conversation socket with a bearer token as ticket");
    // a bot's token neither
    let bot = api.bot_token(&uid("sb")).await;
    let r = Ws::refused_path(&api, "/connect", WsAuth::Ticket(&bot.token), None).await;
    assert_unauthorized(&r, "/connect with a bot token as ticket");
    // (the same token as a bearer is fine)
    hub_accepts(&api, WsAuth::Bearer(&alice.token), &alice, "bearer").await;
    conv_accepts(&api, &conv, WsAuth::Bearer(&alice.token), "bearer").await;
}
