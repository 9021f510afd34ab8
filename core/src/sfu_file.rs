//! The user's own LiveKit config file (`[sfu] config-file`): read as LiveKit reads it
//! (YAML), with the harness's safety keys laid over it.
//!
//! A production config names things a run must never reach or use: its Redis, its
//! webhook receivers, its public node IP, its port range, its API keys, and
//! `use_external_ip` (which makes LiveKit ask public STUN servers for its address). Those
//! keys are taken out of the file or replaced by the harness's own (see
//! [`crate::sfu_config`]), and each one that changed is listed as an [`Override`] so the
//! report says what the run did not take from the user's file.
//!
//! Pure: text in, values out; the scenario loader reads the file.

use serde_json::{Map, Value};

/// Keys the harness removes from the user's file: they point outside the run (a Redis,
/// webhook receivers, a public node IP) or at what the harness owns (its port range, its
/// API keys). The harness sets its own where a run needs them.
const REMOVED: &[&str] = &[
    "redis",
    "webhook",
    "keys",
    "key_file",
    "rtc.node_ip",
    "rtc.port_range_start",
    "rtc.port_range_end",
];

/// A key of the user's file the run did not take as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// Dotted path, `rtc.use_external_ip`.
    pub key: String,
    /// What the file said (`<redacted>` under `keys`).
    pub was: String,
    /// What the run uses, or `removed`.
    pub now: String,
}

impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} -> {}", self.key, self.was, self.now)
    }
}

/// A YAML error at a 1-based line and column of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The file's top-level mapping, as JSON values.
pub fn parse(text: &str) -> Result<Map<String, Value>, YamlError> {
    let value: Value = serde_norway::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        // Without " at line N column M": the position is given as file:line:col.
        let message = e.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        YamlError {
            line,
            column,
            message,
        }
    })?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        other => Err(YamlError {
            line: 1,
            column: 1,
            message: format!(
                "a LiveKit config is a mapping of keys, but this file holds a {}",
                match other {
                    Value::Array(_) => "list",
                    Value::String(_) => "string",
                    _ => "single value",
                }
            ),
        }),
    }
}

/// The user's file with the harness's keys laid over it: the [`REMOVED`] keys taken out,
/// then `harness` (the harness's own values for the keys it owns) merged over what is
/// left. Returns the result and every key that changed.
pub fn lay_over(file: &Map<String, Value>, harness: &Value) -> (Value, Vec<Override>) {
    let mut out = Value::Object(file.clone());
    let mut changed = Vec::new();
    for path in REMOVED {
        if let Some(was) = take(&mut out, path) {
            changed.push(Override {
                key: (*path).to_owned(),
                was: shown(path, &was),
                now: "removed".to_owned(),
            });
        }
    }
    let mut leaves = Vec::new();
    leaves_of(harness, String::new(), &mut leaves);
    for (path, now) in leaves {
        if let Some(was) = lookup(&out, &path)
            && *was != now
        {
            changed.push(Override {
                key: path.clone(),
                was: shown(&path, was),
                now: shown(&path, &now),
            });
        }
    }
    crate::sfu_config::merge(&mut out, harness);
    (out, changed)
}

fn shown(path: &str, v: &Value) -> String {
    if path == "keys" || path.starts_with("keys.") {
        "<redacted>".to_owned()
    } else {
        v.to_string()
    }
}

/// Every scalar (or list) under `v`, with its dotted path.
fn leaves_of(v: &Value, prefix: String, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves_of(v, p, out);
            }
        }
        other => out.push((prefix, other.clone())),
    }
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// The value at dotted `path` in `map`, if it is there and not null.
pub fn lookup_in<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let (first, rest) = path
        .split_once('.')
        .map_or((path, None), |(f, r)| (f, Some(r)));
    let v = map.get(first)?;
    match rest {
        Some(rest) => lookup(v, rest),
        None => Some(v),
    }
    .filter(|v| !v.is_null())
}

