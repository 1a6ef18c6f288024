//! How a council's pages look and where they live: what the GOV.UK page kit puts in a page's
//! header and footer, as the gateway tells a plugin (`guildhall:platform/context.site`) and
//! as the platform's own citizen pages use it.

use serde::Serialize;

/// A council's site for one plugin: names, brand and the paths pages link to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Site {
    /// The alliance's name.
    pub tenant_name: String,
    /// The council's name.
    pub council_name: String,
    /// The path of the shared GOV.UK Frontend assets, e.g. `/assets/govuk-frontend/3f2a…`.
    pub assets: String,
    /// The path of the stylesheet with the council's colour, when it has one.
    pub brand_stylesheet: Option<String>,
    /// The path of the council's logo, when it has one.
    pub logo: Option<String>,
    /// Where residents contact the council.
    pub contact_url: Option<String>,
    /// The council's accessibility statement.
    pub accessibility_url: Option<String>,
    /// The plugin's root for this council, `/s/{tenant}/{council}/{plugin}`.
    pub base_path: String,
    /// The platform's feedback page for the plugin, `{base_path}/_feedback`.
    pub feedback_path: String,
}
