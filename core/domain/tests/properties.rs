//! Property tests: the manifest parser and tenant files never panic, whatever text an
//! uploader or an operator hands them, and what they accept holds their rules.

use guildhall_domain::manifest::{LimitCaps, Manifest};
use guildhall_domain::tenant::TenantSpec;
use guildhall_domain::{CouncilId, PluginName, TenantId};
use proptest::prelude::*;
use serde_json::Value;

const CAPS: LimitCaps = LimitCaps {
    max_memory_mib: 256,
    max_timeout_ms: 30_000,
};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Values an attacker would put where a name, id or version goes.
fn adversarial() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("*".to_string()),
        Just("operator".to_string()),
        Just("role:operator".to_string()),
        Just("tenant-admin".to_string()),
        Just("../../etc/passwd".to_string()),
        Just("..\\..\\boot.ini".to_string()),
        Just("a\0b".to_string()),
        Just("\u{202e}evil".to_string()),
        Just("ünïcödé-😀".to_string()),
        Just("\r\n[[councils]]".to_string()),
        Just("x".repeat(100_000)),
        Just("1.0.0-\u{1F600}+\u{0}".to_string()),
        Just("18446744073709551616.0.0".to_string()),
        "[a-z0-9-]{0,60}",
        any::<String>(),
    ]
}

/// A TOML basic string holding `value`; JSON's escapes are TOML's for these characters.
fn quoted(value: &str) -> String {
    serde_json::to_string(value).expect("a string serialises")
}

/// TOML values of every type, for fields that expect one type.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        adversarial().prop_map(|s| quoted(&s)),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
        Just("\"\"\"multi\nline\"\"\"".to_string()),
        Just("'''\0'''".to_string()),
        Just(format!("[{}]", "[".repeat(200))),
    ]
}

/// A manifest with each field possibly replaced by something hostile, and extra tables.
fn manifest_text() -> impl Strategy<Value = String> {
    let field = |name: &'static str, good: &'static str| {
        prop_oneof![
            2 => Just(format!("{name} = {}", quoted(good))),
            1 => toml_value().prop_map(move |v| format!("{name} = {v}")),
            1 => Just(String::new()),
        ]
    };
    let extra = prop_oneof![
        Just(String::new()),
        (toml_value(), toml_value()).prop_map(|(memory, timeout)| format!(
            "[limits]\nmemory_mib = {memory}\ntimeout_ms = {timeout}\n"
        )),
        (toml_value(), prop::collection::vec(toml_value(), 0..3)).prop_map(|(kv, hosts)| {
            format!(
                "[capabilities]\nkv = {kv}\noutbound_http = [{}]\n",
                hosts.join(", ")
            )
        }),
        (adversarial(), toml_value(), toml_value()).prop_map(|(key, kind, default)| format!(
            "[config.{}]\ntype = {kind}\nrequired = false\ndefault = {default}\n",
            quoted(&key)
        )),
        adversarial().prop_map(|s| format!("{} = 1\n", quoted(&s))),
    ];
    (
        field("name", "hello"),
        field("version", "0.1.0"),
        field("description", "Says hello"),
        field("publisher", "guildhall-examples"),
        field("licence", "Apache-2.0"),
        field("component", "hello.wasm"),
        extra,
    )
        .prop_map(|(a, b, c, d, e, f, extra)| [a, b, c, d, e, f, extra].join("\n"))
}

/// Install configurations: any JSON, shallow or deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        adversarial().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(adversarial(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn tenant_text() -> impl Strategy<Value = String> {
    let council =
        (toml_value(), toml_value(), prop::option::of(toml_value())).prop_map(|(id, name, gss)| {
            let gss = gss.map(|g| format!("gss_code = {g}\n")).unwrap_or_default();
            format!("[[councils]]\nid = {id}\nname = {name}\n{gss}")
        });
    (
        toml_value(),
        toml_value(),
        prop::option::of(toml_value()),
        prop::collection::vec(council, 0..4),
    )
        .prop_map(|(id, name, share, councils)| {
            let share = share
                .map(|s| format!("share_adoption = {s}\n"))
                .unwrap_or_default();
            format!("id = {id}\nname = {name}\n{share}{}", councils.join("\n"))
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_is_a_manifest_or_an_error(text in any::<String>()) {
        if let Ok(manifest) = Manifest::from_toml(&text) {
            let _ = manifest.validate(&CAPS);
        }
    }

    #[test]
    fn hostile_manifests_are_judged_without_panicking(
        text in manifest_text(),
        install in json_value(),
    ) {
        let Ok(manifest) = Manifest::from_toml(&text) else {
            return Ok(());
        };
        // Whatever serde accepted has a valid plugin name: the type cannot hold another.
        prop_assert!(PluginName::parse(manifest.name.as_str()).is_ok());
        if manifest.validate(&CAPS).is_ok() {
            prop_assert!(manifest.limits.memory_mib.is_none_or(|m| m <= CAPS.max_memory_mib));
            prop_assert!(manifest.limits.timeout_ms.is_none_or(|t| t <= CAPS.max_timeout_ms));
            prop_assert!(!manifest.component.contains('/') && !manifest.component.contains('\\'));
            // A file name beside the manifest: never hidden, never `.` or `..`.
            prop_assert!(!manifest.component.starts_with('.'));
            if let Ok(checked) = manifest.check_config(&install) {
                prop_assert!(checked.is_object());
            }
        }
    }

    #[test]
    fn any_text_is_a_tenant_file_or_an_error(text in any::<String>()) {
        let _ = TenantSpec::from_toml(&text);
    }

    #[test]
    fn accepted_tenant_files_hold_their_rules(text in tenant_text()) {
        let Ok(spec) = TenantSpec::from_toml(&text) else {
            return Ok(());
        };
        prop_assert!(TenantId::parse(spec.id.as_str()).is_ok());
        prop_assert!(!spec.name.trim().is_empty() && !spec.name.contains('\0'));
        let mut ids: Vec<_> = spec.councils.iter().map(|c| c.id.as_str()).collect();
        prop_assert!(ids.iter().all(|id| CouncilId::parse(*id).is_ok()));
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        prop_assert_eq!(ids.len(), count, "duplicate council ids accepted");
    }

    #[test]
    fn tenant_bodies_in_json_are_judged_without_panicking(body in json_value()) {
        if let Ok(spec) = serde_json::from_value::<TenantSpec>(body) {
            let _ = spec.validate();
        }
    }
}
