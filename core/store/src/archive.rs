//! A tenant's rows as archive records, read in one snapshot and written back in one
//! transaction: the storage side of `guildhall tenants export|import` and
//! `GET /api/v1/tenants/{tenant}/export`.
//!
//! [`TABLES`] is the one description of what an archive holds: for every tenant table it
//! carries, the file it goes to, the columns with their kinds and the key it is read in
//! order of. Export reads each table with it and import checks and writes each record
//! with it, so the two cannot disagree; [`LEFT_OUT`] names every tenant table it does not
//! carry and why. A test holds both lists against the schema: every tenant table is in
//! exactly one of them, and every column of a carried table is described, so a migration
//! that adds tenant data fails the tests until the archive carries it.
//!
//! A record is a JSON object of the row's columns without its tenant (the archive names
//! the tenant once). Kinds are written as JSON can hold them exactly: bytes in base64,
//! times in RFC 3339, numbers as integers.

use base64::Engine as _;
use guildhall_domain::TenantId;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, IsolationLevel,
    QueryResult, Statement, TransactionOptions, TransactionTrait, Value,
};
use serde::Serialize;
use serde_json::{Map, Value as Json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::identity::RuleRow;
use crate::plugin_data::placeholders;
use crate::{Error, NewAuditEntry, Result, Revision, TenantScope, scoped};

/// How a column's value is stored and written in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Text (no NUL: PostgreSQL cannot store it).
    Text,
    /// A 32-bit integer.
    Int,
    /// A 64-bit integer.
    BigInt,
    /// `true` or `false`.
    Bool,
    /// Bytes, base64 (standard alphabet, padded) in a record.
    Bytes,
    /// An instant, RFC 3339 in a record.
    Time,
}

/// One column of an archived table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveColumn {
    /// Its name, in the table and in a record.
    pub name: &'static str,
    /// What it holds.
    pub kind: ColumnKind,
    /// Whether it may be null.
    pub nullable: bool,
}

/// One tenant table an archive carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveTable {
    /// The table.
    pub table: &'static str,
    /// The archive member holding its records, one JSON object a line.
    pub file: &'static str,
    /// The column naming the tenant (not written in records).
    pub tenant_column: &'static str,
    /// The columns a record holds, in order.
    pub columns: &'static [ArchiveColumn],
    /// The columns rows are read in order of (the rest of the primary key after the tenant).
    pub key: &'static [&'static str],
}

const fn col(name: &'static str, kind: ColumnKind) -> ArchiveColumn {
    ArchiveColumn {
        name,
        kind,
        nullable: false,
    }
}

const fn opt(name: &'static str, kind: ColumnKind) -> ArchiveColumn {
    ArchiveColumn {
        name,
        kind,
        nullable: true,
    }
}

use ColumnKind::{BigInt, Bool, Bytes, Int, Text, Time};

