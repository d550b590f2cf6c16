//! The `status` reply (PROTOCOL.md §8, §10.6, §10.8): what a server says
//! about itself, and a mirror's audit.

use super::{field, line, text, uint, DecodeError, Id, PROTOCOL};
use crate::codec::{b64_decode_exact, b64_encode};
use crate::head::{Evidence, SignedHead};
use crate::merkle::Hash;
use serde_json::{json, Map, Value};

/// What kind of server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerRole {
    /// The Quorum.
    Quorum,
    /// A mirror.
    Mirror,
}

impl ServerRole {
    /// The role as status spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerRole::Quorum => "quorum",
            ServerRole::Mirror => "mirror",
        }
    }
}

/// A mirror's upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamStatus {
    /// `HOST:PORT` it replicates from.
    pub addr: String,
    /// Whether a subscription is up.
    pub connected: bool,
    /// Why the mirror does not replicate from it, if it does not (it is
    /// behind the mirror); absent on the wire when none.
    pub alarm: Option<String>,
    /// Records the upstream holds that the mirror does not yet.
    pub lag_records: u64,
    /// Seconds since the mirror last held everything its upstream had (0
    /// while it does).
    pub lag_secs: u64,
}

/// How long the server has run and what it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Runtime {
    /// Seconds since it started.
    pub uptime: u64,
    /// Open connections, subscribers included.
    pub connections: u64,
}

/// The state of a mirror's audit (PROTOCOL.md §10.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditState {
    /// No head audited yet.
    None,
    /// The newest audited head matched.
    Ok,
    /// The newest audited head did not match.
    Alarm,
}

impl AuditState {
    /// The state as status spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditState::None => "none",
            AuditState::Ok => "ok",
            AuditState::Alarm => "alarm",
        }
    }

    /// The state spelled `text`.
    fn parse(text: &str) -> Option<AuditState> {
        [AuditState::None, AuditState::Ok, AuditState::Alarm]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A head that did not match, with what the mirror computed instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The head.
    pub head: SignedHead,
    /// The root the mirror computed.
    pub root: Hash,
    /// The size the mirror computed.
    pub size: u64,
}

/// A mirror's audit, as status reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditStatus {
    /// none, ok or alarm.
    pub state: AuditState,
    /// The current head: the newest that matched.
    pub matched: Option<SignedHead>,
    /// Heads audited since the mirror started.
    pub checked: u64,
    /// Of those, how many did not match.
    pub mismatches: u64,
    /// The newest head that did not match.
    pub last_mismatch: Option<Mismatch>,
    /// The first equivocation evidence seen.
    pub evidence: Option<Evidence>,
}

/// How long the server's heads took: at the Quorum from a decided batch to
/// its head signed and durable, at a mirror each audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeadTiming {
    /// Heads timed since start.
    pub count: u64,
    /// Their microseconds, summed.
    pub total_us: u64,
    /// The longest, in microseconds.
    pub max_us: u64,
}

/// A witness's own record, as status reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessStatus {
    /// Its public key, Base64.
    pub key: String,
    /// The last head it cosigned.
    pub last: Option<SignedHead>,
    /// The time of its newest cosignature of that head.
    pub at: u64,
    /// Cosignatures made since start.
    pub made: u64,
    /// Heads refused since start.
    pub refused: u64,
    /// Why it refused or stopped, if it did.
    pub alarm: Option<String>,
    /// Evidence files written.
    pub evidence: Vec<String>,
}

/// Cosignatures at a server, as status reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignStatus {
    /// Cosignatures a head needs before a mirror answers with it.
    pub needed: u64,
    /// Cosignatures held for the current head.
    pub current: u64,
    /// At a witness, its own record.
    pub witness: Option<WitnessStatus>,
}

/// A server's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Quorum or mirror.
    pub role: ServerRole,
    /// The program's version.
    pub version: String,
    /// The protocol version (2).
    pub protocol: u64,
    /// Highest seq applied.
    pub seq: u64,
    /// The newest head the server holds.
    pub head: Option<SignedHead>,
    /// Live records at the server's clock.
    pub records: u64,
    /// Current subscribers.
    pub subscribers: u64,
    /// Least proof of work accepted.
    pub min_work: u64,
    /// Base64 Quorum keys it signs with or trusts.
    pub quorum_keys: Vec<String>,
    /// A mirror's upstream.
    pub upstream: Option<UpstreamStatus>,
    /// A mirror's audit.
    pub audit: Option<AuditStatus>,
    /// How long heads took (an addition of this implementation).
    pub head_timing: Option<HeadTiming>,
    /// Witnesses' cosignatures (PROTOCOL.md §11), when the server
    /// collects them or is a witness.
    pub cosignatures: Option<CosignStatus>,
    /// Uptime and connections (an addition of this implementation).
    pub runtime: Option<Runtime>,
}

