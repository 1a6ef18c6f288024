//! One process at a time migrates and grants.

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};

use crate::{DatabaseUrl, Result};

/// Holds the database's schema for one process while it migrates and grants: replicas or
/// commands that start together on one database take turns, so they never apply the same
/// migration twice or update the same grants at once ("table already exists", "tuple
/// concurrently updated"). On PostgreSQL a session-level advisory lock on a connection of
/// its own; on SQLite an exclusive lock on the file `<database>.schema-lock` beside the
/// database. Released by [`SchemaLock::release`], or when the process ends.
#[derive(Debug)]
pub struct SchemaLock(Held);

#[derive(Debug)]
enum Held {
    Postgres(DatabaseConnection),
    File(std::fs::File),
    Nothing,
}

impl SchemaLock {
    /// Waits for the lock on the database at `url`.
    pub async fn acquire(url: &DatabaseUrl) -> Result<Self> {
        if url.backend()? == DbBackend::Postgres {
            let mut options = ConnectOptions::new(url.expose());
            options
                .max_connections(1)
                .min_connections(1)
                .sqlx_logging(false);
            let db = Database::connect(options).await?;
            db.execute_unprepared(
                "SELECT pg_advisory_lock(hashtextextended('guildhall.schema', 0))",
            )
            .await?;
            return Ok(Self(Held::Postgres(db)));
        }
        let Some(path) = url.sqlite_path() else {
            // An in-memory database belongs to one process.
            return Ok(Self(Held::Nothing));
        };
        let mut name = path.into_os_string();
        name.push(".schema-lock");
        let lock_path = std::path::PathBuf::from(name);
        let file = tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)?;
            file.lock()?;
            Ok::<_, std::io::Error>(file)
        })
        .await
        .map_err(|e| DbErr::Custom(format!("the schema lock's thread failed: {e}")))?
        .map_err(|e| DbErr::Custom(format!("cannot lock the database schema: {e}")))?;
        Ok(Self(Held::File(file)))
    }

    /// Releases the lock.
    pub async fn release(self) -> Result<()> {
        match self.0 {
            Held::Postgres(db) => {
                db.execute_unprepared(
                    "SELECT pg_advisory_unlock(hashtextextended('guildhall.schema', 0))",
                )
                .await?;
                db.close().await?;
            }
            Held::File(file) => {
                file.unlock().map_err(|e| {
                    DbErr::Custom(format!("cannot unlock the database schema: {e}"))
                })?;
            }
            Held::Nothing => {}
        }
        Ok(())
    }
}