/// Every tenant table an archive carries, in the order records are written and imported
/// (the tenant's own row first: every other row refers to it).
pub const TABLES: &[ArchiveTable] = &[
    ArchiveTable {
        table: "tenants",
        file: "tenant.jsonl",
        tenant_column: "id",
        columns: &[
            col("name", Text),
            col("share_adoption", Bool),
            col("created_at", Time),
            col("updated_at", Time),
            opt("brand_colour", Text),
            opt("contact_url", Text),
            opt("accessibility_url", Text),
            opt("logo_digest", Text),
        ],
        key: &[],
    },
    ArchiveTable {
        table: "councils",
        file: "councils.jsonl",
        tenant_column: "tenant_id",
        columns: &[
            col("id", Text),
            col("name", Text),
            opt("gss_code", Text),
            col("created_at", Time),
            col("updated_at", Time),
            opt("brand_colour", Text),
            opt("contact_url", Text),
            opt("accessibility_url", Text),
            opt("logo_digest", Text),
        ],
        key: &["id"],
    },
    ArchiveTable {
        table: "members",
        file: "members.jsonl",
        tenant_column: "tenant_id",
        columns: &[
            col("subject", Text),
            col("roles", Text),
            opt("council", Text),
            col("created_at", Time),
            col("updated_at", Time),
        ],
        key: &["subject"],
    },
    ArchiveTable {
        table: "installs",
        file: "installs.jsonl",
        tenant_column: "tenant_id",
        columns: &[
            col("plugin", Text),
            col("version", Text),
            col("all_councils", Bool),
            col("councils", Text),
            col("config", Text),
            col("created_at", Time),
            col("updated_at", Time),
        ],
        key: &["plugin"],
    },
    ArchiveTable {
        table: "council_settings",
        file: "council_settings.jsonl",
        tenant_column: "tenant_id",
        columns: &[
            col("plugin", Text),
            col("council", Text),
            col("config", Text),
            col("updated_at_ms", BigInt),
        ],
        key: &["plugin", "council"],
    },
    ArchiveTable {
        table: "install_retention",
        file: "install_retention.jsonl",
        tenant_column: "tenant_id",
        columns: &[
            col("plugin", Text),
            opt("kv_days", Int),
            opt("event_days", Int),
            col("set_by", Text),
            col("set_at_ms", BigInt),
        ],
        key: &["plugin"],
    },
    ArchiveTable {
        table: "kv_entries",
        file: "kv.jsonl",
        tenant_column: "tenant_id",
        columns: &[
            col("plugin", Text),
            col("key", Bytes),
            col("value", Bytes),
            col("size", BigInt),
            col("updated_at", Time),
            opt("expires_at_ms", BigInt),
        ],
        key: &["plugin", "key"],
    },
    ArchiveTable {
        table: "plugin_events",
        file: "events.jsonl",
        tenant_column: "tenant_id",
        columns: &[
            col("id", Text),
            col("council_id", Text),
            col("plugin", Text),
            col("version", Text),
            col("name", Text),
            col("payload", Text),
            col("request_id", Text),
            col("created_at", Time),
            opt("erased_at_ms", BigInt),
            opt("payload_salt", Text),
        ],
        key: &["id"],
    },
    ArchiveTable {
        table: "schedule_runs",
        file: "schedule_runs.jsonl",
        tenant_column: "tenant_id",
        columns: &[
            col("id", Text),
            col("plugin", Text),
            col("council", Text),
            col("schedule", Text),
            col("slot", Text),
            col("trigger", Text),
            col("due_at_ms", BigInt),
            col("state", Text),
            opt("outcome", Text),
            col("runner", Text),
            col("attempts", Int),
            col("lease_until_ms", BigInt),
            col("started_at_ms", BigInt),
            opt("finished_at_ms", BigInt),
        ],
        key: &["id"],
    },
    ArchiveTable {
        table: "subject_requests",
        file: "subject_requests.jsonl",
        tenant_column: "tenant_id",
        columns: &[
            col("id", Text),
            col("kind", Text),
            col("identifiers", Text),
            opt("councils", Text),
            col("state", Text),
            opt("outcome", Text),
            col("requested_by", Text),
            col("requested_at_ms", BigInt),
            opt("finished_at_ms", BigInt),
        ],
        key: &["id"],
    },
    ArchiveTable {
        table: "usage_daily",
        file: "usage.jsonl",
        tenant_column: "tenant_id",
        columns: &[
            col("day", Text),
            col("council_id", Text),
            col("plugin", Text),
            col("version", Text),
            col("calls", BigInt),
            col("errors", BigInt),
            col("wall_us", BigInt),
            col("cpu_us", BigInt),
            col("bytes_in", BigInt),
            col("bytes_out", BigInt),
            col("kv_bytes", BigInt),
        ],
        key: &["day", "council_id", "plugin", "version"],
    },
    ArchiveTable {
        table: "feedback",
        file: "feedback.jsonl",
        tenant_column: "tenant_id",
        columns: &[
            col("id", Text),
            col("council_id", Text),
            col("plugin", Text),
            col("version", Text),
            col("day", Text),
            col("rating", Int),
            opt("comment", Text),
            col("created_at", Text),
        ],
        key: &["id"],
    },
    ArchiveTable {
        table: "audit_log",
        file: "audit.jsonl",
        tenant_column: "tenant_id",
        columns: &[
            col("seq", BigInt),
            col("at", Text),
            col("actor", Text),
            col("action", Text),
            col("object", Text),
            col("outcome", Text),
            col("request_id", Text),
            col("detail", Text),
            col("prev_hash", Text),
            col("hash", Text),
        ],
        key: &["seq"],
    },
    ArchiveTable {
        table: "audit_heads",
        file: "audit_head.jsonl",
        tenant_column: "tenant_id",
        columns: &[col("seq", BigInt), col("hash", Text)],
        key: &[],
    },
];

