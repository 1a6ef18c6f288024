//! `guildhall plugins new NAME --lang rust|js|python`: a ready project from the templates
//! compiled into the binary, with the language's SDK copied in so it builds from the
//! package registry alone.

use std::path::Path;

use guildhall_domain::PluginName;

use super::{JsSdk, JsTemplate, Lang, PythonSdk, PythonTemplate, RustSdk, RustTemplate};

/// Where each language's SDK goes in a new project (the templates import it from there).
const SDK_DIR: [(Lang, &str); 3] = [
    (Lang::Rust, "sdk"),
    (Lang::Js, "guildhall"),
    (Lang::Python, "guildhall"),
];

/// Makes the project `NAME` in `parent` (the working folder by default).
pub(crate) fn new(name: &str, lang: Lang, parent: Option<&Path>) -> anyhow::Result<()> {
    let plugin = PluginName::parse(name).map_err(|e| {
        anyhow::anyhow!("{name:?} cannot name a plugin: {e} (use lower-case letters, digits and -)")
    })?;
    // Each language names its package after the plugin, and none takes a leading digit.
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        anyhow::bail!("{name:?} cannot name a plugin project: start it with a lower-case letter");
    }
    let parent = match parent {
        Some(p) => p.to_path_buf(),
        None => std::env::current_dir()?,
    };
    let dir = parent.join(plugin.as_str());
    if dir.exists() {
        anyhow::bail!(
            "{} exists already; choose another name or folder",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let module = plugin.as_str().replace('-', "_");
    let fill = |text: &str| {
        text.replace("{{name}}", plugin.as_str())
            .replace("{{module}}", &module)
    };
    let keep = |text: &str| text.to_string();
    let sdk_dir = SDK_DIR
        .iter()
        .find(|(l, _)| *l == lang)
        .map(|(_, d)| dir.join(d))
        .expect("every language has an SDK folder");
    let written = match lang {
        Lang::Rust => super::write_embedded::<RustTemplate>(&dir, &fill)
            .and_then(|()| super::write_embedded::<RustSdk>(&sdk_dir, &keep)),
        Lang::Js => super::write_embedded::<JsTemplate>(&dir, &fill)
            .and_then(|()| super::write_embedded::<JsSdk>(&sdk_dir, &keep)),
        Lang::Python => super::write_embedded::<PythonTemplate>(&dir, &fill)
            .and_then(|()| super::write_embedded::<PythonSdk>(&sdk_dir, &keep)),
    };
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    println!(
        "created the {} plugin {} in {}\n\nnext:\n  cd {}\n  guildhall dev            \
         # serve it on http://127.0.0.1:8080/s/dev/dev/{}/, rebuilt on every change\n  \
         guildhall plugins test   # run tests/*.toml\n  guildhall plugins build  \
         # write dist/, checked as publishing checks it",
        lang.name(),
        plugin,
        dir.display(),
        dir.display(),
        plugin,
    );
    Ok(())
}
