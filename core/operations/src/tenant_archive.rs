//! A tenant's lifecycle: everything it owns exported to one archive, an archive imported
//! into another platform, and a tenant or one council deleted after confirmation. The API
//! (`GET /api/v1/tenants/{t}/export`, `DELETE /api/v1/tenants/{t}[/councils/{c}]`) and the
//! command line (`guildhall tenants export|import`) call these.
//!
//! An archive is one gzip-compressed tar file. Its first member is `manifest.json`: the
//! format and its version, the tenant, when and by which platform version it was exported,
//! and every other member with its size in bytes, its SHA-256 and (for records) how many
//! records it holds. Then, in this order: `logos.jsonl` (the brand logos the tenant and its
//! councils show), `plugins.jsonl` (each installed plugin version: its manifest as
//! published, the SHA-256 of its `plugin.toml` and its component's digest, and the
//! signature the source platform recorded), one `.jsonl` member per tenant table as
//! [`guildhall_store::TABLES`] describes them (the tenant first, the audit chain last), and
//! `components/<sha256>.wasm` for each installed version's component.
//!
//! **Architecture Invariant:** an import checks the whole archive before it writes
//! anything (format version, every member's size and SHA-256 against the manifest, every
//! record against its table, the audit chain recomputed, the tenant absent here, every
//! plugin version either present with the same digest or passing publishing's checks and
//! compile), and then writes the tenant in one transaction. A refused archive changes
//! nothing; only versions missing from this catalogue are published first, through
//! publishing's own checks, and they are shared, not the tenant's.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use guildhall_domain::audit::{ChainEntry, GENESIS};
use guildhall_domain::brand::{Brand, Logo, logo_path};
use guildhall_domain::manifest::Manifest as PluginManifest;
use guildhall_domain::tenant::{CouncilSpec, TenantSpec};
use guildhall_domain::{CouncilId, Digest, PluginName, Role, TenantId};
use guildhall_store::{
    Actor, ArchiveRow, ArchiveTable, Deleted, LogoRow, NewAuditEntry, RuleRow, Store, TABLES,
    TenantScope,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::catalogue::{self, Catalogue, Checked};
use crate::{Error, FieldProblem};

/// What an archive says it is.
pub const FORMAT: &str = "guildhall-tenant-archive";
/// The format version this platform writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The archive's first member.
pub const MANIFEST: &str = "manifest.json";
/// The brand logos member.
pub const LOGOS: &str = "logos.jsonl";
/// The plugin versions member.
pub const PLUGINS: &str = "plugins.jsonl";
/// Where components are, by digest.
pub const COMPONENTS: &str = "components/";

/// The largest manifest an import reads.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// The longest record an import reads.
const MAX_RECORD_BYTES: u64 = 64 << 20;
/// Records written to the database at a time during an import.
const IMPORT_BATCH: usize = 500;
/// Records read from the database at a time during an export.
const EXPORT_PAGE: u64 = 500;

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveManifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written by this platform.
    pub format_version: u32,
    /// The tenant.
    pub tenant: String,
    /// When the export read the tenant, RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    pub exported_at: OffsetDateTime,
    /// The version of Guildhall that wrote it.
    pub platform_version: String,
    /// Every other member, in archive order.
    pub files: Vec<ArchiveFile>,
    /// What the archive deliberately does not hold, by table, and why.
    pub not_included: BTreeMap<String, String>,
    /// The install secrets the tenant had (names only): set them again after an import.
    pub secrets_to_set_again: Vec<SecretToSet>,
}

impl ArchiveManifest {
    /// When the export read the tenant, RFC 3339.
    pub fn exported_at_text(&self) -> String {
        self.exported_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    }
}

/// One member of an archive, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveFile {
    /// Its path in the archive.
    pub name: String,
    /// Its length in bytes.
    pub size: u64,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// For a `.jsonl` member, its records (lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
}

/// An install secret by name (never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretToSet {
    /// The plugin.
    pub plugin: String,
    /// A council, or `*` for the install's own value.
    pub council: String,
    /// The secret's name.
    pub name: String,
}

/// One record of `plugins.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginRecord {
    plugin: PluginName,
    version: String,
    digest: Digest,
    manifest: PluginManifest,
    manifest_sha256: Option<Digest>,
    signature: Option<String>,
    signed_by: Option<String>,
}

/// One record of `logos.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogoRecord {
    digest: String,
    content_type: String,
    bytes: String,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The archive's manifest.
    pub manifest: ArchiveManifest,
    /// The archive's length in bytes.
    pub size: u64,
    /// SHA-256 of the whole archive file, hex.
    pub sha256: String,
}

impl Exported {
    /// The file name an export is offered under: `guildhall-<tenant>-<time>.tar.gz`.
    pub fn file_name(&self) -> String {
        let at = self.manifest.exported_at;
        format!(
            "guildhall-{}-{:04}{:02}{:02}T{:02}{:02}{:02}Z.tar.gz",
            self.manifest.tenant,
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        )
    }

    /// Records exported, by member.
    pub fn records(&self) -> BTreeMap<&str, u64> {
        self.manifest
            .files
            .iter()
            .filter_map(|f| f.records.map(|n| (f.name.as_str(), n)))
            .collect()
    }
}

fn io_error(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Archive(format!("{what}: {e}"))
}

