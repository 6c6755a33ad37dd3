//! JWTs (HS256) for tests: forged, expired and wrong-audience tokens, tokens with chosen claims,
//! and valid tokens signed with the test servers' secret; Pusher's hex HMAC signatures.

use super::*;

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `claims` as an HS256 JWT with `secret`.
pub fn sign_jwt(secret: &[u8], claims: &Value) -> String {
    let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64url(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{payload}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("hmac key");
    mac.update(signing_input.as_bytes());
    let sig = b64url(&mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// hex(HMAC-SHA256(secret, message)): Pusher's signatures (channel auth, webhooks).
pub fn hmac_hex(secret: &str, message: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Claims of a human token: `kiloUserId`, `tokenSource`, `version`, `aud`, `iat`, `exp`.
pub fn human_claims(user: &str, iat: Option<i64>, exp: Option<i64>, aud: &str) -> Value {
    let mut c = json!({ "kiloUserId": user, "tokenSource": "e2e", "version": 1, "aud": aud });
    if let Some(iat) = iat {
        c["iat"] = json!(iat);
    }
    if let Some(exp) = exp {
        c["exp"] = json!(exp);
    }
    c
}

/// Claims of a bot (sandbox) token.
pub fn bot_claims(sandbox: &str, iat: i64, exp: i64) -> Value {
    json!({ "kiloclawSandboxId": sandbox, "tokenSource": "e2e", "version": 1, "aud": AUDIENCE, "iat": iat, "exp": exp })
}

/// A valid human token signed with the test servers' secret (lifetime 30 min).
pub fn mint_user_token(user: &str) -> String {
    let now = now_secs();
    sign_jwt(jwt_secret().as_bytes(), &human_claims(user, Some(now), Some(now + 1800), AUDIENCE))
}
