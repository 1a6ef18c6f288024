//! An alliance's or council's brand on citizens' pages: a colour, links to its contact page
//! and accessibility statement, and a logo. A council without its own takes the alliance's.
//!
//! ```toml
//! [brand]
//! colour = "#00703c"
//! contact_url = "https://www.tandridge.gov.uk/contact-us"
//! accessibility_url = "https://www.tandridge.gov.uk/accessibility"
//! logo = "logos/tandridge.svg"      # in a tenant file: a path next to the file
//! ```
//!
//! Over the API a logo is a `data:` URL (`data:image/svg+xml;base64,…` or `image/png`), or
//! the path the platform serves an existing logo at, which keeps it.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::tenant::SpecError;

/// The largest logo accepted, in bytes.
pub const LOGO_MAX_BYTES: usize = 256 * 1024;

/// The longest link accepted, in bytes.
pub const URL_MAX_LEN: usize = 512;

/// Where the platform serves logos: `{LOGO_PATH}/{sha256}`.
pub const LOGO_PATH: &str = "/assets/brand/logos";

/// Where the platform serves brand colours: `{COLOUR_PATH}/{rrggbb}.css`.
pub const COLOUR_PATH: &str = "/assets/brand/colours";

/// A brand as declared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Brand {
    /// The header's colour, `#rrggbb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<String>,
    /// Where residents contact the council (`https://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_url: Option<String>,
    /// The accessibility statement (`https://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accessibility_url: Option<String>,
    /// The logo: a `data:` URL of an SVG or PNG image, or the path of an existing logo; in a
    /// tenant file, an image file's path relative to the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
}

/// A logo image, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logo {
    /// `image/svg+xml` or `image/png`.
    pub content_type: &'static str,
    /// The image.
    pub bytes: Vec<u8>,
    /// The sha256 of the bytes, hex.
    pub digest: String,
}

/// How a brand names its logo once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoRef {
    /// A new image.
    New(Logo),
    /// One the platform already serves, by its digest.
    Existing(String),
}

impl Brand {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self == &Brand::default()
    }

    /// Checks every field; `at` prefixes the field names in errors. `files` allows a logo
    /// given as a file path (tenant files, before the command line reads the file).
    pub fn validate(&self, at: &str, files: bool) -> Result<(), SpecError> {
        let field = |name: &str| {
            if at.is_empty() {
                format!("brand.{name}")
            } else {
                format!("{at}.brand.{name}")
            }
        };
        if let Some(colour) = &self.colour {
            colour_hex(colour).ok_or_else(|| SpecError {
                field: field("colour"),
                reason: format!("{colour:?} is not a colour written #rrggbb"),
            })?;
        }
        for (name, url) in [
            ("contact_url", &self.contact_url),
            ("accessibility_url", &self.accessibility_url),
        ] {
            if let Some(url) = url {
                check_url(url).map_err(|reason| SpecError {
                    field: field(name),
                    reason,
                })?;
            }
        }
        if let Some(logo) = &self.logo {
            let checked = if files && is_file_path(logo) {
                Ok(())
            } else {
                LogoRef::parse(logo).map(drop)
            };
            checked.map_err(|reason| SpecError {
                field: field("logo"),
                reason,
            })?;
        }
        Ok(())
    }
}

/// `#rrggbb` as six lowercase hex digits.
pub fn colour_hex(colour: &str) -> Option<String> {
    let hex = colour.strip_prefix('#')?;
    (hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hex.to_lowercase())
}

fn check_url(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(format!("{url:?} is not an https:// address"));
    };
    if url.len() > URL_MAX_LEN {
        return Err(format!("is longer than {URL_MAX_LEN} bytes"));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let clean = url
        .chars()
        .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '<' | '>' | '\\' | '`'));
    if host.is_empty() || !clean {
        return Err(format!("{url:?} is not a plain https:// address"));
    }
    Ok(())
}

/// A relative path to an image file, as tenant files give logos.
pub fn is_file_path(logo: &str) -> bool {
    !logo.starts_with('/')
        && !logo.contains(':')
        && (logo.ends_with(".svg") || logo.ends_with(".png"))
}

impl LogoRef {
    /// A `data:` URL of an SVG or PNG image, or the served path of an existing logo.
    pub fn parse(logo: &str) -> Result<LogoRef, String> {
        if let Some(name) = logo
            .strip_prefix(LOGO_PATH)
            .and_then(|rest| rest.strip_prefix('/'))
        {
            let digest = name;
            if digest.len() == 64
                && digest
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                return Ok(LogoRef::Existing(digest.to_string()));
            }
            return Err(format!("{logo:?} is not the path of a logo"));
        }
        let Some(rest) = logo.strip_prefix("data:") else {
            return Err(
                "give the logo as a data: URL (data:image/svg+xml;base64,… or data:image/png;base64,…)"
                    .to_string(),
            );
        };
        let (kind, data) = rest
            .split_once(";base64,")
            .ok_or_else(|| "the logo's data: URL must be base64 (…;base64,…)".to_string())?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| format!("the logo's data is not base64: {e}"))?;
        Logo::new(kind, bytes).map(LogoRef::New)
    }
}