/// A file being written that counts and hashes what goes through it.
struct Counted<W: Write> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Counted<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    fn finish(self) -> (W, u64, String) {
        (self.inner, self.size, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// One `.jsonl` member being written to the export's working folder.
struct Member {
    name: String,
    out: Counted<BufWriter<File>>,
    records: u64,
}

impl Member {
    fn create(dir: &Path, name: &str) -> Result<Self, Error> {
        let file = File::create(dir.join(name)).map_err(io_error(name))?;
        Ok(Self {
            name: name.to_string(),
            out: Counted::new(BufWriter::new(file)),
            records: 0,
        })
    }

    fn record(&mut self, record: &impl Serialize) -> Result<(), Error> {
        let mut line = serde_json::to_vec(record)
            .map_err(|e| Error::Archive(format!("{}: {e}", self.name)))?;
        line.push(b'\n');
        self.out.write_all(&line).map_err(io_error(&self.name))?;
        self.records += 1;
        Ok(())
    }

    fn finish(self) -> Result<ArchiveFile, Error> {
        let (mut file, size, sha256) = self.out.finish();
        file.flush().map_err(io_error(&self.name))?;
        Ok(ArchiveFile {
            name: self.name,
            size,
            sha256,
            records: Some(self.records),
        })
    }
}

/// Exports everything `scope`'s tenant owns into `out` (an empty file, written from its
/// start), and returns the file with what was written. The records are read in one
/// snapshot of the database and staged in a temporary folder (`TMPDIR`), then written as
/// one archive, so memory stays bounded whatever the tenant holds.
pub async fn export(
    store: &Store,
    scope: &TenantScope,
    out: File,
) -> Result<(File, Exported), Error> {
    let dir = tempfile::tempdir().map_err(io_error("cannot make a working folder"))?;
    std::fs::create_dir(dir.path().join(COMPONENTS)).map_err(io_error(COMPONENTS))?;
    let lifecycle = store.lifecycle();
    let snapshot = lifecycle.snapshot(scope).await?;
    let exported_at = OffsetDateTime::now_utc();
    let mut files = Vec::new();
    let mut installed: Vec<(String, String)> = Vec::new();
    let mut members = Vec::new();
    for table in TABLES {
        let mut member = Member::create(dir.path(), table.file)?;
        let mut after = None;
        loop {
            let page = snapshot.page(table, after.as_ref(), EXPORT_PAGE).await?;
            for record in &page.records {
                if table.table == "installs"
                    && let (Some(plugin), Some(version)) = (
                        record.get("plugin").and_then(|v| v.as_str()),
                        record.get("version").and_then(|v| v.as_str()),
                    )
                {
                    installed.push((plugin.to_string(), version.to_string()));
                }
                member.record(record)?;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        members.push(member.finish()?);
    }
    let mut logos = Member::create(dir.path(), LOGOS)?;
    for logo in snapshot.logos().await? {
        logos.record(&LogoRecord {
            digest: logo.digest,
            content_type: logo.content_type,
            bytes: base64::engine::general_purpose::STANDARD.encode(&logo.bytes),
        })?;
    }
    let secrets = snapshot
        .secret_names()
        .await?
        .into_iter()
        .map(|s| SecretToSet {
            plugin: s.plugin,
            council: s.council,
            name: s.name,
        })
        .collect();
    snapshot.finish().await?;
    // Versions are immutable, so reading them after the snapshot reads what it named.
    let mut plugins = Member::create(dir.path(), PLUGINS)?;
    let mut components = Vec::new();
    for (plugin, version) in installed {
        let name = PluginName::parse(plugin.clone())
            .map_err(|e| Error::Archive(format!("install of {plugin}: {e}")))?;
        let record = store
            .catalogue()
            .version(&name, &version)
            .await?
            .ok_or_else(|| {
                Error::Archive(format!(
                    "install of {plugin} names a missing version {version}"
                ))
            })?;
        let bytes = store
            .catalogue()
            .blob(&record.digest)
            .await?
            .ok_or_else(|| {
                Error::Archive(format!("no stored component with digest {}", record.digest))
            })?;
        let member = format!("{COMPONENTS}{}.wasm", record.digest.hex());
        if !components.iter().any(|f: &ArchiveFile| f.name == member) {
            std::fs::write(dir.path().join(&member), &bytes).map_err(io_error(&member))?;
            components.push(ArchiveFile {
                name: member,
                size: bytes.len() as u64,
                sha256: record.digest.hex(),
                records: None,
            });
        }
        plugins.record(&PluginRecord {
            plugin: record.plugin,
            version: record.version,
            digest: record.digest,
            manifest: record.manifest,
            manifest_sha256: record.manifest_sha256,
            signature: record.signature,
            signed_by: record.signed_by,
        })?;
    }
    files.push(logos.finish()?);
    files.push(plugins.finish()?);
    files.extend(members);
    files.extend(components);
    let manifest = ArchiveManifest {
        format: FORMAT.to_string(),
        format_version: FORMAT_VERSION,
        tenant: scope.tenant().to_string(),
        exported_at,
        platform_version: env!("CARGO_PKG_VERSION").to_string(),
        files,
        not_included: guildhall_store::LEFT_OUT
            .iter()
            .map(|(table, why)| (table.to_string(), why.to_string()))
            .collect(),
        secrets_to_set_again: secrets,
    };
    let written = manifest.clone();
    let (file, size, sha256) = tokio::task::spawn_blocking(move || write_tar(dir, &written, out))
        .await
        .map_err(|e| Error::Archive(format!("the archive writer stopped: {e}")))??;
    Ok((
        file,
        Exported {
            manifest,
            size,
            sha256,
        },
    ))
}

/// Exports into an unnamed temporary file (in `TMPDIR`, gone once closed), for serving it.
pub async fn export_to_temp(store: &Store, scope: &TenantScope) -> Result<(File, Exported), Error> {
    let file = tempfile::tempfile().map_err(io_error("cannot make a temporary file"))?;
    export(store, scope, file).await
}

/// Writes the manifest and the staged members as one tar + gzip file.
fn write_tar(
    dir: tempfile::TempDir,
    manifest: &ArchiveManifest,
    out: File,
) -> Result<(File, u64, String), Error> {
    let archive = "the archive";
    let mtime = manifest.exported_at.unix_timestamp().max(0) as u64;
    let gzip = flate2::write::GzEncoder::new(
        Counted::new(BufWriter::new(out)),
        flate2::Compression::default(),
    );
    let mut tar = tar::Builder::new(gzip);
    let header = |size: u64| {
        let mut header = tar::Header::new_ustar();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        header
    };
    let text = serde_json::to_vec_pretty(manifest)
        .map_err(|e| Error::Archive(format!("{MANIFEST}: {e}")))?;
    tar.append_data(&mut header(text.len() as u64), MANIFEST, text.as_slice())
        .map_err(io_error(archive))?;
    for file in &manifest.files {
        let staged = File::open(dir.path().join(&file.name)).map_err(io_error(&file.name))?;
        tar.append_data(&mut header(file.size), &file.name, staged)
            .map_err(io_error(&file.name))?;
    }
    let gzip = tar.into_inner().map_err(io_error(archive))?;
    let counted = gzip.finish().map_err(io_error(archive))?;
    let (buffered, size, sha256) = counted.finish();
    let mut file = buffered
        .into_inner()
        .map_err(|e| Error::Archive(format!("{archive}: {}", e.error())))?;
    file.sync_all().map_err(io_error(archive))?;
    file.rewind().map_err(io_error(archive))?;
    Ok((file, size, sha256))
}

// ---------------------------------------------------------------------------------------
// Reading an archive.

/// A refusal of the archive, naming where it is wrong.
fn damaged(detail: impl Into<String>) -> Error {
    let detail = detail.into();
    Error::Invalid {
        detail: format!("the archive is refused: {detail}"),
        fields: vec![FieldProblem {
            field: "archive".to_string(),
            reason: detail,
        }],
    }
}

/// What the records checked so far say, for checking later records against.
#[derive(Debug, Default)]
struct Seen {
    councils: BTreeSet<String>,
    installs: BTreeMap<String, String>,
    tenant: bool,
    audit_last: Option<(i64, String)>,
    audit_head: Option<(i64, String)>,
}

fn problem(file: &str, line: u64, reason: impl std::fmt::Display) -> Error {
    damaged(format!("{file} line {line}: {reason}"))
}

/// Reads the archive in `path` once, through, checking everything; with `rows`, sends each
/// table's records (checked) on in batches for writing.
fn read_archive(
    path: &Path,
    extract_to: Option<&Path>,
    mut rows: Option<&mut dyn FnMut(Vec<ArchiveRow>) -> Result<(), Error>>,
) -> Result<(ArchiveManifest, ReadOut), Error> {
    let file = File::open(path).map_err(|e| damaged(format!("cannot open it: {e}")))?;
    let counted = CountedRead::new(BufReader::new(file));
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(counted));
    let mut entries = tar
        .entries()
        .map_err(|e| damaged(format!("not a tar + gzip archive: {e}")))?;
    let first = next_entry(&mut entries)?.ok_or_else(|| damaged("it is empty"))?;
    let manifest = read_manifest(first)?;
    let tenant = TenantId::parse(manifest.tenant.clone())
        .map_err(|e| damaged(format!("{MANIFEST}: tenant: {e}")))?;
    let mut out = ReadOut::default();
    let mut seen = Seen::default();
    for expected in &manifest.files {
        let entry = next_entry(&mut entries)?.ok_or_else(|| {
            damaged(format!(
                "it ends before {}, which its manifest lists",
                expected.name
            ))
        })?;
        let name = entry_name(&entry)?;
        if name != expected.name {
            return Err(damaged(format!(
                "member {name} is where the manifest lists {}",
                expected.name
            )));
        }
        if entry.header().size().ok() != Some(expected.size) {
            return Err(damaged(format!(
                "{name} is not the {} bytes the manifest lists",
                expected.size
            )));
        }
        let mut hashed = CountedRead::new(entry);
        if let Some(digest) = name.strip_prefix(COMPONENTS) {
            let digest = digest
                .strip_suffix(".wasm")
                .and_then(|hex| format!("sha256:{hex}").parse::<Digest>().ok())
                .ok_or_else(|| damaged(format!("{name} is not a component's name")))?;
            match extract_to {
                Some(dir) => {
                    let target = dir.join(format!("{}.wasm", digest.hex()));
                    let mut file =
                        File::create(&target).map_err(io_error("cannot stage a component"))?;
                    std::io::copy(&mut hashed, &mut file)
                        .map_err(|e| damaged(format!("{name}: {e}")))?;
                    out.components.insert(digest, target);
                }
                None => {
                    std::io::copy(&mut hashed, &mut std::io::sink())
                        .map_err(|e| damaged(format!("{name}: {e}")))?;
                }
            }
            let (size, sha256) = hashed.finish();
            check_sum(expected, size, &sha256)?;
            if sha256 != digest.hex() {
                return Err(damaged(format!(
                    "{name} does not hold the component it names"
                )));
            }
            out.component_digests.insert(digest);
            continue;
        }
        let mut reader = BufReader::new(&mut hashed);
        let mut line = Vec::new();
        let mut number = 0u64;
        let mut batch = Vec::new();
        loop {
            line.clear();
            let read = (&mut reader)
                .take(MAX_RECORD_BYTES + 1)
                .read_until(b'\n', &mut line)
                .map_err(|e| damaged(format!("{name}: {e}")))?;
            if read == 0 {
                break;
            }
            number += 1;
            if line.last() != Some(&b'\n') {
                return Err(problem(
                    &name,
                    number,
                    if read as u64 > MAX_RECORD_BYTES {
                        "the record is too long"
                    } else {
                        "the last record does not end its line"
                    },
                ));
            }
            let text = std::str::from_utf8(&line[..line.len() - 1])
                .map_err(|_| problem(&name, number, "not UTF-8"))?;
            match name.as_str() {
                LOGOS => out.logos.push(check_logo(&name, number, text)?),
                PLUGINS => out.plugins.push(check_plugin(&name, number, text)?),
                _ => {
                    let table = ArchiveTable::of_file(&name).ok_or_else(|| {
                        damaged(format!("{name} is no member this platform knows"))
                    })?;
                    let row = table
                        .parse(text)
                        .map_err(|reason| problem(&name, number, reason))?;
                    check_row(&tenant, &mut seen, &mut out, &row)
                        .map_err(|reason| problem(&name, number, reason))?;
                    if let Some(rows) = rows.as_deref_mut() {
                        batch.push(row);
                        if batch.len() == IMPORT_BATCH {
                            rows(std::mem::take(&mut batch))?;
                        }
                    }
                }
            }
        }
        drop(reader);
        if let Some(rows) = rows.as_deref_mut()
            && !batch.is_empty()
        {
            rows(batch)?;
        }
        let (size, sha256) = hashed.finish();
        check_sum(expected, size, &sha256)?;
        if expected.records != Some(number) {
            return Err(damaged(format!(
                "{name} holds {number} records, not the {:?} its manifest lists",
                expected.records
            )));
        }
    }
    if let Some(extra) = next_entry(&mut entries)? {
        let name = entry_name(&extra).unwrap_or_else(|_| "a member".to_string());
        return Err(damaged(format!("{name} is not listed in its manifest")));
    }
    // Read the compressed stream to its end, so its own checksum is checked too, and the
    // file to its end, so the whole file is hashed.
    let mut rest = tar.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink())
        .map_err(|e| damaged(format!("it is damaged: {e}")))?;
    let mut file = rest.into_inner();
    std::io::copy(&mut file, &mut std::io::sink())
        .map_err(|e| damaged(format!("cannot read it: {e}")))?;
    let (size, sha256) = file.finish();
    out.size = size;
    out.sha256 = sha256;
    finish_checks(&tenant, &seen, &out)?;
    out.tenant = Some(tenant);
    Ok((manifest, out))
}

/// What a pass over the archive collected.
#[derive(Debug, Default)]
struct ReadOut {
    tenant: Option<TenantId>,
    plugins: Vec<PluginRecord>,
    logos: Vec<LogoRow>,
    members: Vec<(String, Vec<Role>)>,
    components: BTreeMap<Digest, PathBuf>,
    component_digests: BTreeSet<Digest>,
    size: u64,
    sha256: String,
}

fn next_entry<'a, R: Read>(
    entries: &mut tar::Entries<'a, R>,
) -> Result<Option<tar::Entry<'a, R>>, Error> {
    match entries.next() {
        None => Ok(None),
        Some(Err(e)) => Err(damaged(format!("it is damaged or cut short: {e}"))),
        Some(Ok(entry)) => Ok(Some(entry)),
    }
}

