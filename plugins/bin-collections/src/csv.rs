//! A small RFC 4180 CSV reader: comma separated, `"` quoted fields with `""` for a quote,
//! `\n` or `\r\n` line ends, an optional byte-order mark.

/// One record and the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The line the record starts on, counting from 1.
    pub line: usize,
    /// The fields, unquoted.
    pub fields: Vec<String>,
}

impl Record {
    /// Whether the record is a blank line.
    pub fn is_blank(&self) -> bool {
        self.fields.len() == 1 && self.fields[0].trim().is_empty()
    }
}

/// Splits `text` into records, or says on which line a quoted field is never closed.
pub fn parse(text: &str) -> Result<Vec<Record>, usize> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut record_line = 1;
    let mut in_quotes = false;
    let mut quote_line = 0;
    let mut at_field_start = true;
    let mut chars = text.chars().peekable();

    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if at_field_start => {
                in_quotes = true;
                quote_line = line;
                at_field_start = false;
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                fields.push(std::mem::take(&mut field));
                records.push(Record {
                    line: record_line,
                    fields: std::mem::take(&mut fields),
                });
                line += 1;
                record_line = line;
                at_field_start = true;
            }
            c => {
                field.push(c);
                at_field_start = false;
            }
        }
    }
    if in_quotes {
        return Err(quote_line);
    }
    if !fields.is_empty() || !field.is_empty() {
        fields.push(field);
        records.push(Record {
            line: record_line,
            fields,
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<Vec<String>> {
        parse(text).unwrap().into_iter().map(|r| r.fields).collect()
    }

    #[test]
    fn plain_and_quoted_fields() {
        assert_eq!(
            fields("a,b,c\n1,\"2, High St\",\"say \"\"hi\"\"\"\n"),
            vec![vec!["a", "b", "c"], vec!["1", "2, High St", "say \"hi\""]]
        );
    }

    #[test]
    fn line_endings_bom_and_no_final_newline() {
        assert_eq!(
            fields("\u{feff}a,b\r\n1,2\r\n3,"),
            vec![vec!["a", "b"], vec!["1", "2"], vec!["3", ""]]
        );
    }

    #[test]
    fn records_know_their_lines() {
        let records = parse("h\n\"multi\nline\"\nnext\n\nlast").unwrap();
        let lines: Vec<usize> = records.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![1, 2, 4, 5, 6]);
        assert_eq!(records[1].fields, vec!["multi\nline"]);
        assert!(records[3].is_blank());
    }

    #[test]
    fn unclosed_quote_is_an_error() {
        assert_eq!(parse("a\n\"open,b\nc\n"), Err(2));
    }

    #[test]
    fn empty_input_has_no_records() {
        assert!(parse("").unwrap().is_empty());
    }
}
