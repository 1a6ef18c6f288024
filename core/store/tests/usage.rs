//! Metered usage on a real SQLite database: batches apply once, replicas add up.

use guildhall_domain::TenantId;
use guildhall_domain::metering::{CallsDelta, UsageCounts, UsageDelta};
use guildhall_domain::tenant::TenantSpec;
use guildhall_store::Store;

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite_file(&dir.path().join("g.db"))
        .await
        .unwrap();
    let spec = TenantSpec::from_toml(
        "id = \"north-downs\"\nname = \"North Downs\"\n[[councils]]\nid = \"tandridge\"\nname = \"Tandridge\"\n",
    )
    .unwrap();
    store.tenants().create(&spec).await.unwrap();
    (dir, store)
}

fn delta(calls: i64) -> UsageDelta {
    UsageDelta {
        council: "tandridge".into(),
        plugin: "hello".into(),
        version: "0.1.0".into(),
        day: "2026-11-27".into(),
        counts: UsageCounts {
            calls,
            errors: 1,
            wall_us: 1_000 * calls,
            cpu_us: 100 * calls,
            bytes_in: 10,
            bytes_out: 20,
            kv_bytes: 0,
        },
    }
}

#[tokio::test]
async fn a_retried_batch_counts_once_and_replicas_add_up() {
    let (_dir, store) = store().await;
    let scope = store
        .scope(&TenantId::parse("north-downs").unwrap())
        .await
        .unwrap()
        .unwrap();
    let usage = store.usage(&scope);
    assert!(usage.add("batch-1", &[delta(3)]).await.unwrap());
    // The same batch again (a retry after an unclear failure): nothing added.
    assert!(!usage.add("batch-1", &[delta(3)]).await.unwrap());
    // Another replica's batch for the same key adds to it.
    assert!(usage.add("batch-2", &[delta(4)]).await.unwrap());
    let rows = usage.rows("2026-11-01", "2026-11-30").await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].counts.calls, 7);
    assert_eq!(rows[0].counts.errors, 2);
    assert_eq!(rows[0].counts.wall_us, 7_000);
    assert_eq!(rows[0].counts.bytes_in, 20);
    // Outside the period: nothing.
    assert!(
        usage
            .rows("2026-12-01", "2026-12-31")
            .await
            .unwrap()
            .is_empty()
    );

    let platform = store.platform_usage();
    let calls = CallsDelta {
        plugin: "hello".into(),
        version: "0.1.0".into(),
        day: "2026-11-27".into(),
        bucket: 3,
        calls: 5,
        errors: 1,
    };
    assert!(
        platform
            .add("batch-1", std::slice::from_ref(&calls))
            .await
            .unwrap()
    );
    assert!(!platform.add("batch-1", &[calls]).await.unwrap());
    let figures = store
        .adoption()
        .figures(Some("hello"), "2026-11-01")
        .await
        .unwrap();
    assert_eq!(figures["hello"]["0.1.0"].calls, 5);
    assert_eq!(figures["hello"]["0.1.0"].success_rate, Some(0.8));
}

/// Writers that read first (a key-value write checks the quota) queue on SQLite's busy
/// timeout instead of failing with "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_that_read_first_all_succeed() {
    let (_dir, store) = store().await;
    let scope = store
        .scope(&TenantId::parse("north-downs").unwrap())
        .await
        .unwrap()
        .unwrap();
    let plugin = guildhall_domain::PluginName::parse("counter").unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (store, scope, plugin) = (store.clone(), scope.clone(), plugin.clone());
            tokio::spawn(async move {
                store
                    .kv(&scope, &plugin)
                    .set(&format!("key-{i:02}"), b"value", 1 << 20)
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("every write succeeds");
    }
    assert_eq!(
        store.kv(&scope, &plugin).usage().await.unwrap(),
        64 * (6 + 5)
    );
}

