//! The commands the worker sends a user's `UserNotifications` object (JSON over `stub.fetch`), and
//! their answers. An object answers 200 with the JSON answer, or an error status with
//! `{"error":{"code","message"}}`.

use serde::de::DeserializeOwned;
use switchboard_core::ApiError;
use worker::Env;

/// The Durable Object namespace binding of `UserNotifications`.
pub const USERS: &str = "USERS";

/// The commands and their typed answers: defined by the object's state machine.
pub use switchboard_notify_core::user::{
    BadgesAnswer, ClaimAnswer, ClearAnswer, PendingReceipt, SettleAnswer, UserCommand,
};

/// Sends `cmd` to `user_id`'s object and reads its answer.
pub async fn call<T: DeserializeOwned>(env: &Env, user_id: &str, cmd: &UserCommand) -> Result<T, ApiError> {
    let stub = switchboard_worker_kit::call::stub(env, USERS, user_id)?;
    switchboard_worker_kit::call::call(&stub, cmd).await
}
