//! The plugins in `plugins/`, built for `wasm32-wasip2` by this crate's build script.
//!
//! Each plugin is laid out as a publishable folder (`plugin.toml` and the component it
//! names), so tests can publish it exactly as `guildhall plugins publish DIR` would.

use std::path::PathBuf;

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

/// A built plugin.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The plugin's name from its manifest, e.g. `hello` or `fixture-panic`.
    pub name: &'static str,
    /// The folder holding `plugin.toml` and the component.
    pub dir: PathBuf,
    /// The component's path.
    pub component: PathBuf,
}

impl Artifact {
    /// The manifest text.
    pub fn manifest(&self) -> String {
        std::fs::read_to_string(self.dir.join("plugin.toml")).expect("read plugin.toml")
    }

    /// The component bytes.
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.component).expect("read the component")
    }
}

/// The plugin named `name`; panics with the list of names when there is none.
pub fn plugin(name: &str) -> Artifact {
    let Some((name, dir, component)) = PLUGINS.iter().find(|(n, _, _)| *n == name) else {
        let names: Vec<&str> = PLUGINS.iter().map(|(n, _, _)| *n).collect();
        panic!("no plugin {name:?}; built plugins: {names:?}");
    };
    let dir = PathBuf::from(dir);
    Artifact {
        name,
        component: dir.join(component),
        dir,
    }
}