fn take(v: &mut Value, path: &str) -> Option<Value> {
    let (parent, leaf) = match path.rsplit_once('.') {
        Some((p, l)) => (p.split('.').try_fold(&mut *v, |v, k| v.get_mut(k))?, l),
        None => (v, path),
    };
    parent.as_object_mut()?.remove(leaf)
}

/// The 1-based line of the file that sets `path` (block-style YAML, as LiveKit's configs
/// are written): each `key:` line nests under the nearest less-indented one above it.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let want: Vec<&str> = path.split('.').collect();
    let mut stack: Vec<(usize, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') || body.starts_with('-') {
            continue;
        }
        let Some((key, _)) = body.split_once(':') else {
            continue;
        };
        let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
        let indent = line.len() - body.len();
        while stack.last().is_some_and(|(d, _)| *d >= indent) {
            stack.pop();
        }
        stack.push((indent, key.to_owned()));
        if stack.len() == want.len()
            && stack
                .iter()
                .map(|(_, k)| k.as_str())
                .eq(want.iter().copied())
        {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A production config of the kind incident 000 describes.
    const PROD: &str = "\
port: 7880
log_level: debug
rtc:
  use_external_ip: true
  port_range_start: 50000
  port_range_end: 60000
  tcp_port: 7881
  interfaces:
    includes:
      - eth0
redis:
  address: redis.internal:6379
keys:
  APIprod: prod-secret-that-must-never-show
webhook:
  urls:
    - https://hooks.example/livekit
room:
  empty_timeout: 300
";

    #[test]
    fn a_production_file_keeps_its_own_keys_and_loses_what_leaves_the_run() {
        let file = parse(PROD).unwrap();
        let harness = json!({"port": 7880, "rtc": {"use_external_ip": false, "udp_port": 7882, "tcp_port": 7881}, "keys": {"APIrun": "run-secret"}});
        let (out, changed) = lay_over(&file, &harness);
        assert_eq!(out["log_level"], "debug");
        assert_eq!(out["room"]["empty_timeout"], 300);
        assert_eq!(out["rtc"]["interfaces"]["includes"][0], "eth0");
        assert_eq!(out["rtc"]["use_external_ip"], false);
        assert_eq!(out["rtc"]["udp_port"], 7882);
        assert!(out.get("redis").is_none() && out.get("webhook").is_none());
        assert!(out["rtc"].get("port_range_start").is_none());
        assert_eq!(out["keys"], json!({"APIrun": "run-secret"}));
        let text: Vec<String> = changed.iter().map(ToString::to_string).collect();
        assert!(
            text.contains(&"rtc.use_external_ip: true -> false".to_owned()),
            "{text:?}"
        );
        assert!(
            text.contains(&"redis: {\"address\":\"redis.internal:6379\"} -> removed".to_owned()),
            "{text:?}"
        );
        assert!(
            text.contains(&"keys: <redacted> -> removed".to_owned()),
            "{text:?}"
        );
        // Unchanged keys are not listed; secrets never are.
        assert!(
            !text
                .iter()
                .any(|t| t.starts_with("port:") || t.starts_with("rtc.tcp_port"))
        );
        assert!(!format!("{changed:?}").contains("prod-secret"));
    }

    #[test]
    fn a_broken_file_fails_at_its_line_and_column() {
        // Incident 000's mistake: a line missing its colon.
        let broken = PROD.replace("  tcp_port: 7881", "  tcp_port 7881\n  udp_port: 7882");
        let e = parse(&broken).unwrap_err();
        assert_eq!(e.line, 8, "{e:?}");
        assert!(e.message.contains("could not find expected ':'"), "{e:?}");
        let list = parse("- a\n- b\n").unwrap_err();
        assert!(list.message.contains("mapping"), "{list:?}");
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn the_line_of_a_nested_key() {
        assert_eq!(line_of(PROD, "rtc.use_external_ip"), Some(4));
        assert_eq!(line_of(PROD, "rtc.interfaces.includes"), Some(9));
        assert_eq!(line_of(PROD, "room.empty_timeout"), Some(19));
        assert_eq!(line_of(PROD, "port"), Some(1));
        assert_eq!(line_of(PROD, "rtc.nothing"), None);
    }
}