/// The tenant tables an archive does not carry, and why.
pub const LEFT_OUT: &[(&str, &str)] = &[
    (
        "tokens",
        "API tokens are credentials of this platform; mint new ones on the platform the tenant moves to",
    ),
    (
        "install_secrets",
        "secrets are sealed with this platform's key; the archive lists their names so they can be set again",
    ),
    (
        "citizen_sessions",
        "residents' sessions are short-lived credentials; residents start again",
    ),
    (
        "kv_usage",
        "counted again from the key-value entries on import",
    ),
];

impl ArchiveTable {
    /// The table `name` describes, if an archive carries it.
    pub fn named(table: &str) -> Option<&'static ArchiveTable> {
        TABLES.iter().find(|t| t.table == table)
    }

    /// The table whose records are in archive member `file`.
    pub fn of_file(file: &str) -> Option<&'static ArchiveTable> {
        TABLES.iter().find(|t| t.file == file)
    }

    /// Checks one line of this table's member and returns the record, or what is wrong
    /// with it: not a JSON object, a column missing or unknown, a value of the wrong kind,
    /// null where the column takes none, text holding NUL.
    pub fn parse(&'static self, line: &str) -> std::result::Result<ArchiveRow, String> {
        let object: Map<String, Json> = match serde_json::from_str(line) {
            Ok(Json::Object(object)) => object,
            Ok(_) => return Err("a record must be a JSON object".to_string()),
            Err(e) => return Err(format!("not JSON: {e}")),
        };
        if let Some(unknown) = object
            .keys()
            .find(|k| !self.columns.iter().any(|c| c.name == k.as_str()))
        {
            return Err(format!("unknown column {unknown:?}"));
        }
        let mut values = Vec::with_capacity(self.columns.len());
        for column in self.columns {
            let value = object
                .get(column.name)
                .ok_or_else(|| format!("column {:?} is missing", column.name))?;
            values.push(
                from_json(column, value).map_err(|reason| format!("{}: {reason}", column.name))?,
            );
        }
        Ok(ArchiveRow {
            table: self,
            object,
            values,
        })
    }

    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One checked record of an archived table.
#[derive(Debug, Clone)]
pub struct ArchiveRow {
    table: &'static ArchiveTable,
    object: Map<String, Json>,
    values: Vec<Value>,
}

impl ArchiveRow {
    /// The table it belongs to.
    pub fn table(&self) -> &'static ArchiveTable {
        self.table
    }

    /// A column's value as the record holds it.
    pub fn get(&self, column: &str) -> Option<&Json> {
        self.object.get(column)
    }

    /// A text column's value (`None` when null or not text).
    pub fn text(&self, column: &str) -> Option<&str> {
        self.object.get(column).and_then(Json::as_str)
    }

    /// A bytes column's value, decoded.
    pub fn bytes(&self, column: &str) -> Option<Vec<u8>> {
        let index = self.table.columns.iter().position(|c| c.name == column)?;
        match &self.values[index] {
            Value::Bytes(bytes) => bytes.clone(),
            _ => None,
        }
    }

    /// An integer column's value.
    pub fn int(&self, column: &str) -> Option<i64> {
        self.object.get(column).and_then(Json::as_i64)
    }
}

