//! The per-user event hub's rules (kilo-chat's event service, `kilo.events.v1`): context paths,
//! subscription limits, the frames a hub socket speaks, ack accounting, and which contexts a user
//! may see. The member object that holds the user's sockets carries these out.

use crate::error::{ApiError, ErrorCode};
use crate::limits::MAX_FRAME_BYTES;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The WebSocket subprotocol of the hub.
pub const SUBPROTOCOL: &str = "kilo.events.v1";
pub const MAX_CONTEXTS: usize = 200;
pub const MAX_CONTEXT_CHARS: usize = 256;
/// More unacked events than this (after a first ack) closes the socket with 4002.
pub const MAX_UNACKED: usize = 50;
/// Events a conversation hands one watching hub in one call (`deliver_all`), at most: half the ack
/// window, so that one call alone never takes a client that acks as it should past it.
pub const MAX_DELIVERIES_PER_CALL: usize = MAX_UNACKED / 2;
/// Events a user's hub keeps for resume.
pub const HUB_REPLAY_WINDOW: u64 = 1000;
/// A socket that has not pinged for this long is treated as gone (clients ping every 15 s).
pub const STALE_SOCKET_MS: i64 = 45_000;
/// A closed session can be resumed (and its missed events are kept for it) this long.
pub const RESUME_KEEP_MS: i64 = 10 * 60_000;
/// How often the hub looks for stale sockets while it has any.
pub const SWEEP_EVERY_MS: i64 = 15_000;

pub mod close {
    pub const TOO_MANY_UNACKED: u16 = 4002;
    pub const STALE: u16 = 4008;
    pub const REPLACED: u16 = 4009;
    /// Frames over the connection's rate limit, sent on after error frames (`limits::close`).
    pub const RATE_LIMITED: u16 = crate::limits::close::RATE_LIMITED;
}

/// The context paths, built in one place. A presence path is `/presence` + the event path.
pub mod contexts {
    pub const PRESENCE_APP: &str = "/presence/app";
    pub const PRESENCE_WEB: &str = "/presence/web";

    pub fn instance(sandbox_id: &str) -> String {
        format!("/kiloclaw/{sandbox_id}")
    }

    pub fn conversation(sandbox_id: &str, conversation_id: &str) -> String {
        format!("/kiloclaw/{sandbox_id}/{conversation_id}")
    }

    pub fn presence(event_context: &str) -> String {
        format!("/presence{event_context}")
    }
}

/// What a context path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Context {
    Instance { sandbox_id: String },
    Conversation { sandbox_id: String, conversation_id: String },
    PresencePlatform,
    PresenceInstance { sandbox_id: String },
    PresenceConversation { sandbox_id: String, conversation_id: String },
}

impl Context {
    pub fn parse(path: &str) -> Option<Context> {
        let (presence, rest) = match path.strip_prefix("/presence") {
            Some("/app") | Some("/web") => return Some(Context::PresencePlatform),
            Some(rest) => (true, rest),
            None => (false, path),
        };
        let segs: Vec<&str> = rest.strip_prefix("/kiloclaw/")?.split('/').collect();
        let ok_sandbox = |s: &str| crate::validate::sandbox_id(s).is_ok();
        let ok_conv = |s: &str| crate::ids::parse("conversationId", s).is_ok();
        match (presence, segs.as_slice()) {
            (false, [sb]) if ok_sandbox(sb) => Some(Context::Instance { sandbox_id: sb.to_string() }),
            (true, [sb]) if ok_sandbox(sb) => Some(Context::PresenceInstance { sandbox_id: sb.to_string() }),
            (false, [sb, c]) if ok_sandbox(sb) && ok_conv(c) => {
                Some(Context::Conversation { sandbox_id: sb.to_string(), conversation_id: c.to_string() })
            }
            (true, [sb, c]) if ok_sandbox(sb) && ok_conv(c) => {
                Some(Context::PresenceConversation { sandbox_id: sb.to_string(), conversation_id: c.to_string() })
            }
            _ => None,
        }
    }

    /// The conversation whose events or presence this context follows, if any.
    pub fn conversation_id(&self) -> Option<&str> {
        match self {
            Context::Conversation { conversation_id, .. } | Context::PresenceConversation { conversation_id, .. } => {
                Some(conversation_id)
            }
            _ => None,
        }
    }
}

