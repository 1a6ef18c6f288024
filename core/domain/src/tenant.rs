//! Declarative tenant files: an alliance and its member councils, as kept in `tenants/`.
//!
//! ```toml
//! id = "north-downs"
//! name = "North Downs Shared Services"
//! share_adoption = true
//!
//! [[councils]]
//! id = "tandridge"
//! name = "Tandridge District Council"
//! gss_code = "E07000215"
//! ```

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::brand::Brand;
use crate::{CouncilId, TenantId};

/// The longest display name accepted for a tenant or a council.
pub const NAME_MAX_LEN: usize = 200;

/// One alliance as declared in a tenant file or a `POST /api/v1/tenants` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    /// The alliance's identifier, e.g. `north-downs`.
    pub id: TenantId,
    /// Human-readable name.
    pub name: String,
    /// Whether the catalogue may name this alliance in adoption figures.
    #[serde(default)]
    pub share_adoption: bool,
    /// The alliance's brand on citizens' pages, which its councils take unless they set
    /// their own.
    #[serde(default, skip_serializing_if = "Brand::is_empty")]
    pub brand: Brand,
    /// Member councils.
    #[serde(default)]
    pub councils: Vec<CouncilSpec>,
}

/// One member council of an alliance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouncilSpec {
    /// The council's identifier, unique within its alliance.
    pub id: CouncilId,
    /// Human-readable name.
    pub name: String,
    /// The ONS GSS code of the local authority, e.g. `E07000215`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gss_code: Option<String>,
    /// The council's brand on citizens' pages; what it leaves unset comes from its
    /// alliance's.
    #[serde(default, skip_serializing_if = "Brand::is_empty")]
    pub brand: Brand,
}

/// What is wrong with a tenant declaration: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct SpecError {
    /// A dotted path to the offending field, e.g. `councils[2].id`.
    pub field: String,
    /// What rule it broke.
    pub reason: String,
}

impl TenantSpec {
    /// Parses a tenant file and validates it. Errors name the field at fault. Logos may be
    /// file paths, which the caller reads ([`TenantSpec::logo_files`]) before applying.
    pub fn from_toml(text: &str) -> Result<Self, SpecError> {
        let spec: TenantSpec = toml::from_str(text).map_err(|e| toml_error(&e, text))?;
        spec.validate_file()?;
        Ok(spec)
    }

    /// Checks the rules serde cannot: names, GSS codes, brands and council uniqueness.
    /// Logos must be `data:` URLs or served paths (see [`TenantSpec::validate_file`]).
    pub fn validate(&self) -> Result<(), SpecError> {
        self.check(false)
    }

    /// The logos given as file paths (in a tenant file), for the caller to replace with
    /// `data:` URLs of the files they name.
    pub fn logo_files(&mut self) -> Vec<&mut String> {
        std::iter::once(&mut self.brand)
            .chain(self.councils.iter_mut().map(|c| &mut c.brand))
            .filter_map(|b| b.logo.as_mut())
            .filter(|logo| crate::brand::is_file_path(logo))
            .collect()
    }

    /// Like [`TenantSpec::validate`], for a tenant file whose logos are still file paths.
    pub fn validate_file(&self) -> Result<(), SpecError> {
        self.check(true)
    }

    fn check(&self, files: bool) -> Result<(), SpecError> {
        validate_name("name", &self.name)?;
        self.brand.validate("", files)?;
        let mut seen = BTreeSet::new();
        for (i, council) in self.councils.iter().enumerate() {
            council.check(&format!("councils[{i}]"), files)?;
            if !seen.insert(council.id.as_str()) {
                return Err(SpecError {
                    field: format!("councils[{i}].id"),
                    reason: format!("duplicate council id {:?}", council.id.as_str()),
                });
            }
        }
        Ok(())
    }
}

impl CouncilSpec {
    /// Checks the council's name, GSS code and brand; `at` prefixes the field names in
    /// errors.
    pub fn validate(&self, at: &str) -> Result<(), SpecError> {
        self.check(at, false)
    }

    fn check(&self, at: &str, files: bool) -> Result<(), SpecError> {
        let field = |name: &str| {
            if at.is_empty() {
                name.to_string()
            } else {
                format!("{at}.{name}")
            }
        };
        validate_name(&field("name"), &self.name)?;
        if let Some(code) = &self.gss_code {
            validate_gss_code(&field("gss_code"), code)?;
        }
        self.brand.validate(at, files)?;
        Ok(())
    }
}

