//! Push tokens, notification preferences and sandbox labels in D1 (the chat worker's database,
//! binding `DB`; tables from `migrations/0001_sandbox_profiles.sql` and `0002_notifications.sql`).
//! D1 statements bind at most 100 parameters, so lists of users are read in chunks.

use crate::http::internal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use switchboard_core::ApiError;
use switchboard_notify_core::prefs::{Preferences, PreferencesUpdate, Preview};
use switchboard_notify_core::tokens::{RegisterToken, MAX_TOKENS_PER_USER};
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env};

/// Users per `IN (...)` list (D1 allows 100 bound parameters).
const USERS_PER_QUERY: usize = 90;

pub fn db(env: &Env) -> Result<D1Database, ApiError> {
    env.d1("DB").map_err(|e| internal("d1 binding", e))
}

fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}

fn opt(v: Option<&str>) -> JsValue {
    v.map(JsValue::from_str).unwrap_or(JsValue::NULL)
}

fn n(v: i64) -> JsValue {
    JsValue::from_f64(v as f64)
}

fn stmt(db: &D1Database, q: &str, args: &[JsValue]) -> Result<D1PreparedStatement, ApiError> {
    db.prepare(q).bind(args).map_err(|e| internal("d1 bind", e))
}

fn placeholders(from: usize, count: usize) -> String {
    (from..from + count).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
}

// ------------------------------------------------------------------------------------------------
// Push tokens
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub token: String,
    pub platform: Option<String>,
    pub app_version: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Deserialize)]
struct TokenRow {
    token: String,
    platform: Option<String>,
    app_version: Option<String>,
    created_at: i64,
    updated_at: i64,
}

/// Registers (or refreshes) a device token for `user`; a token registered by another user moves to
/// this one as a new registration: only what this user sent is kept (platform, app version and
/// `createdAt` are not the previous owner's). Answers whether it is new for this user, and the
/// stored row. A user keeps at most
/// `MAX_TOKENS_PER_USER` tokens: the least recently registered are forgotten.
pub async fn register_token(
    db: &D1Database,
    user: &str,
    r: &RegisterToken,
    now: i64,
) -> Result<(bool, TokenInfo), ApiError> {
    let owner: Option<String> = stmt(db, "SELECT user_id FROM push_tokens WHERE token = ?1", &[s(&r.token)])?
        .first(Some("user_id"))
        .await
        .map_err(|e| internal("d1 read token", e))?;
    let created = owner.as_deref() != Some(user);
    let upsert = stmt(
        db,
        "INSERT INTO push_tokens (token, user_id, platform, app_version, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (token) DO UPDATE SET
           created_at = CASE WHEN push_tokens.user_id = excluded.user_id THEN push_tokens.created_at ELSE excluded.created_at END,
           user_id = excluded.user_id,
           platform = CASE WHEN push_tokens.user_id = excluded.user_id
             THEN COALESCE(excluded.platform, push_tokens.platform) ELSE excluded.platform END,
           app_version = CASE WHEN push_tokens.user_id = excluded.user_id
             THEN COALESCE(excluded.app_version, push_tokens.app_version) ELSE excluded.app_version END,
           updated_at = excluded.updated_at",
        &[s(&r.token), s(user), opt(r.platform.as_deref()), opt(r.app_version.as_deref()), n(now)],
    )?;
    let cap = stmt(
        db,
        "DELETE FROM push_tokens WHERE user_id = ?1 AND token NOT IN
           (SELECT token FROM push_tokens WHERE user_id = ?1 ORDER BY updated_at DESC, token DESC LIMIT ?2)",
        &[s(user), n(MAX_TOKENS_PER_USER as i64)],
    )?;
    let read = stmt(
        db,
        "SELECT token, platform, app_version, created_at, updated_at FROM push_tokens WHERE token = ?1",
        &[s(&r.token)],
    )?;
    let results = db.batch(vec![upsert, cap, read]).await.map_err(|e| internal("d1 register token", e))?;
    let rows: Vec<TokenRow> = results
        .get(2)
        .ok_or_else(|| internal("d1 register token", "missing batch result"))?
        .results()
        .map_err(|e| internal("d1 decode token", e))?;
    let row = rows.into_iter().next().ok_or_else(|| internal("d1 register token", "row vanished"))?;
    Ok((
        created,
        TokenInfo {
            token: row.token,
            platform: row.platform,
            app_version: row.app_version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        },
    ))
}

/// Forgets a device token of `user` (a token of another user is left alone). Idempotent.
pub async fn delete_token(db: &D1Database, user: &str, token: &str) -> Result<(), ApiError> {
    stmt(db, "DELETE FROM push_tokens WHERE token = ?1 AND user_id = ?2", &[s(token), s(user)])?
        .run()
        .await
        .map_err(|e| internal("d1 delete token", e))?;
    Ok(())
}

/// Forgets tokens Expo called `DeviceNotRegistered` (`(user, token)` pairs).
pub async fn delete_dead_tokens(db: &D1Database, dead: &[(String, String)]) -> Result<(), ApiError> {
    if dead.is_empty() {
        return Ok(());
    }
    let stmts = dead
        .iter()
        .map(|(user, token)| {
            stmt(db, "DELETE FROM push_tokens WHERE token = ?1 AND user_id = ?2", &[s(token), s(user)])
        })
        .collect::<Result<Vec<_>, _>>()?;
    db.batch(stmts).await.map_err(|e| internal("d1 delete dead tokens", e))?;
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Preferences
// ------------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct PrefRow {
    user_id: String,
    chat_messages_enabled: i64,
    preview: String,
}

