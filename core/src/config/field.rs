use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

/// The seven value types a config field can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum ConfigType {
    Text,
    Number,
    Boolean,
    Select,
    Json,
    File,
    /// Text kept encrypted: stored, synced and exported only sealed, shown
    /// masked, given in clear to the job alone (`core::secret`).
    Secret,
}

impl ConfigType {
    pub const ALL: [ConfigType; 7] = [
        ConfigType::Text,
        ConfigType::Number,
        ConfigType::Boolean,
        ConfigType::Select,
        ConfigType::Json,
        ConfigType::File,
        ConfigType::Secret,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConfigType::Text => "text",
            ConfigType::Number => "number",
            ConfigType::Boolean => "boolean",
            ConfigType::Select => "select",
            ConfigType::Json => "json",
            ConfigType::File => "file",
            ConfigType::Secret => "secret",
        }
    }

    pub fn parse(s: &str) -> Option<ConfigType> {
        ConfigType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// One field of a config document. Rule properties that do not apply to the
/// field's type are rejected by document validation, not silently ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: ConfigType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    // number
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Number>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub integer: bool,
    // text
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    // select
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
    // json
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    // file
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub must_exist: bool,
    /// A named custom rule registered in Rust (`cron`, `port`, `duration`, `semver`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl FieldDef {
    pub fn new(key: &str, kind: ConfigType) -> FieldDef {
        FieldDef {
            key: key.to_owned(),
            kind,
            label: None,
            description: None,
            required: false,
            default: None,
            min: None,
            max: None,
            integer: false,
            min_length: None,
            max_length: None,
            format: None,
            pattern: None,
            options: None,
            schema: None,
            extensions: None,
            must_exist: false,
            rule: None,
        }
    }

    /// Turns a value typed on a command line (`retries=5`) into the JSON value
    /// the field holds. Strings that are not valid for the type stay strings so
    /// that validation reports them with the usual type error.
    pub fn coerce_text(&self, raw: &str) -> Value {
        match self.kind {
            ConfigType::Number => serde_json::from_str::<Number>(raw.trim())
                .map(Value::Number)
                .unwrap_or_else(|_| Value::String(raw.to_owned())),
            ConfigType::Boolean => match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Value::Bool(true),
                "false" | "no" | "off" | "0" => Value::Bool(false),
                _ => Value::String(raw.to_owned()),
            },
            ConfigType::Json => {
                serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
            }
            ConfigType::Text | ConfigType::Select | ConfigType::File | ConfigType::Secret => {
                Value::String(raw.to_owned())
            }
        }
    }
}
