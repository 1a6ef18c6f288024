//! Tenants and councils: operator-level tenant management and per-tenant council access.

use std::collections::BTreeSet;

use guildhall_domain::brand::{Brand, LogoRef, colour_hex, logo_path};
use guildhall_domain::tenant::{CouncilSpec, TenantSpec};
use guildhall_domain::{CouncilId, TenantId};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, TryInsertResult,
};
use serde::Serialize;
use time::OffsetDateTime;

use crate::claim::{self, Claim};
use crate::entities::{brand_logos, councils, tenants};
use crate::{Bump, Error, Result, Revision, TenantScope, scoped};

/// Sets a tenant's or council's brand columns on its active model.
macro_rules! set_brand {
    ($active:expr, $columns:expr) => {{
        let columns: BrandColumns = $columns;
        $active.brand_colour = Set(columns.colour);
        $active.contact_url = Set(columns.contact_url);
        $active.accessibility_url = Set(columns.accessibility_url);
        $active.logo_digest = Set(columns.logo_digest);
    }};
}

/// What applying a declaration did to the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Applied {
    /// The object did not exist and was created.
    Created,
    /// The object existed and at least one field changed.
    Updated,
    /// The object already matched the declaration.
    Unchanged,
}

impl Applied {
    /// The word printed by `guildhall tenants apply`.
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Created => "created",
            Applied::Updated => "updated",
            Applied::Unchanged => "unchanged",
        }
    }
}

/// A tenant as stored, with its councils.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TenantRecord {
    /// The tenant's identifier.
    #[schema(value_type = String)]
    pub id: TenantId,
    /// Human-readable name.
    pub name: String,
    /// Whether adoption figures may name this tenant.
    pub share_adoption: bool,
    /// The alliance's brand on citizens' pages.
    #[serde(skip_serializing_if = "Brand::is_empty")]
    pub brand: Brand,
    /// Member councils, ordered by id.
    pub councils: Vec<CouncilRecord>,
    /// When the tenant was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When the tenant last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// A council as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CouncilRecord {
    /// The council's identifier within its tenant.
    #[schema(value_type = String)]
    pub id: CouncilId,
    /// Human-readable name.
    pub name: String,
    /// ONS GSS code, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gss_code: Option<String>,
    /// The council's own brand on citizens' pages (unset parts come from its alliance).
    #[serde(skip_serializing_if = "Brand::is_empty")]
    pub brand: Brand,
    /// When the council was added.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When the council last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// Operator-level tenant management: the one place that reads across tenants.
#[derive(Debug)]
pub struct Tenants<'a> {
    db: &'a DatabaseConnection,
    revision: &'a Revision,
}

