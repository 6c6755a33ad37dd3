use super::*;
use crate::auth::{hmac_hex, App, SocketId};
use crate::limits::{MAX_API_BODY_BYTES, MAX_EVENT_DATA_BYTES};
use proptest::prelude::*;

fn app() -> App {
    App::new("3", "278d425bdf160c739803", "7ad3773142a6692b25b8")
}

/// What pusher-http-node's `createSignedQueryString` builds, by hand: raw values, sorted keys.
fn node_sdk_query(app: &App, method: &str, path: &str, body: &str, ts: u64, extra: &[(&str, &str)]) -> String {
    let mut params: Vec<(String, String)> = vec![
        ("auth_key".into(), app.key.clone()),
        ("auth_timestamp".into(), ts.to_string()),
        ("auth_version".into(), "1.0".into()),
    ];
    if !body.is_empty() {
        params.push(("body_md5".into(), md5_hex(body.as_bytes())));
    }
    params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    params.sort();
    let qs: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let qs = qs.join("&");
    let sig = hmac_hex(&app.secret, format!("{method}\n{path}\n{qs}").as_bytes());
    format!("{qs}&auth_signature={sig}")
}

#[test]
fn pusher_docs_worked_example() {
    // Pusher's "auth signatures" docs: POST /apps/3/events, timestamp 1353088179, this body.
    let body = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
    assert_eq!(md5_hex(body.as_bytes()), "ec365a775a4cd0599faeb73354201b6f");
    let q = "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f";
    let to_sign = string_to_sign("POST", "/apps/3/events", Query::parse(q, false).unwrap().pairs());
    assert_eq!(
        to_sign,
        "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f"
    );
    assert_eq!(
        hmac_hex(&app().secret, to_sign.as_bytes()),
        "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
    );
    let signed = format!("{q}&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c");
    assert!(verify(&app(), "POST", "/apps/3/events", &signed, body.as_bytes(), 1353088179 + 600).is_ok());
}

#[test]
fn accepts_the_node_sdk() {
    let body = r#"{"name":"my-event","data":"{\"message\":\"hello\"}","channels":["my-channel"]}"#;
    let q = node_sdk_query(&app(), "POST", "/apps/3/events", body, 1_700_000_000, &[]);
    assert!(verify(&app(), "POST", "/apps/3/events", &q, body.as_bytes(), 1_700_000_000).is_ok());
    // GET with raw comma-separated info, as the SDK sends it
    let q = node_sdk_query(
        &app(),
        "GET",
        "/apps/3/channels",
        "",
        1_700_000_000,
        &[("filter_by_prefix", "presence-"), ("info", "user_count,subscription_count")],
    );
    let parsed = verify(&app(), "GET", "/apps/3/channels", &q, b"", 1_700_000_000).unwrap();
    let cq = ChannelsQuery::from_query(&parsed).unwrap();
    assert_eq!(cq.filter_by_prefix.as_deref(), Some("presence-"));
    assert_eq!(cq.info, InfoFields { user_count: true, subscription_count: true });
}

#[test]
fn refusals_and_statuses() {
    let a = app();
    let body = r#"{"name":"e","data":"d","channel":"c"}"#;
    let now = 1_700_000_000;
    let q = sign_query(&a, "POST", "/apps/3/events", &[], Some(body.as_bytes()), now);
    assert!(verify(&a, "POST", "/apps/3/events", &q, body.as_bytes(), now).is_ok());
    let status = |r: Result<Query, HttpError>| r.map(|_| 200).unwrap_or_else(|e| e.status());
    // timestamp: 600 s either way is fine, 601 is not
    assert_eq!(status(verify(&a, "POST", "/apps/3/events", &q, body.as_bytes(), now + 600)), 200);
    assert_eq!(status(verify(&a, "POST", "/apps/3/events", &q, body.as_bytes(), now - 600)), 200);
    assert_eq!(status(verify(&a, "POST", "/apps/3/events", &q, body.as_bytes(), now + 601)), 401);
    assert_eq!(status(verify(&a, "POST", "/apps/3/events", &q, body.as_bytes(), now - 601)), 401);
    // another body, another path, another method
    assert_eq!(status(verify(&a, "POST", "/apps/3/events", &q, b"{}", now)), 401);
    assert_eq!(status(verify(&a, "POST", "/apps/3/batch_events", &q, body.as_bytes(), now)), 401);
    assert_eq!(status(verify(&a, "GET", "/apps/3/events", &q, body.as_bytes(), now)), 401);
    // no signature, wrong key, wrong version
    let unsigned = q.split("&auth_signature").next().unwrap();
    assert_eq!(status(verify(&a, "POST", "/apps/3/events", unsigned, body.as_bytes(), now)), 401);
    let other = App::new("3", "otherkey", &a.secret);
    let q2 = sign_query(&other, "POST", "/apps/3/events", &[], Some(body.as_bytes()), now);
    assert_eq!(
        verify(&a, "POST", "/apps/3/events", &q2, body.as_bytes(), now),
        Err(HttpError::Unauthorized("unknown auth_key".into()))
    );
    // a body without body_md5
    let q3 = sign_query(&a, "POST", "/apps/3/events", &[], None, now);
    assert_eq!(
        verify(&a, "POST", "/apps/3/events", &q3, body.as_bytes(), now),
        Err(HttpError::Unauthorized("body_md5 is required with a body".into()))
    );
    // a parameter added after signing
    let q4 = format!("{q}&info=user_count");
    assert_eq!(status(verify(&a, "POST", "/apps/3/events", &q4, body.as_bytes(), now)), 401);
    // too large, duplicates
    let huge = vec![b' '; MAX_API_BODY_BYTES + 1];
    assert_eq!(status(verify(&a, "POST", "/apps/3/events", &q, &huge, now)), 413);
    assert_eq!(status(verify(&a, "POST", "/apps/3/events", "a=1&a=2", b"", now)), 400);
}

