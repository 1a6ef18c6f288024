//! Citizens' ratings of services, kept per tenant, with the cross-tenant daily counts the
//! catalogue shows, and their comments read back a page at a time.

use guildhall_domain::{CouncilId, PluginName};
use sea_orm::{ConnectionTrait, DatabaseConnection, QueryResult, Value};
use time::OffsetDateTime;

use guildhall_domain::metering::day_of;

use super::{get_i64, get_string, scoped_query, stmt};
use crate::{Result, TenantScope, scoped};

/// A citizen's rating of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFeedback {
    /// The council whose service was rated.
    pub council: CouncilId,
    /// The plugin.
    pub plugin: PluginName,
    /// The version installed when the rating was given.
    pub version: String,
    /// 1 to 5.
    pub rating: u8,
    /// An optional comment, already length-checked.
    pub comment: Option<String>,
}

/// Ratings summed for one council and plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingSummary {
    /// The council.
    pub council: String,
    /// The plugin.
    pub plugin: String,
    /// How many ratings.
    pub ratings: i64,
    /// Their sum.
    pub total: i64,
}

/// The most comments one page holds.
pub const MAX_COMMENTS_PAGE: u64 = 100;

/// A citizen's comment, with the rating it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// The feedback's id: a UUIDv7, so ids sort by when they were made. Also the cursor
    /// for the pages on either side.
    pub id: String,
    /// The council whose service was rated.
    pub council: String,
    /// The plugin.
    pub plugin: String,
    /// The version installed when the rating was given.
    pub version: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// When, RFC 3339 in UTC.
    pub at: String,
    /// 1 to 5.
    pub rating: u8,
    /// The comment as the citizen wrote it (trimmed, never empty).
    pub comment: String,
}

/// Where a page of comments starts, by the id of a comment already shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentCursor<'a> {
    /// The comments older than this one: the next page, newest first.
    Before(&'a str),
    /// The comments newer than this one: the page before.
    After(&'a str),
}

impl CommentCursor<'_> {
    /// Whether `text` is spelt as comment ids are (a lowercase, hyphenated UUID), as a
    /// cursor must be: ids compare as text, so another spelling of the same UUID would
    /// page wrongly.
    pub fn is_id(text: &str) -> bool {
        text.len() == 36
            && text.bytes().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
            })
    }
}

/// One page of comments, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentPage {
    /// At most the limit asked for.
    pub comments: Vec<Comment>,
    /// Pass as [`CommentCursor::Before`] for the older comments; `None` when there are
    /// none.
    pub older: Option<String>,
    /// Pass as [`CommentCursor::After`] for the newer comments; `None` when there are
    /// none.
    pub newer: Option<String>,
}

/// One tenant's citizen feedback.
#[derive(Debug)]
pub struct Feedback<'a> {
    db: &'a DatabaseConnection,
    scope: &'a TenantScope,
}

