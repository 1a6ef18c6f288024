//! GOV.UK Frontend, vendored by `scripts/vendor-govuk-frontend.sh` at a pinned version and
//! embedded in the binary, served under `/assets/govuk-frontend/<hash>/`.
//!
//! The hash is of every file's name and bytes, so a new version has a new path and each
//! response can be cached for a year. The stylesheet names its fonts and images at
//! `/assets/…`; it is rewritten once at start-up to point inside the hashed folder. The
//! console and plugins' pages both link here, so no plugin bundles its own copy.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// Where the assets are served.
pub const BASE: &str = "/assets/govuk-frontend";

/// `init.js` in the hashed folder: marks the page as having JavaScript and starts GOV.UK
/// Frontend's components, for services' pages (an external module: their policy allows no
/// inline script).
const INIT_JS: &str = "import { initAll } from \"./govuk-frontend.min.js\";\n\
     document.body.classList.add(\"js-enabled\", \"govuk-frontend-supported\");\n\
     initAll();\n";

#[derive(rust_embed::RustEmbed)]
#[folder = "assets/govuk-frontend/"]
struct Vendored;

/// The served files: path inside the folder → (content type, bytes).
#[derive(Debug)]
pub struct Assets {
    hash: String,
    version: String,
    files: BTreeMap<String, (&'static str, Arc<[u8]>)>,
}

impl Assets {
    /// The assets, read once.
    pub fn get() -> &'static Assets {
        static ASSETS: OnceLock<Assets> = OnceLock::new();
        ASSETS.get_or_init(Assets::load)
    }

    fn load() -> Assets {
        let mut names: Vec<String> = Vendored::iter().map(|n| n.into_owned()).collect();
        names.sort();
        let mut hasher = Sha256::new();
        let mut raw = BTreeMap::new();
        for name in names {
            let Some(file) = Vendored::get(&name) else {
                continue;
            };
            hasher.update((name.len() as u64).to_be_bytes());
            hasher.update(name.as_bytes());
            hasher.update((file.data.len() as u64).to_be_bytes());
            hasher.update(&file.data);
            raw.insert(name, file.data.into_owned());
        }
        let hash = hex::encode(&hasher.finalize()[..8]);
        let version = raw
            .get("VERSION")
            .map(|v| String::from_utf8_lossy(v).trim().to_string())
            .unwrap_or_default();
        let base = format!("{BASE}/{hash}/assets/");
        let files = raw
            .into_iter()
            .filter(|(name, _)| name != "VERSION")
            .map(|(name, bytes)| {
                let bytes = if name.ends_with(".css") {
                    String::from_utf8_lossy(&bytes)
                        .replace("url(/assets/", &format!("url({base}"))
                        .into_bytes()
                } else {
                    bytes
                };
                let kind = content_type(&name);
                (name, (kind, Arc::from(bytes)))
            })
            .chain(std::iter::once((
                "init.js".to_string(),
                (content_type("init.js"), Arc::from(INIT_JS.as_bytes())),
            )))
            .collect();
        Assets {
            hash,
            version,
            files,
        }
    }

    /// The hashed folder's URL path, e.g. `/assets/govuk-frontend/0123abcd…`.
    pub fn base(&self) -> String {
        format!("{BASE}/{}", self.hash)
    }

    /// The vendored GOV.UK Frontend version.
    pub fn version(&self) -> &str {
        &self.version
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

/// `GET /assets/govuk-frontend/{hash}/{*file}`.
pub fn router() -> Router {
    Router::new().route(&format!("{BASE}/{{hash}}/{{*file}}"), get(serve))
}

async fn serve(Path((hash, file)): Path<(String, String)>) -> Response {
    let assets = Assets::get();
    let found = (hash == assets.hash)
        .then(|| assets.files.get(&file))
        .flatten();
    match found {
        Some((kind, bytes)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
                (
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                ),
            ],
            bytes.to_vec(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            "no such asset\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stylesheet_names_fonts_inside_the_hashed_folder() {
        let assets = Assets::get();
        let (_, css) = &assets.files["govuk-frontend.min.css"];
        let css = String::from_utf8_lossy(css);
        assert!(!css.contains("url(/assets/"), "unrewritten asset URL left");
        for url in css.split("url(").skip(1) {
            let url = url.split(')').next().unwrap_or_default();
            if let Some(rest) = url.strip_prefix(&format!("{}/", assets.base())) {
                assert!(assets.files.contains_key(rest), "{rest} is not served");
            }
        }
        assert!(!assets.version().is_empty());
    }
}