impl Logo {
    /// An image of the named type, checked: SVG or PNG, within [`LOGO_MAX_BYTES`], and
    /// bytes that are what the type says.
    pub fn new(content_type: &str, bytes: Vec<u8>) -> Result<Logo, String> {
        if bytes.len() > LOGO_MAX_BYTES {
            return Err(format!(
                "the logo is {} bytes; the most is {LOGO_MAX_BYTES}",
                bytes.len()
            ));
        }
        let content_type = match content_type {
            "image/svg+xml" => {
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| "the SVG logo is not UTF-8 text".to_string())?;
                let start = text.trim_start_matches('\u{feff}').trim_start();
                if !(start.starts_with("<svg") || start.starts_with("<?xml"))
                    || !text.contains("<svg")
                {
                    return Err("the logo is not an SVG image".into());
                }
                "image/svg+xml"
            }
            "image/png" => {
                if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
                    return Err("the logo is not a PNG image".into());
                }
                "image/png"
            }
            other => {
                return Err(format!(
                    "a logo is image/svg+xml or image/png, not {other:?}"
                ));
            }
        };
        let digest = hex::encode(Sha256::digest(&bytes));
        Ok(Logo {
            content_type,
            bytes,
            digest,
        })
    }

    /// The logo as a `data:` URL, as the API takes it.
    pub fn data_url(&self) -> String {
        format!(
            "data:{};base64,{}",
            self.content_type,
            base64::engine::general_purpose::STANDARD.encode(&self.bytes)
        )
    }

    /// The type of a logo file by its name's extension.
    pub fn type_of_file(path: &str) -> Option<&'static str> {
        if path.ends_with(".svg") {
            Some("image/svg+xml")
        } else if path.ends_with(".png") {
            Some("image/png")
        } else {
            None
        }
    }
}

/// The path the platform serves the logo with this digest at.
pub fn logo_path(digest: &str) -> String {
    format!("{LOGO_PATH}/{digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_six_hex_digits() {
        assert_eq!(colour_hex("#00703C").as_deref(), Some("00703c"));
        for bad in ["00703c", "#0703c", "#00703g", "#00703c;", "red"] {
            assert!(colour_hex(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn links_are_plain_https() {
        assert!(check_url("https://www.tandridge.gov.uk/contact").is_ok());
        for bad in [
            "http://example.org",
            "javascript:alert(1)",
            "https://",
            "https://a\" onmouseover=\"x",
            "https://a b",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn logos_are_checked_images() {
        let svg = base64::engine::general_purpose::STANDARD
            .encode("<svg xmlns=\"http://www.w3.org/2000/svg\"/>");
        let LogoRef::New(logo) =
            LogoRef::parse(&format!("data:image/svg+xml;base64,{svg}")).unwrap()
        else {
            panic!("a new logo");
        };
        assert_eq!(logo.content_type, "image/svg+xml");
        let path = logo_path(&logo.digest);
        assert_eq!(
            LogoRef::parse(&path).unwrap(),
            LogoRef::Existing(logo.digest)
        );
        let html = base64::engine::general_purpose::STANDARD.encode("<html><script>1</script>");
        assert!(LogoRef::parse(&format!("data:image/svg+xml;base64,{html}")).is_err());
        assert!(LogoRef::parse(&format!("data:text/html;base64,{svg}")).is_err());
        assert!(LogoRef::parse("data:image/png;base64,AAAA").is_err());
        assert!(LogoRef::parse("https://example.org/logo.png").is_err());
        assert!(LogoRef::parse("/assets/brand/logos/../x.svg").is_err());
        let big = base64::engine::general_purpose::STANDARD.encode(vec![b' '; LOGO_MAX_BYTES + 1]);
        assert!(LogoRef::parse(&format!("data:image/svg+xml;base64,{big}")).is_err());
    }

    #[test]
    fn file_paths_only_in_tenant_files() {
        let brand = Brand {
            logo: Some("logos/tandridge.svg".into()),
            ..Brand::default()
        };
        assert!(brand.validate("", true).is_ok());
        let e = brand.validate("councils[0]", false).unwrap_err();
        assert_eq!(e.field, "councils[0].brand.logo");
    }
}