#[test]
fn escaped_and_plus_values() {
    let a = app();
    let now = 1_700_000_000;
    // our signer escapes; the verifier decodes before checking
    let q = sign_query(&a, "GET", "/apps/3/channels", &[("filter_by_prefix", "presence-a b&c")], None, now);
    assert!(q.contains("filter_by_prefix=presence-a%20b%26c"));
    let parsed = verify(&a, "GET", "/apps/3/channels", &q, b"", now).unwrap();
    assert_eq!(parsed.get("filter_by_prefix"), Some("presence-a b&c"));
    // PHP style: space as '+'
    let php = q.replace("%20", "+");
    let parsed = verify(&a, "GET", "/apps/3/channels", &php, b"", now).unwrap();
    assert_eq!(parsed.get("filter_by_prefix"), Some("presence-a b&c"));
}

#[test]
fn routes() {
    let a = app();
    assert_eq!(route(&a, "POST", "/apps/3/events"), Ok(Route::Events));
    assert_eq!(route(&a, "POST", "/apps/3/batch_events"), Ok(Route::BatchEvents));
    assert_eq!(route(&a, "GET", "/apps/3/channels"), Ok(Route::Channels));
    assert_eq!(route(&a, "GET", "/apps/3/channels/private-a"), Ok(Route::Channel("private-a".into())));
    assert_eq!(route(&a, "GET", "/apps/3/channels/presence-a/users"), Ok(Route::ChannelUsers("presence-a".into())));
    assert_eq!(route(&a, "GET", "/apps/3/channels/private-a/users").unwrap_err().status(), 400);
    assert_eq!(route(&a, "GET", "/apps/4/events").unwrap_err().status(), 404);
    assert_eq!(route(&a, "GET", "/apps/3/events").unwrap_err().status(), 405);
    assert_eq!(route(&a, "GET", "/apps/3/nope").unwrap_err().status(), 404);
    assert_eq!(route(&a, "GET", "/apps/3/channels/a%20b").unwrap_err().status(), 400);
}