fn entry_name<R: Read>(entry: &tar::Entry<'_, R>) -> Result<String, Error> {
    if entry.header().entry_type() != tar::EntryType::Regular {
        return Err(damaged("it holds something other than files"));
    }
    let path = entry
        .path()
        .map_err(|e| damaged(format!("a member's name: {e}")))?;
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| damaged("a member's name is not UTF-8"))
}

fn read_manifest<R: Read>(entry: tar::Entry<'_, R>) -> Result<ArchiveManifest, Error> {
    let name = entry_name(&entry)?;
    if name != MANIFEST {
        return Err(damaged(format!(
            "its first member is {name}, not {MANIFEST}: not a Guildhall tenant archive"
        )));
    }
    let mut text = Vec::new();
    entry
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| damaged(format!("{MANIFEST}: {e}")))?;
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(damaged(format!("{MANIFEST} is too long")));
    }
    // The format and its version first, so an archive of another version says so.
    let head: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| damaged(format!("{MANIFEST} is not JSON: {e}")))?;
    if head.get("format").and_then(|v| v.as_str()) != Some(FORMAT) {
        return Err(damaged(format!(
            "{MANIFEST} does not say format \"{FORMAT}\": not a Guildhall tenant archive"
        )));
    }
    match head.get("format_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(FORMAT_VERSION) => {}
        Some(v) => {
            return Err(damaged(format!(
                "it is format version {v}; this platform reads format version {FORMAT_VERSION}"
            )));
        }
        None => return Err(damaged(format!("{MANIFEST} has no format_version"))),
    }
    let manifest: ArchiveManifest =
        serde_json::from_value(head).map_err(|e| damaged(format!("{MANIFEST}: {e}")))?;
    let mut names = BTreeSet::new();
    for file in &manifest.files {
        if !names.insert(file.name.as_str()) || file.name == MANIFEST {
            return Err(damaged(format!("{MANIFEST} lists {} twice", file.name)));
        }
    }
    for required in [LOGOS, PLUGINS]
        .into_iter()
        .chain(TABLES.iter().map(|t| t.file))
    {
        if !names.contains(required) {
            return Err(damaged(format!("{MANIFEST} does not list {required}")));
        }
    }
    // The tenant's own record before any other of its records, so they can refer to it.
    let order: Vec<&str> = manifest
        .files
        .iter()
        .map(|f| f.name.as_str())
        .filter(|n| ArchiveTable::of_file(n).is_some())
        .collect();
    let expected: Vec<&str> = TABLES.iter().map(|t| t.file).collect();
    if order != expected {
        return Err(damaged(format!(
            "{MANIFEST} lists the tables in another order than {}",
            expected.join(", ")
        )));
    }
    Ok(manifest)
}

