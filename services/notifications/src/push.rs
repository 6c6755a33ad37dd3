//! `sendPushForConversation` and `clearBadgeBucketForUser`, end to end:
//!
//! 1. read and check the payload (`plan`); skip when there is no sandbox or nobody to notify;
//! 2. read the sandbox's label and every recipient's preferences and tokens from D1 (one batch);
//! 3. per recipient, claim the idempotency key in the user's object, which records `pending` and
//!    counts the badge (or answers `duplicate`, or `pending` with `retryAt` while another attempt
//!    holds the push, or records a suppression);
//! 4. send every claimed recipient's messages to Expo (chunks of 100) and read the tickets;
//!    forget tokens Expo calls `DeviceNotRegistered`;
//! 5. settle each claim: `delivered` when Expo accepted one of the user's messages, else `failed`
//!    (retryable without counting again); accepted tickets are kept for the receipt check.

use crate::config;
use crate::expo;
use crate::platform;
use crate::rpc::{self, ClaimAnswer, ClearAnswer, PendingReceipt, SettleAnswer, UserCommand};
use crate::store;
use futures::future::join_all;
use switchboard_notify_contract::{
    badge_bucket, idempotency_key, BadgeCount, Outcome, RecipientOutcome, SendPushResult, CONTRACT_VERSION,
};
use switchboard_notify_core::expo::{PushMessage, Ticket};
use switchboard_notify_core::ledger::Suppression;
use switchboard_notify_core::plan::{self, RpcFailure};
use worker::Env;

pub async fn send_push_for_conversation(env: &Env, payload: &str) -> String {
    match run(env, payload).await {
        Ok(result) => serde_json::to_string(&result).unwrap_or_else(|e| RpcFailure::internal(e.to_string()).to_json()),
        Err(f) => {
            worker::console_error!("sendPushForConversation: {}: {}", f.code, f.message);
            f.to_json()
        }
    }
}

pub async fn clear_badge_bucket_for_user(env: &Env, payload: &str) -> String {
    let run = async {
        let req = plan::parse_clear(payload)?;
        let answer: ClearAnswer =
            rpc::call(env, &req.user_id, &UserCommand::Clear { bucket: req.badge_bucket.clone() })
                .await
                .map_err(|e| RpcFailure::internal(e.message))?;
        Ok::<BadgeCount, RpcFailure>(BadgeCount { version: CONTRACT_VERSION, badge_count: answer.badge_count })
    };
    match run.await {
        Ok(count) => serde_json::to_string(&count).unwrap_or_else(|e| RpcFailure::internal(e.to_string()).to_json()),
        Err(f) => {
            worker::console_error!("clearBadgeBucketForUser: {}: {}", f.code, f.message);
            f.to_json()
        }
    }
}

