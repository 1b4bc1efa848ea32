//! The part of a stored `inventory.json` (schema `agentless.inventory/v1`, written by the agent's
//! `scanner_ami::report`) that matching reads: the OS, the package databases and the packages.
//!
//! The agent's types only serialise; these read the same JSON back, ignoring the fields matching
//! does not need, so additive changes to the inventory keep working.

use serde::{Deserialize, Serialize};

/// The inventory schema this reader understands.
pub const INVENTORY_SCHEMA: &str = "agentless.inventory/v1";

/// A parsed `inventory.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryDoc {
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub os: Option<OsDoc>,
    #[serde(default)]
    pub databases: Vec<DatabaseDoc>,
    #[serde(default)]
    pub packages: Vec<PackageDoc>,
}

/// The detected OS (`scanner_ami::os::OsInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsDoc {
    pub id: String,
    #[serde(default)]
    pub version_id: Option<String>,
    #[serde(default)]
    pub version_codename: Option<String>,
    #[serde(default)]
    pub pretty_name: Option<String>,
    #[serde(default)]
    pub id_like: Vec<String>,
}

/// One package database the agent read (`scanner_ami::inventory::DbResult`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseDoc {
    pub format: String,
    pub path: String,
    #[serde(default)]
    pub packages: usize,
    #[serde(default)]
    pub error: Option<String>,
}

/// One installed package (`scanner_ami::inventory::Package`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageDoc {
    /// `deb`, `rpm`, `apk`, or an application purl type (`golang`, `cargo`, `pypi`, `npm`, `maven`).
    pub ecosystem: String,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub release: Option<String>,
    #[serde(default)]
    pub epoch: Option<u32>,
    #[serde(default)]
    pub arch: Option<String>,
    #[serde(default)]
    pub source_name: Option<String>,
    #[serde(default)]
    pub source_version: Option<String>,
    #[serde(default)]
    pub source_rpm: Option<String>,
    /// The database format it was read from (`dpkg-status`, `rpm-sqlite`...).
    #[serde(default)]
    pub db: String,
    /// The database's path (the key of its package set).
    #[serde(default)]
    pub db_path: String,
}

impl PackageDoc {
    /// A package with only its identity set (the rest `None`), read from `db_path` of format `db`.
    #[must_use]
    pub fn new(ecosystem: &str, name: &str, version: &str, db: &str, db_path: &str) -> PackageDoc {
        PackageDoc {
            ecosystem: ecosystem.to_owned(),
            name: name.to_owned(),
            version: version.to_owned(),
            release: None,
            epoch: None,
            arch: None,
            source_name: None,
            source_version: None,
            source_rpm: None,
            db: db.to_owned(),
            db_path: db_path.to_owned(),
        }
    }

    /// The version as the ecosystem's tools print it: `[epoch:]version[-release]`
    /// (`scanner_ami::inventory::Package::full_version`).
    #[must_use]
    pub fn full_version(&self) -> String {
        let mut v = String::with_capacity(self.version.len() + 16);
        if let Some(e) = self.epoch {
            v.push_str(&e.to_string());
            v.push(':');
        }
        v.push_str(&self.version);
        if let Some(r) = &self.release {
            v.push('-');
            v.push_str(r);
        }
        v
    }
}

/// An `inventory.json` that cannot be matched.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("inventory.json is not valid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("inventory.json has schema {0:?}, expected {INVENTORY_SCHEMA:?}")]
    Schema(String),
}

impl InventoryDoc {
    /// Parse a stored `inventory.json`, refusing another schema.
    ///
    /// # Errors
    ///
    /// Not JSON of the inventory's shape, or another schema identifier.
    pub fn from_json(bytes: &[u8]) -> Result<InventoryDoc, InventoryError> {
        let doc: InventoryDoc = serde_json::from_slice(bytes)?;
        match doc.schema.as_deref() {
            Some(INVENTORY_SCHEMA) => Ok(doc),
            other => Err(InventoryError::Schema(other.unwrap_or("").to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_agent_writes() {
        // The agent's own types, serialised as the agent does.
        let mut p = scanner_ami::inventory::Package::new(
            scanner_ami::inventory::Ecosystem::Deb,
            "postgresql-client",
            "15+248+deb12u2",
            scanner_ami::inventory::DbFormat::DpkgStatus,
            "/var/lib/dpkg/status",
        );
        p.source_name = Some("postgresql-common".into());
        p.source_version = Some("248+deb12u2".into());
        p.epoch = Some(1);
        p.release = Some("3".into());
        let json = serde_json::json!({
            "schema": "agentless.inventory/v1",
            "os": {"id": "debian", "family": "debian", "version_id": "12", "source": "etc/os-release"},
            "databases": [{"format": "dpkg-status", "path": "/var/lib/dpkg/status", "packages": 1}],
            "packages": [serde_json::to_value(&p).expect("serialise")],
            "errors": [],
        });
        let doc = InventoryDoc::from_json(&serde_json::to_vec(&json).expect("bytes")).expect("parses");
        let os = doc.os.as_ref().expect("os");
        assert_eq!((os.id.as_str(), os.version_id.as_deref()), ("debian", Some("12")));
        let got = doc.packages.first().expect("package");
        assert_eq!(got.ecosystem, "deb");
        assert_eq!(got.db, "dpkg-status");
        assert_eq!(got.source_name.as_deref(), Some("postgresql-common"));
        assert_eq!(got.full_version(), p.full_version());
        assert_eq!(got.full_version(), "1:15+248+deb12u2-3");
    }

    #[test]
    fn other_schemas_are_refused() {
        let err = InventoryDoc::from_json(br#"{"schema":"agentless.inventory/v2","packages":[]}"#).expect_err("v2");
        assert!(matches!(err, InventoryError::Schema(s) if s == "agentless.inventory/v2"));
        assert!(matches!(InventoryDoc::from_json(b"{\"packages\":[]}"), Err(InventoryError::Schema(_))));
        assert!(matches!(InventoryDoc::from_json(b"[1]"), Err(InventoryError::Json(_))));
    }
}
