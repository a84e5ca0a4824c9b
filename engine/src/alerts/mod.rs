//! Alerts: the use cases the edges call (channels, rules, checks, pings, incidents) and
//! the leader's alerting work — [`evaluate`] turns the ledger (and the checks' pings, and
//! EchoPilot's own health) into incidents, one open per (rule, subject), written with
//! their deliveries in one transaction; [`deliver_due`] sends what is due through
//! [`send`], one claimed attempt at a time, retried with backoff. Both run on the leader
//! every second; a new leader simply carries on from the store.

mod evaluate;
pub mod send;

use crate::error::{EngineError, Result};
use crate::model::alert::{
    delivery_backoff, Channel, ChannelSpec, Check, CheckSpec, CheckView, DeliveryStatus, Incident,
    Ping, PingKind, Rule, RuleSpec, DELIVERY_ATTEMPTS, PING_BODY_MAX,
};
use crate::store::DeliveryEnd;
use crate::Engine;
use serde::de::DeserializeOwned;
use std::time::Duration;

const CHANNEL: &str = "channel";
const RULE: &str = "rule";
const CHECK: &str = "check";

/// How often the leader evaluates and delivers.
const TICK: Duration = Duration::from_secs(1);
/// How long a claimed attempt is its sender's before another may take it over.
const ATTEMPT_LEASE: chrono::Duration = chrono::Duration::seconds(60);

/// What the alerting work remembers between passes (EchoPilot's own health).
#[derive(Default)]
pub(crate) struct State {
    pub(crate) watchdog_restarts: std::sync::Mutex<Option<u64>>,
    pub(crate) store_down: std::sync::atomic::AtomicBool,
    pub(crate) last_beat: std::sync::Mutex<Option<std::time::Instant>>,
}

fn parse<T: DeserializeOwned>(what: &str, body: &str) -> Result<T> {
    serde_json::from_str(body)
        .map_err(|e| EngineError::Corrupt(format!("alert {what} {body:?}: {e}")))
}

fn invalid(e: crate::model::ValidationError) -> EngineError {
    EngineError::Invalid(e)
}

/// A fresh ping token: 128 random bits, hex.
fn token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .unwrap_or_else(|e| panic!("the OS random number generator is unavailable: {e}"));
    hex::encode(bytes)
}

impl Engine {
    async fn items<T: DeserializeOwned>(&self, what: &str) -> Result<Vec<T>> {
        self.inner
            .store
            .alert_items(what)
            .await?
            .iter()
            .map(|b| parse(what, b))
            .collect()
    }

    async fn put_item<T: serde::Serialize>(
        &self,
        what: &str,
        id: &str,
        item: &T,
        create: bool,
    ) -> Result<()> {
        let body = serde_json::to_string(item).map_err(|e| EngineError::Corrupt(e.to_string()))?;
        if self
            .inner
            .store
            .put_alert_item(what, id, &body, create, self.now())
            .await?
        {
            return Ok(());
        }
        Err(if create {
            EngineError::Conflict(format!("a {what} with id {id:?} already exists"))
        } else {
            EngineError::NotFound(format!("no {what} with id {id:?}"))
        })
    }

    async fn item<T: DeserializeOwned + HasId>(&self, what: &str, id: &str) -> Result<T> {
        self.items::<T>(what)
            .await?
            .into_iter()
            .find(|i| i.id() == id)
            .ok_or_else(|| EngineError::NotFound(format!("no {what} with id {id:?}")))
    }

    async fn delete_item(&self, what: &str, id: &str) -> Result<()> {
        if self.inner.store.delete_alert_item(what, id).await? {
            self.event(
                "alert_config_deleted",
                serde_json::json!({ "what": what, "id": id }),
            );
            Ok(())
        } else {
            Err(EngineError::NotFound(format!("no {what} with id {id:?}")))
        }
    }

    /// Refuses to delete what a rule still uses.
    async fn not_in_use(&self, what: &str, id: &str) -> Result<()> {
        let rules: Vec<Rule> = self.items(RULE).await?;
        let used = rules.iter().find(|r| match what {
            CHANNEL => r.channels.iter().any(|c| c == id),
            _ => r.checks.iter().any(|c| c == id),
        });
        match used {
            Some(r) => Err(EngineError::Conflict(format!(
                "rule {:?} uses {what} {id:?}; change or delete the rule first",
                r.id
            ))),
            None => Ok(()),
        }
    }

    // ---- channels ------------------------------------------------------------------

    /// Every channel, secrets masked.
    pub async fn list_channels(&self) -> Result<Vec<Channel>> {
        Ok(self
            .items::<Channel>(CHANNEL)
            .await?
            .into_iter()
            .map(Channel::shown)
            .collect())
    }

    pub async fn get_channel(&self, id: &str) -> Result<Channel> {
        Ok(self.item::<Channel>(CHANNEL, id).await?.shown())
    }

    pub async fn create_channel(&self, spec: ChannelSpec) -> Result<Channel> {
        let channel = spec.check(None, None).map_err(invalid)?;
        self.put_item(CHANNEL, &channel.id, &channel, true).await?;
        Ok(channel.shown())
    }

