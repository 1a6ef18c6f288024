//! Reading and checking an uploaded schedule, and choosing the next collections. No platform
//! calls here, so all of it is tested on the host.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use guildhall_plugin::time::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{csv, postcode};

/// The most row errors reported in one answer.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// A kind of bin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bin {
    /// General waste.
    Refuse,
    /// Mixed recycling.
    Recycling,
    /// Garden waste.
    Garden,
    /// Food waste.
    Food,
}

impl Bin {
    /// What residents call the bin, e.g. `Rubbish (general waste)`.
    pub fn label(self) -> &'static str {
        match self {
            Bin::Refuse => "Rubbish (general waste)",
            Bin::Recycling => "Recycling",
            Bin::Garden => "Garden waste",
            Bin::Food => "Food waste",
        }
    }

    /// Parses `refuse`, `recycling`, `garden` or `food` (any case, surrounding space allowed).
    pub fn parse(s: &str) -> Option<Bin> {
        match s.trim().to_ascii_lowercase().as_str() {
            "refuse" => Some(Bin::Refuse),
            "recycling" => Some(Bin::Recycling),
            "garden" => Some(Bin::Garden),
            "food" => Some(Bin::Food),
            _ => None,
        }
    }
}

/// One collection: a bin emptied on a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Collection {
    /// The day of the collection.
    pub date: Date,
    /// Which bin.
    pub bin: Bin,
}

/// A property and its collections, checked: digits-only UPRN, normalised postcode, trimmed
/// address, collections sorted by date then bin, without duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Property {
    /// Unique Property Reference Number.
    pub uprn: String,
    /// Normalised postcode, e.g. `RH8 0BT`.
    pub postcode: String,
    /// The address as a person would write it.
    pub address: String,
    /// Sorted, distinct collections.
    pub collections: Vec<Collection>,
}

/// Where in the upload a problem is: a CSV line (the header is line 1) or a JSON array index
/// (from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    /// A line of a CSV upload.
    Line(usize),
    /// An index into a JSON upload's array.
    Index(usize),
}

/// One problem with one row of an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// Where the problem is.
    #[serde(flatten)]
    pub at: Location,
    /// The field, e.g. `postcode` or `collections[2].date`.
    pub field: String,
    /// What is wrong, for a person.
    pub message: String,
}

/// Why an upload was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadError {
    /// The body could not be read at all (bad JSON syntax, not UTF-8): `400`.
    Malformed(String),
    /// More rows than allowed: `413`.
    TooManyRows {
        /// The allowed number of rows.
        max: usize,
    },
    /// Rows failed checks: `422`. Sorted by position.
    Invalid(Vec<RowError>),
}

/// One parsed piece of an upload before grouping by UPRN.
#[derive(Debug, Clone)]
struct Entry {
    at: Location,
    uprn: String,
    postcode: String,
    address: String,
    collections: Vec<Collection>,
}

/// Reads a CSV upload with header `uprn,postcode,address,date,bin` (any order, any case),
/// one row per collection, allowing at most `max_rows` data rows.
pub fn parse_csv(body: &[u8], max_rows: usize) -> Result<Vec<Property>, UploadError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| UploadError::Malformed("the CSV is not valid UTF-8".to_owned()))?;
    let records = csv::parse(text).map_err(|line| {
        UploadError::Invalid(vec![RowError {
            at: Location::Line(line),
            field: String::new(),
            message: "a quoted field is never closed".to_owned(),
        }])
    })?;
    let mut records = records.into_iter().filter(|r| !r.is_blank());
    let Some(header) = records.next() else {
        return Err(invalid(Location::Line(1), "", "the CSV is empty"));
    };
    const COLUMNS: [&str; 5] = ["uprn", "postcode", "address", "date", "bin"];
    let names: Vec<String> = header
        .fields
        .iter()
        .map(|f| f.trim().to_ascii_lowercase())
        .collect();
    let mut index = [0usize; 5];
    for (slot, column) in index.iter_mut().zip(COLUMNS) {
        match names.iter().position(|n| n == column) {
            Some(i) => *slot = i,
            None => {
                return Err(invalid(
                    Location::Line(header.line),
                    column,
                    &format!(
                        "the header must name the columns {}; {column} is missing",
                        COLUMNS.join(",")
                    ),
                ));
            }
        }
    }
    let rows: Vec<csv::Record> = records.collect();
    if rows.len() > max_rows {
        return Err(UploadError::TooManyRows { max: max_rows });
    }
    if rows.is_empty() {
        return Err(invalid(
            Location::Line(header.line),
            "",
            "the schedule has no rows",
        ));
    }

    let mut errors = Vec::new();
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let at = Location::Line(row.line);
        if row.fields.len() != names.len() {
            errors.push(RowError {
                at,
                field: String::new(),
                message: format!(
                    "expected {} fields, found {}",
                    names.len(),
                    row.fields.len()
                ),
            });
            continue;
        }
        let get = |column: usize| row.fields[index[column]].as_str();
        let mut row_errors = Vec::new();
        let uprn = check_uprn(get(0), at, "uprn", &mut row_errors);
        let postcode = check_postcode(get(1), at, "postcode", &mut row_errors);
        let address = check_address(get(2), at, "address", &mut row_errors);
        let date = check_date(get(3), at, "date", &mut row_errors);
        let bin = check_bin(get(4), at, "bin", &mut row_errors);
        match (uprn, postcode, address, date, bin) {
            (Some(uprn), Some(postcode), Some(address), Some(date), Some(bin)) => {
                entries.push(Entry {
                    at,
                    uprn,
                    postcode,
                    address,
                    collections: vec![Collection { date, bin }],
                });
            }
            _ => errors.extend(row_errors),
        }
    }
    group(entries, errors)
}