async fn run(env: &Env, payload: &str) -> Result<SendPushResult, RpcFailure> {
    let req = plan::parse_send(payload)?;
    let audience = match plan::audience(&req) {
        Ok(a) => a,
        Err(skipped) => return Ok(skipped),
    };
    let settings = config::settings(env);
    let users: Vec<String> = audience.recipients.iter().map(|r| r.user_id.clone()).collect();
    let db = store::db(env).map_err(|e| RpcFailure::internal(e.message))?;
    let ctx = store::push_context(&db, &req.sandbox_id, &users).await.map_err(|e| RpcFailure::internal(e.message))?;
    let now = platform::now_ms();
    let bucket = badge_bucket(&req.sandbox_id, &req.conversation_id);

    // 3. Claims, one per recipient, in parallel (each in its own object).
    let claims = join_all(audience.recipients.iter().map(|r| {
        let prefs = ctx.prefs_of(&r.user_id);
        let suppression =
            plan::suppression(r, &prefs, ctx.tokens_of(&r.user_id).len(), now, settings.presence_grace_ms);
        // A recipient with pushes off or no device costs no call to their object: nothing is sent
        // and no badge counts, so there is nothing to make idempotent. (Presence suppression is
        // recorded, so a replay after the viewer left still answers `duplicate` and sends nothing.)
        let settled_here = match suppression {
            Some(Suppression::Preference) => Some(Outcome::SuppressedPreference),
            Some(Suppression::NoTokens) => Some(Outcome::NoTokens),
            _ => None,
        };
        let cmd = UserCommand::Claim {
            user_id: r.user_id.clone(),
            key: idempotency_key(&req.message_id, &r.user_id),
            bucket: bucket.clone(),
            suppression,
        };
        async move {
            match settled_here {
                Some(outcome) => Ok(ClaimAnswer::Suppressed { outcome }),
                None => rpc::call::<ClaimAnswer>(env, &r.user_id, &cmd).await,
            }
        }
    }))
    .await;

    let mut outcomes: Vec<Outcome> = Vec::with_capacity(claims.len());
    // The user's total unread, for each recipient whose badge this push counted.
    let mut badges: Vec<Option<i64>> = vec![None; claims.len()];
    // When a recipient's push held by another attempt may be asked for again.
    let mut retry_at: Vec<Option<i64>> = vec![None; claims.len()];
    // (recipient index, lease) of each claimed send; messages and who each belongs to.
    let mut sends: Vec<(usize, i64)> = Vec::new();
    let mut messages: Vec<PushMessage> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    for (i, (r, claim)) in audience.recipients.iter().zip(claims).enumerate() {
        let outcome = match claim {
            Err(e) => {
                worker::console_error!("claim for {} of message {}: {e}", r.user_id, req.message_id);
                Outcome::Failed
            }
            Ok(ClaimAnswer::Duplicate) => Outcome::Duplicate,
            Ok(ClaimAnswer::InFlight { until }) => {
                retry_at[i] = Some(until);
                Outcome::Pending
            }
            Ok(ClaimAnswer::Suppressed { outcome }) => outcome,
            Ok(ClaimAnswer::Send { lease, badge }) => {
                badges[i] = Some(badge);
                let prefs = ctx.prefs_of(&r.user_id);
                let title = plan::title_for(&req, &ctx.sandbox_label, &prefs);
                for m in plan::messages_for(&req, &title, &prefs, ctx.tokens_of(&r.user_id), badge) {
                    messages.push(m);
                    owner.push(i);
                }
                sends.push((i, lease));
                // Replaced below by the settle.
                Outcome::Failed
            }
        };
        outcomes.push(outcome);
    }

    // 4. Expo.
    let tickets: Vec<Ticket> =
        if messages.is_empty() { Vec::new() } else { expo::send_all(&settings, &messages).await };
    let dead: Vec<(String, String)> = tickets
        .iter()
        .zip(&messages)
        .zip(&owner)
        .filter(|((t, _), _)| t.device_not_registered())
        .map(|((_, m), i)| (audience.recipients[*i].user_id.clone(), m.to.clone()))
        .collect();
    if !dead.is_empty() {
        worker::console_log!("forgetting {} token(s) Expo calls DeviceNotRegistered", dead.len());
        if let Err(e) = store::delete_dead_tokens(&db, &dead).await {
            worker::console_error!("delete dead tokens: {e}");
        }
    }

    // 5. Settles.
    let message_id = req.message_id.as_str();
    let settles = join_all(sends.iter().map(|(i, lease)| {
        let r = &audience.recipients[*i];
        let mine: Vec<(&Ticket, &PushMessage)> =
            tickets.iter().zip(&messages).zip(&owner).filter(|(_, o)| **o == *i).map(|((t, m), _)| (t, m)).collect();
        let delivered = plan::delivered(mine.iter().map(|(t, _)| *t));
        let receipts = mine
            .iter()
            .filter_map(|(t, m)| match t {
                Ticket::Ok { id } => Some(PendingReceipt { ticket_id: id.clone(), token: m.to.clone() }),
                Ticket::Error { .. } => None,
            })
            .collect();
        let cmd = UserCommand::Settle {
            user_id: r.user_id.clone(),
            key: idempotency_key(message_id, &r.user_id),
            lease: *lease,
            delivered,
            receipts,
        };
        async move {
            let total = match rpc::call::<SettleAnswer>(env, &r.user_id, &cmd).await {
                Ok(answer) => answer.badge_total,
                Err(e) => {
                    worker::console_error!("settle for {} of message {message_id}: {e}", r.user_id);
                    None
                }
            };
            (*i, delivered, total)
        }
    }))
    .await;
    for (i, delivered, total) in settles {
        outcomes[i] = if delivered { Outcome::Delivered } else { Outcome::Failed };
        // The total as it is now (a mark-read or another push may have changed it since the claim).
        if total.is_some() {
            badges[i] = total;
        }
    }

    let mut result: Vec<RecipientOutcome> = audience
        .recipients
        .iter()
        .zip(outcomes)
        .zip(badges)
        .zip(retry_at)
        .map(|(((r, outcome), badge_count), retry_at)| RecipientOutcome {
            user_id: r.user_id.clone(),
            outcome,
            badge_count,
            retry_at,
        })
        .collect();
    result.extend(audience.rejected);
    Ok(SendPushResult { version: CONTRACT_VERSION, skipped: None, outcomes: result })
}