#[test]
fn trigger_bodies() {
    let t = parse_trigger(br#"{"name":"e","data":"{\"a\":1}","channels":["a","private-b","a"],"socket_id":"1.2"}"#)
        .unwrap();
    assert_eq!(
        t,
        Trigger {
            name: "e".into(),
            data: r#"{"a":1}"#.into(),
            channels: vec!["a".into(), "private-b".into()],
            socket_id: Some(SocketId::parse("1.2").unwrap()),
            info: InfoFields::default()
        }
    );
    let t = parse_trigger(br#"{"name":"e","data":{"a":1},"channel":"a"}"#).unwrap();
    assert_eq!(t.data, r#"{"a":1}"#);
    let status = |b: &str| parse_trigger(b.as_bytes()).map(|_| 200).unwrap_or_else(|e| e.status());
    assert_eq!(status(r#"{"name":"e","data":"d"}"#), 400);
    assert_eq!(status(r#"{"name":"e","data":"d","channels":[]}"#), 400);
    assert_eq!(status(r#"{"name":"e","data":"d","channel":"a b"}"#), 400);
    assert_eq!(status(r#"{"name":"e","data":"d","channel":"private-encrypted-x"}"#), 400);
    assert_eq!(status(r#"{"name":"","data":"d","channel":"a"}"#), 400);
    assert_eq!(status(r#"{"data":"d","channel":"a"}"#), 400);
    assert_eq!(status(r#"{"name":"e","data":"d","channel":"a","socket_id":"x"}"#), 400);
    assert_eq!(status(r#"{"name":"e","data":"d","channel":"a","info":"user_count"}"#), 400);
    assert_eq!(status(r#"[]"#), 400);
    let exact = format!(r#"{{"name":"e","data":"{}","channel":"a"}}"#, "x".repeat(MAX_EVENT_DATA_BYTES));
    assert_eq!(status(&exact), 200);
    let over = format!(r#"{{"name":"e","data":"{}","channel":"a"}}"#, "x".repeat(MAX_EVENT_DATA_BYTES + 1));
    assert_eq!(status(&over), 413);
    let many: Vec<String> = (0..101).map(|i| format!("\"c{i}\"")).collect();
    assert_eq!(status(&format!(r#"{{"name":"e","data":"d","channels":[{}]}}"#, many.join(","))), 400);
    let hundred: Vec<String> = (0..100).map(|i| format!("\"c{i}\"")).collect();
    assert_eq!(status(&format!(r#"{{"name":"e","data":"d","channels":[{}]}}"#, hundred.join(","))), 200);
}

#[test]
fn batch_bodies() {
    let b = parse_batch(br#"{"batch":[{"name":"a","data":"1","channel":"x"},{"name":"b","data":"2","channel":"presence-y","info":"user_count"}]}"#)
        .unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(b[1].channels, vec!["presence-y".to_string()]);
    assert!(b[1].info.user_count);
    let items: Vec<String> = (0..11).map(|_| r#"{"name":"a","data":"1","channel":"x"}"#.to_string()).collect();
    let too_many = format!(r#"{{"batch":[{}]}}"#, items.join(","));
    assert_eq!(parse_batch(too_many.as_bytes()).unwrap_err().status(), 400);
    // batch items take `channel`, not `channels`
    assert_eq!(parse_batch(br#"{"batch":[{"name":"a","data":"1","channels":["x"]}]}"#).unwrap_err().status(), 400);
    let over = format!(r#"{{"batch":[{{"name":"a","data":"{}","channel":"x"}}]}}"#, "x".repeat(10_241));
    let err = parse_batch(over.as_bytes()).unwrap_err();
    assert_eq!(err.status(), 413);
    assert!(err.message().starts_with("batch[0]: "));
}

#[test]
fn answers() {
    let f = InfoFields { user_count: true, subscription_count: true };
    let info = ChannelInfo { subscription_count: 3, user_count: Some(2) };
    assert_eq!(
        channels_body([("presence-a", info)], f),
        r#"{"channels":{"presence-a":{"user_count":2,"subscription_count":3}}}"#
    );
    assert_eq!(channels_body([("a", info)], InfoFields::default()), r#"{"channels":{"a":{}}}"#);
    assert_eq!(channel_body(&info, f), r#"{"occupied":true,"user_count":2,"subscription_count":3}"#);
    assert_eq!(channel_body(&ChannelInfo::default(), InfoFields::default()), r#"{"occupied":false}"#);
    assert_eq!(users_body(["1", "2"]), r#"{"users":[{"id":"1"},{"id":"2"}]}"#);
    assert_eq!(trigger_body([("a", info)], InfoFields::default()), "{}");
    assert_eq!(
        batch_body(&[
            (info, InfoFields { user_count: false, subscription_count: true }),
            (info, InfoFields::default())
        ]),
        r#"{"batch":[{"subscription_count":3},{}]}"#
    );
    assert_eq!(HttpError::TooLarge("x\"y".into()).to_body(), r#"{"error":"x\"y"}"#);
    assert!(ChannelsQuery::from_query(&Query::parse("info=user_count", false).unwrap()).is_err());
    assert!(channel_info_fields("private-a", &Query::parse("info=user_count", false).unwrap()).is_err());
    assert!(channel_info_fields("presence-a", &Query::parse("info=user_count", false).unwrap()).is_ok());
}

proptest! {
    #[test]
    fn signed_requests_verify_and_tampering_fails(
        ts in 1_000_000u64..2_000_000_000,
        skew in 0u64..=600,
        body in ".{0,200}",
        prefix in ".{0,20}",
    ) {
        let a = app();
        let body_opt = (!body.is_empty()).then_some(body.as_bytes());
        let q = sign_query(&a, "POST", "/apps/3/events", &[("filter_by_prefix", &prefix)], body_opt, ts);
        let got = verify(&a, "POST", "/apps/3/events", &q, body.as_bytes(), ts + skew);
        prop_assert!(got.is_ok(), "{:?}", got);
        let got = got.unwrap();
        prop_assert_eq!(got.get("filter_by_prefix"), Some(prefix.as_str()));
        let tampered = format!("{body}x");
        prop_assert_eq!(verify(&a, "POST", "/apps/3/events", &q, tampered.as_bytes(), ts).map(|_| ()).unwrap_err().status(), 401);
    }

    #[test]
    fn never_panics(q in ".{0,200}", body in proptest::collection::vec(any::<u8>(), 0..200), path in ".{0,40}") {
        let _ = verify(&app(), "POST", &path, &q, &body, 0);
        let _ = parse_trigger(&body);
        let _ = parse_batch(&body);
        let _ = route(&app(), "GET", &path);
        let _ = Query::parse(&q, true);
    }
}