fn check_sum(expected: &ArchiveFile, size: u64, sha256: &str) -> Result<(), Error> {
    if size != expected.size || sha256 != expected.sha256 {
        return Err(damaged(format!(
            "{} does not match its checksum in the manifest (SHA-256 {sha256}, {size} bytes; \
             the manifest lists {}, {} bytes)",
            expected.name, expected.sha256, expected.size
        )));
    }
    Ok(())
}

fn check_logo(file: &str, line: u64, text: &str) -> Result<LogoRow, Error> {
    let record: LogoRecord = serde_json::from_str(text).map_err(|e| problem(file, line, e))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&record.bytes)
        .map_err(|e| problem(file, line, format!("bytes: {e}")))?;
    let logo = Logo::new(&record.content_type, bytes).map_err(|e| problem(file, line, e))?;
    if logo.digest != record.digest {
        return Err(problem(
            file,
            line,
            "the logo's bytes do not have its digest",
        ));
    }
    Ok(LogoRow {
        digest: logo.digest,
        content_type: record.content_type,
        bytes: logo.bytes,
    })
}

fn check_plugin(file: &str, line: u64, text: &str) -> Result<PluginRecord, Error> {
    let record: PluginRecord = serde_json::from_str(text).map_err(|e| problem(file, line, e))?;
    if record.manifest.name != record.plugin
        || record.manifest.version.to_string() != record.version
    {
        return Err(problem(
            file,
            line,
            "the manifest names another plugin or version than the record",
        ));
    }
    Ok(record)
}

