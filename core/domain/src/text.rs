//! Stored free text: the one rule for every name, description and comment.
//!
//! Text reaches the database from many edges (tenant files, the API, the CLI, citizens'
//! feedback). PostgreSQL's `text` cannot hold NUL and SQLite's can, so the rule is applied
//! here, once, before either sees it, and both databases answer the same: a field error.
//! Control characters are refused everywhere (a paragraph may hold line breaks and tabs);
//! lengths are counted in characters, as both databases count them.

/// Why a text was refused, and which field it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct TextError {
    /// The field, as the caller named it.
    pub field: String,
    /// What rule it broke.
    pub reason: String,
}

/// One line of text (a name): not blank, at most `max` characters, no control characters.
pub fn line(field: &str, value: &str, max: usize) -> Result<(), TextError> {
    if value.trim().is_empty() {
        return Err(refuse(field, "must not be empty".to_string()));
    }
    check(field, value, max, |_| false)
}

/// Free text over several lines (a comment): may be empty, at most `max` characters, no
/// control characters other than line breaks and tabs.
pub fn paragraph(field: &str, value: &str, max: usize) -> Result<(), TextError> {
    check(field, value, max, |c| matches!(c, '\n' | '\r' | '\t'))
}

fn check(
    field: &str,
    value: &str,
    max: usize,
    allowed: impl Fn(char) -> bool,
) -> Result<(), TextError> {
    let count = value.chars().count();
    if count > max {
        return Err(refuse(
            field,
            format!("is {count} characters; at most {max} are allowed"),
        ));
    }
    if let Some(c) = value.chars().find(|&c| c.is_control() && !allowed(c)) {
        return Err(refuse(
            field,
            format!(
                "must not contain control characters (found U+{:04X})",
                c as u32
            ),
        ));
    }
    Ok(())
}

fn refuse(field: &str, reason: String) -> TextError {
    TextError {
        field: field.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_and_other_controls_are_refused_naming_the_field() {
        for bad in ["a\0b", "a\u{1b}[31m", "a\u{7f}", "a\u{85}"] {
            let e = line("name", bad, 100).unwrap_err();
            assert_eq!(e.field, "name");
            assert!(e.reason.contains("control"), "{bad:?}: {}", e.reason);
            assert!(paragraph("comment", bad, 100).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_paragraph_keeps_line_breaks_and_tabs_a_line_does_not() {
        assert!(paragraph("comment", "one\ntwo\r\n\tthree", 100).is_ok());
        assert!(line("name", "one\ntwo", 100).is_err());
        assert!(paragraph("comment", "", 100).is_ok());
        assert!(line("name", "  ", 100).is_err());
    }

    #[test]
    fn length_is_counted_in_characters() {
        assert!(line("name", &"é".repeat(100), 100).is_ok());
        let e = line("name", &"é".repeat(101), 100).unwrap_err();
        assert!(e.reason.contains("101 characters"), "{}", e.reason);
        // Odd but valid Unicode is text like any other.
        assert!(line("name", "\u{202e}olleh \u{fffe} 😀", 100).is_ok());
    }
}