/// May a user see `context`? `has_conversation(sandbox, conversation)` and `has_sandbox(sandbox)` answer
/// from the user's own conversation list.
pub fn may_subscribe(
    context: &Context,
    has_sandbox: impl Fn(&str) -> bool,
    has_conversation: impl Fn(&str, &str) -> bool,
) -> bool {
    match context {
        Context::PresencePlatform => true,
        // A user's instance context carries only their own events (their list, their reads and
        // badges, bots they share a conversation with), so any sandbox may be followed, and an app
        // hears of the user's first conversation in a sandbox without polling.
        Context::Instance { .. } => true,
        Context::PresenceInstance { sandbox_id } => has_sandbox(sandbox_id),
        Context::Conversation { sandbox_id, conversation_id }
        | Context::PresenceConversation { sandbox_id, conversation_id } => {
            has_conversation(sandbox_id, conversation_id)
        }
    }
}

/// A frame a hub client sent.
#[derive(Debug, Clone, PartialEq)]
pub enum HubFrame {
    Subscribe(Vec<String>),
    Unsubscribe(Vec<String>),
    Ack(u64),
    Typing { conversation_id: String, stop: bool },
}

/// The `contexts` of a subscribe or unsubscribe frame: at most `MAX_CONTEXTS` entries (a socket
/// never holds more, so a longer list is refused whole, before anything is looked up), each once,
/// in the order first listed.
fn contexts_field(o: &serde_json::Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let arr = o
        .get("contexts")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid("contexts: must be an array of strings"))?;
    if arr.len() > MAX_CONTEXTS {
        return Err(ApiError::invalid(format!("contexts: at most {MAX_CONTEXTS} per frame")));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(arr.len());
    for v in arr {
        match v.as_str() {
            Some(s) if !s.is_empty() && s.chars().count() <= MAX_CONTEXT_CHARS => {
                if seen.insert(s) {
                    out.push(s.to_string());
                }
            }
            _ => return Err(ApiError::invalid("contexts: each must be a string of 1..256 characters")),
        }
    }
    Ok(out)
}

/// Parses a hub text frame. Errors are answered with an error frame; the socket stays open.
pub fn parse_frame(text: &str) -> Result<HubFrame, ApiError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(ApiError::new(ErrorCode::BadFrame, "frame too large"));
    }
    let v: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::new(ErrorCode::BadFrame, format!("frame is not valid JSON: {e}")))?;
    let o = v.as_object().ok_or_else(|| ApiError::new(ErrorCode::BadFrame, "frame must be a JSON object"))?;
    let kind = o
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::new(ErrorCode::BadFrame, "frame needs a string \"type\""))?;
    match kind {
        "context.subscribe" => Ok(HubFrame::Subscribe(contexts_field(o)?)),
        "context.unsubscribe" => Ok(HubFrame::Unsubscribe(contexts_field(o)?)),
        "ack" => match o.get("seq").and_then(Value::as_u64) {
            Some(seq) if seq <= crate::limits::MAX_SAFE_INTEGER as u64 => Ok(HubFrame::Ack(seq)),
            _ => Err(ApiError::invalid("seq: must be an integer 0..2^53-1")),
        },
        "typing" | "typing.stop" => match o.get("conversationId").and_then(Value::as_str) {
            Some(c) => {
                crate::ids::parse("conversationId", c)?;
                Ok(HubFrame::Typing { conversation_id: c.to_string(), stop: kind == "typing.stop" })
            }
            None => Err(ApiError::invalid("conversationId: is required")),
        },
        other => Err(ApiError::new(ErrorCode::UnknownFrameType, format!("unknown frame type {other:?}"))),
    }
}

/// The outcome of a subscribe: which contexts were added, and the errors to answer.
#[derive(Debug, Default, PartialEq)]
pub struct SubscribeOutcome {
    pub added: Vec<String>,
    pub errors: Vec<Value>,
}

