//! Reading a tenant's audit chain a page at a time, oldest first, for the API's
//! `GET /api/v1/tenants/{tenant}/audit` and the console's audit page alike.

use guildhall_store::{AuditRecord, Store, TenantScope};

/// Entries on a page when the caller does not say.
pub const DEFAULT_LIMIT: u64 = 100;

/// The most entries on one page.
pub const MAX_LIMIT: u64 = 1000;

/// Paging parameters outside their range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limit must be 1 to 1000 and after must not be negative")]
pub struct BadPaging;

/// Where a page starts and how long it is, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    after: i64,
    limit: u64,
}

impl Paging {
    /// Entries after sequence number `after` (0 for the start), at most `limit` of them
    /// ([`DEFAULT_LIMIT`] when absent).
    pub fn new(after: i64, limit: Option<u64>) -> Result<Self, BadPaging> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) || after < 0 {
            return Err(BadPaging);
        }
        Ok(Self { after, limit })
    }

    /// The sequence number the page starts after.
    pub fn after(self) -> i64 {
        self.after
    }

    /// The most entries on the page.
    pub fn limit(self) -> u64 {
        self.limit
    }

    /// The page of older entries just before this one, if this is not the first. A chain
    /// numbers its entries 1, 2, 3… without gaps, so that page starts `limit` entries
    /// earlier.
    pub fn previous(self) -> Option<Self> {
        (self.after > 0).then(|| Self {
            after: self
                .after
                .saturating_sub(i64::try_from(self.limit).unwrap_or(i64::MAX))
                .max(0),
            limit: self.limit,
        })
    }
}

/// One page of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Entries, oldest first.
    pub entries: Vec<AuditRecord>,
    /// The `after` of the next (newer) page; `None` on the last page.
    pub next_after: Option<i64>,
}

/// Reads one page of the tenant's chain: one entry more than asked tells whether another
/// page follows.
pub async fn page(
    store: &Store,
    scope: &TenantScope,
    paging: Paging,
) -> Result<Page, guildhall_store::Error> {
    let entries = store
        .audit(scope)
        .list(paging.after, paging.limit + 1)
        .await?;
    Ok(cut(entries, paging.limit))
}

fn cut(entries: Vec<AuditRecord>, limit: u64) -> Page {
    let more = entries.len() as u64 > limit;
    let entries: Vec<AuditRecord> = entries.into_iter().take(limit as usize).collect();
    let next_after = more.then(|| entries.last().map(|e| e.seq)).flatten();
    Page {
        entries,
        next_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64) -> AuditRecord {
        AuditRecord {
            seq,
            at: String::new(),
            actor: String::new(),
            action: String::new(),
            object: String::new(),
            outcome: String::new(),
            request_id: String::new(),
            detail: String::new(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn paging_keeps_to_its_range() {
        assert_eq!(Paging::new(0, None).map(Paging::limit), Ok(DEFAULT_LIMIT));
        assert_eq!(Paging::new(5, Some(MAX_LIMIT)).map(Paging::after), Ok(5));
        assert_eq!(Paging::new(0, Some(0)), Err(BadPaging));
        assert_eq!(Paging::new(0, Some(MAX_LIMIT + 1)), Err(BadPaging));
        assert_eq!(Paging::new(-1, Some(10)), Err(BadPaging));
    }

    #[test]
    fn the_previous_page_starts_a_page_earlier_and_not_before_the_start() {
        let paging = |after, limit| Paging::new(after, Some(limit)).unwrap();
        assert_eq!(paging(0, 10).previous(), None);
        assert_eq!(paging(25, 10).previous(), Some(paging(15, 10)));
        assert_eq!(paging(4, 10).previous(), Some(paging(0, 10)));
        assert_eq!(paging(10, MAX_LIMIT).previous(), Some(paging(0, MAX_LIMIT)));
    }

    #[test]
    fn a_page_says_where_the_next_starts_only_when_there_is_one() {
        let full = cut((1..=4).map(entry).collect(), 3);
        assert_eq!(full.entries.len(), 3);
        assert_eq!(full.next_after, Some(3));
        let last = cut((4..=6).map(entry).collect(), 3);
        assert_eq!(last.entries.len(), 3);
        assert_eq!(last.next_after, None);
        let empty = cut(Vec::new(), 3);
        assert!(empty.entries.is_empty());
        assert_eq!(empty.next_after, None);
    }
}
