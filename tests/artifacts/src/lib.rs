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

/// `bytes` (a component or module) with a custom section appended: the same code under a
/// different digest, for publishing many distinct versions of one plugin.
pub fn with_custom_section(bytes: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = Vec::with_capacity(name.len() + payload.len() + 5);
    leb(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    let mut out = bytes.to_vec();
    out.push(0);
    leb(body.len(), &mut out);
    out.extend_from_slice(&body);
    out
}

/// Prints the 50th and 99th percentiles of `samples` as a line
/// `PERCENTILES <name> p50_us=<f> p99_us=<f> n=<n>` that `cargo xtask bench` reads.
/// Criterion reports means; the targets are percentiles.
pub fn print_percentiles(name: &str, mut samples: Vec<std::time::Duration>) {
    assert!(!samples.is_empty(), "no samples for {name}");
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1e6
    };
    println!(
        "PERCENTILES {name} p50_us={:.2} p99_us={:.2} n={}",
        at(0.50),
        at(0.99),
        samples.len()
    );
}