/// Reads a JSON upload: an array of
/// `{uprn, postcode, address, collections: [{date, bin}]}`, allowing at most `max_rows`
/// collections in all. A UPRN may be a string or a whole number.
pub fn parse_json(body: &[u8], max_rows: usize) -> Result<Vec<Property>, UploadError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| UploadError::Malformed(format!("the body is not valid JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(UploadError::Malformed(
            "expected a JSON array of properties".to_owned(),
        ));
    };
    let total: usize = items
        .iter()
        .map(|item| match item.get("collections") {
            Some(Value::Array(c)) => c.len(),
            _ => 0,
        })
        .sum();
    if total > max_rows || items.len() > max_rows {
        return Err(UploadError::TooManyRows { max: max_rows });
    }
    if items.is_empty() {
        return Err(UploadError::Invalid(vec![RowError {
            at: Location::Index(0),
            field: String::new(),
            message: "the schedule has no properties".to_owned(),
        }]));
    }

    let mut errors = Vec::new();
    let mut entries = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = Location::Index(i);
        let Value::Object(object) = item else {
            errors.push(RowError {
                at,
                field: String::new(),
                message: "expected an object".to_owned(),
            });
            continue;
        };
        let mut row_errors = Vec::new();
        let text = |name: &str, row_errors: &mut Vec<RowError>| -> Option<String> {
            match object.get(name) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) if name == "uprn" && n.is_u64() => Some(n.to_string()),
                None | Some(Value::Null) => {
                    row_errors.push(error(at, name, "is required"));
                    None
                }
                Some(_) => {
                    row_errors.push(error(at, name, "must be a string"));
                    None
                }
            }
        };
        let uprn =
            text("uprn", &mut row_errors).and_then(|s| check_uprn(&s, at, "uprn", &mut row_errors));
        let postcode = text("postcode", &mut row_errors)
            .and_then(|s| check_postcode(&s, at, "postcode", &mut row_errors));
        let address = text("address", &mut row_errors)
            .and_then(|s| check_address(&s, at, "address", &mut row_errors));
        let mut collections = Vec::new();
        match object.get("collections") {
            Some(Value::Array(list)) => {
                for (j, c) in list.iter().enumerate() {
                    let field = |name: &str| format!("collections[{j}].{name}");
                    let date = match c.get("date") {
                        Some(Value::String(s)) => {
                            check_date(s, at, &field("date"), &mut row_errors)
                        }
                        _ => {
                            row_errors.push(error(at, &field("date"), "must be a date YYYY-MM-DD"));
                            None
                        }
                    };
                    let bin = match c.get("bin") {
                        Some(Value::String(s)) => check_bin(s, at, &field("bin"), &mut row_errors),
                        _ => {
                            row_errors.push(error(at, &field("bin"), BIN_MESSAGE));
                            None
                        }
                    };
                    if let (Some(date), Some(bin)) = (date, bin) {
                        collections.push(Collection { date, bin });
                    }
                }
            }
            None | Some(Value::Null) => {
                row_errors.push(error(at, "collections", "is required (it may be empty)"))
            }
            Some(_) => row_errors.push(error(at, "collections", "must be an array")),
        }
        match (uprn, postcode, address) {
            (Some(uprn), Some(postcode), Some(address)) if row_errors.is_empty() => {
                entries.push(Entry {
                    at,
                    uprn,
                    postcode,
                    address,
                    collections,
                });
            }
            _ => errors.extend(row_errors),
        }
    }
    group(entries, errors)
}

