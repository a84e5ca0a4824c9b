//! Time as the engine sees it. Production uses the system clock; tests inject a clock
//! they can move, so time-dependent rules (stalled heartbeats, misfires, daylight-saving
//! slots) are tested without sleeping.

use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};

/// A source of "now" in UTC.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The database's clock, as a node sees it: its wall clock minus the offset measured
/// against the database (at each lease renewal). Several nodes then agree on "now" even
/// when one's wall clock is off.
#[derive(Debug)]
pub struct DbClock<C: Clock> {
    wall: C,
    /// Wall clock minus the database's, in ms.
    offset_ms: std::sync::atomic::AtomicI64,
}

impl<C: Clock> DbClock<C> {
    pub fn new(wall: C) -> Self {
        DbClock {
            wall,
            offset_ms: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// The wall clock's reading, uncorrected.
    pub fn wall(&self) -> DateTime<Utc> {
        self.wall.now()
    }

    pub fn set_offset_ms(&self, offset: i64) {
        self.offset_ms
            .store(offset, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl<C: Clock> Clock for DbClock<C> {
    fn now(&self) -> DateTime<Utc> {
        self.wall.now() - chrono::Duration::milliseconds(self.offset_ms())
    }
}

/// The wall clock off by a fixed amount: a node whose clock is wrong (chaos tests).
#[derive(Debug, Clone, Copy)]
pub struct SkewedClock(pub chrono::Duration);

impl Clock for SkewedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.0
    }
}

impl Clock for Arc<dyn Clock> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}