/// Checks a record against what the archive said before it; the reason when it is wrong.
fn check_row(
    tenant: &TenantId,
    seen: &mut Seen,
    out: &mut ReadOut,
    row: &ArchiveRow,
) -> Result<(), String> {
    let text = |column: &str| row.text(column).unwrap_or_default().to_string();
    let council_known = |seen: &Seen, column: &str| -> Result<(), String> {
        match row.text(column) {
            Some(c) if !seen.councils.contains(c) => {
                Err(format!("{column}: no council {c} in the archive"))
            }
            _ => Ok(()),
        }
    };
    let plugin_known = |seen: &Seen| -> Result<(), String> {
        let plugin = text("plugin");
        PluginName::parse(plugin.clone()).map_err(|e| format!("plugin: {e}"))?;
        if seen.installs.contains_key(&plugin) {
            Ok(())
        } else {
            Err(format!("plugin: {plugin} is not installed in the archive"))
        }
    };
    match row.table().table {
        "tenants" => {
            let brand = Brand {
                colour: row.text("brand_colour").map(str::to_string),
                contact_url: row.text("contact_url").map(str::to_string),
                accessibility_url: row.text("accessibility_url").map(str::to_string),
                logo: row.text("logo_digest").map(logo_path),
            };
            let spec = TenantSpec {
                id: tenant.clone(),
                name: text("name"),
                share_adoption: row.get("share_adoption").and_then(|v| v.as_bool()) == Some(true),
                brand,
                councils: Vec::new(),
            };
            spec.validate().map_err(|e| e.to_string())?;
            seen.tenant = true;
        }
        "councils" => {
            let id = CouncilId::parse(text("id")).map_err(|e| format!("id: {e}"))?;
            let spec = CouncilSpec {
                id: id.clone(),
                name: text("name"),
                gss_code: row.text("gss_code").map(str::to_string),
                brand: Brand {
                    colour: row.text("brand_colour").map(str::to_string),
                    contact_url: row.text("contact_url").map(str::to_string),
                    accessibility_url: row.text("accessibility_url").map(str::to_string),
                    logo: row.text("logo_digest").map(logo_path),
                },
            };
            spec.validate("").map_err(|e| e.to_string())?;
            seen.councils.insert(id.to_string());
        }
        "members" => {
            let roles = text("roles")
                .split(',')
                .filter(|r| !r.is_empty())
                .map(|r| Role::parse(r).map_err(|e| format!("roles: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(global) = roles.iter().find(|r| r.is_global()) {
                return Err(format!("roles: {global} is platform-wide"));
            }
            council_known(seen, "council")?;
            out.members.push((text("subject"), roles));
        }
        "installs" => {
            let plugin = text("plugin");
            PluginName::parse(plugin.clone()).map_err(|e| format!("plugin: {e}"))?;
            let version = text("version");
            let listed = out
                .plugins
                .iter()
                .find(|p| p.plugin.as_str() == plugin && p.version == version)
                .ok_or_else(|| format!("{plugin} {version} is not in {PLUGINS}"))?;
            let councils: Vec<String> =
                serde_json::from_str(&text("councils")).map_err(|e| format!("councils: {e}"))?;
            let all = row.get("all_councils").and_then(|v| v.as_bool()) == Some(true);
            if all != councils.is_empty() {
                return Err("councils: a list only when not for all councils".to_string());
            }
            if let Some(unknown) = councils.iter().find(|c| !seen.councils.contains(*c)) {
                return Err(format!("councils: no council {unknown} in the archive"));
            }
            let config: serde_json::Value =
                serde_json::from_str(&text("config")).map_err(|e| format!("config: {e}"))?;
            listed.manifest.check_config(&config).map_err(|errors| {
                errors
                    .iter()
                    .map(|e| format!("config.{}: {}", e.field, e.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            })?;
            seen.installs.insert(plugin, version);
        }
        "council_settings" => {
            plugin_known(seen)?;
            council_known(seen, "council")?;
            let config: serde_json::Value =
                serde_json::from_str(&text("config")).map_err(|e| format!("config: {e}"))?;
            if !config.is_object() {
                return Err("config: must be a JSON object".to_string());
            }
        }
        "install_retention" => plugin_known(seen)?,
        "kv_entries" => {
            PluginName::parse(text("plugin")).map_err(|e| format!("plugin: {e}"))?;
            let stored = row.bytes("key").unwrap_or_default().len()
                + row.bytes("value").unwrap_or_default().len();
            if row.int("size") != Some(stored as i64) {
                return Err(format!("size: the key and value hold {stored} bytes"));
            }
        }
        "audit_log" => {
            let seq = row.int("seq").unwrap_or_default();
            let (last_seq, last_hash) = seen.audit_last.clone().unwrap_or((0, GENESIS.to_string()));
            if seq != last_seq + 1 {
                return Err(format!("the audit chain has entry {seq} after {last_seq}"));
            }
            if text("prev_hash") != last_hash {
                return Err(format!(
                    "audit entry {seq}'s previous hash is not entry {last_seq}'s hash"
                ));
            }
            let entry = ChainEntry {
                chain: tenant.as_str(),
                seq,
                at: row.text("at").unwrap_or_default(),
                actor: row.text("actor").unwrap_or_default(),
                action: row.text("action").unwrap_or_default(),
                object: row.text("object").unwrap_or_default(),
                outcome: row.text("outcome").unwrap_or_default(),
                request_id: row.text("request_id").unwrap_or_default(),
                detail: row.text("detail").unwrap_or_default(),
            };
            let hash = text("hash");
            if entry.hash(&last_hash) != hash {
                return Err(format!(
                    "audit entry {seq} does not match its hash: the chain was altered"
                ));
            }
            seen.audit_last = Some((seq, hash));
        }
        "audit_heads" => {
            seen.audit_head = Some((row.int("seq").unwrap_or_default(), text("hash")));
        }
        _ => {}
    }
    Ok(())
}

fn finish_checks(tenant: &TenantId, seen: &Seen, out: &ReadOut) -> Result<(), Error> {
    if !seen.tenant {
        return Err(damaged(format!("it holds no record of tenant {tenant}")));
    }
    let last = seen.audit_last.clone().unwrap_or((0, GENESIS.to_string()));
    match &seen.audit_head {
        Some(head) if *head != last => {
            return Err(damaged(format!(
                "the audit chain ends at entry {} but its head names entry {}",
                last.0, head.0
            )));
        }
        None if last.0 > 0 => {
            return Err(damaged("the audit chain has entries but no head"));
        }
        _ => {}
    }
    for plugin in &out.plugins {
        if !out.component_digests.contains(&plugin.digest) {
            return Err(damaged(format!(
                "{} {} names component {}, which it does not hold",
                plugin.plugin, plugin.version, plugin.digest
            )));
        }
    }
    for digest in &out.component_digests {
        if !out.plugins.iter().any(|p| p.digest == *digest) {
            return Err(damaged(format!(
                "it holds component {digest}, which no plugin version names"
            )));
        }
    }
    Ok(())
}

/// A reader that counts and hashes what is read through it.
struct CountedRead<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R> CountedRead<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    fn finish(self) -> (u64, String) {
        (self.size, hex::encode(self.hasher.finalize()))
    }
}

impl<R: Read> Read for CountedRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------
// Importing.

/// What an import wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The archive's manifest.
    pub manifest: ArchiveManifest,
    /// SHA-256 of the archive file, hex.
    pub sha256: String,
    /// Plugin versions this catalogue did not have and that were published from the
    /// archive (`plugin version`).
    pub published: Vec<String>,
}

/// Checks the archive in `path` through and through without writing anything: its format
/// version, every member's size and checksum, every record, the audit chain.
pub async fn verify(path: &Path) -> Result<ArchiveManifest, Error> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || read_archive(&path, None, None).map(|(m, _)| m))
        .await
        .map_err(|e| Error::Archive(format!("the archive reader stopped: {e}")))?
}

