//! UK postcodes and UPRNs.

/// Normalises a UK postcode to upper case with one space before the last three characters
/// (`rh80bt` → `RH8 0BT`), or `None` when it does not have a UK postcode's shape: an outward
/// code of `A9`, `A99`, `A9A`, `AA9`, `AA99` or `AA9A` and an inward code of `9AA` (plus the
/// special `GIR 0AA`).
pub fn normalise(input: &str) -> Option<String> {
    let compact: String = input
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if !compact.is_ascii() || !(5..=7).contains(&compact.len()) {
        return None;
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    let shape: String = compact
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' => 'A',
            b'0'..=b'9' => '9',
            _ => '?',
        })
        .collect();
    let (outward_shape, inward_shape) = shape.split_at(outward.len());
    let valid = compact == "GIR0AA"
        || (inward_shape == "9AA"
            && matches!(
                outward_shape,
                "A9" | "A99" | "A9A" | "AA9" | "AA99" | "AA9A"
            ));
    valid.then(|| format!("{outward} {inward}"))
}

/// Whether `uprn` is a Unique Property Reference Number: 1 to 12 ASCII digits.
pub fn is_uprn(uprn: &str) -> bool {
    (1..=12).contains(&uprn.len()) && uprn.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_every_shape() {
        for (input, expected) in [
            ("rh80bt", "RH8 0BT"),
            ("RH8 0BT", "RH8 0BT"),
            ("  rh8   0bt ", "RH8 0BT"),
            ("m11ae", "M1 1AE"),
            ("B338TH", "B33 8TH"),
            ("cr2 6xh", "CR2 6XH"),
            ("DN55 1PT", "DN55 1PT"),
            ("W1A 1HQ", "W1A 1HQ"),
            ("ec1a1bb", "EC1A 1BB"),
            ("gir0aa", "GIR 0AA"),
        ] {
            assert_eq!(normalise(input).as_deref(), Some(expected), "{input}");
        }
    }

    #[test]
    fn rejects_other_shapes() {
        for input in [
            "",
            "RH8",
            "RH8 0B",
            "RH8 00T",
            "8RH 0BT",
            "RHX8 0BT",
            "RH8 0BTX",
            "RH80 0BTT",
            "ÉC1A 1BB",
            "RH8-0BT",
            "12345",
        ] {
            assert_eq!(normalise(input), None, "{input}");
        }
    }

    #[test]
    fn uprns() {
        assert!(is_uprn("1"));
        assert!(is_uprn("100061234567"));
        assert!(!is_uprn(""));
        assert!(!is_uprn("1000612345678"));
        assert!(!is_uprn("12a"));
        assert!(!is_uprn("-12"));
        assert!(!is_uprn("１２"));
    }
}