impl Status {
    /// The status reply line for request `id`.
    pub fn to_line(&self, id: &Id) -> Vec<u8> {
        let mut value = json!({
            "type": "status",
            "id": id.to_value(),
            "role": self.role.as_str(),
            "version": self.version,
            "protocol": self.protocol,
            "seq": self.seq,
            "head": self.head.as_ref().map(SignedHead::to_value),
            "records": self.records,
            "subscribers": self.subscribers,
            "min_work": self.min_work,
            "quorum_keys": self.quorum_keys,
        });
        if let Some(upstream) = &self.upstream {
            value["upstream"] = json!({
                "addr": upstream.addr,
                "connected": upstream.connected,
                "lag_records": upstream.lag_records,
                "lag_secs": upstream.lag_secs,
            });
            if let Some(alarm) = &upstream.alarm {
                value["upstream"]["alarm"] = alarm.as_str().into();
            }
        }
        if let Some(audit) = &self.audit {
            value["audit"] = audit.to_value();
        }
        if let Some(t) = &self.head_timing {
            value["head_timing"] =
                json!({"count": t.count, "total_us": t.total_us, "max_us": t.max_us});
        }
        if let Some(r) = &self.runtime {
            value["runtime"] = json!({"uptime": r.uptime, "connections": r.connections});
        }
        if let Some(c) = &self.cosignatures {
            value["cosignatures"] = json!({
                "needed": c.needed,
                "current": c.current,
                "witness": c.witness.as_ref().map(|w| json!({
                    "key": w.key,
                    "last": w.last.as_ref().map(SignedHead::to_value),
                    "at": w.at,
                    "made": w.made,
                    "refused": w.refused,
                    "alarm": w.alarm,
                    "evidence": w.evidence,
                })),
            });
        }
        line(&value)
    }

    /// Parses the fields of a status reply.
    pub(super) fn from_map(map: &Map<String, Value>) -> Result<Status, DecodeError> {
        let role = match text(map, "role")? {
            "quorum" => ServerRole::Quorum,
            "mirror" => ServerRole::Mirror,
            other => return Err(DecodeError::Shape(format!("unknown role {other:?}"))),
        };
        let protocol = uint(map, "protocol")?;
        if protocol != PROTOCOL {
            return Err(DecodeError::Shape(format!(
                "the server speaks protocol {protocol}, this program {PROTOCOL}"
            )));
        }
        let keys = field(map, "quorum_keys")?
            .as_array()
            .ok_or_else(|| DecodeError::Shape("quorum_keys must be an array".into()))?;
        Ok(Status {
            role,
            version: text(map, "version")?.to_owned(),
            protocol,
            seq: uint(map, "seq")?,
            head: optional(map.get("head"), head_of)?,
            records: uint(map, "records")?,
            subscribers: uint(map, "subscribers")?,
            min_work: uint(map, "min_work")?,
            quorum_keys: keys
                .iter()
                .map(|k| k.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| DecodeError::Shape("quorum_keys must hold strings".into()))?,
            upstream: optional(map.get("upstream"), upstream_of)?,
            audit: optional(map.get("audit"), AuditStatus::from_value)?,
            head_timing: optional(map.get("head_timing"), timing_of)?,
            cosignatures: optional(map.get("cosignatures"), cosign_of)?,
            runtime: optional(map.get("runtime"), runtime_of)?,
        })
    }
}

impl std::fmt::Display for Status {
    /// The status as JSON, for messages and logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(String::from_utf8_lossy(&self.to_line(&Id::Null)).trim_end())
    }
}

impl AuditStatus {
    /// The audit as JSON.
    pub fn to_value(&self) -> Value {
        json!({
            "state": self.state.as_str(),
            "matched": self.matched.as_ref().map(SignedHead::to_value),
            "checked": self.checked,
            "mismatches": self.mismatches,
            "last_mismatch": self.last_mismatch.as_ref().map(|m| json!({
                "head": m.head.to_value(),
                "root": b64_encode(&m.root),
                "size": m.size,
            })),
            "evidence": self.evidence.as_ref().map(Evidence::to_value),
        })
    }

