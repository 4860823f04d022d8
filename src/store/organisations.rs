//! The organisations aggregate: the tree of state bodies, organisations and structural units.
//! What a row means (valid ids, kinds, who may change what) is `identity::org`'s; this file
//! stores rows, walks the tree and keeps it a tree.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::StoreError;
use super::sql::Db;

/// The deepest tree vhod walks: deeper is refused at creation and move, so every walk is
/// bounded (a real hierarchy of state bodies is a handful of levels).
pub const MAX_DEPTH: usize = 32;

/// An organisation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub id: String,
    pub parent_id: Option<String>,
    pub name: String,
    pub name_be: Option<String>,
    pub unp: Option<String>,
    /// `state_body`, `organisation` or `unit`.
    pub kind: String,
    pub active: bool,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "id, parent_id, name, name_be, unp, kind, active, version, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<Organisation, sqlx::Error> {
    Ok(Organisation {
        id: row.try_get("id")?,
        parent_id: row.try_get("parent_id")?,
        name: row.try_get("name")?,
        name_be: row.try_get("name_be")?,
        unp: row.try_get("unp")?,
        kind: row.try_get("kind")?,
        active: row.try_get::<i64, _>("active")? != 0,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Why a change to the tree was not made.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("no such organisation")]
    NotFound,
    #[error("the parent organisation does not exist")]
    NoParent,
    #[error("an organisation cannot be moved under itself or its own subtree")]
    Cycle,
    #[error("the tree would be deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("the organisation was changed meanwhile")]
    Stale,
    #[error("an organisation with this id exists")]
    Exists,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for TreeError {
    fn from(e: sqlx::Error) -> Self {
        TreeError::Store(e.into())
    }
}

/// The fields an update may change; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    pub name: Option<String>,
    pub name_be: Option<Option<String>>,
    pub unp: Option<Option<String>>,
    pub kind: Option<String>,
    pub active: Option<bool>,
}

pub struct Organisations<'a> {
    db: &'a Db,
}

impl Db {
    pub fn organisations(&self) -> Organisations<'_> {
        Organisations { db: self }
    }
}

/// The organisations from the root down to `id` (inclusive), read on `conn`, one row a level;
/// None when `id` does not exist. Bounded by [`MAX_DEPTH`] + 1 steps whatever is stored.
async fn lineage_on(
    conn: &mut sqlx::AnyConnection,
    id: &str,
) -> Result<Option<Vec<Organisation>>, StoreError> {
    let mut lineage: Vec<Organisation> = Vec::new();
    let mut at = Some(id.to_string());
    while let Some(current) = at {
        if lineage.len() > MAX_DEPTH || lineage.iter().any(|o| o.id == current) {
            return Err(StoreError::Corrupt(format!(
                "the organisation tree above {id} loops or is too deep"
            )));
        }
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM organisations WHERE id = $1"
        ))
        .bind(&current)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            if lineage.is_empty() {
                return Ok(None);
            }
            return Err(StoreError::Corrupt(format!("{current} is missing")));
        };
        let org = from_row(&row)?;
        at = org.parent_id.clone();
        lineage.push(org);
    }
    lineage.reverse();
    Ok(Some(lineage))
}

/// The ids from the root down to `id` (inclusive), read on `conn`; None when `id` does not
/// exist.
async fn path_on(
    conn: &mut sqlx::AnyConnection,
    id: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    Ok(lineage_on(conn, id)
        .await?
        .map(|l| l.into_iter().map(|o| o.id).collect()))
}

/// The ids of the organisations directly under any of `parents`, read on `conn`.
async fn children_on(
    conn: &mut sqlx::AnyConnection,
    parents: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut next = Vec::new();
    for parent in parents {
        let rows = sqlx::query("SELECT id FROM organisations WHERE parent_id = $1")
            .bind(parent)
            .fetch_all(&mut *conn)
            .await?;
        for r in rows {
            next.push(r.try_get::<String, _>("id")?);
        }
    }
    Ok(next)
}