impl<'a> Tenants<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection, revision: &'a Revision) -> Self {
        Self { db, revision }
    }

    /// Creates a tenant and its councils in one transaction. Of concurrent creates of one
    /// id exactly one inserts the tenant's row; the others find it taken and change nothing.
    pub async fn create(&self, spec: &TenantSpec) -> Result<TenantRecord> {
        let txn = scoped::write(self.db).await?;
        scoped::set_tenant(&txn, spec.id.as_str()).await?;
        let (brand, logo) = BrandColumns::plan(&spec.brand)?;
        let inserted = tenants::Entity::insert(new_tenant(spec, &brand, OffsetDateTime::now_utc()))
            .on_conflict_do_nothing()
            .exec_without_returning(&txn)
            .await?;
        if !matches!(inserted, TryInsertResult::Inserted(n) if n > 0) {
            return Err(Error::TenantExists(spec.id.clone()));
        }
        store_logo(&txn, logo).await?;
        let bumped = if put_councils(&txn, spec).await? {
            Some(crate::catalogue::bump_revision(&txn, &spec.id).await?)
        } else {
            None
        };
        let record = load(&txn, &spec.id)
            .await?
            .expect("the tenant was just inserted");
        txn.commit().await?;
        self.revision.committed(bumped);
        Ok(record)
    }

    /// Makes the database match the declarations, all or nothing.
    ///
    /// Tenants and councils are created or updated; councils that exist in the database but
    /// not in a declaration are left alone (they may have installs), so applying is safe to
    /// repeat and never destroys data.
    pub async fn apply(&self, specs: &[TenantSpec]) -> Result<Vec<(TenantId, Applied)>> {
        let mut seen = BTreeSet::new();
        for spec in specs {
            if !seen.insert(spec.id.as_str()) {
                return Err(Error::DuplicateTenant(spec.id.clone()));
            }
        }
        // Tenants are locked in id order, as every writer does, so two applies of
        // overlapping files queue instead of deadlocking.
        let mut order: Vec<&TenantSpec> = specs.iter().collect();
        order.sort_by(|a, b| a.id.cmp(&b.id));
        let txn = scoped::write(self.db).await?;
        let mut applied = std::collections::BTreeMap::new();
        let mut bumped = Vec::new();
        for spec in order {
            let (done, bump) = upsert_tenant(&txn, spec).await?;
            applied.insert(spec.id.clone(), done);
            bumped.extend(bump);
        }
        txn.commit().await?;
        self.revision.committed(bumped);
        Ok(specs
            .iter()
            .map(|spec| (spec.id.clone(), applied[&spec.id]))
            .collect())
    }

    /// Every tenant, ordered by id.
    pub async fn list(&self) -> Result<Vec<TenantRecord>> {
        let rows = tenants::Entity::find()
            .order_by_asc(tenants::Column::Id)
            .all(self.db)
            .await?;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            // Each tenant's councils are read in a transaction scoped to that tenant.
            let txn = scoped::begin(self.db, &row.id).await?;
            let councils = councils::Entity::find()
                .filter(councils::Column::TenantId.eq(row.id.as_str()))
                .order_by_asc(councils::Column::Id)
                .all(&txn)
                .await?;
            txn.commit().await?;
            records.push(to_record(row, councils)?);
        }
        Ok(records)
    }

    /// Sets the alliance's brand on citizens' pages.
    pub async fn put_brand(
        &self,
        scope: &TenantScope,
        brand: &Brand,
    ) -> Result<(Applied, TenantRecord)> {
        let tenant = scope.tenant();
        let txn = scoped::begin_write(self.db, tenant.as_str()).await?;
        claim::lock_tenant(&txn, tenant).await?;
        let (columns, logo) = BrandColumns::plan(brand)?;
        store_logo(&txn, logo).await?;
        let row = tenants::Entity::find_by_id(tenant.as_str().to_string())
            .one(&txn)
            .await?
            .ok_or_else(|| Error::Database(sea_orm::DbErr::RecordNotFound(tenant.to_string())))?;
        let mut bumped = None;
        let applied = if BrandColumns::of_tenant(&row) == columns {
            Applied::Unchanged
        } else {
            let created_at = row.created_at;
            let mut active: tenants::ActiveModel = row.into();
            set_brand!(active, columns);
            active.updated_at = Set(claim::stamp(created_at));
            active.update(&txn).await?;
            bumped = Some(crate::catalogue::bump_revision(&txn, tenant).await?);
            Applied::Updated
        };
        let record = load(&txn, tenant)
            .await?
            .expect("the tenant's row is locked");
        txn.commit().await?;
        self.revision.committed(bumped);
        Ok((applied, record))
    }

    /// A logo by its digest: its content type and bytes.
    pub async fn logo(&self, digest: &str) -> Result<Option<(String, Vec<u8>)>> {
        Ok(brand_logos::Entity::find_by_id(digest.to_string())
            .one(self.db)
            .await?
            .map(|row| (row.content_type, row.bytes)))
    }

    /// One tenant with its councils.
    pub async fn get(&self, scope: &TenantScope) -> Result<Option<TenantRecord>> {
        let txn = scoped::begin(self.db, scope.tenant().as_str()).await?;
        let record = load(&txn, scope.tenant()).await?;
        txn.commit().await?;
        Ok(record)
    }
}