impl<'a> Feedback<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection, scope: &'a TenantScope) -> Self {
        Self { db, scope }
    }

    /// Stores a rating and adds it to the plugin's cross-tenant satisfaction, in one
    /// transaction. Returns the feedback's id.
    pub async fn add(&self, feedback: &NewFeedback) -> Result<String> {
        let backend = self.db.get_database_backend();
        let tenant = self.scope.tenant().as_str();
        let now = OffsetDateTime::now_utc();
        let day = day_of(now);
        let id = uuid::Uuid::now_v7().to_string();
        let at = now
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?;
        let txn = scoped::begin_write(self.db, tenant).await?;
        // The council's row is held until the rating is stored, so a deletion of the
        // council either comes first (and the rating is refused) or removes it too.
        crate::claim::share_tenant(&txn, tenant).await?;
        if !crate::claim::share_councils(&txn, tenant)
            .await?
            .iter()
            .any(|c| c == feedback.council.as_str())
        {
            return Err(crate::Error::CouncilGone(feedback.council.clone()));
        }
        txn.execute_raw(stmt(
            backend,
            "INSERT INTO feedback (id, tenant_id, council_id, plugin, version, day, rating, \
             comment, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                id.clone().into(),
                tenant.into(),
                feedback.council.as_str().into(),
                feedback.plugin.as_str().into(),
                feedback.version.clone().into(),
                day.clone().into(),
                i32::from(feedback.rating).into(),
                feedback.comment.clone().into(),
                at.into(),
            ],
        ))
        .await?;
        txn.execute_raw(stmt(
            backend,
            "INSERT INTO plugin_ratings_daily (plugin, version, day, ratings, total) \
             VALUES (?, ?, ?, 1, ?) ON CONFLICT (plugin, version, day) DO UPDATE SET \
             ratings = plugin_ratings_daily.ratings + 1, \
             total = plugin_ratings_daily.total + excluded.total",
            vec![
                feedback.plugin.as_str().into(),
                feedback.version.clone().into(),
                day.into(),
                i64::from(feedback.rating).into(),
            ],
        ))
        .await?;
        txn.commit().await?;
        Ok(id)
    }

    /// Ratings from day `from` to day `to` (inclusive), per council and plugin.
    pub async fn summary(&self, from: &str, to: &str) -> Result<Vec<RatingSummary>> {
        let tenant = self.scope.tenant().as_str();
        let rows = scoped_query(
            self.db,
            tenant,
            "SELECT council_id, plugin, CAST(COUNT(*) AS BIGINT) AS ratings, \
                 CAST(SUM(rating) AS BIGINT) AS total FROM feedback \
                 WHERE tenant_id = ? AND day >= ? AND day <= ? \
                 GROUP BY council_id, plugin ORDER BY council_id, plugin",
            vec![tenant.into(), from.into(), to.into()],
        )
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RatingSummary {
                    council: get_string(row, "council_id")?,
                    plugin: get_string(row, "plugin")?,
                    ratings: get_i64(row, "ratings")?,
                    total: get_i64(row, "total")?,
                })
            })
            .collect()
    }

    /// The comments given from day `from` to day `to` (inclusive), newest first, only for
    /// `plugin` when one is named: at most `limit` of them (1 to [`MAX_COMMENTS_PAGE`];
    /// other values are brought into that range), starting at `cursor` (`None`: the
    /// newest). Ratings without a comment are left out.
    ///
    /// Comments are ordered by id (UUIDv7): by when they were made, to the millisecond
    /// across replicas and exactly within one. The ids are stable, so paging by them
    /// neither skips nor repeats a comment while new ones arrive.
    pub async fn comments(
        &self,
        from: &str,
        to: &str,
        plugin: Option<&PluginName>,
        limit: u64,
        cursor: Option<CommentCursor<'_>>,
    ) -> Result<CommentPage> {
        let backend = self.db.get_database_backend();
        let tenant = self.scope.tenant().as_str();
        let limit = limit.clamp(1, MAX_COMMENTS_PAGE);
        let mut filter = String::from(
            "tenant_id = ? AND day >= ? AND day <= ? \
             AND comment IS NOT NULL AND comment <> ''",
        );
        let mut values: Vec<Value> = vec![tenant.into(), from.into(), to.into()];
        if let Some(plugin) = plugin {
            filter.push_str(" AND plugin = ?");
            values.push(plugin.as_str().into());
        }
        // Read towards older comments (newest first) unless asked for newer ones, then
        // turn those round.
        let (towards_newer, bound) = match cursor {
            None => (false, None),
            Some(CommentCursor::Before(id)) => (false, Some(id)),
            Some(CommentCursor::After(id)) => (true, Some(id)),
        };
        let (beyond, order) = if towards_newer {
            (">", "ASC")
        } else {
            ("<", "DESC")
        };
        let mut page_values = values.clone();
        let mut page_filter = filter.clone();
        if let Some(id) = bound {
            page_filter.push_str(&format!(" AND id {beyond} ?"));
            page_values.push(id.into());
        }
        page_values.push(i64::try_from(limit + 1).unwrap_or(i64::MAX).into());
        let txn = scoped::begin(self.db, tenant).await?;
        let rows = txn
            .query_all_raw(stmt(
                backend,
                &format!(
                    "SELECT id, council_id, plugin, version, day, rating, comment, created_at \
                     FROM feedback WHERE {page_filter} ORDER BY id {order} LIMIT ?"
                ),
                page_values,
            ))
            .await?;
        let mut comments = rows.iter().map(comment_of).collect::<Result<Vec<_>>>()?;
        let more = comments.len() as u64 > limit;
        comments.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        if towards_newer {
            comments.reverse();
        }
        // Whether anything lies on the other side of the page (where the reader came
        // from): asked of the database rather than assumed, since a cursor may be old or
        // made up.
        let edge = if towards_newer {
            comments.last()
        } else {
            comments.first()
        };
        let behind = match (bound, edge) {
            (Some(_), Some(edge)) => {
                let back = if towards_newer { "<" } else { ">" };
                let mut probe = values;
                probe.push(edge.id.clone().into());
                !txn.query_all_raw(stmt(
                    backend,
                    &format!("SELECT id FROM feedback WHERE {filter} AND id {back} ? LIMIT 1"),
                    probe,
                ))
                .await?
                .is_empty()
            }
            // The first page has nothing newer; an empty page past a cursor, no link.
            _ => false,
        };
        txn.commit().await?;
        let (older_exists, newer_exists) = if towards_newer {
            (behind, more)
        } else {
            (more, behind)
        };
        Ok(CommentPage {
            older: older_exists
                .then(|| comments.last().map(|c| c.id.clone()))
                .flatten(),
            newer: newer_exists
                .then(|| comments.first().map(|c| c.id.clone()))
                .flatten(),
            comments,
        })
    }

    /// How many ratings the tenant has stored (for tests and operators).
    pub async fn count(&self) -> Result<i64> {
        let tenant = self.scope.tenant().as_str();
        let rows = scoped_query(
            self.db,
            tenant,
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM feedback WHERE tenant_id = ?",
            vec![tenant.into()],
        )
        .await?;
        rows.first().map_or(Ok(0), |row| get_i64(row, "n"))
    }
}

fn comment_of(row: &QueryResult) -> Result<Comment> {
    let rating: i32 = row.try_get("", "rating")?;
    Ok(Comment {
        id: get_string(row, "id")?,
        council: get_string(row, "council_id")?,
        plugin: get_string(row, "plugin")?,
        version: get_string(row, "version")?,
        day: get_string(row, "day")?,
        at: get_string(row, "created_at")?,
        rating: u8::try_from(rating)
            .map_err(|_| sea_orm::DbErr::Custom(format!("a stored rating of {rating}")))?,
        comment: get_string(row, "comment")?,
    })
}
