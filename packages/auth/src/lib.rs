//! Identity: who a bearer token or a connect ticket says the caller is.
//!
//! Tokens are HS256 JWTs (kilo-chat's claims: `kiloUserId`, `tokenSource`, `version`, `exp`, lifetime at
//! most one hour). A sandbox's bot carries `kiloclawSandboxId` instead of `kiloUserId`. Connect tickets
//! are short JWTs of their own audience with a nonce that the caller's member object redeems once.
//! The current time is always an argument.

use jwt_simple::prelude::*;
use switchboard_core::limits::{CLOCK_SKEW_SECS, MAX_TOKEN_LIFETIME_SECS, TICKET_TTL_SECS};
use switchboard_core::{ApiError, MemberId};

pub mod operator;
mod time;
pub use time::iso8601;

/// The secret and audience tokens are checked against.
pub struct AuthConfig {
    key: HS256Key,
    audience: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct ChatClaims {
    #[serde(rename = "kiloUserId", default, skip_serializing_if = "Option::is_none")]
    kilo_user_id: Option<String>,
    #[serde(rename = "kiloclawSandboxId", default, skip_serializing_if = "Option::is_none")]
    sandbox_id: Option<String>,
    #[serde(rename = "tokenSource", default, skip_serializing_if = "Option::is_none")]
    token_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TicketClaims {
    /// The member id the ticket was issued to.
    member: String,
    /// When the bearer token the ticket was minted from expires (seconds): a socket the ticket
    /// opens is closed then, as if it had been opened with that token.
    #[serde(rename = "tokenExp", default, skip_serializing_if = "Option::is_none")]
    token_exp: Option<u64>,
}

/// A verified bearer token: who, and until when it is accepted (its `exp` plus the clock skew, in
/// seconds): a socket it opened is closed then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub member: MemberId,
    pub accepted_until: u64,
}

/// A verified connect ticket: redeem `nonce` once before `expires_at` (seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub member: MemberId,
    pub nonce: String,
    pub expires_at: u64,
    /// Until when the bearer token it was minted from is accepted (seconds): see [`Credential`].
    pub token_accepted_until: u64,
}

/// An issued token or ticket and its expiry (seconds since the epoch).
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub expires_at: u64,
}

fn unauthorized(msg: &str) -> ApiError {
    ApiError::unauthorized(msg)
}

impl AuthConfig {
    pub fn new(secret: &str, audience: &str) -> Result<Self, ApiError> {
        if secret.len() < switchboard_core::limits::MIN_SECRET_BYTES {
            return Err(ApiError::internal("JWT_SECRET must be at least 16 bytes"));
        }
        Ok(AuthConfig { key: HS256Key::from_bytes(secret.as_bytes()), audience: audience.to_string() })
    }

    fn ticket_audience(&self) -> String {
        format!("{}:connect-ticket", self.audience)
    }

    fn options(&self, audience: String, now_secs: u64) -> VerificationOptions {
        VerificationOptions {
            allowed_audiences: Some(HashSet::from_strings(&[audience])),
            artificial_time: Some(UnixTimeStamp::from_secs(now_secs)),
            time_tolerance: Some(Duration::from_secs(CLOCK_SKEW_SECS)),
            ..Default::default()
        }
    }

    /// Reads `Authorization: Bearer <jwt>`.
    pub fn verify_bearer(&self, header: Option<&str>, now_secs: u64) -> Result<MemberId, ApiError> {
        self.verify_bearer_credential(header, now_secs).map(|c| c.member)
    }