/// Merges entries for the same UPRN, which must agree on postcode and address.
fn group(entries: Vec<Entry>, mut errors: Vec<RowError>) -> Result<Vec<Property>, UploadError> {
    let mut by_uprn: BTreeMap<String, Property> = BTreeMap::new();
    for entry in entries {
        match by_uprn.get_mut(&entry.uprn) {
            None => {
                by_uprn.insert(
                    entry.uprn.clone(),
                    Property {
                        uprn: entry.uprn,
                        postcode: entry.postcode,
                        address: entry.address,
                        collections: entry.collections,
                    },
                );
            }
            Some(property) => {
                if property.postcode != entry.postcode {
                    errors.push(error(
                        entry.at,
                        "postcode",
                        &format!(
                            "UPRN {} was given postcode {} earlier",
                            entry.uprn, property.postcode
                        ),
                    ));
                } else if property.address != entry.address {
                    errors.push(error(
                        entry.at,
                        "address",
                        &format!("UPRN {} was given a different address earlier", entry.uprn),
                    ));
                } else {
                    property.collections.extend(entry.collections);
                }
            }
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| match e.at {
            Location::Line(n) | Location::Index(n) => n,
        });
        return Err(UploadError::Invalid(errors));
    }
    Ok(by_uprn
        .into_values()
        .map(|mut p| {
            p.collections.sort();
            p.collections.dedup();
            p
        })
        .collect())
}

const BIN_MESSAGE: &str = "must be one of refuse, recycling, garden, food";

fn error(at: Location, field: &str, message: &str) -> RowError {
    RowError {
        at,
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

fn invalid(at: Location, field: &str, message: &str) -> UploadError {
    UploadError::Invalid(vec![error(at, field, message)])
}

fn check_uprn(s: &str, at: Location, field: &str, errors: &mut Vec<RowError>) -> Option<String> {
    let s = s.trim();
    if postcode::is_uprn(s) {
        Some(s.to_owned())
    } else {
        errors.push(error(at, field, "must be a UPRN of 1 to 12 digits"));
        None
    }
}

fn check_postcode(
    s: &str,
    at: Location,
    field: &str,
    errors: &mut Vec<RowError>,
) -> Option<String> {
    let normalised = postcode::normalise(s);
    if normalised.is_none() {
        errors.push(error(at, field, "must be a UK postcode such as RH8 0BT"));
    }
    normalised
}

fn check_address(s: &str, at: Location, field: &str, errors: &mut Vec<RowError>) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        errors.push(error(at, field, "must not be empty"));
        None
    } else if s.chars().count() > 500 {
        errors.push(error(at, field, "must be at most 500 characters"));
        None
    } else {
        Some(s.to_owned())
    }
}

fn check_date(s: &str, at: Location, field: &str, errors: &mut Vec<RowError>) -> Option<Date> {
    let date = Date::parse(s.trim());
    if date.is_none() {
        errors.push(error(at, field, "must be a date YYYY-MM-DD"));
    }
    date
}

fn check_bin(s: &str, at: Location, field: &str, errors: &mut Vec<RowError>) -> Option<Bin> {
    let bin = Bin::parse(s);
    if bin.is_none() {
        errors.push(error(at, field, BIN_MESSAGE));
    }
    bin
}

/// Collections on or after `today`, in date order, at most `limit` of them.
pub fn upcoming(collections: &[Collection], today: Date, limit: Option<usize>) -> Vec<Collection> {
    let mut next: Vec<Collection> = collections
        .iter()
        .filter(|c| c.date >= today)
        .copied()
        .collect();
    next.sort();
    if let Some(limit) = limit {
        next.truncate(limit);
    }
    next
}