    /// Parses an audit object.
    fn from_value(value: &Value) -> Result<AuditStatus, DecodeError> {
        let map = as_map(value, "audit")?;
        let state = text(map, "state")?;
        Ok(AuditStatus {
            state: AuditState::parse(state)
                .ok_or_else(|| DecodeError::Shape(format!("unknown audit state {state:?}")))?,
            matched: optional(map.get("matched"), head_of)?,
            checked: uint(map, "checked")?,
            mismatches: uint(map, "mismatches")?,
            last_mismatch: optional(map.get("last_mismatch"), mismatch_of)?,
            evidence: optional(map.get("evidence"), |v| {
                Evidence::from_value(v).map_err(DecodeError::Head)
            })?,
        })
    }
}

/// `value` as an object, or a shape error naming `what`.
fn as_map<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, DecodeError> {
    value
        .as_object()
        .ok_or_else(|| DecodeError::Shape(format!("{what} must be an object")))
}

/// A field that may be absent or null.
fn optional<T>(
    value: Option<&Value>,
    parse: impl Fn(&Value) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse(v).map(Some),
    }
}

/// A head object.
fn head_of(value: &Value) -> Result<SignedHead, DecodeError> {
    SignedHead::from_value(value).map_err(DecodeError::Head)
}

/// An upstream object.
fn upstream_of(value: &Value) -> Result<UpstreamStatus, DecodeError> {
    let map = as_map(value, "upstream")?;
    Ok(UpstreamStatus {
        addr: text(map, "addr")?.to_owned(),
        connected: field(map, "connected")?
            .as_bool()
            .ok_or_else(|| DecodeError::Shape("connected must be true or false".into()))?,
        alarm: optional(map.get("alarm"), |v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| DecodeError::Shape("alarm must be a string".into()))
        })?,
        lag_records: optional(map.get("lag_records"), count)?.unwrap_or(0),
        lag_secs: optional(map.get("lag_secs"), count)?.unwrap_or(0),
    })
}

/// A non-negative integer.
fn count(value: &Value) -> Result<u64, DecodeError> {
    value
        .as_u64()
        .ok_or_else(|| DecodeError::Shape("expected a non-negative integer".into()))
}

/// A `runtime` object.
fn runtime_of(value: &Value) -> Result<Runtime, DecodeError> {
    let map = as_map(value, "runtime")?;
    Ok(Runtime {
        uptime: uint(map, "uptime")?,
        connections: uint(map, "connections")?,
    })
}

/// A `head_timing` object.
fn timing_of(value: &Value) -> Result<HeadTiming, DecodeError> {
    let map = as_map(value, "head_timing")?;
    Ok(HeadTiming {
        count: uint(map, "count")?,
        total_us: uint(map, "total_us")?,
        max_us: uint(map, "max_us")?,
    })
}

/// A `last_mismatch` object.
fn mismatch_of(value: &Value) -> Result<Mismatch, DecodeError> {
    let map = as_map(value, "last_mismatch")?;
    Ok(Mismatch {
        head: head_of(field(map, "head")?)?,
        root: b64_decode_exact::<32>(text(map, "root")?)
            .ok_or_else(|| DecodeError::Shape("root must be Base64 of 32 bytes".into()))?,
        size: uint(map, "size")?,
    })
}

/// A `cosignatures` object.
fn cosign_of(value: &Value) -> Result<CosignStatus, DecodeError> {
    let map = as_map(value, "cosignatures")?;
    Ok(CosignStatus {
        needed: uint(map, "needed")?,
        current: uint(map, "current")?,
        witness: optional(map.get("witness"), witness_of)?,
    })
}

/// A `witness` object.
fn witness_of(value: &Value) -> Result<WitnessStatus, DecodeError> {
    let map = as_map(value, "witness")?;
    let strings = field(map, "evidence")?
        .as_array()
        .and_then(|a| {
            a.iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| DecodeError::Shape("evidence must be an array of strings".into()))?;
    Ok(WitnessStatus {
        key: text(map, "key")?.to_owned(),
        last: optional(map.get("last"), head_of)?,
        at: uint(map, "at")?,
        made: uint(map, "made")?,
        refused: uint(map, "refused")?,
        alarm: optional(map.get("alarm"), |v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| DecodeError::Shape("alarm must be a string".into()))
        })?,
        evidence: strings,
    })
}