/// Comments come back newest first, a page at a time in either direction, without the
/// ratings that had none, for one plugin when asked, and only within the period.
#[tokio::test]
async fn comments_page_newest_first_in_both_directions() {
    use guildhall_domain::{CouncilId, PluginName};
    use guildhall_store::{CommentCursor, MAX_COMMENTS_PAGE, NewFeedback};

    let (_dir, store) = store().await;
    let scope = store
        .scope(&TenantId::parse("north-downs").unwrap())
        .await
        .unwrap()
        .unwrap();
    let feedback = store.feedback(&scope);
    let (hello, bins) = (
        PluginName::parse("hello").unwrap(),
        PluginName::parse("bins").unwrap(),
    );
    // Seven comments (five on hello, two on bins) and two ratings without one.
    let mut ids = Vec::new();
    for i in 0..9u8 {
        let comment = match i {
            3 | 6 => None,
            _ => Some(format!("comment {i}")),
        };
        let plugin = if i % 4 == 1 { &bins } else { &hello };
        let id = feedback
            .add(&NewFeedback {
                council: CouncilId::parse("tandridge").unwrap(),
                plugin: plugin.clone(),
                version: "0.1.0".into(),
                rating: i % 5 + 1,
                comment: comment.clone(),
            })
            .await
            .unwrap();
        if comment.is_some() {
            ids.push(id);
        }
    }
    ids.reverse();
    let today = guildhall_domain::metering::day_of(time::OffsetDateTime::now_utc());

    let all = feedback
        .comments(&today, &today, None, 100, None)
        .await
        .unwrap();
    let got: Vec<&str> = all.comments.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        got, ids,
        "newest first, without the ratings that had no comment"
    );
    assert_eq!((all.older.as_deref(), all.newer.as_deref()), (None, None));
    let newest = &all.comments[0];
    assert_eq!(newest.comment, "comment 8");
    assert_eq!(
        (
            newest.council.as_str(),
            newest.plugin.as_str(),
            newest.rating
        ),
        ("tandridge", "hello", 4)
    );
    assert_eq!(newest.day, today);
    assert!(newest.at.starts_with(&today), "{}", newest.at);

    // Older, three at a time, then back again.
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = feedback
            .comments(
                &today,
                &today,
                None,
                3,
                cursor.as_deref().map(CommentCursor::Before),
            )
            .await
            .unwrap();
        assert_eq!(page.newer.is_some(), cursor.is_some(), "{page:?}");
        cursor = page.older.clone();
        pages.push(page);
        if cursor.is_none() {
            break;
        }
    }
    let sizes: Vec<usize> = pages.iter().map(|p| p.comments.len()).collect();
    assert_eq!(sizes, [3, 3, 1]);
    let walked: Vec<&str> = pages
        .iter()
        .flat_map(|p| p.comments.iter().map(|c| c.id.as_str()))
        .collect();
    assert_eq!(walked, ids);
    let back = feedback
        .comments(
            &today,
            &today,
            None,
            3,
            Some(CommentCursor::After(pages[2].newer.as_deref().unwrap())),
        )
        .await
        .unwrap();
    assert_eq!(back, pages[1], "the page before is the same page again");
    let first = feedback
        .comments(
            &today,
            &today,
            None,
            3,
            Some(CommentCursor::After(back.newer.as_deref().unwrap())),
        )
        .await
        .unwrap();
    assert_eq!(first, pages[0]);
    assert!(first.newer.is_none());

    // One plugin's.
    let only = feedback
        .comments(&today, &today, Some(&bins), 100, None)
        .await
        .unwrap();
    let texts: Vec<&str> = only.comments.iter().map(|c| c.comment.as_str()).collect();
    assert_eq!(texts, ["comment 5", "comment 1"]);

    // The limit is brought into range; other periods have none; a cursor past the end
    // gives an empty page with no links.
    let none = feedback
        .comments(&today, &today, None, 0, None)
        .await
        .unwrap();
    assert_eq!(none.comments.len(), 1);
    let many = feedback
        .comments(&today, &today, None, u64::MAX, None)
        .await
        .unwrap();
    assert_eq!(many.comments.len(), ids.len());
    assert!(ids.len() as u64 <= MAX_COMMENTS_PAGE);
    let earlier = feedback
        .comments("2001-01-01", "2001-12-31", None, 10, None)
        .await
        .unwrap();
    assert!(earlier.comments.is_empty() && earlier.older.is_none());
    let past = feedback
        .comments(
            &today,
            &today,
            None,
            10,
            Some(CommentCursor::Before(ids.last().unwrap())),
        )
        .await
        .unwrap();
    assert!(past.comments.is_empty());
    assert_eq!((past.older, past.newer), (None, None));

    assert!(CommentCursor::is_id(&ids[0]));
    assert!(!CommentCursor::is_id(&ids[0].to_uppercase()));
    assert!(!CommentCursor::is_id(&ids[0].replace('-', "")));
    assert!(!CommentCursor::is_id("' OR 1=1 --"));
}
