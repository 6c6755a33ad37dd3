//! Fuzzing bearer tokens and connect tickets (`switchboard-auth`): arbitrary `Authorization` headers and
//! tokens, and structure-aware JWTs (near-valid headers and claims, correctly signed, so that the claim
//! checks run on them) — a refusal is always 401, and an accepted token names a valid member.

use proptest::prelude::*;
use serde_json::{json, Value};
use switchboard_auth::AuthConfig;
use switchboard_core::{ErrorCode, MemberId};
use switchboard_fuzz::*;

const SECRET: &str = "a-local-secret-of-enough-length";
const NOW: u64 = 1_800_000_000;

fn cfg() -> AuthConfig {
    match AuthConfig::new(SECRET, "switchboard") {
        Ok(c) => c,
        Err(e) => panic!("{e:?}"),
    }
}

/// HS256 over `header.claims` as JSON texts (any texts: the point is to sign what the verifier must read).
fn sign(header: &str, claims: &str) -> String {
    let signing_input = format!("{}.{}", base64url(header.as_bytes()), base64url(claims.as_bytes()));
    let hex = switchboard_pusher::auth::hmac_hex(SECRET, signing_input.as_bytes());
    let mac: Vec<u8> = (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect();
    format!("{signing_input}.{}", base64url(&mac))
}

fn header_seeds() -> Vec<Value> {
    vec![json!({"alg": "HS256", "typ": "JWT"})]
}

fn claim_seeds() -> Vec<Value> {
    vec![
        json!({"iat": NOW, "exp": NOW + 3600, "aud": "switchboard", "kiloUserId": "alice", "tokenSource": "web", "version": 3}),
        json!({"iat": NOW, "exp": NOW + 60, "aud": ["switchboard"], "kiloclawSandboxId": "sb1", "tokenSource": "x", "version": 1}),
        json!({"iat": NOW, "exp": NOW + 30, "aud": "switchboard:connect-ticket", "nonce": "0123456789abcdef0123", "member": "bot:kiloclaw:sb1"}),
    ]
}

fn check(member: Result<MemberId, switchboard_core::ApiError>) -> Result<(), TestCaseError> {
    match member {
        Ok(m) => prop_assert_eq!(MemberId::parse(&m.to_string()).ok(), Some(m)),
        Err(e) => prop_assert_eq!((e.code, e.status()), (ErrorCode::Unauthorized, 401)),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config("regressions/fuzz_auth.txt"))]

    #[test]
    fn fuzz_bearer_headers(h in prop_oneof![any::<String>(), "[Bb]earer [A-Za-z0-9_.-]{0,120}",
        "Bearer [A-Za-z0-9_-]{10,40}\\.[A-Za-z0-9_-]{10,40}\\.[A-Za-z0-9_-]{0,43}"]) {
        let c = cfg();
        check(c.verify_bearer(Some(&h), NOW))?;
        check(c.verify_token(&h, NOW))?;
        if let Ok(t) = c.verify_ticket(&h, NOW) { prop_assert!(t.nonce.len() >= 16); }
    }

    #[test]
    fn fuzz_signed_claims(header in near_valid(header_seeds()), claims in near_valid(claim_seeds()),
        // `now` is our clock, never input: jwt-simple's clock (coarsetime, 32.32 fixed point) overflows past 2^32 s
        // (year 2106), so the fuzzer keeps it below that; claims carry any numbers.
        now in prop_oneof![Just(NOW), NOW - 4000..NOW + 4000, 0u64..4_000_000_000]) {
        let c = cfg();
        let token = sign(&header, &claims);
        let got = c.verify_token(&token, now);
        if let Ok(m) = &got {
            // Accepted: a user or bot token within its lifetime.
            let v: Value = serde_json::from_str(&claims).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(v["exp"].as_f64().is_some(), "accepted without exp: {}", claims);
            prop_assert!(v.get("kiloUserId").is_some() != v.get("kiloclawSandboxId").is_some(), "{}", claims);
            let _ = m;
        }
        check(got)?;
        match c.verify_ticket(&token, now) {
            Ok(t) => prop_assert!(t.nonce.len() >= 16 && t.expires_at + 1 >= now),
            Err(e) => prop_assert_eq!(e.status(), 401),
        }
    }

    #[test]
    fn fuzz_issued_round_trip(user in "[a-zA-Z0-9_.@-]{1,128}", sb in "[A-Za-z0-9_-]{1,64}", life in 1u64..=3600, nonce in "[a-f0-9]{16,40}") {
        let c = cfg();
        for m in [MemberId::user(&user), MemberId::bot(&sb)].into_iter().flatten() {
            let t = c.issue_token(&m, "fuzz", NOW, life).map_err(|e| TestCaseError::fail(e.message))?;
            prop_assert_eq!(c.verify_token(&t.token, NOW + life / 2).ok(), Some(m.clone()));
            let credential = c.verify_credential(&t.token, NOW).map_err(|e| TestCaseError::fail(e.message))?;
            let t = c.issue_ticket(&credential, &nonce, NOW).map_err(|e| TestCaseError::fail(e.message))?;
            let ticket = c.verify_ticket(&t.token, NOW + 1).map_err(|e| TestCaseError::fail(e.message))?;
            prop_assert_eq!((ticket.member, ticket.nonce), (m, nonce.clone()));
        }
    }
}

#[test]
fn the_signer_matches_the_service() {
    // The fuzzer's own HS256 signer makes tokens the service accepts, so signed-claims cases reach the claims.
    let claims = claim_seeds()[0].to_string();
    let token = sign(&header_seeds()[0].to_string(), &claims);
    assert_eq!(cfg().verify_token(&token, NOW).ok(), MemberId::user("alice").ok());
}

#[test]
fn huge_times_in_claims_are_refused_not_panics() {
    let c = cfg();
    let header = header_seeds()[0].to_string();
    for field in ["exp", "iat", "nbf"] {
        for n in [json!(u64::MAX), json!(1u64 << 32), json!(i64::MAX), json!(-1), json!(1e300), json!(4_294_967_296.5)]
        {
            let mut claims = claim_seeds()[0].clone();
            claims[field] = n.clone();
            let token = sign(&header, &claims.to_string());
            let got = c.verify_token(&token, NOW);
            assert!(got.is_err() || field == "nbf", "{field}={n}: {got:?}");
            let _ = c.verify_ticket(&token, NOW);
        }
    }
}
