//! Fuzzing the decoders of `switchboard-core`: HTTP request bodies and content, field validators, the
//! conversation socket's client frames, the hub's frames and context paths, the live channel's frames and
//! publish lines, the NDJSON splitter, ids, cursors and member ids.
//!
//! Each property: no panic on any input; a refusal is a typed 4xx answer (`{error:{code,message}}`) or a
//! documented close; what is accepted keeps its bounds; encodings round-trip.

use proptest::prelude::*;
use serde_json::{json, Value};
use switchboard_core::content::{self, Block};
use switchboard_core::cursor::ListCursor;
use switchboard_core::frames::{self, ClientFrame, FrameRejection};
use switchboard_core::hub::{self, Context, HubFrame};
use switchboard_core::limits::*;
use switchboard_core::ndjson::{Line, LineSplitter};
use switchboard_core::requests::*;
use switchboard_core::{ids, live, validate, ApiError, ErrorCode, MemberId};
use switchboard_fuzz::*;

const ULID: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

/// A refusal is a client error with a code, and its HTTP body and frame are the documented JSON.
fn typed(e: &ApiError) -> Result<(), TestCaseError> {
    prop_assert!((400..500).contains(&e.status()), "status {} for {e:?}", e.status());
    let body: Value = serde_json::from_str(&e.to_http_body()).map_err(|x| TestCaseError::fail(x.to_string()))?;
    prop_assert_eq!(&body["error"]["code"], &json!(e.code.as_str()));
    let frame: Value = serde_json::from_str(&e.to_frame(Some("r"))).map_err(|x| TestCaseError::fail(x.to_string()))?;
    prop_assert_eq!(&frame["type"], &json!("error"));
    Ok(())
}

fn content_seed() -> Value {
    json!([
        {"type": "text", "text": "hello"},
        {"type": "actions", "groupId": "g1", "actions": [{"label": "Allow", "style": "primary", "value": "allow-once"}],
         "resolved": {"value": "deny", "by": "u", "at": 1}}
    ])
}

fn body_seeds() -> Vec<Value> {
    vec![
        json!({"userId": "alice", "sandboxId": "sb1"}),
        json!({"sandboxId": "sb1", "title": "t", "additionalMembers": ["bob", "carol"]}),
        json!({"title": "renamed"}),
        json!({"userId": "bob"}),
        json!({"conversationId": ULID, "content": content_seed(), "inReplyToMessageId": ULID, "clientId": "c1"}),
        json!({"content": content_seed(), "clientId": "c1"}),
        json!({"conversationId": ULID, "content": content_seed(), "timestamp": 1_700_000_000_000i64}),
        json!({"content": content_seed(), "timestamp": 1}),
        json!({"conversationId": ULID, "emoji": "👍"}),
        json!({"lastSeenMessageId": ULID}),
        json!({"online": true, "at": 1_700_000_000_000i64}),
        json!({"label": "My sandbox"}),
    ]
}

/// Runs every request body type over `bytes`: each answers a value or a typed error.
fn every_body(bytes: &[u8]) -> Result<(), TestCaseError> {
    fn one<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<Option<T>, TestCaseError> {
        match parse_body::<T>(bytes) {
            Ok(t) => Ok(Some(t)),
            Err(e) => {
                prop_assert!(
                    matches!(e.code, ErrorCode::InvalidJson | ErrorCode::InvalidRequest | ErrorCode::PayloadTooLarge),
                    "{e:?}"
                );
                typed(&e)?;
                Ok(None)
            }
        }
    }
    one::<DevTokenRequest>(bytes)?;
    if let Some(c) = one::<CreateConversation>(bytes)? {
        let _ = validate::sandbox_id(&c.sandbox_id);
        let _ = c.title.as_deref().map(validate::title);
    }
    one::<RenameConversation>(bytes)?;
    one::<AddMember>(bytes)?;
    if let Some(m) = one::<CreateMessage>(bytes)? {
        check_content(&m.content)?;
        let _ = ids::parse("conversationId", &m.conversation_id);
    }
    if let Some(m) = one::<BotCreateMessage>(bytes)? {
        check_content(&m.content)?;
    }
    if let Some(m) = one::<EditMessage>(bytes)? {
        check_content(&m.content)?;
    }
    one::<BotEditMessage>(bytes)?;
    if let Some(r) = one::<AddReaction>(bytes)? {
        let _ = validate::emoji(&r.emoji);
    }
    one::<MarkRead>(bytes)?;
    one::<SetBotStatus>(bytes)?;
    one::<SetProfile>(bytes)?;
    Ok(())
}

