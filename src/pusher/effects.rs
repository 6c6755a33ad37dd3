//! Carrying out the registry's effects, relaying conversation events onto their channels, keeping
//! the relay's watches in line with which conversation channels are occupied, and sending webhooks.

use super::PusherAppObject;
use crate::platform;
use crate::rpc::{self, ConversationCommand};
use crate::sql::Sql;
use serde_json::Value;
use switchboard_core::hub::Context;
use switchboard_pusher::channel::{self, PRESENCE_CONVERSATION_PREFIX, PRIVATE_CONVERSATION_PREFIX};
use switchboard_pusher::limits::WEBHOOK_STORAGE_RETRY_MS;
use switchboard_pusher::relay_watch::UnsureWatches;
use switchboard_pusher::webhook::WebhookEvent;
use switchboard_pusher::webhook_store::DurableWebhooks;
use switchboard_pusher::{Delivery, Effect, SocketId, SocketRecord};
use worker::{Fetch, Headers, Method, Request, RequestInit, WebSocket};

/// The conversation event that ends a member's right to its channels.
const MEMBER_LEFT: &str = "member.left";

impl PusherAppObject {
    /// Carries out effects in order. `current` is the socket whose event this is (sent to directly).
    /// Watches of conversations whose channels were just occupied are registered first, so a
    /// subscriber told `subscription_succeeded` gets every event committed after it.
    pub(super) async fn carry_out(&self, effects: Vec<Effect>, current: Option<(&SocketId, &WebSocket)>) {
        let mut touched: Vec<String> = Vec::new();
        for e in &effects {
            if let Effect::Webhook(
                WebhookEvent::ChannelOccupied { channel } | WebhookEvent::ChannelVacated { channel },
            ) = e
            {
                if let Some(id) = channel::conversation_id(channel) {
                    if !touched.iter().any(|t| t == id) {
                        touched.push(id.to_string());
                    }
                }
            }
        }
        for id in &touched {
            self.sync_watch(id).await;
        }
        let now = platform::now_ms().max(0) as u64;
        let mut queued = false;
        for e in effects {
            match e {
                Effect::Send { socket, frame } => match current {
                    Some((id, ws)) if *id == socket => {
                        let _ = ws.send_with_str(&frame);
                    }
                    _ => {
                        for ws in self.state.get_websockets_with_tag(socket.as_str()) {
                            let _ = ws.send_with_str(&frame);
                        }
                    }
                },
                Effect::Broadcast(d) => {
                    let all = self.with_registry(|r| d.sockets.len() == r.socket_count()).unwrap_or(false);
                    self.send_delivery(&d, all);
                }
                Effect::Close { socket, code, reason } => {
                    let close = |ws: &WebSocket| {
                        let _ = ws.serialize_attachment(Option::<SocketRecord>::None);
                        let _ = ws.close(Some(code), Some(&reason));
                    };
                    match current {
                        Some((id, ws)) if *id == socket => close(ws),
                        _ => self.state.get_websockets_with_tag(socket.as_str()).iter().for_each(close),
                    }
                }
                Effect::SaveRecord { socket } => {
                    let Some(record) = self.with_registry(|r| r.record(&socket)).flatten() else { continue };
                    let save = |ws: &WebSocket| {
                        if let Err(e) = ws.serialize_attachment(&record) {
                            worker::console_error!("pusher socket record: {e}");
                        }
                    };
                    match current {
                        Some((id, ws)) if *id == socket => save(ws),
                        _ => self.state.get_websockets_with_tag(socket.as_str()).iter().for_each(save),
                    }
                }
                Effect::Webhook(event) => {
                    if self.webhook_url.is_some() {
                        match self.with_webhooks(|q, sql| q.push(sql, &event, now)) {
                            Some(Ok(())) => queued = true,
                            Some(Err(e)) => worker::console_error!("pusher webhook not queued: {}", e.message),
                            None => {}
                        }
                    }
                }
            }
        }
        if queued {
            let due = self.with_webhooks(|q, _| q.next_due()).flatten();
            if let Some(due) = due {
                self.alarm.ensure(&self.state.storage(), due as i64).await;
            }
        }
    }

    /// One frame to many sockets, handed to JavaScript once.
    pub(super) fn send_delivery(&self, d: &Delivery, all: bool) {
        if all {
            platform::broadcast(&self.raw_state, &d.frame);
        } else {
            let tags: Vec<&str> = d.sockets.iter().map(SocketId::as_str).collect();
            platform::send_to_tagged(&self.raw_state, &tags, &d.frame);
        }
    }