/// How many levels the subtree under `id` has below it (0 for a leaf), read on `conn`.
async fn height_on(conn: &mut sqlx::AnyConnection, id: &str) -> Result<usize, StoreError> {
    let mut level = vec![id.to_string()];
    let mut height = 0;
    loop {
        let next = children_on(conn, &level).await?;
        if next.is_empty() {
            return Ok(height);
        }
        height += 1;
        if height > MAX_DEPTH {
            return Err(StoreError::Corrupt(format!(
                "the subtree of {id} is deeper than {MAX_DEPTH}"
            )));
        }
        level = next;
    }
}

/// Takes the tree's lock row for the transaction: changes to the shape of the tree happen one
/// at a time, so two moves at once cannot close a cycle between them.
async fn lock_tree_on(conn: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
    sqlx::query("UPDATE generation SET value = value + 1 WHERE id = 2")
        .execute(conn)
        .await?;
    Ok(())
}

impl Organisations<'_> {
    /// Stores a new organisation under its parent (which must exist). The new row's depth is
    /// bounded by [`MAX_DEPTH`].
    pub async fn insert(&self, org: &Organisation) -> Result<(), TreeError> {
        let mut tx = self.db.pool.begin().await?;
        let done: Result<(), TreeError> = async {
            lock_tree_on(&mut tx).await?;
            if let Some(parent) = &org.parent_id {
                let path = path_on(&mut tx, parent).await?.ok_or(TreeError::NoParent)?;
                if path.len() >= MAX_DEPTH {
                    return Err(TreeError::TooDeep);
                }
            }
            let res = sqlx::query(
                "INSERT INTO organisations (id, parent_id, name, name_be, unp, kind, active, version, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8)",
            )
            .bind(&org.id)
            .bind(&org.parent_id)
            .bind(&org.name)
            .bind(&org.name_be)
            .bind(&org.unp)
            .bind(&org.kind)
            .bind(i64::from(org.active))
            .bind(self.db.clock.now())
            .execute(&mut *tx)
            .await;
            match res.map_err(StoreError::from) {
                Ok(_) => Ok(()),
                Err(StoreError::Conflict) => Err(TreeError::Exists),
                Err(e) => Err(e.into()),
            }
        }
        .await;
        match done {
            Ok(()) => Ok(tx.commit().await?),
            Err(e) => {
                tx.rollback().await?;
                Err(e)
            }
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Organisation>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM organisations WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// The ids from the root down to `id` (inclusive); None when there is no such organisation.
    pub async fn path(&self, id: &str) -> Result<Option<Vec<String>>, StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        path_on(&mut conn, id).await
    }

    /// The organisations from the root down to `id` (inclusive); None when there is no such
    /// organisation.
    pub async fn lineage(&self, id: &str) -> Result<Option<Vec<Organisation>>, StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        lineage_on(&mut conn, id).await
    }

    /// A page of organisations in id order after `after`, optionally only the children of
    /// `parent` (`Some(None)`: the top level) or only active ones.
    pub async fn list(
        &self,
        parent: Option<Option<&str>>,
        active: Option<bool>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Organisation>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM organisations WHERE id > $1");
        match parent {
            Some(Some(_)) => sql.push_str(" AND parent_id = $2"),
            Some(None) => sql.push_str(" AND parent_id IS NULL AND $2 = ''"),
            None => sql.push_str(" AND $2 = ''"),
        }
        if let Some(a) = active {
            sql.push_str(&format!(" AND active = {}", i64::from(a)));
        }
        sql.push_str(" ORDER BY id LIMIT $3");
        let rows = sqlx::query(&sql)
            .bind(after.unwrap_or(""))
            .bind(parent.flatten().unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.db.pool)
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Changes the fields given, when the stored version is still `expected`.
    pub async fn update(
        &self,
        id: &str,
        expected: Option<i64>,
        changes: &Changes,
    ) -> Result<Organisation, TreeError> {
        let current = self.get(id).await?.ok_or(TreeError::NotFound)?;
        if expected.is_some_and(|v| v != current.version) {
            return Err(TreeError::Stale);
        }
        let next = Organisation {
            name: changes.name.clone().unwrap_or(current.name.clone()),
            name_be: changes.name_be.clone().unwrap_or(current.name_be.clone()),
            unp: changes.unp.clone().unwrap_or(current.unp.clone()),
            kind: changes.kind.clone().unwrap_or(current.kind.clone()),
            active: changes.active.unwrap_or(current.active),
            version: current.version + 1,
            updated_at: self.db.clock.now(),
            ..current.clone()
        };
        let res = sqlx::query(
            "UPDATE organisations SET name = $1, name_be = $2, unp = $3, kind = $4, active = $5, \
             version = version + 1, updated_at = $6 WHERE id = $7 AND version = $8",
        )
        .bind(&next.name)
        .bind(&next.name_be)
        .bind(&next.unp)
        .bind(&next.kind)
        .bind(i64::from(next.active))
        .bind(next.updated_at)
        .bind(id)
        .bind(current.version)
        .execute(&self.db.pool)
        .await
        .map_err(StoreError::from)?;
        if res.rows_affected() == 0 {
            return Err(TreeError::Stale);
        }
        Ok(next)
    }

    /// Moves `id` (with its subtree) under `parent` (`None`: to the top level), when the stored
    /// version is still `expected`. Refused when `parent` is `id` or lies in its subtree, or
    /// when the tree would grow deeper than [`MAX_DEPTH`].
    pub async fn move_to(
        &self,
        id: &str,
        parent: Option<&str>,
        expected: Option<i64>,
    ) -> Result<Organisation, TreeError> {
        let mut tx = self.db.pool.begin().await?;
        let done: Result<(), TreeError> = async {
            lock_tree_on(&mut tx).await?;
            let row = sqlx::query("SELECT version FROM organisations WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(TreeError::NotFound)?;
            let version: i64 = row.try_get("version")?;
            if expected.is_some_and(|v| v != version) {
                return Err(TreeError::Stale);
            }
            let depth_above = match parent {
                Some(p) => {
                    let path = path_on(&mut tx, p).await?.ok_or(TreeError::NoParent)?;
                    if path.iter().any(|a| a == id) {
                        return Err(TreeError::Cycle);
                    }
                    path.len()
                }
                None => 0,
            };
            if depth_above + 1 + height_on(&mut tx, id).await? > MAX_DEPTH {
                return Err(TreeError::TooDeep);
            }
            sqlx::query(
                "UPDATE organisations SET parent_id = $1, version = version + 1, updated_at = $2 \
                 WHERE id = $3",
            )
            .bind(parent)
            .bind(self.db.clock.now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
            Ok(())
        }
        .await;
        match done {
            Ok(()) => tx.commit().await?,
            Err(e) => {
                tx.rollback().await?;
                return Err(e);
            }
        }
        self.get(id).await?.ok_or(TreeError::NotFound)
    }

    /// Every id in the subtree of `id` (inclusive), bounded by the tree's depth limit.
    pub async fn subtree(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        let mut all = vec![id.to_string()];
        let mut level = vec![id.to_string()];
        for _ in 0..=MAX_DEPTH {
            let next = children_on(&mut conn, &level).await?;
            if next.is_empty() {
                break;
            }
            all.extend(next.iter().cloned());
            level = next;
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::test_dbs;

    fn org(id: &str, parent: Option<&str>) -> Organisation {
        Organisation {
            id: id.into(),
            parent_id: parent.map(str::to_string),
            name: format!("Org {id}"),
            name_be: None,
            unp: None,
            kind: "state_body".into(),
            active: true,
            version: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    /// The tree stays a tree on every backend: no cycle by a move, no orphan by an insert, no
    /// lost update by a stale version.
    #[tokio::test]
    async fn the_tree_stays_a_tree() {
        for t in test_dbs().await {
            let orgs = t.db.organisations();
            orgs.insert(&org("root", None)).await.unwrap();
            orgs.insert(&org("a", Some("root"))).await.unwrap();
            orgs.insert(&org("a1", Some("a"))).await.unwrap();
            orgs.insert(&org("b", Some("root"))).await.unwrap();
            assert!(matches!(
                orgs.insert(&org("x", Some("nowhere"))).await,
                Err(TreeError::NoParent)
            ));
            assert!(matches!(
                orgs.insert(&org("a", None)).await,
                Err(TreeError::Exists)
            ));
            assert_eq!(
                orgs.path("a1").await.unwrap(),
                Some(vec!["root".into(), "a".into(), "a1".into()])
            );
            assert!(matches!(
                orgs.move_to("a", Some("a1"), None).await,
                Err(TreeError::Cycle)
            ));
            assert!(matches!(
                orgs.move_to("a", Some("a"), None).await,
                Err(TreeError::Cycle)
            ));
            let moved = orgs.move_to("a", Some("b"), Some(1)).await.unwrap();
            assert_eq!(moved.parent_id.as_deref(), Some("b"));
            assert_eq!(moved.version, 2);
            assert_eq!(
                orgs.path("a1").await.unwrap(),
                Some(vec!["root".into(), "b".into(), "a".into(), "a1".into()])
            );
            assert!(matches!(
                orgs.move_to("a", None, Some(1)).await,
                Err(TreeError::Stale)
            ));
            let mut sub = orgs.subtree("b").await.unwrap();
            sub.sort();
            assert_eq!(sub, vec!["a", "a1", "b"]);
            let changes = Changes {
                name: Some("Renamed".into()),
                ..Changes::default()
            };
            assert!(matches!(
                orgs.update("a", Some(1), &changes).await,
                Err(TreeError::Stale)
            ));
            let updated = orgs.update("a", Some(2), &changes).await.unwrap();
            assert_eq!((updated.name.as_str(), updated.version), ("Renamed", 3));
            assert_eq!(orgs.get("a").await.unwrap().unwrap(), updated);
            let top = orgs.list(Some(None), None, None, 10).await.unwrap();
            assert_eq!(top.len(), 1);
            let under_root = orgs.list(Some(Some("root")), None, None, 10).await.unwrap();
            assert_eq!(under_root.iter().map(|o| &o.id).collect::<Vec<_>>(), ["b"]);
            let page = orgs.list(None, Some(true), Some("a1"), 2).await.unwrap();
            assert_eq!(
                page.iter().map(|o| &o.id).collect::<Vec<_>>(),
                ["b", "root"]
            );
        }
    }

    #[tokio::test]
    async fn the_tree_depth_is_bounded() {
        for t in test_dbs().await {
            let orgs = t.db.organisations();
            orgs.insert(&org("l0", None)).await.unwrap();
            for i in 1..MAX_DEPTH {
                let parent = format!("l{}", i - 1);
                orgs.insert(&org(&format!("l{i}"), Some(&parent)))
                    .await
                    .unwrap();
            }
            let last = format!("l{}", MAX_DEPTH - 1);
            assert!(matches!(
                orgs.insert(&org("deeper", Some(&last))).await,
                Err(TreeError::TooDeep)
            ));
            orgs.insert(&org("side", None)).await.unwrap();
            orgs.insert(&org("side1", Some("side"))).await.unwrap();
            // side (with its child) under l30: 31 levels above, 2 of its own.
            let deep = format!("l{}", MAX_DEPTH - 2);
            assert!(matches!(
                orgs.move_to("side", Some(&deep), None).await,
                Err(TreeError::TooDeep)
            ));
            let shallow = format!("l{}", MAX_DEPTH - 3);
            orgs.move_to("side", Some(&shallow), None).await.unwrap();
        }
    }
}