    /// Replaces channel `id`; a secret or password left out (or sent masked) is kept.
    pub async fn update_channel(&self, id: &str, spec: ChannelSpec) -> Result<Channel> {
        let stored = self.item::<Channel>(CHANNEL, id).await?;
        let channel = spec.check(Some(id), Some(&stored)).map_err(invalid)?;
        self.put_item(CHANNEL, id, &channel, false).await?;
        Ok(channel.shown())
    }

    pub async fn delete_channel(&self, id: &str) -> Result<()> {
        self.not_in_use(CHANNEL, id).await?;
        self.delete_item(CHANNEL, id).await
    }

    /// Sends a test notice through channel `id` now and answers how it went (not queued:
    /// the operator is waiting for the answer).
    pub async fn test_channel(&self, id: &str) -> Result<send::Attempt> {
        let channel = self.item::<Channel>(CHANNEL, id).await?;
        let now = self.now();
        let body = serde_json::json!({
            "event": "test",
            "incident": null,
            "channel": channel.id,
            "message": format!("a test notice from EchoPilot to channel {}", channel.id),
            "at": now,
        });
        let attempt = send::deliver(&self.inner.outbound, &channel, &body, now).await;
        self.event(
            "alert_channel_tested",
            serde_json::json!({ "channel": id, "ok": attempt.ok(), "code": attempt.code, "error": attempt.error }),
        );
        Ok(attempt)
    }

    // ---- rules ---------------------------------------------------------------------

    pub async fn list_rules(&self) -> Result<Vec<Rule>> {
        self.items(RULE).await
    }

    pub async fn get_rule(&self, id: &str) -> Result<Rule> {
        self.item(RULE, id).await
    }

    async fn check_rule(
        &self,
        spec: RuleSpec,
        id: Option<&str>,
        created: chrono::DateTime<chrono::Utc>,
    ) -> Result<Rule> {
        let channels: Vec<Channel> = self.items(CHANNEL).await?;
        let checks: Vec<Check> = self.items(CHECK).await?;
        let known = |what: &str, id: &str| match what {
            "job" => self.job(id).is_ok(),
            "check" => checks.iter().any(|c| c.id == id),
            _ => channels.iter().any(|c| c.id == id),
        };
        spec.check(id, created, &known).map_err(invalid)
    }

    pub async fn create_rule(&self, spec: RuleSpec) -> Result<Rule> {
        let rule = self.check_rule(spec, None, self.now()).await?;
        self.put_item(RULE, &rule.id, &rule, true).await?;
        Ok(rule)
    }

    pub async fn update_rule(&self, id: &str, spec: RuleSpec) -> Result<Rule> {
        let stored: Rule = self.item(RULE, id).await?;
        let rule = self.check_rule(spec, Some(id), stored.created_at).await?;
        self.put_item(RULE, id, &rule, false).await?;
        Ok(rule)
    }

    pub async fn delete_rule(&self, id: &str) -> Result<()> {
        self.delete_item(RULE, id).await
    }

    // ---- incidents -----------------------------------------------------------------

    /// Open incidents first, then the most recent, each with its deliveries.
    pub async fn list_incidents(&self, limit: u32) -> Result<Vec<Incident>> {
        self.inner.store.list_incidents(limit).await
    }

    // ---- inbound checks ------------------------------------------------------------

    fn view(&self, check: Check, last: &[(String, Ping)]) -> CheckView {
        let newest = |kind: PingKind| {
            last.iter()
                .filter(|(c, p)| *c == check.id && p.kind == kind)
                .map(|(_, p)| p.at)
                .max()
        };
        let (state, due_at) = check.state(
            newest(PingKind::Success),
            newest(PingKind::Fail),
            self.now(),
        );
        let last_ping = last
            .iter()
            .filter(|(c, _)| *c == check.id)
            .map(|(_, p)| p.clone())
            .max_by_key(|p| p.at);
        CheckView {
            ping_url: format!("/ping/{}", check.token),
            check,
            state,
            due_at,
            last_ping,
            pings: None,
        }
    }

    /// Every check with its state.
    pub async fn list_checks(&self) -> Result<Vec<CheckView>> {
        let last = self.inner.store.last_pings().await?;
        Ok(self
            .items::<Check>(CHECK)
            .await?
            .into_iter()
            .map(|c| self.view(c, &last))
            .collect())
    }

    /// One check with its state and its newest pings.
    pub async fn get_check(&self, id: &str) -> Result<(CheckView, Vec<Ping>)> {
        let check: Check = self.item(CHECK, id).await?;
        let last = self.inner.store.last_pings().await?;
        let pings = self.inner.store.pings(id, 50).await?;
        Ok((self.view(check, &last), pings))
    }

    pub async fn create_check(&self, spec: CheckSpec) -> Result<CheckView> {
        let check = spec.check(None, None, token, self.now()).map_err(invalid)?;
        self.put_item(CHECK, &check.id, &check, true).await?;
        Ok(self.view(check, &[]))
    }