/// Imports the tenant in the archive at `path`: checks all of it (see the module's
/// invariant), publishes the plugin versions this catalogue lacks as `actor`, then writes
/// the tenant in one transaction, its audit chain copied as it was and the import appended
/// to it and to the platform's chain as `audit_actor` in `request_id`.
pub async fn import(
    catalogue: Catalogue<'_>,
    actor: Actor<'_>,
    audit_actor: &str,
    request_id: &str,
    path: &Path,
) -> Result<Imported, Error> {
    let store = catalogue.store;
    let dir = tempfile::tempdir().map_err(io_error("cannot make a working folder"))?;
    let (manifest, read) = {
        let path = path.to_path_buf();
        let staging = dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || read_archive(&path, Some(&staging), None))
            .await
            .map_err(|e| Error::Archive(format!("the archive reader stopped: {e}")))??
    };
    let tenant = read
        .tenant
        .clone()
        .expect("a checked archive names its tenant");
    if store.scope(&tenant).await?.is_some() {
        return Err(Error::Conflict(format!(
            "tenant {tenant} already exists on this platform; an archive is imported only \
             where its tenant does not exist"
        )));
    }
    // Every plugin version: here already with the same component, or checked for
    // publishing (all of them before any is stored).
    let mut to_publish = Vec::new();
    for plugin in &read.plugins {
        match store
            .catalogue()
            .version_digest(&plugin.plugin, &plugin.version)
            .await?
        {
            Some(digest) if digest == plugin.digest => continue,
            Some(digest) => {
                return Err(Error::Conflict(format!(
                    "{} {} is published here with component {digest}; the archive's has {}",
                    plugin.plugin, plugin.version, plugin.digest
                )));
            }
            None => {}
        }
        let staged = read
            .components
            .get(&plugin.digest)
            .expect("every plugin's component was checked present");
        let bytes = std::fs::read(staged).map_err(io_error("cannot read a staged component"))?;
        // The archive holds the manifest as the catalogue recorded it, not the uploaded
        // plugin.toml a signature covers, so a version is published here unsigned. A
        // version published before the digest of its plugin.toml was recorded gets the
        // digest of the manifest as recorded instead.
        let manifest_sha256 = match plugin.manifest_sha256 {
            Some(digest) => digest,
            None => Digest::of(
                &serde_json::to_vec(&plugin.manifest)
                    .map_err(|e| Error::Archive(format!("{}: {e}", plugin.plugin)))?,
            ),
        };
        let checked = catalogue::check(
            catalogue,
            actor,
            plugin.manifest.clone(),
            manifest_sha256,
            bytes,
            None,
        )
        .await
        .map_err(|e| match e {
            Error::Invalid { detail, fields } => Error::Invalid {
                detail: format!(
                    "{} {} from the archive cannot be published here: {detail}",
                    plugin.plugin, plugin.version
                ),
                fields,
            },
            other => other,
        })?;
        if let Checked::New(_) = &checked {
            to_publish.push((format!("{} {}", plugin.plugin, plugin.version), checked));
        }
    }
    let mut published = Vec::new();
    for (name, checked) in to_publish {
        catalogue::store(catalogue, actor, checked).await?;
        published.push(name);
    }
    let bindings: Vec<RuleRow> = read
        .members
        .iter()
        .flat_map(|(subject, roles)| guildhall_authz::member_bindings(subject, roles, &tenant))
        .collect();
    // The second pass reads the archive again, checking it again as it goes (the file
    // could have changed since), and writes its records in one transaction.
    let lifecycle = store.lifecycle();
    let mut import = lifecycle.import(&tenant).await?;
    for logo in &read.logos {
        import.logo(logo).await?;
    }
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<ArchiveRow>>(4);
    let reader = {
        let path = path.to_path_buf();
        let expected = read.sha256.clone();
        tokio::task::spawn_blocking(move || {
            let mut send = |rows: Vec<ArchiveRow>| {
                sender
                    .blocking_send(rows)
                    .map_err(|_| Error::Archive("the import stopped".to_string()))
            };
            let (_, again) = read_archive(&path, None, Some(&mut send))?;
            if again.sha256 != expected {
                return Err(damaged("the file changed while it was imported"));
            }
            Ok(())
        })
    };
    let mut written: Result<(), Error> = Ok(());
    while let Some(rows) = receiver.recv().await {
        if let Err(e) = import.rows(&rows).await {
            written = Err(e.into());
            break;
        }
    }
    drop(receiver);
    let read_again = reader
        .await
        .map_err(|e| Error::Archive(format!("the archive reader stopped: {e}")))?;
    written?;
    read_again?;
    let detail = serde_json::json!({
        "archive_sha256": read.sha256,
        "archive_bytes": read.size,
        "exported_at": manifest.exported_at_text(),
        "platform_version": manifest.platform_version,
        "published": published,
    });
    import
        .finish(
            &bindings,
            NewAuditEntry {
                actor: audit_actor,
                action: "tenants.import",
                object: "tenant",
                outcome: "imported",
                request_id,
                detail,
            },
        )
        .await?;
    Ok(Imported {
        manifest,
        sha256: read.sha256,
        published,
    })
}

