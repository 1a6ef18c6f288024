//! `guildhall usage report`: the same report as `GET /api/v1/tenants/{t}/usage`.

use anyhow::Context;
use guildhall_domain::TenantId;
use guildhall_store::Store;
use guildhall_telemetry::report::{self, Basis};

pub(crate) async fn report(
    store: &Store,
    tenant: &str,
    from: Option<&str>,
    to: Option<&str>,
    format: &str,
    basis: &str,
) -> anyhow::Result<()> {
    let csv = match format {
        "csv" => true,
        "json" => false,
        other => anyhow::bail!("--format must be csv or json, not {other:?}"),
    };
    let basis: Basis = basis
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--basis: {e}"))?;
    let period = report::period(from, to).map_err(|e| anyhow::anyhow!("{e}"))?;
    let id = TenantId::parse(tenant).with_context(|| format!("bad tenant id {tenant:?}"))?;
    let scope = store
        .scope(&id)
        .await?
        .with_context(|| format!("no tenant {tenant}"))?;
    let rows = store.usage(&scope).rows(&period.from, &period.to).await?;
    let report = report::usage_report(tenant, period, basis, rows);
    if csv {
        print!("{}", report::usage_csv(&report));
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}
