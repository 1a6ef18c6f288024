//! `guildhall token create` and `guildhall audit verify`.

use anyhow::{Context, bail};
use guildhall_authz::{Authz, Oidc, TokenRequest};
use guildhall_domain::{CouncilId, Role, TenantId};
use guildhall_store::{NewAuditEntry, Store, Verification};

/// Mints a token, recorded in the tenant's audit chain (the platform's for global roles),
/// and returns it (`token create` prints only the token, so a script can capture it).
pub(crate) async fn mint_token(
    store: &Store,
    name: &str,
    role: &str,
    tenant: Option<&str>,
    council: Option<&str>,
    days: u32,
) -> anyhow::Result<String> {
    let role = Role::parse(role)?;
    let tenant = tenant.map(TenantId::parse).transpose()?;
    let council = council.map(CouncilId::parse).transpose()?;
    let scope = match &tenant {
        Some(t) => Some(
            store
                .scope(t)
                .await?
                .with_context(|| format!("no tenant {t}"))?,
        ),
        None => None,
    };
    let authz = Authz::new(store.clone(), Oidc::new(&[])?).await?;
    let (token, record) = guildhall_operations::access::create_token(
        &authz,
        store,
        scope.as_ref(),
        TokenRequest {
            name,
            role,
            tenant: tenant.as_ref(),
            council: council.as_ref(),
            days,
            created_by: "cli",
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!(e.describe()))?;
    let object = format!("tokens/{}", record.id);
    let entry = NewAuditEntry {
        actor: "cli",
        action: "tokens.create",
        object: &object,
        outcome: "created",
        request_id: "cli",
        detail: serde_json::json!({ "role": role.as_str(), "name": record.name }),
    };
    match &scope {
        Some(scope) => store.audit(scope).append(entry).await?,
        None => store.platform_audit().append(entry).await?,
    };
    Ok(token.to_string())
}

/// Verifies one tenant's chain, or every tenant's and the platform's, printing one line
/// per chain; fails naming the first broken entry.
pub(crate) async fn verify(store: &Store, tenant: Option<&str>) -> anyhow::Result<()> {
    let mut results: Vec<Verification> = Vec::new();
    match tenant {
        Some(t) => {
            let t = TenantId::parse(t)?;
            let scope = store
                .scope(&t)
                .await?
                .with_context(|| format!("no tenant {t}"))?;
            results.push(store.audit(&scope).verify().await?);
        }
        None => {
            results.push(store.platform_audit().verify().await?);
            for record in store.tenants().list().await? {
                if let Some(scope) = store.scope(&record.id).await? {
                    results.push(store.audit(&scope).verify().await?);
                }
            }
        }
    }
    // Chains deleted with their tenants: not a break, but an auditor must see that the chain
    // of a tenant of that name (if one exists now) began again afterwards.
    for forgotten in store.forgotten_chains().await? {
        if tenant.is_none_or(|t| t == forgotten.tenant) {
            println!(
                "{}: a chain of {} entries (last hash {}) was deleted with the tenant at {}",
                forgotten.tenant, forgotten.entries, forgotten.head_hash, forgotten.forgotten_at
            );
        }
    }
    let mut broken = Vec::new();
    for v in &results {
        match &v.broken {
            None => println!("{}: intact ({} entries)", v.chain, v.entries),
            Some(b) => {
                println!("{}: broken at entry {}: {}", v.chain, b.seq, b.reason);
                broken.push(format!("{} at entry {}", v.chain, b.seq));
            }
        }
    }
    if !broken.is_empty() {
        bail!("the audit log has been altered: {}", broken.join(", "));
    }
    Ok(())
}