    pub async fn update_check(&self, id: &str, spec: CheckSpec) -> Result<CheckView> {
        let stored: Check = self.item(CHECK, id).await?;
        let check = spec
            .check(Some(id), Some(&stored), token, self.now())
            .map_err(invalid)?;
        self.put_item(CHECK, id, &check, false).await?;
        let last = self.inner.store.last_pings().await?;
        Ok(self.view(check, &last))
    }

    pub async fn delete_check(&self, id: &str) -> Result<()> {
        self.not_in_use(CHECK, id).await?;
        self.delete_item(CHECK, id).await
    }

    /// Records a ping of the check whose token is `token`: `NotFound` for any other
    /// token. Tokens are compared by their SHA-256, so how long the answer takes says
    /// nothing about how much of a guess was right.
    pub async fn ping(
        &self,
        token: &str,
        kind: PingKind,
        body: &[u8],
        source: Option<String>,
    ) -> Result<()> {
        use sha2::Digest;
        let wanted = sha2::Sha256::digest(token.as_bytes());
        let checks: Vec<Check> = self.items(CHECK).await?;
        let found = checks
            .iter()
            .find(|c| sha2::Sha256::digest(c.token.as_bytes()) == wanted)
            .ok_or_else(|| EngineError::NotFound("no such check".into()))?;
        let body = (!body.is_empty()).then(|| {
            let cut = body.len().min(PING_BODY_MAX);
            String::from_utf8_lossy(&body[..cut]).into_owned()
        });
        let ping = Ping {
            at: self.now(),
            kind,
            body: body.map(|b| crate::secrets::scrub_urls(&b)),
            source,
        };
        self.inner.store.record_ping(&found.id, &ping).await
    }

    // ---- the leader's work -----------------------------------------------------------

    /// One pass of alerting at the engine's clock: incidents opened, reminded and closed
    /// from the ledger, the checks and EchoPilot's own health. Tests with an injected
    /// clock call this; the leader does every second.
    pub async fn evaluate_alerts(&self) -> Result<()> {
        evaluate::pass(self).await
    }

    /// Sends every delivery due at the engine's clock (each attempt claimed first, so no
    /// two nodes send the same one); answers how many attempts were made.
    pub async fn deliver_alerts(&self) -> Result<usize> {
        let now = self.now();
        let due = self.inner.store.due_deliveries(now, 50).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let channels: Vec<Channel> = self.items(CHANNEL).await?;
        let mut attempts = Vec::new();
        for d in due {
            if !self
                .inner
                .store
                .claim_delivery(d.id, now, now + ATTEMPT_LEASE)
                .await?
            {
                continue;
            }
            let channel = channels.iter().find(|c| c.id == d.channel).cloned();
            let outbound = self.inner.outbound.clone();
            attempts.push(async move {
                let attempt = match &channel {
                    Some(c) => send::deliver(&outbound, c, &d.body, now).await,
                    None => send::Attempt {
                        code: None,
                        error: Some(format!("channel {:?} no longer exists", d.channel)),
                    },
                };
                (d, channel.is_some(), attempt)
            });
        }
        let made = attempts.len();
        // Concurrently: one slow endpoint does not hold up the others.
        for (d, exists, attempt) in futures_util::future::join_all(attempts).await {
            let tried = d.attempts + 1;
            let status = if attempt.ok() {
                DeliveryStatus::Sent
            } else if tried >= DELIVERY_ATTEMPTS || !exists {
                DeliveryStatus::Failed
            } else {
                DeliveryStatus::Pending
            };
            let end_at = self.now();
            let end = DeliveryEnd {
                id: d.id,
                status,
                next_at: end_at + delivery_backoff(tried),
                done_at: (status != DeliveryStatus::Pending).then_some(end_at),
                code: attempt.code,
                error: attempt.error.as_deref(),
            };
            self.inner.store.finish_delivery(&end).await?;
            self.event(
                "alert_delivery",
                serde_json::json!({ "delivery": d.id, "channel": d.channel, "status": status.as_str(), "attempt": tried, "code": attempt.code, "error": attempt.error }),
            );
        }
        Ok(made)
    }
}

/// What has an id among the alert items.
trait HasId {
    fn id(&self) -> &str;
}

impl HasId for Channel {
    fn id(&self) -> &str {
        &self.id
    }
}
impl HasId for Rule {
    fn id(&self) -> &str {
        &self.id
    }
}
impl HasId for Check {
    fn id(&self) -> &str {
        &self.id
    }
}

/// The leader's alerting loop, on every node (it acts only while the node leads): a pass
/// and the due deliveries every second, and the outbound heartbeat when one is set.
pub(crate) async fn run(engine: Engine) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = engine.inner.shutdown.cancelled() => return,
        }
        evaluate::heartbeat(&engine).await;
        if !engine.inner.notifier.is_leader() {
            continue;
        }
        if let Err(e) = engine.evaluate_alerts().await {
            tracing::warn!(error = %crate::error::chain(&e), "alert evaluation failed; tried again in a second");
        }
        if let Err(e) = engine.deliver_alerts().await {
            tracing::warn!(error = %crate::error::chain(&e), "alert delivery failed; tried again in a second");
        }
    }
}
