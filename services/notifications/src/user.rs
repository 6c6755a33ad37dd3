//! `UserNotifications`: one Durable Object per user (named by the user id), the shell around
//! `switchboard_notify_core::user`.
//!
//! It holds, in its SQLite database, the user's idempotency records, badge buckets and total, and
//! the Expo tickets whose receipts are still to be checked; its one alarm removes expired records
//! and checks receipts that came due. Every decision (claim and settle, badges, what is due, what a
//! receipt means, when to fire next) is made by the state machine [`User`], each command in one
//! transaction; this shell decodes commands, sets the alarm the core asks for (only ever earlier:
//! `AlarmSlot`), and makes the calls the core cannot: Expo's receipts and D1's dead tokens.
//!
//! Invariants: a command runs from its first read to its last write with no `.await` in between,
//! so a concurrent replay sees `pending` and answers `duplicate`; the alarm is never moved later.

use crate::config;
use crate::expo;
use crate::http::{error_response, internal, json};
use crate::platform;
use crate::rpc::UserCommand;
use crate::store;
use switchboard_core::ApiError;
use switchboard_notify_core::user::{Config, User};
use switchboard_worker_kit::alarm::AlarmSlot;
use switchboard_worker_kit::sql::Sql;
use worker::{durable_object, wasm_bindgen, DurableObject, Env, Request, Response, State};

#[durable_object]
pub struct UserNotifications {
    state: State,
    env: Env,
    core: User<Sql>,
    alarm: AlarmSlot,
}

impl DurableObject for UserNotifications {
    fn new(state: State, env: Env) -> Self {
        let raw = state._inner();
        let raw_state: wasm_bindgen::JsValue = raw.clone().into();
        let state = State::from(raw);
        let sql = Sql::with_transactions(state.storage().sql(), raw_state);
        let core = User::new(sql, Config::from_settings(&config::settings(&env)));
        if let Err(e) = core.ensure_schema() {
            worker::console_error!("user notifications schema: {e}");
        }
        UserNotifications { state, env, core, alarm: AlarmSlot::new() }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let result = match req.text().await {
            Ok(body) => match serde_json::from_str::<UserCommand>(&body) {
                Ok(cmd) => self.run(cmd).await,
                Err(e) => Err(internal("decode user command", e)),
            },
            Err(e) => Err(internal("read user command", e)),
        };
        match result {
            Ok(r) => Ok(r),
            Err(e) => error_response(&e),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm.fired();
        self.run_alarm().await;
        Response::ok("ok")
    }
}

impl UserNotifications {
    async fn run(&self, cmd: UserCommand) -> Result<Response, ApiError> {
        let alarm_at = match cmd {
            UserCommand::Inspect => self.state.storage().get_alarm().await.map_err(|e| internal("get alarm", e))?,
            _ => None,
        };
        let done = self.core.handle(cmd, platform::now_ms(), alarm_at)?;
        if let Some(at) = done.alarm_at {
            self.alarm.ensure(&self.state.storage(), at).await;
        }
        json(200, &done.answer)
    }

    /// Sweeps expired records, checks the receipts that came due, and re-arms at the earliest
    /// remaining deadline or receipt.
    async fn run_alarm(&self) {
        let now = platform::now_ms();
        if let Err(e) = self.core.sweep(now) {
            worker::console_error!("sweep records: {e}");
        }
        if let Err(e) = self.check_receipts(now).await {
            worker::console_error!("check receipts: {e}");
        }
        // A write during this handler's awaits may have asked for an earlier alarm.
        if let Some(at) = self.core.next_alarm(now, self.alarm.known()) {
            self.alarm.set(&self.state.storage(), at).await;
        }
    }

    /// Asks Expo for the due receipts and carries out what the core decides of the answers.
    async fn check_receipts(&self, now: i64) -> Result<(), ApiError> {
        let due = self.core.receipts_due(now)?;
        if due.is_empty() {
            return Ok(());
        }
        let settings = config::settings(&self.env);
        let ids: Vec<String> = due.iter().map(|r| r.ticket_id.clone()).collect();
        let answered = match expo::fetch_receipts(&settings, &ids).await {
            Ok(r) => Some(r),
            Err(e) => {
                worker::console_error!("receipts: {e}");
                None
            }
        };
        let checked = self.core.receipts_checked(&due, answered.as_ref(), now)?;
        for (ticket, message, error) in &checked.errors {
            worker::console_warn!("receipt {ticket}: {message} ({error:?})");
        }
        if !checked.dead_tokens.is_empty() {
            worker::console_log!(
                "receipts: forgetting {} token(s) Expo calls DeviceNotRegistered",
                checked.dead_tokens.len()
            );
            store::delete_dead_tokens(&store::db(&self.env)?, &checked.dead_tokens).await?;
        }
        Ok(())
    }
}
