//! Newline-delimited JSON, split as bytes arrive. A line is complete at `\n` (a trailing `\r` is
//! dropped); chunk boundaries may fall anywhere, even inside a UTF-8 character, because lines are cut
//! at the ASCII newline byte and decoded whole. Lines longer than the limit are skipped without being
//! buffered, and so are lines that are not valid UTF-8 JSON. Blank lines are ignored.

/// What one complete line turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Valid JSON: the line's text, trimmed, to send as one frame.
    Json(String),
    /// Not valid JSON (or not UTF-8).
    Invalid,
    /// Longer than the limit.
    TooLong,
}

#[derive(Debug)]
pub struct LineSplitter {
    buf: Vec<u8>,
    max: usize,
    /// Inside a line that already passed the limit: drop bytes until the next newline.
    discarding: bool,
}

impl LineSplitter {
    pub fn new(max_line_bytes: usize) -> Self {
        LineSplitter { buf: Vec::new(), max: max_line_bytes, discarding: false }
    }

    /// Feeds a chunk; answers the lines it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Line> {
        let mut out = Vec::new();
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(pos);
            if self.discarding {
                self.discarding = false;
                out.push(Line::TooLong);
            } else if self.buf.len() + head.len() > self.max + 1 {
                // +1: a trailing '\r' does not count against the limit.
                self.buf.clear();
                out.push(Line::TooLong);
            } else {
                self.buf.extend_from_slice(head);
                if let Some(line) = self.take_line() {
                    out.push(line);
                }
            }
            rest = &tail[1..];
        }
        if !self.discarding {
            if self.buf.len() + rest.len() > self.max + 1 {
                self.buf.clear();
                self.discarding = true;
            } else {
                self.buf.extend_from_slice(rest);
            }
        }
        out
    }

    /// The body ended: a final line without a newline still counts.
    pub fn finish(&mut self) -> Option<Line> {
        if self.discarding {
            self.discarding = false;
            return Some(Line::TooLong);
        }
        self.take_line()
    }

    fn take_line(&mut self) -> Option<Line> {
        let mut bytes = std::mem::take(&mut self.buf);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if bytes.len() > self.max {
            return Some(Line::TooLong);
        }
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => return Some(Line::Invalid),
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return None;
        }
        match serde_json::from_str::<serde::de::IgnoredAny>(trimmed) {
            Ok(_) => Some(Line::Json(trimmed.to_string())),
            Err(_) => Some(Line::Invalid),
        }
    }
}

/// Counts of what a publish delivered and skipped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub delivered: u64,
    pub skipped_invalid: u64,
    pub skipped_too_long: u64,
}

impl Tally {
    pub fn count(&mut self, line: &Line) {
        match line {
            Line::Json(_) => self.delivered += 1,
            Line::Invalid => self.skipped_invalid += 1,
            Line::TooLong => self.skipped_too_long += 1,
        }
    }

    pub fn skipped(&self) -> u64 {
        self.skipped_invalid + self.skipped_too_long
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], max: usize, cuts: &[usize]) -> Vec<Line> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        let mut prev = 0;
        for &c in cuts {
            out.extend(s.push(&input[prev..c]));
            prev = c;
        }
        out.extend(s.push(&input[prev..]));
        out.extend(s.finish());
        out
    }

    const SAMPLE: &str = "{\"a\":1}\n\n{\"b\":\"é☃😀\"}\r\nnot json\n  [1,2]  \n{\"x\":\"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\"}\n\u{1}\n{\"last\":true}";

    fn expected() -> Vec<Line> {
        vec![
            Line::Json("{\"a\":1}".into()),
            Line::Json("{\"b\":\"é☃😀\"}".into()),
            Line::Invalid,
            Line::Json("[1,2]".into()),
            Line::TooLong,
            Line::Invalid,
            Line::Json("{\"last\":true}".into()),
        ]
    }

    #[test]
    fn whole_input() {
        assert_eq!(all(SAMPLE.as_bytes(), 24, &[]), expected());
    }

    #[test]
    fn every_single_cut() {
        let bytes = SAMPLE.as_bytes();
        for i in 0..=bytes.len() {
            assert_eq!(all(bytes, 24, &[i]), expected(), "cut at {i}");
        }
    }

    #[test]
    fn every_pair_of_cuts() {
        let bytes = SAMPLE.as_bytes();
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                assert_eq!(all(bytes, 24, &[i, j]), expected(), "cuts at {i},{j}");
            }
        }
    }

    #[test]
    fn byte_at_a_time() {
        let bytes = SAMPLE.as_bytes();
        let cuts: Vec<usize> = (1..bytes.len()).collect();
        assert_eq!(all(bytes, 24, &cuts), expected());
    }

    #[test]
    fn binary_garbage_is_invalid_not_fatal() {
        let input = [0xff, 0xfe, b'\n', 0xc3, b'\n', b'{', b'}', b'\n'];
        assert_eq!(all(&input, 64, &[]), vec![Line::Invalid, Line::Invalid, Line::Json("{}".into())]);
    }

    #[test]
    fn long_line_is_not_buffered() {
        let mut s = LineSplitter::new(8);
        for _ in 0..1000 {
            assert!(s.push(&[b'a'; 1000]).is_empty());
        }
        assert!(s.buf.len() <= 9);
        assert_eq!(s.push(b"\n{}\n"), vec![Line::TooLong, Line::Json("{}".into())]);
    }

    #[test]
    fn limit_is_inclusive_and_cr_is_free() {
        let line = format!("\"{}\"", "a".repeat(6)); // 8 bytes
        assert_eq!(all(format!("{line}\r\n").as_bytes(), 8, &[]), vec![Line::Json(line.clone())]);
        assert_eq!(all(format!("{line} \n").as_bytes(), 8, &[]), vec![Line::TooLong]);
    }

    #[test]
    fn tally() {
        let mut t = Tally::default();
        for l in expected() {
            t.count(&l);
        }
        assert_eq!(t.delivered, 4);
        assert_eq!(t.skipped(), 3);
    }
}
