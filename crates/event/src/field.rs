//! Field access by name and correlation keys, without serialising the event.
//!
//! Subscription filters compare named fields (`action = "failed_password"`) and correlation keys
//! (a pid, an IP address) on every publish. Walking the typed payload directly keeps that to a
//! match and a string compare instead of a JSON round trip.

use std::{fmt, net::IpAddr};

use crate::{Event, Payload, Value};

/// A borrowed view of one field's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    /// Text.
    Str(&'a str),
    /// An unsigned integer.
    UInt(u64),
    /// An IP address.
    Ip(IpAddr),
    /// Any JSON value (finding data, audit values, enrichment fields).
    Json(&'a Value),
}

impl FieldValue<'_> {
    /// Whether the value equals `expected`, written as text (numbers and addresses compare by
    /// value, so `"22"` matches the port 22 and `"::1"` matches `0:0:0:0:0:0:0:1`).
    pub fn matches(&self, expected: &str) -> bool {
        match *self {
            FieldValue::Str(s) => s == expected,
            FieldValue::UInt(n) => expected.parse::<u64>().is_ok_and(|it| it == n),
            FieldValue::Ip(ip) => expected.parse::<IpAddr>().is_ok_and(|it| it == ip),
            FieldValue::Json(Value::String(s)) => s == expected,
            FieldValue::Json(Value::Number(n)) => {
                n.to_string() == expected
                    || expected.parse::<f64>().ok().zip(n.as_f64()).is_some_and(|(a, b)| a == b)
            }
            FieldValue::Json(Value::Bool(b)) => expected.parse::<bool>().is_ok_and(|it| it == *b),
            // Arrays, objects and null compare by their JSON text; serde_json's `Value == str`
            // would only ever match strings.
            #[allow(clippy::cmp_owned)]
            FieldValue::Json(other) => other.to_string() == expected,
        }
    }
}

impl fmt::Display for FieldValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Str(s) => f.write_str(s),
            FieldValue::UInt(n) => write!(f, "{n}"),
            FieldValue::Ip(ip) => write!(f, "{ip}"),
            FieldValue::Json(Value::String(s)) => f.write_str(s),
            FieldValue::Json(v) => write!(f, "{v}"),
        }
    }
}

impl Event {
    /// The value of a named field: an envelope field (`host`, `source`, `kind`, `severity`), a
    /// payload field (`action`, `user`, `ip`, `pid`, `name`, `state`, …), a finding's data key,
    /// an audit column or an enrichment field, looked up in that order.
    pub fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        let envelope = match name {
            "host" => Some(FieldValue::Str(&self.host)),
            "source" => Some(FieldValue::Str(&self.source)),
            "kind" => Some(FieldValue::Str(self.kind().as_str())),
            "severity" => Some(FieldValue::Str(self.severity.as_str())),
            _ => None,
        };
        envelope
            .or_else(|| payload_field(&self.payload, name))
            .or_else(|| self.enrichment.fields.get(name).map(FieldValue::Json))
    }

    /// The process id this event is about, if any (a correlation key).
    pub fn pid(&self) -> Option<u32> {
        match &self.payload {
            Payload::Process(it) => Some(it.process.pid),
            Payload::Connection(it) => it.pid,
            Payload::Log(it) => it.pid,
            Payload::Finding(it) => it.data.get("pid").and_then(Value::as_u64).map(|it| it as u32),
            _ => None,
        }
    }

    /// The remote IP address this event is about, if any (a correlation key).
    pub fn ip(&self) -> Option<IpAddr> {
        match &self.payload {
            Payload::Connection(it) => Some(it.remote.ip()),
            Payload::Log(it) => it.ip,
            Payload::Finding(it) => {
                it.data.get("ip").and_then(Value::as_str).and_then(|it| it.parse().ok())
            }
            Payload::Audit(it) => {
                it.get("ip").and_then(Value::as_str).and_then(|it| it.parse().ok())
            }
            _ => None,
        }
    }
}