// ---------------------------------------------------------------------------------------
// Deleting.

/// Checks that a destructive request repeats the id of what it destroys: `confirm` must
/// equal `id`. Missing is [`Error::Unconfirmed`]; another id is [`Error::Conflict`].
pub fn confirm(what: &str, id: &str, confirm: Option<&str>, how: &str) -> Result<(), Error> {
    match confirm {
        Some(given) if given == id => Ok(()),
        None | Some("") => Err(Error::Unconfirmed(format!(
            "deleting {what} {id} removes everything stored for it and cannot be undone; \
             to confirm, repeat its id: {how}"
        ))),
        Some(other) => Err(Error::Conflict(format!(
            "the confirmation names {other:?}, not {what} {id}; nothing was deleted"
        ))),
    }
}

/// Deletes the tenant and everything stored for it, its audit chain included, once
/// `confirmation` repeats its id.
pub async fn delete_tenant(
    store: &Store,
    scope: &TenantScope,
    confirmation: Option<&str>,
) -> Result<Deleted, Error> {
    let tenant = scope.tenant();
    confirm(
        "tenant",
        tenant.as_str(),
        confirmation,
        &format!("DELETE /api/v1/tenants/{tenant}?confirm={tenant}"),
    )?;
    Ok(store.lifecycle().delete_tenant(scope).await?)
}

