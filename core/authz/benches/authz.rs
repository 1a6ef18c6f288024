//! The access-control check at scale: casbin with 10,000 rules in the database.
//!
//! In Guildhall's model the permission policies (`p`) are per role, a few dozen in all;
//! what grows with a platform is role bindings (`g`): one per member and token in every
//! tenant. This loads 10,000 bindings across 1,000 tenants on top of the built-in policies
//! and times the check the API layer and the plugin `authz` import make: a subject's first
//! check after the rules changed (casbin evaluates it) and later ones (remembered).
//!
//! Run with `cargo bench -p guildhall-authz`.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use guildhall_authz::{Authz, Oidc};
use guildhall_domain::TenantId;
use guildhall_store::{DatabaseUrl, PoolOptions, RuleRow, Store};
use guildhall_test_artifacts::print_percentiles;

const TENANTS: usize = 1_000;
const BINDINGS_PER_TENANT: usize = 10;
const ROLES: [&str; 3] = ["role:tenant-admin", "role:officer", "role:auditor"];

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let authz = rt.block_on(async {
        let url = DatabaseUrl::new(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("g.db").display()
        ));
        let store = Store::connect(&url, &PoolOptions::default()).await.unwrap();
        store.migrate().await.unwrap();
        let mut rules = Vec::with_capacity(TENANTS * BINDINGS_PER_TENANT);
        for t in 0..TENANTS {
            for m in 0..BINDINGS_PER_TENANT {
                let subject = format!("token:user-{t}-{m}");
                let tenant = format!("tenant-{t:04}");
                rules.push(RuleRow::new(
                    "g",
                    &[&subject, ROLES[m % ROLES.len()], &tenant],
                ));
            }
        }
        store.rules().add(&rules).await.unwrap();
        Authz::new(store, Oidc::new(&[]).unwrap()).await.unwrap()
    });
    let tenant = TenantId::parse("tenant-0500").unwrap();
    let other = TenantId::parse("tenant-0501").unwrap();
    // Allowed: an officer (m = 1) reads installs; refused: the same subject elsewhere.
    assert!(authz.allowed_subject("token:user-500-1", &tenant, "installs", "read"));
    assert!(!authz.allowed_subject("token:user-500-1", &other, "installs", "read"));

    c.bench_function("casbin_check_10k_rules_allowed", |b| {
        b.iter(|| black_box(authz.allowed_subject("token:user-500-1", &tenant, "installs", "read")))
    });
    c.bench_function("casbin_check_10k_rules_refused", |b| {
        b.iter(|| black_box(authz.allowed_subject("token:user-500-1", &other, "installs", "write")))
    });

    // Every binding's first check (nothing remembered yet), then the same checks again:
    // decisions are remembered per revision of the rules, so the second pass is what a
    // caller's later requests cost until the rules change.
    let questions: Vec<(String, TenantId)> = (0..TENANTS * BINDINGS_PER_TENANT)
        .map(|i| {
            let (t, m) = (i / BINDINGS_PER_TENANT, i % BINDINGS_PER_TENANT);
            (
                format!("token:user-{t}-{m}"),
                TenantId::parse(format!("tenant-{t:04}")).unwrap(),
            )
        })
        .collect();
    for label in ["casbin_check_10k_rules_first", "casbin_check_10k_rules"] {
        let samples = questions
            .iter()
            .map(|(subject, tenant)| {
                let started = Instant::now();
                black_box(authz.allowed_subject(subject, tenant, "installs", "read"));
                started.elapsed()
            })
            .collect();
        print_percentiles(label, samples);
    }
}

criterion_group!(authz, benches);
criterion_main!(authz);
