//! How a verification records a key's use.
//!
//! # A key with a per-minute limit
//! Every use is counted in one conditional `UPDATE` (see the rate limit in
//! the [module docs](super)): the count is exact and the limit holds across
//! processes.
//!
//! # A key without one
//! [`KeyUsage`] decides: at once, or at most once per interval (its docs say
//! how accurate the counts are then).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use gatehouse_entity::api_keys;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::WINDOW_SECS;
use crate::Error;

/// The interval [`KeyUsage::default`] records at most once per.
pub const DEFAULT_USAGE_INTERVAL: Duration = Duration::seconds(60);

/// How uses of keys without a per-minute limit are written: at once, or at
/// most once per interval with the uses in between counted in memory.
/// Cheap to clone: clones share the counts, so one `KeyUsage` serves every
/// request of a process.
///
/// With an interval, a verification writes only when the key's
/// `last_used_at`, as the lookup read it, is at least the interval old (or
/// unset): one `UPDATE` then sets `last_used_at` and `last_used_ip` and adds
/// to `usage_count` this use and every use this process verified since it
/// last wrote. Between those writes a verification is the lookup and the
/// permission read only.
///
/// Accuracy: `last_used_at` and `last_used_ip` lag the last use by less than
/// the interval. `usage_count` adds, never overwrites: each process adds
/// the uses it holds, so concurrent writers lose nothing. It lags by the
/// uses each process holds: a process writes a key's uses only when it is
/// the one that finds the key's `last_used_at` an interval old, so with
/// several processes one may hold a busy key's uses for several intervals,
/// until then or its [`KeyUsage::flush`]. A process that stops without a
/// flush loses what it holds: call [`KeyUsage::flush`] at shutdown, and
/// periodically (every interval, say). A write whose commit succeeded but
/// whose answer was lost is taken for failed: its uses go back to memory and
/// are added again by the next write.
#[derive(Clone, Debug)]
pub struct KeyUsage {
    interval: Duration,
    unwritten: Arc<Mutex<HashMap<Uuid, u64>>>,
}

impl Default for KeyUsage {
    /// At most once per [`DEFAULT_USAGE_INTERVAL`].
    fn default() -> Self {
        Self::at_most_every(DEFAULT_USAGE_INTERVAL)
    }
}

impl KeyUsage {
    /// Every use written at once: exact, one `UPDATE` per verification.
    pub fn every_use() -> Self {
        Self::at_most_every(Duration::zero())
    }

    /// Writes a key's use at most once per `interval` (zero or less: every
    /// use).
    pub fn at_most_every(interval: Duration) -> Self {
        Self {
            interval,
            unwritten: Arc::default(),
        }
    }

    /// The interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How many verified uses of all keys this `KeyUsage` has not written yet.
    pub fn unwritten(&self) -> u64 {
        self.counts().values().sum()
    }

    /// Records a use of `key`, verified `now` from `ip`: written when due,
    /// counted in memory otherwise. When the write fails (or the call is
    /// dropped half way), the uses it carried from memory go back there;
    /// this use, refused, is not counted.
    pub(super) async fn record<C: ConnectionTrait>(
        &self,
        db: &C,
        key: &api_keys::Model,
        ip: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let due = self.interval <= Duration::zero()
            || key
                .last_used_at
                .is_none_or(|last| now - last >= self.interval);
        if !due {
            *self.counts().entry(key.id).or_default() += 1;
            return Ok(());
        }
        let held = self.counts().remove(&key.id).unwrap_or(0);
        let mut back = Held {
            usage: self,
            pending: vec![(key.id, held)],
            written: 0,
        };
        write(db, key.id, held + 1, Some((ip, now))).await?;
        back.written = 1;
        Ok(())
    }

