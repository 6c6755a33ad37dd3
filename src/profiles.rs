//! Sandbox profiles in D1: the display label a sandbox sets for itself (used in push titles).
//! Read and written only by the bot's profile calls, never on the message path.

use crate::http::internal;
use serde::Deserialize;
use switchboard_core::ApiError;
use worker::Env;

fn db(env: &Env) -> Result<worker::D1Database, ApiError> {
    env.d1("DB").map_err(|e| internal("d1 binding", e))
}

/// The sandbox's label, defaulting to its id.
pub async fn label(env: &Env, sandbox_id: &str) -> Result<String, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        label: String,
    }
    let stmt = db(env)?
        .prepare("SELECT label FROM sandbox_profiles WHERE sandbox_id = ?1")
        .bind(&[sandbox_id.into()])
        .map_err(|e| internal("d1 bind", e))?;
    let row: Option<Row> = stmt.first(None).await.map_err(|e| internal("d1 read", e))?;
    Ok(row.map(|r| r.label).unwrap_or_else(|| sandbox_id.to_string()))
}

pub async fn set_label(env: &Env, sandbox_id: &str, label: &str, now_ms: i64) -> Result<(), ApiError> {
    db(env)?
        .prepare(
            "INSERT INTO sandbox_profiles (sandbox_id, label, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (sandbox_id) DO UPDATE SET label = excluded.label, updated_at = excluded.updated_at",
        )
        .bind(&[sandbox_id.into(), label.into(), (now_ms as f64).into()])
        .map_err(|e| internal("d1 bind", e))?
        .run()
        .await
        .map_err(|e| internal("d1 write", e))?;
    Ok(())
}