fn from_json(column: &ArchiveColumn, value: &Json) -> std::result::Result<Value, String> {
    if value.is_null() {
        if !column.nullable {
            return Err("must not be null".to_string());
        }
        return Ok(match column.kind {
            Text => Value::String(None),
            Int => Value::Int(None),
            BigInt => Value::BigInt(None),
            Bool => Value::Bool(None),
            Bytes => Value::Bytes(None),
            Time => Value::TimeDateTimeWithTimeZone(None),
        });
    }
    let text = || value.as_str().ok_or_else(|| "must be a string".to_string());
    Ok(match column.kind {
        Text => {
            let text = text()?;
            if text.contains('\0') {
                return Err("must not contain NUL".to_string());
            }
            Value::String(Some(text.to_string()))
        }
        Int => Value::Int(Some(
            value
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| "must be a 32-bit integer".to_string())?,
        )),
        BigInt => Value::BigInt(Some(
            value
                .as_i64()
                .ok_or_else(|| "must be a 64-bit integer".to_string())?,
        )),
        Bool => Value::Bool(Some(
            value
                .as_bool()
                .ok_or_else(|| "must be true or false".to_string())?,
        )),
        Bytes => Value::Bytes(Some(
            base64::engine::general_purpose::STANDARD
                .decode(text()?)
                .map_err(|e| format!("must be base64: {e}"))?,
        )),
        Time => Value::TimeDateTimeWithTimeZone(Some(
            OffsetDateTime::parse(text()?, &Rfc3339)
                .map_err(|e| format!("must be an RFC 3339 time: {e}"))?,
        )),
    })
}

fn read_value(row: &QueryResult, column: &ArchiveColumn) -> Result<Value> {
    let name = column.name;
    Ok(match column.kind {
        Text => Value::String(row.try_get::<Option<String>>("", name)?),
        Int => Value::Int(row.try_get::<Option<i32>>("", name)?),
        BigInt => Value::BigInt(row.try_get::<Option<i64>>("", name)?),
        Bool => Value::Bool(row.try_get::<Option<bool>>("", name)?),
        Bytes => Value::Bytes(row.try_get::<Option<Vec<u8>>>("", name)?),
        Time => Value::TimeDateTimeWithTimeZone(row.try_get::<Option<OffsetDateTime>>("", name)?),
    })
}

fn to_json(value: &Value) -> Json {
    match value {
        Value::String(Some(s)) => Json::String(s.clone()),
        Value::Int(Some(n)) => Json::from(*n),
        Value::BigInt(Some(n)) => Json::from(*n),
        Value::Bool(Some(b)) => Json::Bool(*b),
        Value::Bytes(Some(b)) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::TimeDateTimeWithTimeZone(Some(t)) => Json::String(
            t.to_offset(time::UtcOffset::UTC)
                .format(&Rfc3339)
                .expect("UTC times format as RFC 3339"),
        ),
        _ => Json::Null,
    }
}

/// Where the next page of a table starts: the key of the last row read.
#[derive(Debug, Clone)]
pub struct Cursor(Vec<Value>);

/// One page of a table's records.
#[derive(Debug, Clone)]
pub struct Page {
    /// Records in key order.
    pub records: Vec<Map<String, Json>>,
    /// Where the next page starts; `None` after the last.
    pub next: Option<Cursor>,
}

/// An install secret by name only: which install, council and name, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretName {
    /// The plugin.
    pub plugin: String,
    /// A council's id, or `*` for the install's own.
    pub council: String,
    /// The secret's name.
    pub name: String,
}

/// A brand logo the tenant or one of its councils shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoRow {
    /// SHA-256 of the bytes, hex.
    pub digest: String,
    /// `image/svg+xml` or `image/png`.
    pub content_type: String,
    /// The image.
    pub bytes: Vec<u8>,
}

/// Exporting, importing and deleting whole tenants (and councils): operator code, each
/// operation in one transaction scoped to its tenant.
#[derive(Debug)]
pub struct Lifecycle<'a> {
    pub(crate) db: &'a DatabaseConnection,
    pub(crate) revision: &'a Revision,
}

