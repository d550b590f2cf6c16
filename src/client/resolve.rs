//! Turning a `.tor` name into an onion address the client may use: a cache
//! of verified answers, and mirrors asked in turn, with a mirror that lied
//! set aside for a while.
//!
//! Every answer comes from [`crate::lookup::lookup`], which returns only
//! answers that passed PROTOCOL.md §9 and §10.7 for the name asked; nothing
//! here weakens that. A cached answer is used only while it is fresh: its
//! head (or, with witnesses required, the k-th newest trusted cosignature
//! of it) younger than `max_head_age`. A mirror that answered with a head
//! too old, or short of cosignatures, is behind, not lying: the next one is
//! asked. This module does not talk
//! to Tor's control port.

use crate::lookup::{self, Answer, LookupError, Policy, Resolution};
use crate::name::{LookupName, RegisteredName};
use crate::onion::OnionAddress;
use crate::transport::{Endpoint, Route};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Why a name could not be resolved.
#[derive(Debug)]
pub enum ResolveError {
    /// A mirror proved the name is not registered.
    NotFound,
    /// The name's record expired.
    Expired,
    /// The record is genuine but lacks the subdomain asked for.
    NoSubdomain(String),
    /// No mirror gave a usable answer; each reason is listed.
    NoMirror(Vec<String>),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::NotFound => write!(f, "not registered (proven absent)"),
            ResolveError::Expired => write!(f, "its record has expired"),
            ResolveError::NoSubdomain(sub) => write!(f, "the record has no subdomain {sub:?}"),
            ResolveError::NoMirror(reasons) if reasons.is_empty() => {
                write!(f, "every mirror is set aside for lying; none to ask")
            }
            ResolveError::NoMirror(reasons) => {
                write!(f, "no mirror answered usably: {}", reasons.join("; "))
            }
        }
    }
}

impl std::error::Error for ResolveError {}

/// What a resolver is set up with.
pub struct ResolverConfig {
    /// Mirrors to ask, in order of preference.
    pub mirrors: Vec<Endpoint>,
    /// Through Tor or direct.
    pub route: Route,
    /// The checks every answer must pass.
    pub policy: Policy,
    /// How long to wait for one mirror.
    pub timeout: Duration,
    /// How long a mirror that lied is not asked.
    pub quarantine: Duration,
    /// Most names cached.
    pub cache_size: usize,
}

/// A verified answer kept until its record expires or it grows stale.
struct Cached {
    answer: Answer,
}

/// Resolves names; shared by the daemon's lookup threads.
pub struct Resolver {
    config: ResolverConfig,
    cache: Mutex<HashMap<RegisteredName, Cached>>,
    benched: Mutex<HashMap<usize, Instant>>,
    next: AtomicUsize,
}

/// Where an answer came from, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The cache.
    Cache,
    /// This mirror.
    Mirror(String),
}

impl Resolver {
    /// A resolver with an empty cache.
    pub fn new(config: ResolverConfig) -> Resolver {
        Resolver {
            config,
            cache: Mutex::new(HashMap::new()),
            benched: Mutex::new(HashMap::new()),
            next: AtomicUsize::new(0),
        }
    }

    /// The onion address `name` points to, from the cache or a mirror.
    pub fn resolve(
        &self,
        name: &LookupName,
        now: u64,
    ) -> Result<(OnionAddress, Source), ResolveError> {
        if let Some(target) = self.cached(name, now)? {
            return Ok((target, Source::Cache));
        }
        let mut reasons = Vec::new();
        for index in self.mirror_order() {
            let mirror = &self.config.mirrors[index];
            match lookup::lookup(
                mirror,
                self.config.route,
                name,
                &self.config.policy,
                now,
                self.config.timeout,
            ) {
                Ok(Resolution::Found(answer)) => {
                    let target = answer.target;
                    self.remember(answer);
                    return Ok((target, Source::Mirror(mirror.to_string())));
                }
                Ok(Resolution::Absent(_)) => return Err(ResolveError::NotFound),
                Ok(Resolution::Expired(_)) => return Err(ResolveError::Expired),
                Err(LookupError::NoSubdomain(sub)) => return Err(ResolveError::NoSubdomain(sub)),
                Err(e) if e.server_lied() => {
                    log::warn!(
                        "mirror {mirror} lied about {name} ({e}); not asking it for {} s",
                        self.config.quarantine.as_secs()
                    );
                    self.benched
                        .lock()
                        .insert(index, Instant::now() + self.config.quarantine);
                    reasons.push(format!("{mirror}: {e}"));
                }
                Err(e) => {
                    log::info!("mirror {mirror} did not answer for {name}: {e}");
                    reasons.push(format!("{mirror}: {e}"));
                }
            }
        }
        Err(ResolveError::NoMirror(reasons))
    }

    /// Mirrors not set aside, starting with the next in turn.
    fn mirror_order(&self) -> Vec<usize> {
        let count = self.config.mirrors.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count.max(1);
        let now = Instant::now();
        let mut benched = self.benched.lock();
        benched.retain(|_, until| *until > now);
        (0..count)
            .map(|i| (start + i) % count)
            .filter(|i| !benched.contains_key(i))
            .collect()
    }

    /// A cached answer for `name`'s registered name whose record has not
    /// expired and that is still fresh enough.
    fn cached(&self, name: &LookupName, now: u64) -> Result<Option<OnionAddress>, ResolveError> {
        let mut cache = self.cache.lock();
        let registered = name.registered();
        let Some(entry) = cache.get(&registered) else {
            return Ok(None);
        };
        let age = now.saturating_sub(entry.answer.fresh_as_of);
        if entry.answer.record.expires <= now || age > self.config.policy.max_head_age {
            cache.remove(&registered);
            return Ok(None);
        }
        let record = &entry.answer.record;
        match name.subdomain() {
            None => Ok(Some(record.onion)),
            Some(sub) => record
                .subdomains
                .get(&sub)
                .map(|onion| Some(*onion))
                .ok_or_else(|| ResolveError::NoSubdomain(sub.to_string())),
        }
    }

    /// Caches an answer; when full, drops the entry that goes stale or
    /// expires first.
    fn remember(&self, answer: Answer) {
        let mut cache = self.cache.lock();
        if cache.len() >= self.config.cache_size && !cache.contains_key(&answer.record.name) {
            let soonest = cache
                .iter()
                .min_by_key(|(_, c)| c.answer.fresh_as_of.min(c.answer.record.expires))
                .map(|(name, _)| name.clone());
            if let Some(name) = soonest {
                cache.remove(&name);
            }
        }
        cache.insert(answer.record.name.clone(), Cached { answer });
    }
}