/// Content validation: typed errors; accepted content is within every limit and is a fixed point.
fn check_content(v: &Value) -> Result<(), TestCaseError> {
    match content::parse(v) {
        Ok(blocks) => {
            prop_assert!((1..=MAX_BLOCKS).contains(&blocks.len()));
            for b in &blocks {
                match b {
                    Block::Text { text } => {
                        prop_assert!((1..=MAX_TEXT_CHARS).contains(&text.chars().count()));
                        prop_assert_eq!(text.trim(), text.as_str());
                    }
                    Block::Actions { group_id, actions, .. } => {
                        prop_assert!((1..=MAX_GROUP_ID_CHARS).contains(&group_id.chars().count()));
                        prop_assert!((1..=MAX_ACTIONS).contains(&actions.len()));
                    }
                }
            }
            let again = serde_json::to_value(&blocks).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(content::parse(&again).ok(), Some(blocks.clone()));
            let _ = content::preview(&content::plain_text(&blocks), 100);
        }
        Err(e) => {
            prop_assert_eq!(e.code, ErrorCode::InvalidRequest);
            typed(&e)?;
        }
    }
    Ok(())
}

fn client_frame_seeds() -> Vec<Value> {
    vec![json!({"type": "message.create", "requestId": "r1", "content": content_seed(),
                "inReplyToMessageId": ULID, "clientId": "c1"})]
}

fn hub_seeds() -> Vec<Value> {
    vec![
        json!({"type": "context.subscribe", "contexts": [format!("/kiloclaw/sb1/{ULID}"), "/presence/app", "/kiloclaw/sb1"]}),
        json!({"type": "context.unsubscribe", "contexts": ["/presence/kiloclaw/sb1"]}),
        json!({"type": "ack", "seq": 12}),
        json!({"type": "typing", "conversationId": ULID}),
        json!({"type": "typing.stop", "conversationId": ULID}),
    ]
}

fn live_seeds() -> Vec<Value> {
    vec![
        json!({"type": "ack", "received": 3}),
        json!({"final": true, "content": content_seed(), "clientId": "c"}),
        json!({"delta": "partial text"}),
    ]
}

/// A valid message.create frame, as a client would build it.
fn arb_message_create() -> impl Strategy<Value = ClientFrame> {
    let opt = || proptest::option::of("[ -~é😀]{1,40}");
    (opt(), switchboard_fuzz::json_value(), opt(), opt()).prop_map(|(request_id, content, in_reply, client_id)| {
        ClientFrame::MessageCreate { request_id, content, in_reply_to_message_id: in_reply, client_id }
    })
}

fn encode_message_create(f: &ClientFrame) -> String {
    let ClientFrame::MessageCreate { request_id, content, in_reply_to_message_id, client_id } = f;
    let mut o = serde_json::Map::new();
    o.insert("type".into(), json!("message.create"));
    o.insert("content".into(), content.clone());
    for (k, v) in [("requestId", request_id), ("inReplyToMessageId", in_reply_to_message_id), ("clientId", client_id)] {
        if let Some(v) = v {
            o.insert(k.into(), json!(v));
        }
    }
    Value::Object(o).to_string()
}

fn arb_context() -> impl Strategy<Value = String> {
    let sb = "[A-Za-z0-9_-]{1,64}";
    prop_oneof![
        sb.prop_map(|s| hub::contexts::instance(&s)),
        sb.prop_map(|s| hub::contexts::conversation(&s, ULID)),
        sb.prop_map(|s| hub::contexts::presence(&hub::contexts::instance(&s))),
        Just(hub::contexts::PRESENCE_APP.to_string()),
    ]
}

/// Feeds `input` cut at `cuts` (sorted, in range) to a splitter and answers every line, `finish` included.
fn split_all(input: &[u8], max: usize, cuts: &[usize]) -> Vec<Line> {
    let bounds: Vec<usize> = std::iter::once(0).chain(cuts.iter().copied()).chain([input.len()]).collect();
    let mut splitter = LineSplitter::new(max);
    let mut lines: Vec<Line> = bounds.windows(2).flat_map(|w| splitter.push(&input[w[0]..w[1]])).collect();
    lines.extend(splitter.finish());
    lines
}

/// NDJSON bodies: lines of near-valid JSON, blank lines, CRLF, invalid UTF-8, long lines.
fn ndjson_body() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        4 => near_valid(live_seeds()).prop_map(String::into_bytes),
        1 => Just(Vec::new()),
        1 => prop::collection::vec(any::<u8>(), 0..40),
        1 => "[a ]{30,80}".prop_map(String::into_bytes),
    ];
    (prop::collection::vec((line, any::<bool>()), 0..8), any::<bool>()).prop_map(|(lines, final_newline)| {
        let mut out = Vec::new();
        for (i, (l, crlf)) in lines.iter().enumerate() {
            out.extend_from_slice(l);
            if i + 1 < lines.len() || final_newline {
                out.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            }
        }
        out
    })
}

