//! JSON written by hand, exactly as pusher-js and Pusher write it: the envelope, string literals
//! (escaped as serde_json does) and the presence list.

/// The presence list of `subscription_succeeded`: `{"presence":{"ids":[...],"hash":{id:info},"count":n}}`.
/// `info` is JSON text; a member without one is written with `null` (so it is still listed).
pub fn presence_data<'a>(members: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> String {
    let mut ids = String::from("[");
    let mut hash = String::from("{");
    let mut count = 0usize;
    for (id, info) in members {
        if count > 0 {
            ids.push(',');
            hash.push(',');
        }
        push_json_string(&mut ids, id);
        push_json_string(&mut hash, id);
        hash.push(':');
        hash.push_str(info.unwrap_or("null"));
        count += 1;
    }
    ids.push(']');
    hash.push('}');
    format!(r#"{{"presence":{{"ids":{ids},"hash":{hash},"count":{count}}}}}"#)
}

/// `{"event":E,"channel":C,"data":"<data as a JSON string>","user_id":U}`.
pub(super) fn envelope_text(event: &str, channel: Option<&str>, data: &str, user_id: Option<&str>) -> String {
    let mut out = String::with_capacity(32 + event.len() + data.len() + channel.map_or(0, str::len));
    out.push_str(r#"{"event":"#);
    push_json_string(&mut out, event);
    if let Some(c) = channel {
        out.push_str(r#","channel":"#);
        push_json_string(&mut out, c);
    }
    out.push_str(r#","data":"#);
    push_json_string(&mut out, data);
    if let Some(u) = user_id {
        out.push_str(r#","user_id":"#);
        push_json_string(&mut out, u);
    }
    out.push('}');
    out
}

/// Appends `s` as a JSON string literal, escaped exactly as serde_json does.
pub fn push_json_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let b = c as u32 as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[(b >> 4) & 0xf]));
                out.push(char::from(HEX[b & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_string(&mut out, s);
    out
}
