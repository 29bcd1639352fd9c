//! Text settings that may arrive as numbers or booleans: environment variables and `--set` values
//! are parsed as TOML scalars, so `COWORK__CLICKHOUSE__PASSWORD=1234` is an integer until a
//! text field takes it as text. Used with `#[serde(deserialize_with = "text::string")]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    fn text(self) -> String {
        match self {
            Scalar::Text(s) => s,
            Scalar::Integer(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Scalar::deserialize(d).map(Scalar::text)
}

pub fn map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    BTreeMap::<String, Scalar>::deserialize(d).map(|m| m.into_iter().map(|(k, v)| (k, v.text())).collect())
}
