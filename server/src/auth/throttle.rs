//! Throttling key guesses: per client (all of loopback one client, IPv6 by /64) and for
//! everyone together; lock-outs that grow and always end.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bad keys allowed per client address within [`FAILURE_WINDOW`] before a lock-out...
const ADDRESS_FAILURES: u32 = 10;
/// ...and from all addresses together, so many addresses cannot guess in parallel.
const GLOBAL_FAILURES: u32 = 100;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// The first lock-out; each next one doubles, up to [`MAX_LOCKOUT`].
const FIRST_LOCKOUT: Duration = Duration::from_secs(60);
const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// After this long without a failure, past lock-outs are forgotten.
const FORGIVE_AFTER: Duration = Duration::from_secs(3600);

/// Where failures are counted: one address, except that all of loopback is one client
/// (every 127.x.y.z reaches us from the same machine) and an IPv6 client is its /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    Loopback,
    V4(std::net::Ipv4Addr),
    V6Prefix(u64),
}

fn bucket(ip: IpAddr) -> Bucket {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Bucket::Loopback,
        IpAddr::V4(v4) => Bucket::V4(v4),
        IpAddr::V6(v6) if v6.is_loopback() => Bucket::Loopback,
        IpAddr::V6(v6) => Bucket::V6Prefix((u128::from(v6) >> 64) as u64),
    }
}

/// Failures and lock-outs of one bucket.
#[derive(Debug, Default, Clone, Copy)]
struct Strikes {
    window_start: Option<Instant>,
    failures: u32,
    locked_until: Option<Instant>,
    lockouts: u32,
    last_failure: Option<Instant>,
}

impl Strikes {
    fn locked(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .and_then(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    fn fail(&mut self, now: Instant, limit: u32) {
        if self
            .last_failure
            .is_some_and(|t| now.duration_since(t) >= FORGIVE_AFTER)
        {
            *self = Strikes::default();
        }
        self.last_failure = Some(now);
        if self
            .window_start
            .is_none_or(|t| now.duration_since(t) >= FAILURE_WINDOW)
        {
            self.window_start = Some(now);
            self.failures = 0;
        }
        self.failures += 1;
        if self.failures >= limit {
            let lockout = FIRST_LOCKOUT
                .saturating_mul(1 << self.lockouts.min(10))
                .min(MAX_LOCKOUT);
            self.locked_until = Some(now + lockout);
            self.lockouts += 1;
            self.failures = 0;
            self.window_start = None;
        }
    }
}

/// Throttles key guessing. While a client (or everyone, past the global limit) is locked
/// out, no key is even compared: the answer is 429 with `Retry-After`, so a throttled
/// client learns nothing. Lock-outs grow (1, 2, 4 ... 15 minutes) but always end: the
/// operator is never locked out for good, and a browser session keeps working throughout.
#[derive(Default)]
pub struct Throttle {
    /// A std mutex: every access is a few map operations, never held across an await.
    state: Mutex<ThrottleState>,
}

#[derive(Default)]
struct ThrottleState {
    buckets: HashMap<Bucket, Strikes>,
    global: Strikes,
}

impl Throttle {
    /// Seconds to wait, when `ip` (or everyone) is locked out.
    pub fn retry_after(&self, ip: IpAddr) -> Option<u64> {
        self.retry_after_at(ip, Instant::now())
    }

    fn retry_after_at(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mine = s.buckets.get(&bucket(ip)).and_then(|b| b.locked(now));
        let wait = mine.max(s.global.locked(now))?;
        Some(wait.as_secs_f64().ceil().max(1.0) as u64)
    }

    pub fn record_failure(&self, ip: IpAddr) {
        self.record_failure_at(ip, Instant::now());
    }

    fn record_failure_at(&self, ip: IpAddr, now: Instant) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.buckets
            .entry(bucket(ip))
            .or_default()
            .fail(now, ADDRESS_FAILURES);
        s.global.fail(now, GLOBAL_FAILURES);
        if s.buckets.len() > 10_000 {
            s.buckets.retain(|_, b| {
                b.last_failure
                    .is_some_and(|t| now.duration_since(t) < FORGIVE_AFTER)
            });
        }
    }

    /// A right key from `ip`: its own strikes are forgotten.
    pub fn record_success(&self, ip: IpAddr) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.buckets.remove(&bucket(ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockouts_grow_end_and_count_all_of_loopback_as_one_client() {
        let t = Throttle::default();
        let start = Instant::now();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.9.9.9".parse().unwrap();
        let six: IpAddr = "::1".parse().unwrap();
        for _ in 0..ADDRESS_FAILURES {
            assert_eq!(t.retry_after_at(a, start), None);
            t.record_failure_at(a, start);
        }
        assert_eq!(t.retry_after_at(a, start), Some(60));
        assert_eq!(t.retry_after_at(b, start), Some(60), "127/8 is one client");
        assert_eq!(t.retry_after_at(six, start), Some(60), "so is ::1");
        let other: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(t.retry_after_at(other, start), None);
        // The lock-out ends: the operator gets back in.
        let later = start + Duration::from_secs(61);
        assert_eq!(t.retry_after_at(a, later), None);
        // The next one is twice as long, and so on, up to the cap.
        let mut now = later;
        let mut seen = Vec::new();
        for _ in 0..6 {
            for _ in 0..ADDRESS_FAILURES {
                t.record_failure_at(a, now);
            }
            let wait = t.retry_after_at(a, now).unwrap();
            seen.push(wait);
            now += Duration::from_secs(wait + 1);
            assert_eq!(t.retry_after_at(a, now), None, "never for good");
        }
        assert_eq!(seen, vec![120, 240, 480, 900, 900, 900]);
        // A right key forgets the address's strikes.
        t.record_success(a);
        t.record_failure_at(a, now);
        assert_eq!(t.retry_after_at(a, now), None);
    }

    #[test]
    fn many_addresses_guessing_together_lock_everyone_out_for_a_while() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..GLOBAL_FAILURES {
            // Nine guesses per address: each stays under its own limit.
            let ip = IpAddr::from([198, 51, (i / 9 / 250) as u8, (i / 9 % 250) as u8 + 1]);
            t.record_failure_at(ip, now);
        }
        let fresh: IpAddr = "203.0.113.1".parse().unwrap();
        assert_eq!(t.retry_after_at(fresh, now), Some(60));
        assert_eq!(t.retry_after_at(fresh, now + Duration::from_secs(61)), None);
    }
}