/// The councils of one tenant.
#[derive(Debug)]
pub struct Councils<'a> {
    db: &'a DatabaseConnection,
    scope: &'a TenantScope,
    revision: &'a Revision,
}

impl<'a> Councils<'a> {
    pub(crate) fn new(
        db: &'a DatabaseConnection,
        scope: &'a TenantScope,
        revision: &'a Revision,
    ) -> Self {
        Self {
            db,
            scope,
            revision,
        }
    }

    /// Creates or updates one council.
    pub async fn put(&self, spec: &CouncilSpec) -> Result<(Applied, CouncilRecord)> {
        let txn = scoped::begin_write(self.db, self.scope.tenant().as_str()).await?;
        claim::lock_tenant(&txn, self.scope.tenant()).await?;
        let applied = upsert_council(&txn, self.scope.tenant(), spec).await?;
        let mut bumped = None;
        if applied != Applied::Unchanged {
            touch_tenant(&txn, self.scope.tenant()).await?;
            bumped = Some(crate::catalogue::bump_revision(&txn, self.scope.tenant()).await?);
        }
        let row = councils::Entity::find_by_id((
            self.scope.tenant().as_str().to_string(),
            spec.id.as_str().to_string(),
        ))
        .one(&txn)
        .await?
        .expect("the council was just written");
        txn.commit().await?;
        self.revision.committed(bumped);
        Ok((applied, council_record(row)?))
    }

    /// Every council of the tenant, ordered by id.
    pub async fn list(&self) -> Result<Vec<CouncilRecord>> {
        let txn = scoped::begin(self.db, self.scope.tenant().as_str()).await?;
        let rows = councils::Entity::find()
            .filter(councils::Column::TenantId.eq(self.scope.tenant().as_str()))
            .order_by_asc(councils::Column::Id)
            .all(&txn)
            .await?;
        txn.commit().await?;
        rows.into_iter().map(council_record).collect()
    }

    /// The ids of every council of the tenant, ordered.
    pub async fn ids(&self) -> Result<Vec<CouncilId>> {
        Ok(self.list().await?.into_iter().map(|c| c.id).collect())
    }
}

fn new_tenant(
    spec: &TenantSpec,
    brand: &BrandColumns,
    now: OffsetDateTime,
) -> tenants::ActiveModel {
    tenants::ActiveModel {
        id: Set(spec.id.as_str().to_string()),
        name: Set(spec.name.clone()),
        share_adoption: Set(spec.share_adoption),
        created_at: Set(now),
        updated_at: Set(now),
        brand_colour: Set(brand.colour.clone()),
        contact_url: Set(brand.contact_url.clone()),
        accessibility_url: Set(brand.accessibility_url.clone()),
        logo_digest: Set(brand.logo_digest.clone()),
    }
}

/// Stores a brand's new logo (once per digest), or checks that the logo it names by its
/// path is stored.
async fn store_logo<C: ConnectionTrait>(db: &C, logo: Option<LogoRef>) -> Result<()> {
    match logo {
        None => Ok(()),
        Some(LogoRef::New(logo)) => {
            brand_logos::Entity::insert(brand_logos::ActiveModel {
                digest: Set(logo.digest),
                content_type: Set(logo.content_type.to_string()),
                bytes: Set(logo.bytes),
                created_at: Set(OffsetDateTime::now_utc()),
            })
            .on_conflict_do_nothing()
            .exec_without_returning(db)
            .await?;
            Ok(())
        }
        Some(LogoRef::Existing(digest)) => {
            let stored = brand_logos::Entity::find_by_id(digest.clone())
                .select_only()
                .column(brand_logos::Column::Digest)
                .into_tuple::<String>()
                .one(db)
                .await?;
            match stored {
                Some(_) => Ok(()),
                None => Err(Error::UnknownLogo(logo_path(&digest))),
            }
        }
    }
}

/// A brand as its columns store it: the colour as `#rrggbb` in lowercase and the logo by
/// the digest of its `brand_logos` row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct BrandColumns {
    colour: Option<String>,
    contact_url: Option<String>,
    accessibility_url: Option<String>,
    logo_digest: Option<String>,
}