fn payload_field<'a>(payload: &'a Payload, name: &str) -> Option<FieldValue<'a>> {
    let str_opt = |it: &'a Option<String>| it.as_deref().map(FieldValue::Str);
    match payload {
        Payload::Log(log) => match name {
            "action" => str_opt(&log.action),
            "user" => str_opt(&log.user),
            "service" => str_opt(&log.service),
            "level" => str_opt(&log.level),
            "log_source" => Some(FieldValue::Str(&log.source)),
            "message" => Some(FieldValue::Str(&log.message)),
            "ip" => log.ip.map(FieldValue::Ip),
            "port" => log.port.map(|it| FieldValue::UInt(it.into())),
            "pid" => log.pid.map(|it| FieldValue::UInt(it.into())),
            "host" => str_opt(&log.host),
            "method" => str_opt(&log.method),
            "protocol" => str_opt(&log.protocol),
            "path" => str_opt(&log.path),
            "dst" => log.dst.map(FieldValue::Ip),
            "dport" => log.dport.map(|it| FieldValue::UInt(it.into())),
            "status" => log.status.map(|it| FieldValue::UInt(it.into())),
            _ => None,
        },
        Payload::Process(event) => {
            let p = &event.process;
            match name {
                "pid" => Some(FieldValue::UInt(p.pid.into())),
                "ppid" => p.ppid.map(|it| FieldValue::UInt(it.into())),
                "name" => str_opt(&p.name),
                "exe" => str_opt(&p.exe),
                "state" => str_opt(&p.state),
                "uid" => p.uid.map(|it| FieldValue::UInt(it.into())),
                "phase" => Some(FieldValue::Str(match event.phase {
                    crate::ProcessPhase::Snapshot => "snapshot",
                    crate::ProcessPhase::Start => "start",
                    crate::ProcessPhase::Exit => "exit",
                })),
                _ => None,
            }
        }
        Payload::Connection(c) => match name {
            "protocol" => Some(FieldValue::Str(&c.protocol)),
            "state" => Some(FieldValue::Str(&c.state)),
            "ip" | "remote_ip" => Some(FieldValue::Ip(c.remote.ip())),
            "local_ip" => Some(FieldValue::Ip(c.local.ip())),
            "port" | "local_port" => Some(FieldValue::UInt(c.local.port().into())),
            "remote_port" => Some(FieldValue::UInt(c.remote.port().into())),
            "pid" => c.pid.map(|it| FieldValue::UInt(it.into())),
            "process_name" => str_opt(&c.process_name),
            _ => None,
        },
        Payload::Finding(f) => match name {
            "name" => Some(FieldValue::Str(&f.name)),
            "system" => Some(FieldValue::Str(&f.system)),
            "level" => Some(FieldValue::Str(match f.level {
                crate::FindingLevel::Notice => "notice",
                crate::FindingLevel::Warning => "warning",
                crate::FindingLevel::Error => "error",
            })),
            _ => f.data.get(name).map(FieldValue::Json),
        },
        Payload::Audit(a) => match name {
            "record_type" => Some(FieldValue::Str(a.record_type())),
            _ => a.get(name).map(FieldValue::Json),
        },
        Payload::ApiRecord(r) => match name {
            "collector" => Some(FieldValue::Str(&r.collector)),
            "tag" => Some(FieldValue::Str(&r.tag)),
            _ => r.record.get(name).map(FieldValue::Json),
        },
        Payload::Ban(b) => match name {
            "ip" => Some(FieldValue::Str(&b.ip)),
            "jail" => Some(FieldValue::Str(&b.jail)),
            "stage" => Some(FieldValue::Str(b.stage.as_str())),
            _ => None,
        },
        Payload::SystemMetric(_) | Payload::NetworkMetric(_) | Payload::AgentStatus(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Finding, FindingLevel, LogEvent};

    #[test]
    fn fields_and_correlation_keys() {
        let log = LogEvent {
            action: Some("failed_password".into()),
            ip: Some("203.0.113.9".parse().unwrap()),
            port: Some(22),
            pid: Some(811),
            ..LogEvent::new("sshd", "m")
        };
        let event = Event::new("web-1", "auth", Payload::Log(log));
        assert!(event.field("action").unwrap().matches("failed_password"));
        assert!(event.field("port").unwrap().matches("22"));
        assert!(event.field("ip").unwrap().matches("203.0.113.9"));
        assert!(!event.field("ip").unwrap().matches("not an ip"));
        assert!(event.field("host").unwrap().matches("web-1"));
        assert!(event.field("user").is_none());
        assert_eq!(event.pid(), Some(811));
        assert_eq!(event.ip(), Some("203.0.113.9".parse().unwrap()));

        let finding = Finding::new(FindingLevel::Error, "SSHLoginTriesExceeded", "sshd", "s")
            .with_data("ip", "2001:db8::1")
            .with_data("count", 6);
        let event = Event::new("h", "sshd", Payload::Finding(finding));
        assert!(event.field("count").unwrap().matches("6"));
        assert!(event.field("name").unwrap().matches("SSHLoginTriesExceeded"));
        assert_eq!(event.ip(), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(event.field("count").unwrap().to_string(), "6");
    }
}
