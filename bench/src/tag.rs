//! The tag of one sent message: `b<run>.<k>`, carried in `clientId`. Our event frames and the JS
//! room's carry `"clientId":"<tag>"` in their payload; the ceiling echoes the sent frame, which has it
//! too. A delivery is matched to its send by finding the tag in the frame text, without parsing JSON.

const KEY: &str = "\"clientId\":\"";
/// The same inside a JSON string (a Pusher event's `data` is a JSON string: `\"clientId\":\"b1.2\"`).
const ESCAPED_KEY: &str = "\\\"clientId\\\":\\\"";

pub fn make(run: u32, k: u64) -> String {
    format!("b{run}.{k}")
}

/// The `(run, k)` of the first `"clientId":"b<run>.<k>"` in a frame, if any; or else of the first
/// such tag escaped inside a JSON string.
pub fn find(frame: &str) -> Option<(u32, u64)> {
    if let Some(at) = frame.find(KEY) {
        return parse(frame.get(at + KEY.len()..)?, false);
    }
    let at = frame.find(ESCAPED_KEY)? + ESCAPED_KEY.len();
    parse(frame.get(at..)?, true)
}

/// Parses `b<run>.<k>"` (escaped: `b<run>.<k>\"`) at the start of `s` (the closing quote is required).
fn parse(s: &str, escaped: bool) -> Option<(u32, u64)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'b') {
        return None;
    }
    let mut i = 1;
    let mut run: u64 = 0;
    let run_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        run = run.checked_mul(10)?.checked_add(u64::from(b[i] - b'0'))?;
        i += 1;
    }
    if i == run_start || b.get(i) != Some(&b'.') {
        return None;
    }
    i += 1;
    let k_start = i;
    let mut k: u64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        k = k.checked_mul(10)?.checked_add(u64::from(b[i] - b'0'))?;
        i += 1;
    }
    if i == k_start {
        return None;
    }
    if escaped && b.get(i) == Some(&b'\\') {
        i += 1;
    }
    if b.get(i) != Some(&b'"') {
        return None;
    }
    Some((u32::try_from(run).ok()?, k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = make(3, 12345);
        assert_eq!(t, "b3.12345");
        let frame = format!(r#"{{"event":"message.created","payload":{{"clientId":"{t}","content":[]}},"seq":9}}"#);
        assert_eq!(find(&frame), Some((3, 12345)));
    }

    #[test]
    fn first_occurrence_and_shapes() {
        // Ours (keys sorted), the JS room (insertion order) and the ceiling (the sent frame).
        assert_eq!(find(r#"{"payload":{"clientId":"b1.2","message":{}}}"#), Some((1, 2)));
        assert_eq!(find(r#"{"type":"event","payload":{"messageId":"X","clientId":"b0.0"}}"#), Some((0, 0)));
        assert_eq!(find(r#"{"type":"message.create","clientId":"b7.99","content":[],"pad":"xx"}"#), Some((7, 99)));
        assert_eq!(find(r#"{"clientId":"b1.2","x":{"clientId":"b5.6"}}"#), Some((1, 2)));
        // Pusher: inside the JSON-string `data`
        assert_eq!(
            find(r#"{"event":"e","channel":"c","data":"{\"clientId\":\"b4.5\",\"text\":\"x\"}"}"#),
            Some((4, 5))
        );
        assert_eq!(find(r#"{"data":"{\"clientId\":\"b4.5x\"}"}"#), None);
    }

    #[test]
    fn rejects_other_frames() {
        assert_eq!(find(r#"{"type":"ready","seq":3}"#), None);
        assert_eq!(find(r#"{"type":"message.ack","message":{"id":"X"}}"#), None);
        assert_eq!(find(r#"{"clientId":null}"#), None);
        assert_eq!(find(r#"{"clientId":"c1"}"#), None);
        assert_eq!(find(r#"{"clientId":"b1.2x"}"#), None);
        assert_eq!(find(r#"{"clientId":"b.2"}"#), None);
        assert_eq!(find(r#"{"clientId":"b1."}"#), None);
        assert_eq!(find(r#"{"clientId":"b1.2"#), None);
        assert_eq!(find(r#"{"clientId":"b99999999999.1""#), None);
        assert_eq!(find(""), None);
    }
}