impl BrandColumns {
    /// The columns of a checked brand, and its logo to store when it is new. Nothing is
    /// written: callers store the logo with [`store_logo`] once they hold the row they
    /// write, so every writer takes the tenant's row before any logo's.
    fn plan(brand: &Brand) -> Result<(BrandColumns, Option<LogoRef>)> {
        let logo = match brand.logo.as_deref() {
            None => None,
            Some(logo) => {
                Some(LogoRef::parse(logo).map_err(|_| Error::UnknownLogo(logo.to_string()))?)
            }
        };
        let logo_digest = logo.as_ref().map(|logo| match logo {
            LogoRef::New(logo) => logo.digest.clone(),
            LogoRef::Existing(digest) => digest.clone(),
        });
        let columns = BrandColumns {
            colour: brand
                .colour
                .as_deref()
                .and_then(colour_hex)
                .map(|hex| format!("#{hex}")),
            contact_url: brand.contact_url.clone(),
            accessibility_url: brand.accessibility_url.clone(),
            logo_digest,
        };
        Ok((columns, logo))
    }

    fn of_tenant(row: &tenants::Model) -> BrandColumns {
        BrandColumns {
            colour: row.brand_colour.clone(),
            contact_url: row.contact_url.clone(),
            accessibility_url: row.accessibility_url.clone(),
            logo_digest: row.logo_digest.clone(),
        }
    }

    fn of_council(row: &councils::Model) -> BrandColumns {
        BrandColumns {
            colour: row.brand_colour.clone(),
            contact_url: row.contact_url.clone(),
            accessibility_url: row.accessibility_url.clone(),
            logo_digest: row.logo_digest.clone(),
        }
    }

    /// The brand as records show it, the logo by the path it is served at.
    fn into_brand(self) -> Brand {
        Brand {
            colour: self.colour,
            contact_url: self.contact_url,
            accessibility_url: self.accessibility_url,
            logo: self.logo_digest.as_deref().map(logo_path),
        }
    }
}

/// Creates or updates a tenant and its declared councils; the caller's transaction holds
/// the tenant's row from here on. Returns what it did and the revision it bumped, if any.
async fn upsert_tenant<C: ConnectionTrait>(
    db: &C,
    spec: &TenantSpec,
) -> Result<(Applied, Option<Bump>)> {
    scoped::set_tenant(db, spec.id.as_str()).await?;
    let (brand, logo) = BrandColumns::plan(&spec.brand)?;
    let find = tenants::Entity::find_by_id(spec.id.as_str().to_string());
    let mut applied = match claim::claim(
        db,
        new_tenant(spec, &brand, OffsetDateTime::now_utc()),
        find,
    )
    .await?
    {
        Claim::Created(_) => Applied::Created,
        Claim::Existing(row)
            if row.name == spec.name
                && row.share_adoption == spec.share_adoption
                && BrandColumns::of_tenant(&row) == brand =>
        {
            Applied::Unchanged
        }
        Claim::Existing(row) => {
            let created_at = row.created_at;
            let mut active: tenants::ActiveModel = row.into();
            active.name = Set(spec.name.clone());
            active.share_adoption = Set(spec.share_adoption);
            set_brand!(active, brand.clone());
            active.updated_at = Set(claim::stamp(created_at));
            active.update(db).await?;
            Applied::Updated
        }
    };
    // The tenant's row is held now: its logo second, as every writer does.
    store_logo(db, logo).await?;
    let councils_changed = put_councils(db, spec).await?;
    if councils_changed && applied == Applied::Unchanged {
        touch_tenant(db, &spec.id).await?;
        applied = Applied::Updated;
    }
    // A changed name or brand shows on the alliance's pages: the gateway re-reads it.
    let bumped = if councils_changed || applied == Applied::Updated {
        Some(crate::catalogue::bump_revision(db, &spec.id).await?)
    } else {
        None
    };
    Ok((applied, bumped))
}

