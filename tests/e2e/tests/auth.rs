//! Identity: dev tokens, bearer validation, connect tickets, unknown routes and methods.

use serde_json::json;
use switchboard_e2e::*;

fn api() -> Api {
    Api::new(shared())
}

#[tokio::test]
async fn dev_token_for_user() {
    let api = api();
    let user = uid("alice");
    let before = now_ms();
    let r = api.send("POST", "/dev/token", None, Some(&json!({ "userId": user }))).await;
    let b = r.expect(200).clone();
    assert_eq!(b["userId"], json!(user));
    let token = b["token"].as_str().expect("token is a string");
    assert_eq!(token.split('.').count(), 3, "token is not a JWT: {token}");
    let exp = b["expiresAt"].as_str().unwrap_or_else(|| panic!("expiresAt is not a string: {b}"));
    let exp_ms = parse_iso8601_ms(exp).unwrap_or_else(|| panic!("expiresAt is not ISO-8601: {exp}"));
    assert!(exp_ms > before, "expiresAt {exp} is not in the future");
    assert!(exp_ms <= now_ms() + 3_600_000 + 5_000, "expiresAt {exp} is more than an hour ahead");

    // the token works
    let who = Who { id: user.clone(), token: token.to_string() };
    let r = api.get("/v1/conversations", &who).await;
    r.expect(200);
    assert!(r.body["conversations"].is_array(), "{}", r.text);
}

#[tokio::test]
async fn dev_token_for_sandbox() {
    let api = api();
    let sb = uid("sb");
    let r = api.send("POST", "/dev/token", None, Some(&json!({ "sandboxId": sb }))).await;
    let b = r.expect(200).clone();
    assert_eq!(b["userId"], json!(format!("bot:kiloclaw:{sb}")));
    assert!(b["token"].is_string() && b["expiresAt"].is_string(), "{b}");
    let bot = Who { id: format!("bot:kiloclaw:{sb}"), token: b["token"].as_str().unwrap().to_string() };
    let r = api.get(&format!("/bot/v1/sandboxes/{sb}/conversations"), &bot).await;
    r.expect(200);
    assert_eq!(r.body["conversations"], json!([]), "a new sandbox's bot has no conversations: {}", r.text);
}

#[tokio::test]
async fn dev_token_rejects_bad_bodies() {
    let api = api();
    let r = api.send("POST", "/dev/token", None, Some(&json!({}))).await;
    r.expect_error(400, "invalid_request");
    let r = api.send("POST", "/dev/token", None, Some(&json!({ "sandboxId": "has space!" }))).await;
    r.expect_error(400, "invalid_request");
    let r = api.send("POST", "/dev/token", None, Some(&json!({ "sandboxId": "x".repeat(65) }))).await;
    r.expect_error(400, "invalid_request");
    let r = api.send("POST", "/dev/token", None, Some(&json!({ "userId": "" }))).await;
    r.expect_error(400, "invalid_request");
    let r = api.send("POST", "/dev/token", None, Some(&json!({ "userId": "x".repeat(129) }))).await;
    r.expect_error(400, "invalid_request");
    let r = api.send_raw("POST", "/dev/token", None, Some("{\"userId\":".into())).await;
    r.expect_error(400, "invalid_json");
}

/// Every kind of bad credential answers 401 `unauthorized`, on human and bot routes; a token we
/// sign ourselves with the server's secret and proper claims is accepted (so the 401s are about
/// the defect each one carries).
#[tokio::test]
async fn bad_tokens_are_unauthorized() {
    let api = api();
    let user = uid("mallory");
    let now = now_secs();
    let secret = jwt_secret().as_bytes();

    // control: a self-signed valid token works
    let valid = sign_jwt(secret, &human_claims(&user, Some(now), Some(now + 1800), AUDIENCE));
    api.send("GET", "/v1/conversations", Some(&valid), None).await.expect(200);
    // exp without iat, within the hour, is fine too
    let valid_no_iat = sign_jwt(secret, &human_claims(&user, None, Some(now + 1800), AUDIENCE));
    api.send("GET", "/v1/conversations", Some(&valid_no_iat), None).await.expect(200);

    let cases: Vec<(&str, Option<String>)> = vec![
        ("garbage", Some("garbage".into())),
        ("three garbage segments", Some("aaa.bbb.ccc".into())),
        ("expired", Some(sign_jwt(secret, &human_claims(&user, Some(now - 1200), Some(now - 600), AUDIENCE)))),
        (
            "forged (wrong secret)",
            Some(sign_jwt(b"not-the-secret", &human_claims(&user, Some(now), Some(now + 600), AUDIENCE))),
        ),
        ("wrong audience", Some(sign_jwt(secret, &human_claims(&user, Some(now), Some(now + 600), "someone-else")))),
        (
            "no audience",
            Some(sign_jwt(
                secret,
                &json!({ "kiloUserId": user, "tokenSource": "e2e", "version": 1, "iat": now, "exp": now + 600 }),
            )),
        ),
        ("lifetime two hours", Some(sign_jwt(secret, &human_claims(&user, Some(now), Some(now + 7200), AUDIENCE)))),
        ("no iat, exp two hours ahead", Some(sign_jwt(secret, &human_claims(&user, None, Some(now + 7200), AUDIENCE)))),
        ("no exp", Some(sign_jwt(secret, &human_claims(&user, Some(now), None, AUDIENCE)))),
        (
            "no subject claim",
            Some(sign_jwt(
                secret,
                &json!({ "tokenSource": "e2e", "version": 1, "aud": AUDIENCE, "iat": now, "exp": now + 600 }),
            )),
        ),
        (
            "alg none",
            Some({
                let header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
                format!("{header}.{}.", valid.split('.').nth(1).unwrap())
            }),
        ),
        (
            "tampered payload",
            Some({
                let other = sign_jwt(secret, &human_claims("someone-else", Some(now), Some(now + 600), AUDIENCE));
                let (h, rest) = valid.split_once('.').unwrap();
                let sig = rest.rsplit_once('.').unwrap().1;
                let payload = other.split('.').nth(1).unwrap();
                format!("{h}.{payload}.{sig}")
            }),
        ),
    ];
    for (what, token) in &cases {
        let r = api.send("GET", "/v1/conversations", token.as_deref(), None).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{what}: expected 401 unauthorized, got {} {}",
            r.status,
            r.text
        );
    }

    // no Authorization header at all; a non-Bearer scheme
    api.send("GET", "/v1/conversations", None, None).await.expect_error(401, "unauthorized");
    api.send_with_headers("GET", "/v1/conversations", &[("authorization", &format!("Basic {valid}"))])
        .await
        .expect_error(401, "unauthorized");
    api.send_with_headers("GET", "/v1/conversations", &[("authorization", "Bearer ")])
        .await
        .expect_error(401, "unauthorized");
    // other routes check too
    api.send("POST", "/v1/conversations", None, Some(&json!({ "sandboxId": "sb" })))
        .await
        .expect_error(401, "unauthorized");
    api.send(
        "POST",
        "/v1/messages",
        Some("garbage"),
        Some(&json!({ "conversationId": UNKNOWN_ULID, "content": text("x") })),
    )
    .await
    .expect_error(401, "unauthorized");
    api.send("POST", "/connect-ticket", None, None).await.expect_error(401, "unauthorized");
}