proptest! {
    #![proptest_config(config("regressions/fuzz_core.txt"))]

    #[test]
    fn fuzz_http_bodies(bytes in body_bytes(body_seeds())) {
        every_body(&bytes)?;
    }

    #[test]
    fn fuzz_content(v in prop_oneof![json_value(), near_valid(vec![content_seed()])
        .prop_map(|s| serde_json::from_str(&s).unwrap_or(Value::Null))]) {
        check_content(&v)?;
    }

    #[test]
    fn fuzz_headers_and_fields(s in prop_oneof![any::<String>(), "[ -~]{0,300}"]) {
        for r in [
            validate::sandbox_id(&s), validate::user_id(&s), validate::emoji(&s), validate::client_id(&s),
            validate::request_id(&s), json_content_type(Some(&s)),
        ] {
            if let Err(e) = r { typed(&e)?; }
        }
        if let Ok(t) = validate::title(&s) { prop_assert!((1..=MAX_TITLE_CHARS).contains(&t.chars().count())); }
        if let Ok(l) = validate::sandbox_label(&s) {
            prop_assert!((1..=MAX_SANDBOX_LABEL_CHARS).contains(&l.chars().count()));
        }
        if let Ok(n) = validate::page_limit(Some(&s)) { prop_assert!((1..=MAX_PAGE).contains(&n)); }
        let _ = live::accepted_content_type(Some(&s));
    }

    #[test]
    fn fuzz_conversation_client_frames(text in frame_text(client_frame_seeds())) {
        match frames::parse_client(&text) {
            Ok(ClientFrame::MessageCreate { request_id, client_id, .. }) => {
                let v: Value = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&v["type"], &json!("message.create"));
                if let Some(r) = request_id { prop_assert!(validate::request_id(&r).is_ok()); }
                if let Some(c) = client_id { prop_assert_eq!(&v["clientId"], &json!(c)); }
            }
            Err(FrameRejection::Reply { error, request_id }) => {
                typed(&error)?;
                if let Some(r) = request_id { prop_assert!(validate::request_id(&r).is_ok()); }
            }
            Err(FrameRejection::Close { code, .. }) => {
                prop_assert_eq!(code, close::MESSAGE_TOO_BIG);
                prop_assert!(text.len() > MAX_FRAME_BYTES);
            }
        }
    }

    #[test]
    fn fuzz_conversation_client_frames_round_trip(f in arb_message_create()) {
        let ClientFrame::MessageCreate { request_id, .. } = &f;
        let valid_request_id = request_id.as_deref().is_none_or(|r| validate::request_id(r).is_ok());
        // serde_json reads floats to within one ulp, not exactly: compare with the content as JSON reads it.
        let ClientFrame::MessageCreate { request_id, content, in_reply_to_message_id, client_id } = f.clone();
        let content = serde_json::from_str(&content.to_string()).unwrap_or(Value::Null);
        let want = ClientFrame::MessageCreate { request_id, content, in_reply_to_message_id, client_id };
        let text = encode_message_create(&f);
        match frames::parse_client(&text) {
            Ok(g) => prop_assert_eq!(g, want),
            Err(FrameRejection::Close { code, .. }) => {
                prop_assert_eq!(code, close::MESSAGE_TOO_BIG);
                prop_assert!(text.len() > MAX_FRAME_BYTES);
            }
            Err(e) => prop_assert!(!valid_request_id, "{:?}", e),
        }
    }

    #[test]
    fn fuzz_hub_frames(text in frame_text(hub_seeds())) {
        match hub::parse_frame(&text) {
            Ok(HubFrame::Subscribe(cs) | HubFrame::Unsubscribe(cs)) => {
                for c in cs {
                    prop_assert!((1..=hub::MAX_CONTEXT_CHARS).contains(&c.chars().count()));
                    let _ = Context::parse(&c);
                }
            }
            Ok(HubFrame::Typing { conversation_id, .. }) => {
                prop_assert!(ids::parse("conversationId", &conversation_id).is_ok());
            }
            Ok(HubFrame::Ack(_)) => {}
            Err(e) => typed(&e)?,
        }
    }

    #[test]
    fn fuzz_hub_contexts(path in prop_oneof![any::<String>(), arb_context(),
        (arb_context(), any::<usize>(), "[a-z/@.%\u{e9}]{0,4}").prop_map(|(mut c, i, s)| {
            apply_text(&mut c, &TextEdit::Insert(i, s));
            c
        })]) {
        if let Some(c) = Context::parse(&path) {
            let rebuilt = match &c {
                Context::Instance { sandbox_id } => hub::contexts::instance(sandbox_id),
                Context::Conversation { sandbox_id, conversation_id } => {
                    hub::contexts::conversation(sandbox_id, conversation_id)
                }
                Context::PresencePlatform => path.clone(),
                Context::PresenceInstance { sandbox_id } => {
                    hub::contexts::presence(&hub::contexts::instance(sandbox_id))
                }
                Context::PresenceConversation { sandbox_id, conversation_id } => {
                    hub::contexts::presence(&hub::contexts::conversation(sandbox_id, conversation_id))
                }
            };
            prop_assert_eq!(&rebuilt, &path);
            let frame = json!({"type": "context.subscribe", "contexts": [path]}).to_string();
            prop_assert_eq!(hub::parse_frame(&frame).ok(), Some(HubFrame::Subscribe(vec![path])));
        }
    }

    #[test]
    fn fuzz_live_frames(text in frame_text(live_seeds())) {
        match live::parse_subscriber_frame(&text) {
            Ok(n) => {
                let v: Value = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(v["received"].as_u64(), Some(n));
            }
            Err(e) => typed(&e)?,
        }
        if let Some(f) = live::final_line(&text) {
            let v: Value = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&v["final"], &json!(true));
            prop_assert_eq!(f.client_id.as_deref(), v["clientId"].as_str());
        }
    }

    #[test]
    fn fuzz_live_ack_round_trip(n in any::<u64>()) {
        let text = json!({"type": "ack", "received": n}).to_string();
        prop_assert_eq!(live::parse_subscriber_frame(&text).ok(), Some(n));
    }

    #[test]
    fn fuzz_ndjson_chunkings(body in ndjson_body(), max in 8usize..64, cuts in prop::collection::vec(any::<usize>(), 0..6)) {
        let whole = split_all(&body, max, &[]);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (body.len() + 1)).collect();
        cuts.sort_unstable();
        prop_assert_eq!(&split_all(&body, max, &cuts), &whole);
        let byte_at_a_time: Vec<usize> = (1..body.len()).collect();
        prop_assert_eq!(&split_all(&body, max, &byte_at_a_time), &whole);
        for l in &whole {
            if let Line::Json(t) = l {
                prop_assert!(t.len() <= max);
                prop_assert!(serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok());
                prop_assert_eq!(t.trim(), t.as_str());
            }
        }
        // Never more lines than newlines + 1.
        prop_assert!(whole.len() <= body.iter().filter(|&&b| b == b'\n').count() + 1);
    }

    #[test]
    fn fuzz_ndjson_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..300), max in 1usize..100, cut in any::<usize>()) {
        let whole = split_all(&body, max, &[]);
        prop_assert_eq!(split_all(&body, max, &[cut % (body.len() + 1)]), whole);
    }

    #[test]
    fn fuzz_ids_cursors_members(s in prop_oneof![any::<String>(), "[0-9A-Za-z]{26}", "-?[0-9]{1,20}\\.[0-9A-Z]{26}",
        prop::sample::select(&["bot:kiloclaw:sb1", "bot:kiloclaw:", "bot:x", " alice", "alice"][..]).prop_map(str::to_string)]) {
        if let Err(e) = ids::parse("messageId", &s) { typed(&e)?; }
        match ListCursor::decode(&s) {
            Ok(c) => prop_assert_eq!(ListCursor::decode(&c.encode()).ok(), Some(c)),
            Err(e) => typed(&e)?,
        }
        match MemberId::parse(&s) {
            Ok(m) => prop_assert_eq!(MemberId::parse(&m.to_string()).ok(), Some(m)),
            Err(e) => typed(&e)?,
        }
    }

    #[test]
    fn fuzz_cursor_round_trip(key in any::<i64>(), id in any::<u128>()) {
        let c = ListCursor { sort_key: key, conversation_id: ids::Ulid(id).to_string() };
        // Sort keys are times: a cursor beyond ±(2^53 - 1) was never given out and is refused (#18).
        if key.unsigned_abs() <= switchboard_core::limits::MAX_SAFE_INTEGER as u64 {
            prop_assert_eq!(ListCursor::decode(&c.encode()).ok(), Some(c));
        } else {
            prop_assert!(ListCursor::decode(&c.encode()).is_err());
        }
    }
}