/// Adds `wanted` to `current` up to `MAX_CONTEXTS`; `allowed` says whether the user may see a context.
/// Refused contexts get `forbidden_context` errors; past the cap, `too_many_contexts` and the rest are
/// dropped (those that fit are kept). The cap comes first: a context past it is neither parsed nor
/// looked up (`allowed` is asked only about contexts that would fit).
pub fn subscribe(current: &BTreeSet<String>, wanted: &[String], allowed: impl Fn(&str) -> bool) -> SubscribeOutcome {
    let mut out = SubscribeOutcome::default();
    let mut count = current.len();
    let mut over_cap = false;
    for ctx in wanted {
        if current.contains(ctx) || out.added.contains(ctx) {
            continue;
        }
        if count >= MAX_CONTEXTS {
            over_cap = true;
            continue;
        }
        if Context::parse(ctx).is_none() || !allowed(ctx) {
            out.errors.push(json!({"type": "error", "code": "forbidden_context", "context": ctx, "message": "unknown context, or not yours"}));
            continue;
        }
        count += 1;
        out.added.push(ctx.clone());
    }
    if over_cap {
        out.errors.push(json!({"type": "error", "code": "too_many_contexts", "max": MAX_CONTEXTS, "message": "a socket subscribes to at most 200 contexts"}));
    }
    out
}

/// One event on its way from a conversation to a watching hub (or relay): what `deliver` carries,
/// and each element of `deliver_all`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Delivery {
    pub context: String,
    pub event: String,
    pub payload: Value,
    /// Not logged, no seq (typing).
    #[serde(default)]
    pub ephemeral: bool,
}

impl Delivery {
    /// Decodes one delivery of a `deliver_all` command (`crate::fields`, as the commands are).
    pub fn decode(mut f: crate::fields::Fields) -> Result<Delivery, crate::fields::FieldError> {
        Ok(Delivery {
            context: f.string("context")?,
            event: f.string("event")?,
            payload: f.value("payload")?,
            ephemeral: f.bool_or_default("ephemeral")?,
        })
    }
}

/// `{"type":"event","context","event","payload","seq"}` as the hub sends it.
pub fn event_frame(context: &str, event: &str, payload: &Value, seq: Option<u64>) -> String {
    match seq {
        Some(seq) => json!({"type": "event", "context": context, "event": event, "payload": payload, "seq": seq}),
        None => json!({"type": "event", "context": context, "event": event, "payload": payload}),
    }
    .to_string()
}