impl PrefRow {
    fn prefs(&self) -> Preferences {
        Preferences {
            chat_messages_enabled: self.chat_messages_enabled != 0,
            preview: Preview::from_stored(&self.preview),
        }
    }
}

pub async fn preferences(db: &D1Database, user: &str) -> Result<Preferences, ApiError> {
    let rows: Vec<PrefRow> = stmt(
        db,
        "SELECT user_id, chat_messages_enabled, preview FROM notification_preferences WHERE user_id = ?1",
        &[s(user)],
    )?
    .all()
    .await
    .map_err(|e| internal("d1 read preferences", e))?
    .results()
    .map_err(|e| internal("d1 decode preferences", e))?;
    Ok(rows.first().map(PrefRow::prefs).unwrap_or_default())
}

/// Applies a partial update in one statement (fields left out keep their value) and answers the result.
pub async fn update_preferences(
    db: &D1Database,
    user: &str,
    u: &PreferencesUpdate,
    now: i64,
) -> Result<Preferences, ApiError> {
    let d = Preferences::default();
    let enabled = u.chat_messages_enabled.map(|b| n(b as i64)).unwrap_or(JsValue::NULL);
    let preview = u.preview.map(|p| s(p.as_str())).unwrap_or(JsValue::NULL);
    let upsert = stmt(
        db,
        "INSERT INTO notification_preferences (user_id, chat_messages_enabled, preview, updated_at)
         VALUES (?1, COALESCE(?2, ?5), COALESCE(?3, ?6), ?4)
         ON CONFLICT (user_id) DO UPDATE SET
           chat_messages_enabled = COALESCE(?2, notification_preferences.chat_messages_enabled),
           preview = COALESCE(?3, notification_preferences.preview),
           updated_at = ?4",
        &[s(user), enabled, preview, n(now), n(d.chat_messages_enabled as i64), s(d.preview.as_str())],
    )?;
    let read = stmt(
        db,
        "SELECT user_id, chat_messages_enabled, preview FROM notification_preferences WHERE user_id = ?1",
        &[s(user)],
    )?;
    let results = db.batch(vec![upsert, read]).await.map_err(|e| internal("d1 write preferences", e))?;
    let rows: Vec<PrefRow> = results
        .get(1)
        .ok_or_else(|| internal("d1 write preferences", "missing batch result"))?
        .results()
        .map_err(|e| internal("d1 decode preferences", e))?;
    Ok(rows.first().map(PrefRow::prefs).unwrap_or_default())
}

// ------------------------------------------------------------------------------------------------
// What a push needs: the sandbox's label, and each recipient's preferences and tokens
// ------------------------------------------------------------------------------------------------

pub struct PushContext {
    pub sandbox_label: String,
    pub prefs: HashMap<String, Preferences>,
    /// Newest registration first.
    pub tokens: HashMap<String, Vec<String>>,
}

impl PushContext {
    pub fn prefs_of(&self, user: &str) -> Preferences {
        self.prefs.get(user).copied().unwrap_or_default()
    }

    pub fn tokens_of(&self, user: &str) -> &[String] {
        self.tokens.get(user).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Reads everything in one D1 round trip (a batch).
pub async fn push_context(db: &D1Database, sandbox_id: &str, users: &[String]) -> Result<PushContext, ApiError> {
    let mut stmts = vec![stmt(db, "SELECT label FROM sandbox_profiles WHERE sandbox_id = ?1", &[s(sandbox_id)])?];
    for chunk in users.chunks(USERS_PER_QUERY) {
        let args: Vec<JsValue> = chunk.iter().map(|u| s(u)).collect();
        let list = placeholders(1, chunk.len());
        stmts.push(stmt(db, &format!("SELECT user_id, chat_messages_enabled, preview FROM notification_preferences WHERE user_id IN ({list})"), &args)?);
        stmts.push(stmt(
            db,
            &format!(
                "SELECT user_id, token FROM push_tokens WHERE user_id IN ({list}) ORDER BY updated_at DESC, token DESC"
            ),
            &args,
        )?);
    }
    let results = db.batch(stmts).await.map_err(|e| internal("d1 read push context", e))?;
    #[derive(Deserialize)]
    struct Label {
        label: String,
    }
    #[derive(Deserialize)]
    struct TokenOf {
        user_id: String,
        token: String,
    }
    let mut ctx = PushContext { sandbox_label: sandbox_id.to_string(), prefs: HashMap::new(), tokens: HashMap::new() };
    for (i, r) in results.iter().enumerate() {
        if i == 0 {
            let rows: Vec<Label> = r.results().map_err(|e| internal("d1 decode label", e))?;
            if let Some(l) = rows.into_iter().next() {
                ctx.sandbox_label = l.label;
            }
        } else if i % 2 == 1 {
            let rows: Vec<PrefRow> = r.results().map_err(|e| internal("d1 decode preferences", e))?;
            for row in rows {
                ctx.prefs.insert(row.user_id.clone(), row.prefs());
            }
        } else {
            let rows: Vec<TokenOf> = r.results().map_err(|e| internal("d1 decode tokens", e))?;
            for row in rows {
                ctx.tokens.entry(row.user_id).or_default().push(row.token);
            }
        }
    }
    Ok(ctx)
}