/// Compares addresses the way people expect: runs of digits by their value, so
/// `2 High St` comes before `10 High St`; otherwise case-insensitively.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let na = trim_zeros(&a[..da]);
                let nb = trim_zeros(&b[..db]);
                let order = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if order != Ordering::Equal {
                    return order;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                let order = x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase());
                if order != Ordering::Equal {
                    return order;
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&d| d == b'0').count();
    &digits[zeros..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    const CSV: &str = "uprn,postcode,address,date,bin\n\
        100061000001,rh80bt,\"1 High Street, Oxted\",2026-06-02,refuse\n\
        100061000001,RH8 0BT,\"1 High Street, Oxted\",2026-06-02,Recycling\n\
        100061000002,RH8 0BT,\"2 High Street, Oxted\",2026-06-09,food\n\
        100061000001,RH8 0BT,\"1 High Street, Oxted\",2026-06-01,garden\n\
        100061000001,RH8 0BT,\"1 High Street, Oxted\",2026-06-01,garden\n";

    #[test]
    fn csv_upload_is_grouped_sorted_and_normalised() {
        let properties = parse_csv(CSV.as_bytes(), 100).unwrap();
        assert_eq!(properties.len(), 2);
        let first = &properties[0];
        assert_eq!(first.uprn, "100061000001");
        assert_eq!(first.postcode, "RH8 0BT");
        assert_eq!(first.address, "1 High Street, Oxted");
        assert_eq!(
            first.collections,
            vec![
                Collection {
                    date: date("2026-06-01"),
                    bin: Bin::Garden
                },
                Collection {
                    date: date("2026-06-02"),
                    bin: Bin::Refuse
                },
                Collection {
                    date: date("2026-06-02"),
                    bin: Bin::Recycling
                },
            ]
        );
        assert_eq!(properties[1].collections.len(), 1);
    }

    #[test]
    fn csv_columns_may_come_in_any_order() {
        let csv = "\u{feff}Bin, Date ,UPRN,Address,Postcode\r\nfood,2026-01-05,7,7 Lane,M1 1AE\r\n";
        let properties = parse_csv(csv.as_bytes(), 10).unwrap();
        assert_eq!(properties[0].uprn, "7");
        assert_eq!(properties[0].postcode, "M1 1AE");
        assert_eq!(properties[0].collections[0].bin, Bin::Food);
    }

    #[test]
    fn csv_errors_name_line_and_field() {
        let csv = "uprn,postcode,address,date,bin\n\
            12x,RH8 0BT,1 High St,2026-06-01,refuse\n\
            1,NOPE,,2026-02-30,compost\n\
            2,RH8 0BT,2 High St,2026-06-01\n\
            3,RH8 0BT,3 High St,2026-06-01,food\n";
        let Err(UploadError::Invalid(errors)) = parse_csv(csv.as_bytes(), 10) else {
            panic!("expected row errors");
        };
        let summary: Vec<(Location, &str)> =
            errors.iter().map(|e| (e.at, e.field.as_str())).collect();
        assert_eq!(
            summary,
            vec![
                (Location::Line(2), "uprn"),
                (Location::Line(3), "postcode"),
                (Location::Line(3), "address"),
                (Location::Line(3), "date"),
                (Location::Line(3), "bin"),
                (Location::Line(4), ""),
            ]
        );
        let json = serde_json::to_value(&errors[0]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"line": 2, "field": "uprn", "message": "must be a UPRN of 1 to 12 digits"})
        );
    }

    #[test]
    fn csv_conflicting_rows_for_one_uprn() {
        let csv = "uprn,postcode,address,date,bin\n\
            1,RH8 0BT,1 High St,2026-06-01,refuse\n\
            1,RH8 0BU,1 High St,2026-06-08,refuse\n\
            1,RH8 0BT,One High St,2026-06-08,refuse\n";
        let Err(UploadError::Invalid(errors)) = parse_csv(csv.as_bytes(), 10) else {
            panic!("expected row errors");
        };
        assert_eq!(errors.len(), 2);
        assert_eq!(
            (errors[0].at, errors[0].field.as_str()),
            (Location::Line(3), "postcode")
        );
        assert_eq!(
            (errors[1].at, errors[1].field.as_str()),
            (Location::Line(4), "address")
        );
    }

    #[test]
    fn csv_header_empty_and_size_limits() {
        assert!(matches!(
            parse_csv(b"uprn,postcode,address,date\n1,RH8 0BT,a,2026-01-01\n", 10),
            Err(UploadError::Invalid(e)) if e[0].field == "bin"
        ));
        assert!(matches!(parse_csv(b"", 10), Err(UploadError::Invalid(_))));
        assert!(matches!(
            parse_csv(b"uprn,postcode,address,date,bin\n\n", 10),
            Err(UploadError::Invalid(_))
        ));
        assert_eq!(
            parse_csv(CSV.as_bytes(), 4),
            Err(UploadError::TooManyRows { max: 4 })
        );
        assert!(matches!(
            parse_csv(&[0xff, 0xfe], 4),
            Err(UploadError::Malformed(_))
        ));
        assert!(matches!(
            parse_csv(b"uprn,postcode,address,date,bin\n1,\"RH8", 4),
            Err(UploadError::Invalid(e)) if e[0].at == Location::Line(2)
        ));
    }

    #[test]
    fn json_upload() {
        let body = serde_json::json!([
            {"uprn": "100061000001", "postcode": "rh8 0bt", "address": "1 High Street",
             "collections": [{"date": "2026-06-02", "bin": "refuse"}, {"date": "2026-06-01", "bin": "food"}]},
            {"uprn": 100061000002u64, "postcode": "RH80BT", "address": "2 High Street", "collections": []},
        ]);
        let properties = parse_json(body.to_string().as_bytes(), 10).unwrap();
        assert_eq!(properties.len(), 2);
        assert_eq!(properties[0].collections[0].bin, Bin::Food);
        assert_eq!(properties[1].uprn, "100061000002");
        assert_eq!(properties[1].postcode, "RH8 0BT");
        assert!(properties[1].collections.is_empty());
    }

    #[test]
    fn json_errors_name_index_and_field() {
        let body = serde_json::json!([
            {"uprn": "1", "postcode": "RH8 0BT", "address": "1 High St",
             "collections": [{"date": "2026-06-02", "bin": "refuse"}]},
            {"uprn": "abc", "postcode": 5, "collections": [{"date": "02/06/2026", "bin": "paper"}, {}]},
            "not an object",
        ]);
        let Err(UploadError::Invalid(errors)) = parse_json(body.to_string().as_bytes(), 10) else {
            panic!("expected row errors");
        };
        let summary: Vec<(Location, &str)> =
            errors.iter().map(|e| (e.at, e.field.as_str())).collect();
        assert_eq!(
            summary,
            vec![
                (Location::Index(1), "uprn"),
                (Location::Index(1), "postcode"),
                (Location::Index(1), "address"),
                (Location::Index(1), "collections[0].date"),
                (Location::Index(1), "collections[0].bin"),
                (Location::Index(1), "collections[1].date"),
                (Location::Index(1), "collections[1].bin"),
                (Location::Index(2), ""),
            ]
        );
        assert_eq!(
            serde_json::to_value(&errors[0]).unwrap()["index"],
            serde_json::json!(1)
        );
    }

    #[test]
    fn json_shape_and_limits() {
        assert!(matches!(
            parse_json(b"{", 10),
            Err(UploadError::Malformed(_))
        ));
        assert!(matches!(
            parse_json(b"{}", 10),
            Err(UploadError::Malformed(_))
        ));
        assert!(matches!(
            parse_json(b"[]", 10),
            Err(UploadError::Invalid(_))
        ));
        let body = serde_json::json!([{"uprn": "1", "postcode": "RH8 0BT", "address": "a",
            "collections": [{"date": "2026-01-01", "bin": "food"}, {"date": "2026-01-02", "bin": "food"}]}]);
        assert_eq!(
            parse_json(body.to_string().as_bytes(), 1),
            Err(UploadError::TooManyRows { max: 1 })
        );
    }

    #[test]
    fn upcoming_starts_today_and_respects_limit() {
        let collections: Vec<Collection> = [
            ("2026-05-31", Bin::Refuse),
            ("2026-06-08", Bin::Recycling),
            ("2026-06-01", Bin::Food),
            ("2026-06-01", Bin::Refuse),
        ]
        .iter()
        .map(|(d, bin)| Collection {
            date: date(d),
            bin: *bin,
        })
        .collect();
        let next = upcoming(&collections, date("2026-06-01"), None);
        assert_eq!(next.len(), 3);
        assert_eq!(next[0].bin, Bin::Refuse);
        assert_eq!(next[1].bin, Bin::Food);
        assert_eq!(next[2].date, date("2026-06-08"));
        assert_eq!(upcoming(&collections, date("2026-06-01"), Some(1)).len(), 1);
        assert!(upcoming(&collections, date("2027-01-01"), None).is_empty());
    }

    #[test]
    fn natural_order_of_addresses() {
        let mut addresses = vec![
            "10 High St",
            "2 High St",
            "1a High St",
            "1 High St",
            "flat 3",
        ];
        addresses.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            addresses,
            vec![
                "1 High St",
                "1a High St",
                "2 High St",
                "10 High St",
                "flat 3"
            ]
        );
        assert_eq!(natural_cmp("007", "7"), Ordering::Equal);
    }
}
