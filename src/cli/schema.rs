//! `config`: the configuration schema in the shape baton-sdk's `field.Configuration` marshals
//! to (Go field names), built from the one table of keys in `crate::config::SETTINGS`.

use serde_json::{Value, json};

use crate::config::{Kind, SETTINGS, Setting};

/// Keys a ConductorOne admin sets for this connector; the rest configure the local worker
/// (files, schedules, logging) and are exported for the command line only.
const CONNECTOR_KEYS: &[&str] = &[
    "azure-tenant-id",
    "azure-client-id",
    "azure-client-secret",
    "credential",
    "use-cli-credentials",
    "graph-domain",
    "authority-host",
    "arm-endpoint",
    "mailboxSettings",
    "skip-ad-groups",
    "skip-unused-roles",
    "skip-sync-storage-containers",
    "skip-entra-id-p2-license-features",
    "enable-sync-external-resources-via-baton-id",
];

pub fn config_schema() -> Value {
    let fields: Vec<Value> = SETTINGS.iter().map(field).collect();
    json!({
        "Fields": fields,
        "Constraints": [
            {"Kind": "MUTUALLY_EXCLUSIVE", "Fields": ["use-cli-credentials", "azure-client-secret"]},
            {"Kind": "MUTUALLY_EXCLUSIVE", "Fields": ["use-cli-credentials", "azure-client-id"]},
            {"Kind": "DEPENDENT_ON", "Fields": ["enable-sync-external-resources-via-baton-id"],
             "DependentFields": ["external-resource-c1z"]},
        ],
        "DisplayName": "Azure (incremental)",
        "HelpUrl": "",
        "IconUrl": "",
        "CatalogId": "",
        "IsDirectory": true,
        "SupportsExternalResources": true,
        "RequiresExternalConnector": false,
        "FieldGroups": null,
    })
}

fn field(setting: &Setting) -> Value {
    let (variant, default) = match setting.kind {
        Kind::Bool => ("BoolField", json!(false)),
        Kind::Number => (
            "IntField",
            json!(
                setting
                    .default
                    .and_then(|d| d.parse::<i64>().ok())
                    .unwrap_or(0)
            ),
        ),
        Kind::Text | Kind::Secret | Kind::Choice(_) => {
            ("StringField", json!(setting.default.unwrap_or_default()))
        }
    };
    let rules = match setting.kind {
        Kind::Choice(values) => json!({"In": values}),
        _ => json!({}),
    };
    let connector = CONNECTOR_KEYS.contains(&setting.id);
    json!({
        "FieldName": setting.id,
        "Required": false,
        "DefaultValue": default,
        "Description": setting.help,
        "ExportTarget": if connector { "gui" } else { "cli" },
        "HelpURL": "",
        "Variant": variant,
        "Rules": rules,
        "Secret": setting.kind == Kind::Secret,
        "StructFieldName": "",
        "SyncerConfig": {
            "Required": false,
            "Hidden": false,
            "ShortHand": setting.short.map(String::from).unwrap_or_default(),
            "Persistent": true,
        },
        "ConnectorConfig": {
            "DisplayName": "",
            "Required": false,
            "Placeholder": "",
            "FieldType": if variant == "StringField" { "TEXT" } else { "" },
            "BonusStrings": null,
        },
        "WasReExported": false,
        "FieldGroups": null,
    })
}