/// Deletes one council of the tenant and what is stored for it, once `confirmation`
/// repeats its id.
pub async fn delete_council(
    store: &Store,
    scope: &TenantScope,
    council: &CouncilId,
    confirmation: Option<&str>,
) -> Result<Deleted, Error> {
    let tenant = scope.tenant();
    let found = store.councils(scope).ids().await?.contains(council);
    if !found {
        return Err(Error::NotFound(format!("no council {council} in {tenant}")));
    }
    confirm(
        "council",
        council.as_str(),
        confirmation,
        &format!("DELETE /api/v1/tenants/{tenant}/councils/{council}?confirm={council}"),
    )?;
    store
        .lifecycle()
        .delete_council(scope, council)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no council {council} in {tenant}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive with the given members, the manifest listing `listed` (name, bytes).
    fn archive(members: &[(&str, &[u8])], manifest: &serde_json::Value) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let gzip =
            flate2::write::GzEncoder::new(file.reopen().unwrap(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gzip);
        let text = serde_json::to_vec(manifest).unwrap();
        let mut all: Vec<(&str, &[u8])> = vec![(MANIFEST, text.as_slice())];
        all.extend_from_slice(members);
        for (name, bytes) in all {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, name, bytes).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
        file
    }

    fn listing(members: &[(&str, &[u8])]) -> Vec<serde_json::Value> {
        members
            .iter()
            .map(|(name, bytes)| {
                let mut file = serde_json::json!({
                    "name": name,
                    "size": bytes.len(),
                    "sha256": hex::encode(Sha256::digest(bytes)),
                });
                if name.ends_with(".jsonl") {
                    file["records"] = bytes.iter().filter(|b| **b == b'\n').count().into();
                }
                file
            })
            .collect()
    }

    fn manifest_for(members: &[(&str, &[u8])]) -> serde_json::Value {
        serde_json::json!({
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "tenant": "north-downs",
            "exported_at": "2026-12-01T10:00:00Z",
            "platform_version": "0.1.0",
            "files": listing(members),
            "not_included": {},
            "secrets_to_set_again": [],
        })
    }

    /// The members of a small valid archive: a tenant with one council and nothing else.
    fn members() -> Vec<(&'static str, Vec<u8>)> {
        let mut out: Vec<(&str, Vec<u8>)> = vec![(LOGOS, Vec::new()), (PLUGINS, Vec::new())];
        for table in TABLES {
            let bytes = match table.table {
                "tenants" => concat!(
                    r#"{"name":"North Downs","share_adoption":false,"#,
                    r#""created_at":"2026-12-01T10:00:00Z","updated_at":"2026-12-01T10:00:00Z","#,
                    r#""brand_colour":null,"contact_url":null,"accessibility_url":null,"#,
                    r#""logo_digest":null}"#,
                    "\n"
                )
                .as_bytes()
                .to_vec(),
                "councils" => concat!(
                    r#"{"id":"tandridge","name":"Tandridge","gss_code":null,"#,
                    r#""created_at":"2026-12-01T10:00:00Z","updated_at":"2026-12-01T10:00:00Z","#,
                    r#""brand_colour":null,"contact_url":null,"accessibility_url":null,"#,
                    r#""logo_digest":null}"#,
                    "\n"
                )
                .as_bytes()
                .to_vec(),
                _ => Vec::new(),
            };
            out.push((table.file, bytes));
        }
        out
    }

    fn check(members: &[(&str, Vec<u8>)], manifest: &serde_json::Value) -> Result<(), String> {
        let borrowed: Vec<(&str, &[u8])> =
            members.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        let file = archive(&borrowed, manifest);
        read_archive(file.path(), None, None)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn valid_manifest(members: &[(&str, Vec<u8>)]) -> serde_json::Value {
        let borrowed: Vec<(&str, &[u8])> =
            members.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        manifest_for(&borrowed)
    }

    #[test]
    fn a_well_formed_archive_is_accepted() {
        let members = members();
        check(&members, &valid_manifest(&members)).unwrap();
    }

    #[test]
    fn a_member_that_does_not_match_its_checksum_is_refused() {
        let mut members = members();
        let manifest = valid_manifest(&members);
        // Same length, other bytes.
        let council = members
            .iter_mut()
            .find(|(n, _)| *n == "councils.jsonl")
            .unwrap();
        let at = council.1.iter().position(|b| *b == b'T').unwrap();
        council.1[at] = b'X';
        let refused = check(&members, &manifest).unwrap_err();
        assert!(
            refused.contains("councils.jsonl does not match its checksum"),
            "{refused}"
        );
    }

    #[test]
    fn another_format_version_is_refused_by_name() {
        let members = members();
        let mut manifest = valid_manifest(&members);
        manifest["format_version"] = 2.into();
        let refused = check(&members, &manifest).unwrap_err();
        assert!(
            refused.contains("format version 2; this platform reads format version 1"),
            "{refused}"
        );
        manifest["format_version"] = FORMAT_VERSION.into();
        manifest["format"] = "something-else".into();
        let refused = check(&members, &manifest).unwrap_err();
        assert!(
            refused.contains("not a Guildhall tenant archive"),
            "{refused}"
        );
    }

    #[test]
    fn a_missing_or_extra_member_is_refused() {
        let members = members();
        let manifest = valid_manifest(&members);
        let fewer: Vec<(&str, Vec<u8>)> = members[..members.len() - 1].to_vec();
        let refused = check(&fewer, &manifest).unwrap_err();
        assert!(
            refused.contains("it ends before audit_head.jsonl"),
            "{refused}"
        );
        let mut more = members.clone();
        more.push(("extra.txt", b"x".to_vec()));
        let refused = check(&more, &manifest).unwrap_err();
        assert!(refused.contains("extra.txt is not listed"), "{refused}");
    }

    #[test]
    fn a_record_that_breaks_its_table_is_refused_with_its_line() {
        let mut members = members();
        let council = members
            .iter_mut()
            .find(|(n, _)| *n == "councils.jsonl")
            .unwrap();
        council.1.extend_from_slice(b"{\"id\":\"Not An Id\"}\n");
        let refused = check(&members, &valid_manifest(&members)).unwrap_err();
        assert!(refused.contains("councils.jsonl line 2:"), "{refused}");
    }

    #[test]
    fn an_altered_audit_chain_is_refused() {
        let mut members = members();
        let entry = |seq: i64, prev: &str, outcome: &str| {
            let chain = ChainEntry {
                chain: "north-downs",
                seq,
                at: "2026-12-01T10:00:00Z",
                actor: "cli",
                action: "tokens.create",
                object: "tokens/x",
                outcome: "created",
                request_id: "cli",
                detail: "{}",
            };
            let hash = chain.hash(prev);
            let line = serde_json::json!({"seq": seq, "at": chain.at, "actor": "cli",
                "action": "tokens.create", "object": "tokens/x", "outcome": outcome,
                "request_id": "cli", "detail": "{}", "prev_hash": prev, "hash": hash});
            (format!("{line}\n"), hash)
        };
        let (first, hash) = entry(1, GENESIS, "created");
        let (second, head) = entry(2, &hash, "created");
        let audit = members
            .iter()
            .position(|(n, _)| *n == "audit.jsonl")
            .unwrap();
        let heads = members
            .iter()
            .position(|(n, _)| *n == "audit_head.jsonl")
            .unwrap();
        members[audit].1 = format!("{first}{second}").into_bytes();
        members[heads].1 =
            format!("{}\n", serde_json::json!({"seq": 2, "hash": head})).into_bytes();
        check(&members, &valid_manifest(&members)).unwrap();
        // The second entry's outcome changed, its hash left as it was.
        let (altered, _) = entry(2, &hash, "created");
        let altered = altered.replace("\"outcome\":\"created\"", "\"outcome\":\"denied\"");
        members[audit].1 = format!("{first}{altered}").into_bytes();
        let refused = check(&members, &valid_manifest(&members)).unwrap_err();
        assert!(
            refused.contains("audit entry 2 does not match its hash"),
            "{refused}"
        );
    }

    #[test]
    fn a_truncated_archive_is_refused() {
        let members = members();
        let borrowed: Vec<(&str, &[u8])> =
            members.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        let file = archive(&borrowed, &manifest_for(&borrowed));
        let bytes = std::fs::read(file.path()).unwrap();
        let cut = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(cut.path(), &bytes[..bytes.len() / 2]).unwrap();
        let refused = read_archive(cut.path(), None, None)
            .unwrap_err()
            .to_string();
        assert!(refused.starts_with("the archive is refused:"), "{refused}");
    }

    #[test]
    fn a_confirmation_must_repeat_the_id() {
        assert!(confirm("tenant", "north-downs", Some("north-downs"), "").is_ok());
        assert!(matches!(
            confirm("tenant", "north-downs", None, ""),
            Err(Error::Unconfirmed(_))
        ));
        assert!(matches!(
            confirm("tenant", "north-downs", Some(""), ""),
            Err(Error::Unconfirmed(_))
        ));
        assert!(matches!(
            confirm("tenant", "north-downs", Some("the-marches"), ""),
            Err(Error::Conflict(_))
        ));
    }
}