impl<'a> Lifecycle<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection, revision: &'a Revision) -> Self {
        Self { db, revision }
    }

    /// Opens a consistent read of everything of one tenant: one transaction (repeatable
    /// read on PostgreSQL; a SQLite read transaction sees one snapshot), so the records of
    /// every table, the audit chain included, belong to one moment.
    pub async fn snapshot(&self, scope: &TenantScope) -> Result<Snapshot> {
        let options = if self.db.get_database_backend() == DbBackend::Postgres {
            TransactionOptions {
                isolation_level: Some(IsolationLevel::RepeatableRead),
                access_mode: Some(sea_orm::AccessMode::ReadOnly),
                ..TransactionOptions::default()
            }
        } else {
            TransactionOptions::default()
        };
        let txn = self.db.begin_with_options(options).await?;
        scoped::set_tenant(&txn, scope.tenant().as_str()).await?;
        Ok(Snapshot {
            txn,
            tenant: scope.tenant().clone(),
        })
    }

    /// Begins writing a tenant from an archive: one transaction, scoped to the tenant,
    /// which [`Import::finish`] commits and dropping rolls back.
    pub async fn import(&self, tenant: &TenantId) -> Result<Import<'a>> {
        let txn = scoped::begin_write(self.db, tenant.as_str()).await?;
        Ok(Import {
            txn,
            tenant: tenant.clone(),
            revision: self.revision,
            created: false,
        })
    }
}

/// A consistent read of one tenant (see [`Lifecycle::snapshot`]).
#[derive(Debug)]
pub struct Snapshot {
    txn: DatabaseTransaction,
    tenant: TenantId,
}

impl Snapshot {
    /// The tenant read.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Up to `limit` records of `table` after `after`, in key order.
    pub async fn page(
        &self,
        table: &ArchiveTable,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Page> {
        let backend = self.txn.get_database_backend();
        let mut sql = format!(
            "SELECT {} FROM {} WHERE {} = ?",
            table.column_list(),
            table.table,
            table.tenant_column
        );
        let mut values: Vec<Value> = vec![self.tenant.as_str().into()];
        if let Some(Cursor(last)) = after {
            let marks = vec!["?"; table.key.len()].join(", ");
            sql.push_str(&format!(" AND ({}) > ({marks})", table.key.join(", ")));
            values.extend(last.iter().cloned());
        }
        if !table.key.is_empty() {
            sql.push_str(&format!(" ORDER BY {}", table.key.join(", ")));
        }
        sql.push_str(&format!(" LIMIT {limit}"));
        let rows = self
            .txn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                placeholders(backend, &sql),
                values,
            ))
            .await?;
        let mut records = Vec::with_capacity(rows.len());
        let mut last_key = None;
        for row in &rows {
            let mut record = Map::new();
            let mut key = Vec::with_capacity(table.key.len());
            for column in table.columns {
                let value = read_value(row, column)?;
                if table.key.contains(&column.name) {
                    key.push(value.clone());
                }
                record.insert(column.name.to_string(), to_json(&value));
            }
            records.push(record);
            last_key = Some(key);
        }
        let full = rows.len() as u64 == limit && !table.key.is_empty();
        Ok(Page {
            records,
            next: last_key.filter(|_| full).map(Cursor),
        })
    }

    /// The names of the tenant's install secrets (never their values).
    pub async fn secret_names(&self) -> Result<Vec<SecretName>> {
        let backend = self.txn.get_database_backend();
        let rows = self
            .txn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                placeholders(
                    backend,
                    "SELECT plugin, council, name FROM install_secrets WHERE tenant_id = ? \
                     ORDER BY plugin, council, name",
                ),
                [self.tenant.as_str().into()],
            ))
            .await?;
        rows.iter()
            .map(|row| {
                Ok(SecretName {
                    plugin: row.try_get("", "plugin")?,
                    council: row.try_get("", "council")?,
                    name: row.try_get("", "name")?,
                })
            })
            .collect()
    }

    /// The logos the tenant and its councils show.
    pub async fn logos(&self) -> Result<Vec<LogoRow>> {
        let backend = self.txn.get_database_backend();
        let rows = self
            .txn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                placeholders(
                    backend,
                    "SELECT digest, content_type, bytes FROM brand_logos WHERE digest IN \
                     (SELECT logo_digest FROM tenants WHERE id = ? \
                      UNION SELECT logo_digest FROM councils WHERE tenant_id = ?) \
                     ORDER BY digest",
                ),
                [self.tenant.as_str().into(), self.tenant.as_str().into()],
            ))
            .await?;
        rows.iter()
            .map(|row| {
                Ok(LogoRow {
                    digest: row.try_get("", "digest")?,
                    content_type: row.try_get("", "content_type")?,
                    bytes: row.try_get("", "bytes")?,
                })
            })
            .collect()
    }

    /// Ends the read.
    pub async fn finish(self) -> Result<()> {
        self.txn.commit().await?;
        Ok(())
    }
}

