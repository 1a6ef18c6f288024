//! Parsing the service gateway's paths, `/s/{tenant}/{council}/{plugin}[/{path}]`.
//!
//! A pure function of the raw path, so it can be tested with any input an attacker chooses:
//! the three ids must each parse (`[a-z0-9-]{2,48}`), and whatever follows the plugin's
//! segment is passed on to the plugin as it was sent.

use guildhall_domain::{CouncilId, PluginName, TenantId};

/// Where a service call goes, and the path the plugin sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServicePath<'a> {
    /// The tenant (alliance).
    pub tenant: TenantId,
    /// The council.
    pub council: CouncilId,
    /// The installed plugin.
    pub plugin: PluginName,
    /// Everything after the plugin's segment and its `/`, still percent-encoded; empty for
    /// `/s/t/c/p` and `/s/t/c/p/`.
    pub rest: &'a str,
}

impl<'a> ServicePath<'a> {
    /// Parses a request path; `None` when it is not under `/s/` or an id does not parse.
    pub(crate) fn parse(path: &'a str) -> Option<Self> {
        let raw = path.strip_prefix("/s/")?;
        let mut segments = raw.splitn(4, '/');
        let tenant = TenantId::parse(segments.next()?).ok()?;
        let council = CouncilId::parse(segments.next()?).ok()?;
        let plugin = PluginName::parse(segments.next()?).ok()?;
        Some(Self {
            tenant,
            council,
            plugin,
            rest: segments.next().unwrap_or(""),
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn paths() {
        let parsed = ServicePath::parse("/s/north-downs/tandridge/bins/uprn/12?x").unwrap();
        assert_eq!(parsed.tenant.as_str(), "north-downs");
        assert_eq!(parsed.council.as_str(), "tandridge");
        assert_eq!(parsed.plugin.as_str(), "bins");
        assert_eq!(parsed.rest, "uprn/12?x");
        assert_eq!(ServicePath::parse("/s/nd/td/hello").unwrap().rest, "");
        assert_eq!(ServicePath::parse("/s/nd/td/hello/").unwrap().rest, "");
        for bad in [
            "",
            "/",
            "/s",
            "/s/",
            "/s/nd",
            "/s/nd/td",
            "/s/nd/td/",
            "s/nd/td/hello",
            "/api/nd/td/hello",
            "/s//td/hello",
            "/s/nd//hello",
            "/s/ND/td/hello",
            "/s/nd/td/../x",
            "/s/../td/hello/x",
            "/s/nd/%74d/hello",
            "/s/nd/td/hel%00lo",
            "/s/nd/t\0/hello",
            "/s/*/td/hello",
            "/s/nd/tëd/hello",
        ] {
            assert_eq!(ServicePath::parse(bad), None, "{bad:?}");
        }
        // Traversal after the plugin is the plugin's business: passed on untouched.
        assert_eq!(
            ServicePath::parse("/s/nd/td/hello/../../admin")
                .unwrap()
                .rest,
            "../../admin"
        );
    }

    /// Segments an attacker would try.
    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9-]{0,50}",
            Just("*".to_string()),
            Just("..".to_string()),
            Just("%2e%2e".to_string()),
            Just("operator".to_string()),
            Just("role:operator".to_string()),
            Just("a\0b".to_string()),
            Just("\u{202e}ab".to_string()),
            Just("x".repeat(10_000)),
            // A `/` would move the segment boundaries; paths with them are the other test's.
            any::<String>().prop_map(|s| s.replace('/', "")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn any_path_parses_or_is_refused(path in any::<String>()) {
            let _ = ServicePath::parse(&path);
        }

        #[test]
        fn adversarial_segments(
            tenant in segment(),
            council in segment(),
            plugin in segment(),
            rest in any::<String>(),
        ) {
            let path = format!("/s/{tenant}/{council}/{plugin}/{rest}");
            match ServicePath::parse(&path) {
                Some(parsed) => {
                    // Only ids that parse on their own come out, unchanged, and the rest is
                    // exactly what followed them.
                    prop_assert_eq!(parsed.tenant.as_str(), tenant.as_str());
                    prop_assert_eq!(parsed.council.as_str(), council.as_str());
                    prop_assert_eq!(parsed.plugin.as_str(), plugin.as_str());
                    prop_assert_eq!(parsed.rest, rest.as_str());
                }
                None => prop_assert!(
                    TenantId::parse(tenant.as_str()).is_err()
                        || CouncilId::parse(council.as_str()).is_err()
                        || PluginName::parse(plugin.as_str()).is_err()
                ),
            }
        }
    }
}