    /// A conversation's event, onto both of its channels with the same event name and the payload
    /// as the JSON-string `data`. A member who left is unsubscribed from both (the sockets that say
    /// who they are: signed in, or present); a conversation nobody here follows any more is unwatched.
    pub(super) async fn relay(&self, context: &str, event: &str, payload: &Value) {
        let Some(ctx) = Context::parse(context) else { return };
        let Some(id) = ctx.conversation_id().map(str::to_string) else { return };
        let names = [format!("{PRIVATE_CONVERSATION_PREFIX}{id}"), format!("{PRESENCE_CONVERSATION_PREFIX}{id}")];
        let data = payload.to_string();
        let deliveries = self
            .with_registry(|r| {
                names
                    .iter()
                    .filter_map(|n| r.publish(n, event, &data, None))
                    .map(|d| {
                        let all = d.sockets.len() == r.socket_count();
                        (d, all)
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if deliveries.is_empty() {
            // Watched but followed by nobody (a missed unwatch): stop.
            self.watching.borrow_mut().insert(id.clone(), true);
            self.sync_watch(&id).await;
            return;
        }
        for (d, all) in &deliveries {
            self.send_delivery(d, *all);
        }
        if event == MEMBER_LEFT {
            if let Some(member) = payload.get("memberId").and_then(Value::as_str) {
                self.drop_member(&names, member).await;
            }
        }
    }

    /// Unsubscribes `member`'s identifiable sockets from the conversation's channels.
    async fn drop_member(&self, names: &[String], member: &str) {
        let effects = self
            .with_registry(|r| {
                let mut effects = Vec::new();
                for name in names {
                    let theirs: Vec<SocketId> = r
                        .subscribers(name)
                        .into_iter()
                        .filter(|s| {
                            r.record(s).is_some_and(|rec| {
                                rec.user.as_ref().is_some_and(|u| u.id == member)
                                    || rec.channels.iter().any(|c| {
                                        c.name == *name && c.member.as_ref().is_some_and(|m| m.user_id == member)
                                    })
                            })
                        })
                        .cloned()
                        .collect();
                    for s in theirs {
                        effects.extend(r.unsubscribe(&s, name));
                    }
                }
                effects
            })
            .unwrap_or_default();
        self.carry_out(effects, None).await;
    }

    /// Brings the relay's watch of conversation `id` in line with whether any socket here follows
    /// one of its channels. One loop per conversation: a second caller leaves it to the first, which
    /// checks again after each call.
    pub(super) async fn sync_watch(&self, id: &str) {
        let Some(app) = self.app.as_ref() else { return };
        if !self.syncing.borrow_mut().insert(id.to_string()) {
            return;
        }
        let watcher = super::relay_watcher(&app.id);
        loop {
            let wanted = self
                .with_registry(|r| {
                    r.channel_info(&format!("{PRIVATE_CONVERSATION_PREFIX}{id}")).occupied()
                        || r.channel_info(&format!("{PRESENCE_CONVERSATION_PREFIX}{id}")).occupied()
                })
                .unwrap_or(false);
            let current = self.watching.borrow().get(id).copied().unwrap_or(false);
            let unsure = self.with_unsure(|u, _| u.contains(id)).unwrap_or(false);
            if wanted == current && !unsure {
                break;
            }
            let command = ConversationCommand::Watch { watching: wanted, present: false };
            let failure = match rpc::conversation(&self.env, id, &watcher, command).await {
                Ok(resp) if resp.status_code() < 300 => {
                    self.watching.borrow_mut().insert(id.to_string(), wanted);
                    if let Some(Err(e)) = self.with_unsure(|u, sql| u.settled(sql, id)) {
                        worker::console_error!("pusher relay watch {id}: {e}");
                    }
                    continue;
                }
                Ok(resp) => format!("answered {}", resp.status_code()),
                Err(e) => e.to_string(),
            };
            // Unsure until a call succeeds: the alarm tries again (`relay_watch`).
            let retry = self.with_unsure(|u, sql| u.failed(sql, id, platform::now_ms()));
            worker::console_error!("pusher relay watch {id} ({wanted}): {failure}; tried again at {retry:?}");
            if let Some(Ok(Some(at))) = retry {
                self.alarm.ensure(&self.state.storage(), at).await;
            }
            break;
        }
        if !self.watching.borrow().get(id).copied().unwrap_or(false) {
            self.watching.borrow_mut().remove(id);
        }
        self.syncing.borrow_mut().remove(id);
    }

    /// The alarm: the unsure watches that are due are brought in line again, then the alarm is set
    /// for the next one.
    pub(super) async fn retry_watches(&self) {
        let due = self.with_unsure(|u, _| u.due(platform::now_ms())).unwrap_or_default();
        for id in due {
            self.sync_watch(&id).await;
        }
        if let Some(Some(at)) = self.with_unsure(|u, _| u.next_due()) {
            self.alarm.ensure(&self.state.storage(), at).await;
        }
    }

    /// The unsure watches (loaded from the object's SQLite on first use) and that database, for
    /// `f`; `None` when they cannot be loaded (logged).
    pub(super) fn with_unsure<T>(&self, f: impl FnOnce(&mut UnsureWatches, &Sql) -> T) -> Option<T> {
        let mut slot = self.unsure.borrow_mut();
        if slot.is_none() {
            match UnsureWatches::load(&self.sql) {
                Ok(u) => *slot = Some(u),
                Err(e) => {
                    worker::console_error!("pusher unsure watches not loaded: {e}");
                    return None;
                }
            }
        }
        slot.as_mut().map(|u| f(u, &self.sql))
    }

    /// The webhook queue (loaded from the object's SQLite on first use) and that database, for `f`;
    /// `None` when it cannot be loaded (logged).
    fn with_webhooks<T>(&self, f: impl FnOnce(&mut DurableWebhooks, &Sql) -> T) -> Option<T> {
        let mut slot = self.webhooks.borrow_mut();
        if slot.is_none() {
            match DurableWebhooks::load(&self.sql, platform::now_ms().max(0) as u64) {
                Ok(q) => *slot = Some(q),
                Err(e) => {
                    worker::console_error!("pusher webhook queue not loaded: {e}");
                    return None;
                }
            }
        }
        slot.as_mut().map(|q| f(q, &self.sql))
    }

    /// The alarm: sends what the webhook queue has due, one batch at a time, then re-arms (after
    /// `WEBHOOK_STORAGE_RETRY_MS` when its storage failed).
    pub(super) async fn send_webhooks(&self) {
        let (Some(app), Some(url)) = (self.app.as_ref(), self.webhook_url.as_deref()) else { return };
        let mut stuck = false;
        loop {
            let now = platform::now_ms().max(0) as u64;
            let request = match self.with_webhooks(|q, sql| q.poll(sql, app, now)) {
                Some(Ok(Some(r))) => r,
                Some(Ok(None)) => break,
                Some(Err(e)) => {
                    worker::console_error!("pusher webhook batch not stored: {}", e.message);
                    stuck = true;
                    break;
                }
                None => {
                    stuck = true;
                    break;
                }
            };
            let ok = post_webhook(url, &request.body, &request.headers).await;
            let now = platform::now_ms().max(0) as u64;
            let settled =
                self.with_webhooks(
                    |q, sql| if ok { q.sent(sql, now) } else { q.failed(sql, now, platform::random_u64()) },
                );
            if let Some(Err(e)) = settled {
                worker::console_error!("pusher webhook outcome not stored: {}", e.message);
                stuck = true;
                break;
            }
        }
        let now = platform::now_ms();
        let due = if stuck {
            Some(now + WEBHOOK_STORAGE_RETRY_MS)
        } else {
            self.with_webhooks(|q, _| q.next_due()).flatten().map(|d| d as i64)
        };
        if let Some(due) = due {
            self.alarm.set(&self.state.storage(), due).await;
        }
    }
}

/// POSTs one webhook batch; true on a 2xx answer.
async fn post_webhook(url: &str, body: &str, headers: &[(&'static str, String)]) -> bool {
    let h = Headers::new();
    for (k, v) in headers {
        if h.set(k, v).is_err() {
            return false;
        }
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(h).with_body(Some(body.into()));
    let Ok(req) = Request::new_with_init(url, &init) else {
        worker::console_error!("pusher webhook: bad PUSHER_WEBHOOK_URL");
        return false;
    };
    match Fetch::Request(req).send().await {
        Ok(mut resp) => {
            let ok = (200..300).contains(&resp.status_code());
            let _ = resp.text().await;
            ok
        }
        Err(e) => {
            worker::console_error!("pusher webhook: {e}");
            false
        }
    }
}