#[tokio::test]
async fn bad_bot_tokens_are_unauthorized() {
    let api = api();
    let sb = uid("sb");
    let now = now_secs();
    let path = format!("/bot/v1/sandboxes/{sb}/conversations");
    let valid = sign_jwt(jwt_secret().as_bytes(), &bot_claims(&sb, now, now + 1800));
    api.send("GET", &path, Some(&valid), None).await.expect(200);

    let forged = sign_jwt(b"wrong", &bot_claims(&sb, now, now + 600));
    api.send("GET", &path, Some(&forged), None).await.expect_error(401, "unauthorized");
    let expired = sign_jwt(jwt_secret().as_bytes(), &bot_claims(&sb, now - 1000, now - 100));
    api.send("GET", &path, Some(&expired), None).await.expect_error(401, "unauthorized");
    let too_long = sign_jwt(jwt_secret().as_bytes(), &bot_claims(&sb, now, now + 7200));
    api.send("GET", &path, Some(&too_long), None).await.expect_error(401, "unauthorized");
    let mut bad_sb = bot_claims("bad sandbox!", now, now + 600);
    bad_sb["aud"] = json!(AUDIENCE);
    let bad_sb = sign_jwt(jwt_secret().as_bytes(), &bad_sb);
    api.send("GET", &path, Some(&bad_sb), None).await.expect_error(401, "unauthorized");
    api.send("GET", &path, None, None).await.expect_error(401, "unauthorized");
}

#[tokio::test]
async fn connect_ticket_shape() {
    let api = api();
    let alice = api.user("alice").await;
    let r = api.post_empty("/connect-ticket", &alice).await;
    let b = r.expect(200);
    let ticket = b["ticket"].as_str().unwrap_or_else(|| panic!("no ticket: {}", r.text));
    assert!(!ticket.is_empty());
    let exp = b["expiresAt"].as_str().unwrap_or_else(|| panic!("no expiresAt: {}", r.text));
    let exp_ms = parse_iso8601_ms(exp).unwrap_or_else(|| panic!("expiresAt is not ISO-8601: {exp}"));
    assert!(exp_ms > now_ms() - 1000, "ticket already expired: {exp}");
    assert!(exp_ms <= now_ms() + 31_000, "ticket lives longer than 30 s: {exp}");
    // two tickets differ
    let t2 = api.ticket(&alice).await;
    assert_ne!(ticket, t2);
}

#[tokio::test]
async fn unknown_routes_are_404() {
    let api = api();
    let alice = api.user("alice").await;
    // (`/` is the web app: tests/e2e/tests/web.rs)
    for path in
        ["/nope", "/v1/nope", "/v1/conversations/01ARZ3NDEKTSV4RRFFQ69G5FAV/nope", "/bot/v1/nope", "/v2/conversations"]
    {
        api.get(path, &alice).await.expect_error(404, "not_found");
    }
    api.post("/v1/nope", &alice, &json!({})).await.expect_error(404, "not_found");
}

#[tokio::test]
async fn wrong_method_is_405() {
    let api = api();
    let alice = api.user("alice").await;
    api.delete("/v1/conversations", &alice).await.expect_error(405, "method_not_allowed");
    api.put("/v1/messages", &alice, &json!({})).await.expect_error(405, "method_not_allowed");
    api.get("/connect-ticket", &alice).await.expect_error(405, "method_not_allowed");
    api.send("GET", "/dev/token", None, None).await.expect_error(405, "method_not_allowed");
}
