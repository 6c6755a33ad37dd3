//! Standard base64 (RFC 4648 §4, with padding), encode only: Kosmi's `connection_init` carries the User-Agent this way.
//! Twenty lines here rather than one more dependency in the wasm bundle.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextets = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        // A chunk of k bytes gives k + 1 characters; the rest of the 4 are padding.
        for (i, s) in sextets.iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[*s as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in cases {
            assert_eq!(encode(input.as_bytes()), expected, "{input:?}");
        }
        assert_eq!(encode(&[0xfb, 0xff, 0xfe]), "+//+");
        assert_eq!(
            encode("Mozilla/5.0 (X11; Linux x86_64)".as_bytes()),
            "TW96aWxsYS81LjAgKFgxMTsgTGludXggeDg2XzY0KQ=="
        );
    }

    proptest! {
        #[test]
        fn length_and_alphabet(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let e = encode(&bytes);
            prop_assert_eq!(e.len(), bytes.len().div_ceil(3) * 4);
            prop_assert!(e.trim_end_matches('=').bytes().all(|c| ALPHABET.contains(&c)));
            prop_assert!(e.len() - e.trim_end_matches('=').len() == (3 - bytes.len() % 3) % 3);
        }
    }
}
