//! Audit records: rows with a declared, guaranteed list of fields (seed 004's audit events).
//!
//! A detector declares an [`AuditSchema`] once — a record type and its field names, in order —
//! and builds every record through it, so each record of that type carries exactly those fields,
//! in that order. That guarantee is what lets the CSV listener write one header per file and the
//! stores keep one table per audit type with typed columns.

use serde::{Deserialize, Serialize};

use crate::Value;

/// The declaration of one audit record type: its name and its fields, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditSchema {
    /// Record type, snake_case (`ssh_daily_statistics`); also the CSV file and table name.
    pub name: &'static str,
    /// Field names, in column order.
    pub fields: &'static [&'static str],
}

/// Why a record did not fit its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditError {
    /// A declared field had no value.
    MissingField {
        /// The record type.
        record_type: String,
        /// The field.
        field: String,
    },
    /// A value was given for a field the schema does not declare.
    UnknownField {
        /// The record type.
        record_type: String,
        /// The field.
        field: String,
    },
    /// Columns and values differ in number.
    Shape {
        /// The record type.
        record_type: String,
    },
}

impl std::fmt::Display for AuditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditError::MissingField { record_type, field } => {
                write!(f, "audit record `{record_type}` lacks declared field `{field}`")
            }
            AuditError::UnknownField { record_type, field } => {
                write!(f, "audit record `{record_type}` has undeclared field `{field}`")
            }
            AuditError::Shape { record_type } => {
                write!(
                    f,
                    "audit record `{record_type}` has a different number of columns and values"
                )
            }
        }
    }
}

impl std::error::Error for AuditError {}

impl AuditSchema {
    /// Builds a record from `(field, value)` pairs given in any order. Every declared field must
    /// be present and no other.
    pub fn record<K, V>(
        &self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<AuditRecord, AuditError>
    where
        K: AsRef<str>,
        V: Into<Value>,
    {
        let mut values: Vec<Option<Value>> = vec![None; self.fields.len()];
        for (key, value) in pairs {
            let key = key.as_ref();
            let Some(idx) = self.fields.iter().position(|it| *it == key) else {
                return Err(AuditError::UnknownField {
                    record_type: self.name.to_owned(),
                    field: key.to_owned(),
                });
            };
            values[idx] = Some(value.into());
        }
        let values = values
            .into_iter()
            .zip(self.fields)
            .map(|(value, field)| {
                value.ok_or_else(|| AuditError::MissingField {
                    record_type: self.name.to_owned(),
                    field: (*field).to_owned(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AuditRecord {
            record_type: self.name.to_owned(),
            columns: self.fields.iter().map(|it| (*it).to_owned()).collect(),
            values,
        })
    }
}

/// One audit row: its type, its columns in declared order and one value per column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawAuditRecord")]
pub struct AuditRecord {
    record_type: String,
    columns: Vec<String>,
    values: Vec<Value>,
}

impl AuditRecord {
    /// The record type.
    pub fn record_type(&self) -> &str {
        &self.record_type
    }

    /// Column names in declared order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Values in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The value of one field.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.columns.iter().position(|it| it == field).map(|idx| &self.values[idx])
    }
}

#[derive(Deserialize)]
struct RawAuditRecord {
    record_type: String,
    columns: Vec<String>,
    values: Vec<Value>,
}

impl TryFrom<RawAuditRecord> for AuditRecord {
    type Error = AuditError;

    fn try_from(raw: RawAuditRecord) -> Result<Self, Self::Error> {
        if raw.columns.len() != raw.values.len() {
            return Err(AuditError::Shape { record_type: raw.record_type });
        }
        Ok(AuditRecord { record_type: raw.record_type, columns: raw.columns, values: raw.values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGINS: AuditSchema = AuditSchema { name: "logins", fields: &["user", "ip", "count"] };

    #[test]
    fn records_follow_the_declared_order_and_reject_gaps() {
        let rec = LOGINS
            .record([
                ("count", Value::from(3)),
                ("user", "root".into()),
                ("ip", "192.0.2.1".into()),
            ])
            .unwrap();
        assert_eq!(rec.columns(), ["user", "ip", "count"]);
        assert_eq!(rec.values()[0], "root");
        assert_eq!(rec.get("count"), Some(&Value::from(3)));

        let missing = LOGINS.record([("user", "root")]).unwrap_err();
        assert_eq!(missing.to_string(), "audit record `logins` lacks declared field `ip`");
        let extra = LOGINS.record([("host", "x")]).unwrap_err();
        assert!(matches!(extra, AuditError::UnknownField { .. }));

        let bad = r#"{"record_type":"x","columns":["a","b"],"values":[1]}"#;
        assert!(serde_json::from_str::<AuditRecord>(bad).is_err());
    }
}