/// What a (re)connecting hub socket gets for `since`, given the user's log bounds.
pub use crate::ack_window::AckWindow;
pub use crate::replay::{plan as resume_plan, ResumePlan};

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

    #[test]
    fn context_paths_round_trip() {
        let i = contexts::instance("sb1");
        let c = contexts::conversation("sb1", C);
        assert_eq!(Context::parse(&i), Some(Context::Instance { sandbox_id: "sb1".into() }));
        assert_eq!(Context::parse(&c).and_then(|x| x.conversation_id().map(String::from)), Some(C.to_string()));
        assert_eq!(
            Context::parse(&contexts::presence(&c)),
            Some(Context::PresenceConversation { sandbox_id: "sb1".into(), conversation_id: C.into() })
        );
        assert_eq!(
            Context::parse(&contexts::presence(&i)),
            Some(Context::PresenceInstance { sandbox_id: "sb1".into() })
        );
        assert_eq!(Context::parse(contexts::PRESENCE_APP), Some(Context::PresencePlatform));
        for bad in [
            "",
            "/",
            "/kiloclaw",
            "/kiloclaw/",
            "/kiloclaw/a b",
            "/kiloclaw/sb/notaulid",
            "/presence/x",
            "/other/sb",
            "/kiloclaw/sb/C/extra",
        ] {
            assert_eq!(Context::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn authorization_follows_the_users_list() {
        let has_sb = |s: &str| s == "sb1";
        let has_c = |s: &str, c: &str| s == "sb1" && c == C;
        assert!(may_subscribe(&Context::PresencePlatform, has_sb, has_c));
        assert!(may_subscribe(&Context::parse(&contexts::conversation("sb1", C)).unwrap(), has_sb, has_c));
        assert!(!may_subscribe(&Context::parse(&contexts::conversation("sb2", C)).unwrap(), has_sb, has_c));
        assert!(may_subscribe(&Context::Instance { sandbox_id: "sb2".into() }, has_sb, has_c));
        assert!(!may_subscribe(&Context::PresenceInstance { sandbox_id: "sb2".into() }, has_sb, has_c));
    }

    #[test]
    fn subscribe_caps_and_refuses() {
        let current: BTreeSet<String> = (0..199).map(|i| format!("/kiloclaw/sb{i}")).collect();
        let wanted = vec![
            "/kiloclaw/new1".to_string(),
            "/kiloclaw/new2".to_string(),
            "/kiloclaw/nope".to_string(),
            "garbage".to_string(),
        ];
        let asked = std::cell::RefCell::new(Vec::new());
        let out = subscribe(&current, &wanted, |c| {
            asked.borrow_mut().push(c.to_string());
            c != "/kiloclaw/nope"
        });
        assert_eq!(out.added, vec!["/kiloclaw/new1"]);
        let codes: Vec<&str> = out.errors.iter().filter_map(|e| e["code"].as_str()).collect();
        assert_eq!(codes, vec!["too_many_contexts"], "past the cap nothing is checked");
        assert_eq!(asked.into_inner(), vec!["/kiloclaw/new1"], "no lookup past the cap");
        // Under the cap, refused contexts are answered one by one.
        let out = subscribe(&BTreeSet::new(), &wanted, |c| c != "/kiloclaw/nope");
        assert_eq!(out.added, vec!["/kiloclaw/new1", "/kiloclaw/new2"]);
        let codes: Vec<&str> = out.errors.iter().filter_map(|e| e["code"].as_str()).collect();
        assert_eq!(codes, vec!["forbidden_context", "forbidden_context"]);
        // Re-subscribing is a no-op, not an error.
        let out = subscribe(&current, &["/kiloclaw/sb1".to_string()], |_| true);
        assert!(out.added.is_empty() && out.errors.is_empty());
    }

    #[test]
    fn frames() {
        assert_eq!(
            parse_frame(r#"{"type":"context.subscribe","contexts":["/presence/app"]}"#),
            Ok(HubFrame::Subscribe(vec!["/presence/app".into()]))
        );
        assert_eq!(parse_frame(r#"{"type":"ack","seq":5}"#), Ok(HubFrame::Ack(5)));
        assert_eq!(
            parse_frame(&format!(r#"{{"type":"typing","conversationId":"{C}"}}"#)),
            Ok(HubFrame::Typing { conversation_id: C.into(), stop: false })
        );
        assert_eq!(parse_frame(r#"{"type":"ack","seq":-1}"#).unwrap_err().code, ErrorCode::InvalidRequest);
        assert_eq!(
            parse_frame(r#"{"type":"context.subscribe","contexts":[""]}"#).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        let long = "x".repeat(257);
        assert!(parse_frame(&format!(r#"{{"type":"context.subscribe","contexts":["{long}"]}}"#)).is_err());
        assert_eq!(parse_frame("nope").unwrap_err().code, ErrorCode::BadFrame);
        assert_eq!(parse_frame(r#"{"type":"dance"}"#).unwrap_err().code, ErrorCode::UnknownFrameType);
    }

    #[test]
    fn context_lists_are_bounded_and_deduplicated() {
        let frame = |kind: &str, list: &[String]| parse_frame(&json!({"type": kind, "contexts": list}).to_string());
        let many: Vec<String> = (0..=MAX_CONTEXTS).map(|i| format!("/kiloclaw/sb{i}")).collect();
        for kind in ["context.subscribe", "context.unsubscribe"] {
            // One more than a socket may hold: refused whole (even as one context over and over).
            let err = frame(kind, &many).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest, "{kind}");
            let same = vec![many[0].clone(); MAX_CONTEXTS + 1];
            assert_eq!(frame(kind, &same).unwrap_err().code, ErrorCode::InvalidRequest, "{kind}");
            // Exactly the cap is taken; each context once, in the order first listed.
            let list = |l: &[String]| match frame(kind, l).unwrap() {
                HubFrame::Subscribe(l) | HubFrame::Unsubscribe(l) => l,
                other => panic!("{other:?}"),
            };
            assert_eq!(list(&many[..MAX_CONTEXTS]), many[..MAX_CONTEXTS]);
            let twice = [&many[1], &many[0], &many[1], &many[0]].map(String::clone);
            assert_eq!(list(&twice), [many[1].clone(), many[0].clone()]);
        }
    }
}