    /// Reads `Authorization: Bearer <jwt>`: the member and until when the token is accepted.
    pub fn verify_bearer_credential(&self, header: Option<&str>, now_secs: u64) -> Result<Credential, ApiError> {
        let header = header.ok_or_else(|| unauthorized("missing Authorization: Bearer token"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("Authorization must be \"Bearer <token>\""))?;
        self.verify_credential(token, now_secs)
    }

    pub fn verify_token(&self, token: &str, now_secs: u64) -> Result<MemberId, ApiError> {
        self.verify_credential(token, now_secs).map(|c| c.member)
    }

    /// Verifies a bearer token: the member and until when the token is accepted.
    pub fn verify_credential(&self, token: &str, now_secs: u64) -> Result<Credential, ApiError> {
        let claims = self
            .key
            .verify_token::<ChatClaims>(token, Some(self.options(self.audience.clone(), now_secs)))
            .map_err(|_| unauthorized("token is invalid, expired or not for this service"))?;
        let exp = claims.expires_at.ok_or_else(|| unauthorized("token has no exp"))?.as_secs();
        let issued = claims.issued_at.map(|t| t.as_secs()).unwrap_or(now_secs).min(now_secs);
        if exp.saturating_sub(issued) > MAX_TOKEN_LIFETIME_SECS + CLOCK_SKEW_SECS {
            return Err(unauthorized("token lifetime is over one hour"));
        }
        let c = claims.custom;
        if c.version.is_none() || c.token_source.is_none() {
            return Err(unauthorized("token lacks tokenSource or version"));
        }
        let member = match (c.kilo_user_id, c.sandbox_id) {
            (Some(u), None) => MemberId::user(&u),
            (None, Some(s)) => MemberId::bot(&s),
            _ => return Err(unauthorized("token must name exactly one of kiloUserId, kiloclawSandboxId")),
        };
        let member = member.map_err(|_| unauthorized("token names a malformed user or sandbox id"))?;
        Ok(Credential { member, accepted_until: exp + CLOCK_SKEW_SECS })
    }

    /// Signs a token for `member` (local development, and tests).
    pub fn issue_token(
        &self,
        member: &MemberId,
        token_source: &str,
        now_secs: u64,
        lifetime_secs: u64,
    ) -> Result<Issued, ApiError> {
        let custom = match member {
            MemberId::User(u) => ChatClaims { kilo_user_id: Some(u.clone()), ..Default::default() },
            MemberId::Bot(s) => ChatClaims { sandbox_id: Some(s.clone()), ..Default::default() },
        };
        let custom = ChatClaims { token_source: Some(token_source.to_string()), version: Some(1), ..custom };
        let lifetime = lifetime_secs.min(MAX_TOKEN_LIFETIME_SECS);
        self.sign(custom, self.audience.clone(), None, now_secs, lifetime)
    }

    fn sign<T: Serialize + serde::de::DeserializeOwned>(
        &self,
        custom: T,
        audience: String,
        nonce: Option<String>,
        now_secs: u64,
        lifetime_secs: u64,
    ) -> Result<Issued, ApiError> {
        let mut claims = JWTClaims {
            issued_at: Some(UnixTimeStamp::from_secs(now_secs)),
            expires_at: Some(UnixTimeStamp::from_secs(now_secs + lifetime_secs)),
            invalid_before: None,
            issuer: None,
            subject: None,
            audiences: None,
            jwt_id: None,
            nonce: None,
            custom,
        };
        claims = claims.with_audience(audience);
        if let Some(n) = nonce {
            claims = claims.with_nonce(n);
        }
        let token = self.key.authenticate(claims).map_err(|e| ApiError::internal(format!("cannot sign token: {e}")))?;
        Ok(Issued { token, expires_at: now_secs + lifetime_secs })
    }

    /// A connect ticket for the bearer `credential`'s member, valid `TICKET_TTL_SECS`; `nonce` must
    /// be unguessable. The ticket carries when the bearer token stops being accepted.
    pub fn issue_ticket(&self, credential: &Credential, nonce: &str, now_secs: u64) -> Result<Issued, ApiError> {
        let custom = TicketClaims {
            member: credential.member.to_string(),
            token_exp: Some(credential.accepted_until.saturating_sub(CLOCK_SKEW_SECS)),
        };
        self.sign(custom, self.ticket_audience(), Some(nonce.to_string()), now_secs, TICKET_TTL_SECS)
    }

    /// Checks a ticket's signature and time; the caller still has to redeem its nonce once.
    pub fn verify_ticket(&self, ticket: &str, now_secs: u64) -> Result<Ticket, ApiError> {
        let bad = || unauthorized("ticket is invalid, used or expired");
        let mut opts = self.options(self.ticket_audience(), now_secs);
        // Tickets are short: no tolerance beyond their 30 s.
        opts.time_tolerance = Some(Duration::from_secs(0));
        let claims = self.key.verify_token::<TicketClaims>(ticket, Some(opts)).map_err(|_| bad())?;
        let expires_at = claims.expires_at.ok_or_else(bad)?.as_secs();
        let nonce = claims.nonce.filter(|n| n.len() >= 16).ok_or_else(bad)?;
        let member = MemberId::parse(&claims.custom.member).map_err(|_| bad())?;
        // A ticket minted before tickets carried the token's expiry: at most a token's lifetime.
        let token_exp = claims.custom.token_exp.unwrap_or(expires_at + MAX_TOKEN_LIFETIME_SECS);
        Ok(Ticket { member, nonce, expires_at, token_accepted_until: token_exp + CLOCK_SKEW_SECS })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn cfg() -> AuthConfig {
        AuthConfig::new("a-local-secret-of-enough-length", "switchboard").unwrap()
    }

    fn sign_raw(secret: &str, aud: &str, custom: serde_json::Value, iat: u64, exp: Option<u64>) -> String {
        let key = HS256Key::from_bytes(secret.as_bytes());
        let mut claims = Claims::with_custom_claims(custom, Duration::from_secs(1)).with_audience(aud);
        claims.issued_at = Some(UnixTimeStamp::from_secs(iat));
        claims.expires_at = exp.map(UnixTimeStamp::from_secs);
        key.authenticate(claims).unwrap()
    }

    fn human() -> serde_json::Value {
        serde_json::json!({"kiloUserId": "alice", "tokenSource": "web", "version": 3})
    }

    #[test]
    fn issued_tokens_verify() {
        let c = cfg();
        let alice = MemberId::user("alice").unwrap();
        let t = c.issue_token(&alice, "dev", NOW, 3600).unwrap();
        assert_eq!(c.verify_token(&t.token, NOW + 10).unwrap(), alice);
        let bot = MemberId::bot("sb1").unwrap();
        let t = c.issue_token(&bot, "dev", NOW, 3600).unwrap();
        assert_eq!(c.verify_bearer(Some(&format!("Bearer {}", t.token)), NOW).unwrap(), bot);
    }

    #[test]
    fn kilo_shaped_tokens_verify() {
        let t = sign_raw("a-local-secret-of-enough-length", "switchboard", human(), NOW, Some(NOW + 3600));
        assert_eq!(cfg().verify_token(&t, NOW).unwrap(), MemberId::user("alice").unwrap());
    }

    #[test]
    fn rejects_bad_tokens() {
        let c = cfg();
        let secret = "a-local-secret-of-enough-length";
        let cases = [
            ("forged", sign_raw("another-secret-entirely-1234", "switchboard", human(), NOW, Some(NOW + 60))),
            ("expired", sign_raw(secret, "switchboard", human(), NOW - 7200, Some(NOW - 3600))),
            ("wrong audience", sign_raw(secret, "elsewhere", human(), NOW, Some(NOW + 60))),
            ("no exp", sign_raw(secret, "switchboard", human(), NOW, None)),
            ("too long", sign_raw(secret, "switchboard", human(), NOW, Some(NOW + 7200))),
            (
                "no version",
                sign_raw(
                    secret,
                    "switchboard",
                    serde_json::json!({"kiloUserId": "a", "tokenSource": "x"}),
                    NOW,
                    Some(NOW + 60),
                ),
            ),
            (
                "both ids",
                sign_raw(
                    secret,
                    "switchboard",
                    serde_json::json!({"kiloUserId": "a", "kiloclawSandboxId": "s", "tokenSource": "x", "version": 1}),
                    NOW,
                    Some(NOW + 60),
                ),
            ),
            ("garbage", "not.a.token".to_string()),
        ];
        for (name, t) in cases {
            let e = c.verify_token(&t, NOW).unwrap_err();
            assert_eq!(e.status(), 401, "{name}");
        }
        assert!(c.verify_bearer(None, NOW).is_err());
        assert!(c.verify_bearer(Some("Basic abc"), NOW).is_err());
        assert!(c.verify_bearer(Some("Bearer "), NOW).is_err());
    }

    #[test]
    fn tickets_are_their_own_audience_and_short() {
        let c = cfg();
        let alice = MemberId::user("alice").unwrap();
        let bearer = c.issue_token(&alice, "dev", NOW - 100, 600).unwrap();
        let credential = c.verify_credential(&bearer.token, NOW).unwrap();
        assert_eq!(credential.accepted_until, NOW + 500 + CLOCK_SKEW_SECS, "exp plus the skew");
        let t = c.issue_ticket(&credential, "0123456789abcdef0123", NOW).unwrap();
        let v = c.verify_ticket(&t.token, NOW + 29).unwrap();
        assert_eq!(v.member, alice);
        assert_eq!(v.token_accepted_until, credential.accepted_until, "the ticket carries the token's expiry");
        assert_eq!(v.nonce, "0123456789abcdef0123");
        assert!(c.verify_ticket(&t.token, NOW + 31).is_err());
        // A ticket is not a bearer token, and a bearer token is not a ticket.
        assert!(c.verify_token(&t.token, NOW).is_err());
        let bearer = c.issue_token(&alice, "dev", NOW, 60).unwrap();
        assert!(c.verify_ticket(&bearer.token, NOW).is_err());
    }
}