/// A tenant being written from an archive, in one transaction (see [`Lifecycle::import`]).
/// The tenant's own record comes first; a tenant that exists already is
/// [`Error::TenantExists`] and the transaction writes nothing.
#[derive(Debug)]
pub struct Import<'a> {
    txn: DatabaseTransaction,
    tenant: TenantId,
    revision: &'a Revision,
    created: bool,
}

/// The most records one statement inserts.
const INSERT_BATCH: usize = 200;

impl Import<'_> {
    /// Stores a logo (kept once per digest, so one already stored is left as it is).
    pub async fn logo(&self, logo: &LogoRow) -> Result<()> {
        let backend = self.txn.get_database_backend();
        self.txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                placeholders(
                    backend,
                    "INSERT INTO brand_logos (digest, content_type, bytes, created_at) \
                     VALUES (?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING",
                ),
                [
                    logo.digest.clone().into(),
                    logo.content_type.clone().into(),
                    logo.bytes.clone().into(),
                    OffsetDateTime::now_utc().into(),
                ],
            ))
            .await?;
        Ok(())
    }

    /// Writes records of one table, all of that table (checked by [`ArchiveTable::parse`]).
    pub async fn rows(&mut self, rows: &[ArchiveRow]) -> Result<()> {
        let Some(first) = rows.first() else {
            return Ok(());
        };
        let table = first.table;
        debug_assert!(rows.iter().all(|r| std::ptr::eq(r.table, table)));
        if table.table == "tenants" {
            return self.tenant_row(rows).await;
        }
        if !self.created {
            return Err(Error::Database(sea_orm::DbErr::Custom(format!(
                "the tenant's own record must come before {}",
                table.file
            ))));
        }
        let backend = self.txn.get_database_backend();
        for batch in rows.chunks(INSERT_BATCH) {
            let one = format!("({})", vec!["?"; table.columns.len() + 1].join(", "));
            let sql = format!(
                "INSERT INTO {} ({}, {}) VALUES {}",
                table.table,
                table.tenant_column,
                table.column_list(),
                vec![one; batch.len()].join(", ")
            );
            let mut values = Vec::with_capacity(batch.len() * (table.columns.len() + 1));
            for row in batch {
                values.push(self.tenant.as_str().into());
                values.extend(row.values.iter().cloned());
            }
            self.txn
                .execute_raw(Statement::from_sql_and_values(
                    backend,
                    placeholders(backend, &sql),
                    values,
                ))
                .await?;
        }
        Ok(())
    }

    async fn tenant_row(&mut self, rows: &[ArchiveRow]) -> Result<()> {
        let [row] = rows else {
            return Err(Error::Database(sea_orm::DbErr::Custom(
                "an archive holds exactly one tenant record".to_string(),
            )));
        };
        let table = row.table;
        let backend = self.txn.get_database_backend();
        let sql = format!(
            "INSERT INTO tenants (id, {}) VALUES ({}) ON CONFLICT (id) DO NOTHING",
            table.column_list(),
            vec!["?"; table.columns.len() + 1].join(", ")
        );
        let mut values: Vec<Value> = vec![self.tenant.as_str().into()];
        values.extend(row.values.iter().cloned());
        let inserted = self
            .txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                placeholders(backend, &sql),
                values,
            ))
            .await?
            .rows_affected();
        if inserted == 0 {
            return Err(Error::TenantExists(self.tenant.clone()));
        }
        self.created = true;
        Ok(())
    }

    /// Completes the import: counts each install's key-value usage from its entries, puts
    /// the installs in the adoption figures, adds the members' role `bindings`, appends
    /// `entry` to the tenant's chain (after the chain's own entries) and to the platform's,
    /// bumps the platform and access revisions and commits.
    pub async fn finish(self, bindings: &[RuleRow], entry: NewAuditEntry<'_>) -> Result<()> {
        if !self.created {
            return Err(Error::Database(sea_orm::DbErr::Custom(
                "the archive holds no tenant record".to_string(),
            )));
        }
        let txn = &self.txn;
        let backend = txn.get_database_backend();
        let tenant = self.tenant.as_str();
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            placeholders(
                backend,
                "INSERT INTO kv_usage (tenant_id, plugin, bytes) \
                 SELECT tenant_id, plugin, CAST(SUM(size) AS BIGINT) FROM kv_entries \
                 WHERE tenant_id = ? GROUP BY tenant_id, plugin",
            ),
            [tenant.into()],
        ))
        .await?;
        let installs = txn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                placeholders(
                    backend,
                    "SELECT plugin, version, all_councils, councils FROM installs \
                     WHERE tenant_id = ?",
                ),
                [tenant.into()],
            ))
            .await?;
        for install in &installs {
            let plugin: String = install.try_get("", "plugin")?;
            let version: String = install.try_get("", "version")?;
            let all: bool = install.try_get("", "all_councils")?;
            let councils: String = install.try_get("", "councils")?;
            let count = if all {
                None
            } else {
                Some(
                    serde_json::from_str::<Vec<String>>(&councils)
                        .map_err(|e| {
                            Error::Database(sea_orm::DbErr::Custom(format!(
                                "install of {plugin}: councils: {e}"
                            )))
                        })?
                        .len(),
                )
            };
            crate::usage::adoption_put(txn, tenant, &plugin, &version, count).await?;
        }
        if crate::identity::insert_rules(txn, bindings).await? > 0 {
            crate::identity::bump_authz_revision(txn).await?;
        }
        crate::audit::append_in(txn, tenant, entry.clone()).await?;
        scoped::set_tenant(txn, guildhall_domain::audit::PLATFORM_CHAIN).await?;
        let mut platform = entry;
        platform.object = tenant;
        crate::audit::append_in(txn, guildhall_domain::audit::PLATFORM_CHAIN, platform).await?;
        let bumped = crate::catalogue::bump_revision(txn, &self.tenant).await?;
        self.txn.commit().await?;
        self.revision.committed(Some(bumped));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> &'static ArchiveTable {
        ArchiveTable::named(name).unwrap()
    }

    #[test]
    fn every_tenant_table_is_archived_or_left_out_with_a_reason() {
        let mut described: Vec<&str> = TABLES
            .iter()
            .map(|t| t.table)
            .chain(LEFT_OUT.iter().map(|(t, _)| *t))
            .collect();
        described.sort();
        let before = described.len();
        described.dedup();
        assert_eq!(before, described.len(), "a table is described twice");
        let mut tenant_tables: Vec<&str> = guildhall_migrations::TENANT_TABLES
            .iter()
            .copied()
            .chain(["tenants"])
            .collect();
        tenant_tables.sort();
        assert_eq!(described, tenant_tables);
    }

    #[test]
    fn files_are_distinct_and_keys_are_columns() {
        let mut files: Vec<&str> = TABLES.iter().map(|t| t.file).collect();
        files.sort();
        files.dedup();
        assert_eq!(files.len(), TABLES.len());
        for t in TABLES {
            assert!(t.file.ends_with(".jsonl"), "{}", t.file);
            for key in t.key {
                let column = t.columns.iter().find(|c| c.name == *key);
                assert!(
                    column.is_some_and(|c| !c.nullable),
                    "{}: key {key} must be a column that is never null",
                    t.table
                );
            }
        }
        assert_eq!(
            TABLES[0].table, "tenants",
            "the tenant's record comes first"
        );
    }

    #[test]
    fn a_record_round_trips_through_its_kinds() {
        let kv = table("kv_entries");
        let line = r#"{"plugin":"hello","key":"AAEC/w==","value":"aGk=","size":6,
            "updated_at":"2026-12-01T10:00:00.123456Z","expires_at_ms":null}"#
            .replace('\n', "");
        let row = kv.parse(&line).unwrap();
        assert_eq!(row.bytes("key"), Some(vec![0, 1, 2, 255]));
        assert_eq!(row.text("plugin"), Some("hello"));
        let back: Map<String, Json> = kv
            .columns
            .iter()
            .zip(&row.values)
            .map(|(c, v)| (c.name.to_string(), to_json(v)))
            .collect();
        assert_eq!(
            Json::Object(back),
            serde_json::from_str::<Json>(&line).unwrap()
        );
    }

    #[test]
    fn a_record_that_does_not_fit_its_table_is_refused_with_the_reason() {
        let kv = table("kv_entries");
        let good = serde_json::json!({"plugin": "hello", "key": "AA==", "value": "AA==",
            "size": 2, "updated_at": "2026-12-01T10:00:00Z", "expires_at_ms": null});
        assert!(kv.parse(&good.to_string()).is_ok());
        let refused = |change: &dyn Fn(&mut Json), expected: &str| {
            let mut record = good.clone();
            change(&mut record);
            let reason = kv.parse(&record.to_string()).unwrap_err();
            assert!(
                reason.contains(expected),
                "{reason} does not say {expected}"
            );
        };
        refused(&|r| r["extra"] = 1.into(), "unknown column \"extra\"");
        refused(
            &|r| {
                r.as_object_mut().unwrap().remove("value");
            },
            "column \"value\" is missing",
        );
        refused(&|r| r["key"] = "not base64!".into(), "key: must be base64");
        refused(
            &|r| r["size"] = "2".into(),
            "size: must be a 64-bit integer",
        );
        refused(&|r| r["size"] = Json::Null, "size: must not be null");
        refused(
            &|r| r["plugin"] = "a\u{0}b".into(),
            "plugin: must not contain NUL",
        );
        refused(
            &|r| r["updated_at"] = "yesterday".into(),
            "updated_at: must be an RFC 3339 time",
        );
        assert_eq!(
            kv.parse("[1, 2]").unwrap_err(),
            "a record must be a JSON object"
        );
        assert!(
            kv.parse("{\"plugin\": ")
                .unwrap_err()
                .starts_with("not JSON")
        );
        let feedback = table("feedback");
        let mut rating = serde_json::json!({"id": "x", "council_id": "c", "plugin": "p",
            "version": "1", "day": "2026-12-01", "rating": 3, "comment": null,
            "created_at": "2026-12-01T10:00:00Z"});
        assert!(feedback.parse(&rating.to_string()).is_ok());
        rating["rating"] = (i64::from(i32::MAX) + 1).into();
        assert!(
            feedback
                .parse(&rating.to_string())
                .unwrap_err()
                .contains("must be a 32-bit integer")
        );
    }

    /// Every column of every archived table is described, on a database with every
    /// migration applied: a migration that adds a column to tenant data fails here until
    /// the archive carries it.
    #[tokio::test]
    async fn the_archive_describes_every_column_of_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open_sqlite_file(&dir.path().join("schema.db"))
            .await
            .unwrap();
        for t in TABLES {
            let rows = store
                .connection()
                .query_all_raw(Statement::from_string(
                    DbBackend::Sqlite,
                    format!("PRAGMA table_info({})", t.table),
                ))
                .await
                .unwrap();
            let mut in_schema: Vec<String> = rows
                .iter()
                .map(|r| r.try_get::<String>("", "name").unwrap())
                .filter(|name| name != t.tenant_column)
                .collect();
            in_schema.sort();
            let mut described: Vec<String> = t.columns.iter().map(|c| c.name.to_string()).collect();
            described.sort();
            assert_eq!(described, in_schema, "the columns of {}", t.table);
        }
    }
}
