//! `MemberObject`: the Durable Object shell around `switchboard_member`.
//!
//! One object per member (a user, or a sandbox's bot). Every decision (the conversation list
//! ordered by activity, connect-ticket redemption, a bot's online status, and the user's event hub:
//! sessions, subscriptions, the per-user log, resume, ack windows, the stale-socket sweep, which
//! conversations to watch) is made by the native state machine [`Member`], which runs each command
//! in one SQLite transaction and answers the effects to carry out. This shell only translates:
//! requests and socket frames into calls (`hub.rs`: the hub's sockets and their attachments),
//! effects into runtime calls (`effects.rs`).
//!
//! Invariants: no `RefCell` borrow is held across an `.await` (the core's calls are synchronous); a
//! socket's only memory is its attachment `{session, connectedAt, replaced, batch}`.

mod bot;
mod effects;
mod hub;

use crate::http::{error_response, internal};
use crate::platform;
use crate::rpc::MemberCommand;
use crate::sql::Sql;
use switchboard_core::ApiError;
use switchboard_member::{Ctx, Member};
use switchboard_worker_kit::alarm::AlarmSlot;
use switchboard_worker_kit::batching::PerSocketBatcher;
use worker::{
    durable_object, wasm_bindgen, DurableObject, Env, Request, Response, State, WebSocket, WebSocketIncomingMessage,
};

#[durable_object]
pub struct MemberObject {
    state: State,
    env: Env,
    /// The JavaScript `DurableObjectState`, for the calls workers-rs does not wrap.
    raw_state: wasm_bindgen::JsValue,
    core: Member<Sql>,
    alarm: AlarmSlot,
    /// Frames for the hub sockets that opted in to batched frames (`?batch=1`).
    batcher: PerSocketBatcher,
}

impl DurableObject for MemberObject {
    fn new(state: State, env: Env) -> Self {
        let raw = state._inner();
        let raw_state: wasm_bindgen::JsValue = raw.clone().into();
        let state = State::from(raw);
        let sql = Sql::with_transactions(state.storage().sql(), raw_state.clone());
        // No schema here: the tables are made by the first command that writes, so an object only
        // read (a list, a bot's status, a sandbox's users of an id never stored) writes nothing.
        let core = Member::with_limits(sql, crate::config::limits(&env));
        hub::set_auto_response(&state);
        MemberObject { state, env, raw_state, core, alarm: AlarmSlot::new(), batcher: PerSocketBatcher::new() }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let result = if req.path() == "/connect" {
            self.hub_connect(&req).await
        } else {
            match req.text().await {
                Ok(body) => match MemberCommand::decode(&body) {
                    Ok(cmd) => self.run(cmd).await,
                    Err(e) => Err(internal("decode member rpc", e)),
                },
                Err(e) => Err(internal("read member rpc", e)),
            }
        };
        match result {
            Ok(r) => Ok(r),
            Err(e) => error_response(&e),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm.fired();
        self.sweep().await;
        self.close_expired().await;
        self.bot_fanout_step().await;
        Response::ok("ok")
    }

    async fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> worker::Result<()> {
        self.hub_message(&ws, message).await;
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> worker::Result<()> {
        self.hub_closed(&ws).await;
        switchboard_worker_kit::socket::complete_close(&ws);
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        self.hub_closed(&ws).await;
        switchboard_worker_kit::socket::close_after_error(&ws);
        Ok(())
    }
}

impl MemberObject {
    /// A command from the worker or a conversation: run it, carry out its effects, answer.
    async fn run(&self, cmd: MemberCommand) -> Result<Response, ApiError> {
        let (sockets, facts) = self.sockets(None);
        let ctx = Ctx { now_ms: platform::now_ms(), random: platform::random_u128(), sockets: &facts };
        let (answer, effects) = self.core.handle(cmd, &ctx);
        self.carry_out(&sockets, effects).await;
        let reply = answer?;
        match reply.body {
            Some(v) => crate::http::json(reply.status, &v),
            None => crate::http::no_content(),
        }
    }
}