    /// Writes every use counted in memory to `usage_count` (`last_used_*`
    /// stay as they are). Returns how many uses it wrote. Uses of keys that
    /// no longer exist in `db` are dropped.
    ///
    /// # Errors
    /// A database error; the uses not written yet stay counted (also when
    /// the call is dropped half way).
    pub async fn flush<C: ConnectionTrait>(&self, db: &C) -> Result<u64, Error> {
        let pending: Vec<(Uuid, u64)> = self.counts().drain().collect();
        let mut held = Held {
            usage: self,
            pending,
            written: 0,
        };
        let mut uses_written = 0;
        while let Some(&(id, uses)) = held.pending.get(held.written) {
            write(db, id, uses, None).await?;
            held.written += 1;
            uses_written += uses;
        }
        Ok(uses_written)
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, u64>> {
        // A panic elsewhere while holding the lock leaves whole counts.
        self.unwritten
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Uses taken out of memory for a write: what is not marked written goes
/// back when this is dropped (an error, or a cancelled call).
struct Held<'a> {
    usage: &'a KeyUsage,
    pending: Vec<(Uuid, u64)>,
    written: usize,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let rest = self.pending.get(self.written..).unwrap_or_default();
        if rest.iter().any(|&(_, uses)| uses > 0) {
            let mut counts = self.usage.counts();
            for &(id, uses) in rest.iter().filter(|&&(_, uses)| uses > 0) {
                *counts.entry(id).or_default() += uses;
            }
        }
    }
}

/// Adds `uses` to key `id`'s `usage_count` and, with `last`, sets
/// `last_used_at` (and `last_used_ip` when known).
async fn write<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    uses: u64,
    last: Option<(Option<String>, DateTime<Utc>)>,
) -> Result<(), Error> {
    use api_keys::Column as K;
    let added = i64::try_from(uses).unwrap_or(i64::MAX);
    let mut update = api_keys::Entity::update_many()
        .col_expr(K::UsageCount, Expr::col(K::UsageCount).add(added));
    if let Some((ip, now)) = last {
        update = update.col_expr(K::LastUsedAt, now.into());
        if let Some(ip) = ip {
            update = update.col_expr(K::LastUsedIp, ip.into());
        }
    }
    update.filter(K::Id.eq(id)).exec(db).await?;
    Ok(())
}

/// Counts one use of key `id` in its rate-limit window, or refuses it.
pub(super) async fn count_in_window<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    ip: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    use api_keys::Column as K;
    let window = now.timestamp().div_euclid(WINDOW_SECS);
    // A stored window ahead of ours (another process's clock runs ahead)
    // counts as the current one, so a slow clock cannot reset the count.
    let current = Expr::col(K::RateWindowMinute).gte(window);
    // MySQL/MariaDB evaluate SET assignments left to right with the values
    // already assigned: the count must be set before the window it reads.
    let mut update = api_keys::Entity::update_many()
        .col_expr(
            K::RateWindowCount,
            Expr::case(current.clone(), Expr::col(K::RateWindowCount).add(1))
                .finally(1)
                .into(),
        )
        .col_expr(
            K::RateWindowMinute,
            Expr::case(current, Expr::col(K::RateWindowMinute))
                .finally(window)
                .into(),
        )
        .col_expr(K::UsageCount, Expr::col(K::UsageCount).add(1))
        .col_expr(K::LastUsedAt, now.into());
    if let Some(ip) = ip {
        update = update.col_expr(K::LastUsedIp, ip.into());
    }
    let result = update
        .filter(K::Id.eq(id))
        .filter(
            Condition::any()
                .add(Expr::col(K::RateWindowMinute).lt(window))
                .add(Expr::col(K::RateWindowCount).lt(Expr::col(K::RateLimitPerMinute))),
        )
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        let elapsed = now.timestamp().rem_euclid(WINDOW_SECS);
        return Err(Error::RateLimited {
            retry_after_secs: u64::try_from(WINDOW_SECS - elapsed).unwrap_or(1),
        });
    }
    Ok(())
}
