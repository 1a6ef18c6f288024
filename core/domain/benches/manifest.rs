//! Manifest parsing and validation, as publishing does it.
//!
//! Run with `cargo bench -p guildhall-domain`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use guildhall_domain::manifest::{LimitCaps, Manifest};

const MANIFEST: &str = r#"
name = "bin-collections"
version = "1.2.0"
description = "Find your bin collection days"
publisher = "north-downs-digital"
licence = "MIT"
component = "bin_collections.wasm"

[capabilities]
kv = true
events = true
outbound_http = ["api.example.org", "maps.example.org"]

[limits]
memory_mib = 64
timeout_ms = 2000

[config.collection_api]
type = "string"
required = true
description = "Where collection rounds are read from"

[config.council_name]
type = "string"
required = true

[config.rounds]
type = "json"
required = false
"#;

fn benches(c: &mut Criterion) {
    let caps = LimitCaps {
        max_memory_mib: 256,
        max_timeout_ms: 30_000,
    };
    let manifest = Manifest::from_toml(MANIFEST).unwrap();
    manifest.validate(&caps).unwrap();
    c.bench_function("manifest_parse_and_validate", |b| {
        b.iter(|| {
            let manifest = Manifest::from_toml(black_box(MANIFEST)).unwrap();
            manifest.validate(&caps).unwrap();
            black_box(manifest)
        })
    });
}

criterion_group!(manifest, benches);
criterion_main!(manifest);