/// Creates or updates the declared councils of a tenant whose row the transaction holds, in
/// id order. `true` when any changed.
async fn put_councils<C: ConnectionTrait>(db: &C, spec: &TenantSpec) -> Result<bool> {
    let mut councils: Vec<&CouncilSpec> = spec.councils.iter().collect();
    councils.sort_by(|a, b| a.id.cmp(&b.id));
    let mut changed = false;
    for council in councils {
        changed |= upsert_council(db, &spec.id, council).await? != Applied::Unchanged;
    }
    Ok(changed)
}

async fn upsert_council<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    spec: &CouncilSpec,
) -> Result<Applied> {
    let now = OffsetDateTime::now_utc();
    let (brand, logo) = BrandColumns::plan(&spec.brand)?;
    // The tenant's row is held by every caller, so the logo's row comes second.
    store_logo(db, logo).await?;
    let new = councils::ActiveModel {
        tenant_id: Set(tenant.as_str().to_string()),
        id: Set(spec.id.as_str().to_string()),
        name: Set(spec.name.clone()),
        gss_code: Set(spec.gss_code.clone()),
        created_at: Set(now),
        updated_at: Set(now),
        brand_colour: Set(brand.colour.clone()),
        contact_url: Set(brand.contact_url.clone()),
        accessibility_url: Set(brand.accessibility_url.clone()),
        logo_digest: Set(brand.logo_digest.clone()),
    };
    let find =
        councils::Entity::find_by_id((tenant.as_str().to_string(), spec.id.as_str().to_string()));
    Ok(match claim::claim(db, new, find).await? {
        Claim::Created(_) => {
            crate::usage::adoption_council_added(db, tenant.as_str()).await?;
            Applied::Created
        }
        Claim::Existing(row)
            if row.name == spec.name
                && row.gss_code == spec.gss_code
                && BrandColumns::of_council(&row) == brand =>
        {
            Applied::Unchanged
        }
        Claim::Existing(row) => {
            let created_at = row.created_at;
            let mut active: councils::ActiveModel = row.into();
            active.name = Set(spec.name.clone());
            active.gss_code = Set(spec.gss_code.clone());
            set_brand!(active, brand.clone());
            active.updated_at = Set(claim::stamp(created_at));
            active.update(db).await?;
            Applied::Updated
        }
    })
}

async fn touch_tenant<C: ConnectionTrait>(db: &C, tenant: &TenantId) -> Result<()> {
    tenants::Entity::update_many()
        .col_expr(
            tenants::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(OffsetDateTime::now_utc()),
        )
        .filter(tenants::Column::Id.eq(tenant.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

async fn load<C: ConnectionTrait>(db: &C, tenant: &TenantId) -> Result<Option<TenantRecord>> {
    let Some(row) = tenants::Entity::find_by_id(tenant.as_str().to_string())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let councils = councils::Entity::find()
        .filter(councils::Column::TenantId.eq(tenant.as_str()))
        .order_by_asc(councils::Column::Id)
        .all(db)
        .await?;
    to_record(row, councils).map(Some)
}

fn to_record(row: tenants::Model, councils: Vec<councils::Model>) -> Result<TenantRecord> {
    let brand = BrandColumns::of_tenant(&row).into_brand();
    Ok(TenantRecord {
        id: stored_id(TenantId::parse(row.id))?,
        name: row.name,
        share_adoption: row.share_adoption,
        brand,
        councils: councils
            .into_iter()
            .map(council_record)
            .collect::<Result<_>>()?,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn council_record(row: councils::Model) -> Result<CouncilRecord> {
    let brand = BrandColumns::of_council(&row).into_brand();
    Ok(CouncilRecord {
        id: stored_id(CouncilId::parse(row.id))?,
        name: row.name,
        brand,
        gss_code: row.gss_code,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// Ids are validated before they are written, so a bad one in the database means someone
/// wrote to it behind Guildhall's back.
fn stored_id<T>(parsed: std::result::Result<T, guildhall_domain::IdError>) -> Result<T> {
    parsed.map_err(|e| Error::Database(sea_orm::DbErr::Custom(format!("corrupt row: {e}"))))
}