/// Names are free text, but not empty, not huge and without control characters.
pub fn validate_name(field: &str, name: &str) -> Result<(), SpecError> {
    Ok(crate::text::line(field, name, NAME_MAX_LEN)?)
}

impl From<crate::text::TextError> for SpecError {
    fn from(e: crate::text::TextError) -> Self {
        SpecError {
            field: e.field,
            reason: e.reason,
        }
    }
}

/// A GSS code is a nation letter (E, W, S or N) followed by eight digits.
fn validate_gss_code(field: &str, code: &str) -> Result<(), SpecError> {
    let bytes = code.as_bytes();
    let ok = bytes.len() == 9
        && matches!(bytes[0], b'E' | b'W' | b'S' | b'N')
        && bytes[1..].iter().all(u8::is_ascii_digit);
    if ok {
        Ok(())
    } else {
        Err(SpecError {
            field: field.to_string(),
            reason: format!("{code:?} is not a GSS code (a letter E, W, S or N and 8 digits)"),
        })
    }
}

/// Turns a TOML parse error into a field error.
pub(crate) fn toml_error(err: &toml::de::Error, text: &str) -> SpecError {
    SpecError {
        field: toml_error_field(err, text),
        reason: err.message().to_string(),
    }
}

/// Finds the dotted key path at the error's position, so the message names the field even
/// when `toml` only gives a byte span: the table header above the line (with the index of an
/// array-of-tables entry) and the key on that line.
fn toml_error_field(err: &toml::de::Error, text: &str) -> String {
    let Some(span) = err.span() else {
        return "(file)".to_string();
    };
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_no = text[..start].matches('\n').count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .unwrap_or_default();
    let mut table = String::new();
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    for l in text[..line_start].lines().map(str::trim) {
        if let Some(name) = l.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
            let n = counts.entry(name.trim().to_string()).or_insert(0);
            table = format!("{}[{}]", name.trim(), *n);
            *n += 1;
        } else if let Some(name) = l.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = name.trim().to_string();
        }
    }
    let path = match (table.is_empty(), key.is_empty()) {
        (false, true) => table,
        (true, true) => String::new(),
        (true, false) => key,
        (false, false) => format!("{table}.{key}"),
    };
    if path.is_empty() {
        format!("line {line_no}")
    } else {
        format!("{path} (line {line_no})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "north-downs"
name = "North Downs Shared Services"

[[councils]]
id = "tandridge"
name = "Tandridge District Council"
gss_code = "E07000215"

[[councils]]
id = "mole-valley"
name = "Mole Valley District Council"
"#;

    #[test]
    fn parses_a_good_file() {
        let spec = TenantSpec::from_toml(GOOD).unwrap();
        assert_eq!(spec.id.as_str(), "north-downs");
        assert_eq!(spec.councils.len(), 2);
        assert!(!spec.share_adoption);
    }

    #[test]
    fn duplicate_council_names_the_field() {
        let text = format!("{GOOD}\n[[councils]]\nid = \"tandridge\"\nname = \"Again\"\n");
        let err = TenantSpec::from_toml(&text).unwrap_err();
        assert_eq!(err.field, "councils[2].id");
        assert!(err.reason.contains("duplicate council id \"tandridge\""));
    }

    #[test]
    fn unknown_field_names_the_field() {
        let text = GOOD.replace("gss_code", "gss_cod");
        let err = TenantSpec::from_toml(&text).unwrap_err();
        assert_eq!(err.field, "councils[0].gss_cod (line 8)");
        assert!(err.reason.contains("unknown field `gss_cod`"), "{err}");
    }

    #[test]
    fn bad_id_names_the_field() {
        let text = GOOD.replace("\"mole-valley\"", "\"Mole Valley\"");
        let err = TenantSpec::from_toml(&text).unwrap_err();
        assert_eq!(err.field, "councils[1].id (line 11)");
        assert!(err.reason.contains("invalid council id"), "{err}");
    }

    #[test]
    fn bad_gss_code_and_empty_name_are_rejected() {
        let err = TenantSpec::from_toml(&GOOD.replace("E07000215", "X1")).unwrap_err();
        assert_eq!(err.field, "councils[0].gss_code");
        let err =
            TenantSpec::from_toml(&GOOD.replace("North Downs Shared Services", " ")).unwrap_err();
        assert_eq!(err.field, "name");
    }
}
