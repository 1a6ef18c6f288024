//! Percent-decoding and `application/x-www-form-urlencoded` parsing.

/// Decodes `application/x-www-form-urlencoded` text (a query string or a form body) into
/// name/value pairs, in order: `+` is a space, `%XX` is a byte, invalid UTF-8 is replaced.
/// Empty pieces (`a=1&&b=2`) are skipped; a piece without `=` has an empty value.
///
/// ```
/// let pairs = guildhall_plugin::urlencoded::parse("q=hello+world&lang=en%2DGB&flag");
/// assert_eq!(pairs, vec![
///     ("q".to_owned(), "hello world".to_owned()),
///     ("lang".to_owned(), "en-GB".to_owned()),
///     ("flag".to_owned(), String::new()),
/// ]);
/// ```
pub fn parse(input: &str) -> Vec<(String, String)> {
    input
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (decode_form(name), decode_form(value))
        })
        .collect()
}

/// Percent-decodes a URL path segment: `%XX` is a byte, `+` stays `+`, invalid UTF-8 is
/// replaced. A `%` not followed by two hex digits is kept as it is.
pub fn decode_path(input: &str) -> String {
    decode(input, false)
}

/// Percent-encodes everything but unreserved characters (`A-Z a-z 0-9 - . _ ~`), for
/// building query strings and path segments.
pub fn encode(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for b in input.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode_form(input: &str) -> String {
    decode(input, true)
}

fn decode(input: &str, plus_is_space: bool) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(decode_form("a%20b+c"), "a b c");
        assert_eq!(decode_path("a%20b+c"), "a b+c");
        assert_eq!(decode_path("RH8%200BT"), "RH8 0BT");
        assert_eq!(decode_path("caf%C3%A9"), "café");
    }

    #[test]
    fn keeps_broken_escapes() {
        assert_eq!(decode_path("100%"), "100%");
        assert_eq!(decode_path("%4"), "%4");
        assert_eq!(decode_path("%zz1"), "%zz1");
        assert_eq!(decode_path("%41"), "A");
    }

    #[test]
    fn parses_pairs() {
        assert_eq!(
            parse("attribute%5Bcolour%5D=red&&x"),
            vec![
                ("attribute[colour]".to_owned(), "red".to_owned()),
                ("x".to_owned(), String::new())
            ]
        );
        assert!(parse("").is_empty());
    }

    #[test]
    fn encodes() {
        assert_eq!(encode("a b/c~"), "a%20b%2Fc~");
        assert_eq!(decode_path(&encode("héllo wörld")), "héllo wörld");
    }
}
