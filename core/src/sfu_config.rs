//! The LiveKit configuration the harness hands each SFU node.
//!
//! LiveKit reads YAML; JSON is YAML, so the config is built as a JSON value and passed in
//! `LIVEKIT_CONFIG` (no file to mount, no YAML emitter to trust). The harness's defaults
//! keep every byte of traffic inside the run:
//! - `rtc.use_external_ip: false` — `true` makes LiveKit ask public STUN servers for its
//!   address at start;
//! - `rtc.stun_servers` set to the node's own loopback: left empty, LiveKit puts Google's
//!   and Twilio's STUN servers into every JoinResponse. The bots also drop any ICE server
//!   that is not one of the run's own addresses, so this is belt and braces.
//! - fixed ports (7880 signal, 7881 ICE-TCP, 7882 single UDP port) so sites and faults can
//!   name them.
//!
//! The scenario's `[sfu.config]` table is merged over these defaults key by key (tables
//! recursively, anything else replaced), so a scenario can reproduce a broken production
//! config. The merged value contains the API secret: never log or report it; use
//! [`redacted`] for display.

use serde_json::{Map, Value, json};

/// Signal (HTTP/WebSocket) port inside the container.
pub const SIGNAL_PORT: u16 = 7880;
/// ICE-TCP port.
pub const RTC_TCP_PORT: u16 = 7881;
/// The single muxed UDP port for media.
pub const RTC_UDP_PORT: u16 = 7882;
/// LiveKit's Prometheus endpoint, scraped during the run (0 in `[sfu.config]` turns it
/// off).
pub const PROMETHEUS_PORT: u16 = 6789;

/// The full config for one node: harness defaults, then the scenario's overrides.
pub fn livekit_config(api_key: &str, api_secret: &str, overrides: &Map<String, Value>) -> Value {
    livekit_config_with_file(api_key, api_secret, None, overrides).0
}

/// The keys the harness owns: what keeps the run's traffic inside it, and what its
/// faults and scrapes name.
fn owned(api_key: &str, api_secret: &str) -> Value {
    json!({
        "port": SIGNAL_PORT,
        "prometheus_port": PROMETHEUS_PORT,
        "rtc": {
            "tcp_port": RTC_TCP_PORT,
            "udp_port": RTC_UDP_PORT,
            "use_external_ip": false,
            "stun_servers": ["127.0.0.1:3478"],
        },
        "keys": { api_key: api_secret },
    })
}

/// The full config for one node: harness defaults; the user's own config file
/// (`[sfu] config-file`) with the keys the harness owns laid over it; then the
/// scenario's `[sfu.config]`. Also every key of the file the run did not take as
/// written.
pub fn livekit_config_with_file(
    api_key: &str,
    api_secret: &str,
    file: Option<&Map<String, Value>>,
    overrides: &Map<String, Value>,
) -> (Value, Vec<crate::sfu_file::Override>) {
    let owned = owned(api_key, api_secret);
    let mut config = json!({
        "log_level": "info",
        "room": { "auto_create": true },
    });
    merge(&mut config, &owned);
    let mut changed = Vec::new();
    if let Some(file) = file {
        let (laid, c) = crate::sfu_file::lay_over(file, &owned);
        merge(&mut config, &laid);
        changed = c;
    }
    merge(&mut config, &Value::Object(overrides.clone()));
    (config, changed)
}

/// Merges `over` into `base`: objects key by key, recursively; any other value replaces.
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// The config as LiveKit reads it: one key per line (pretty JSON, which is YAML), so a
/// line number in LiveKit's refusal names one key ([`key_at_line`]).
pub fn render(config: &Value) -> String {
    serde_json::to_string_pretty(config).unwrap_or_else(|_| config.to_string())
}

/// The dotted key path (`rtc.port_range_start`) that line `line` (1-based) of
/// [`render`]'s text sets; `None` for a line that sets no key (a brace, or past the end).
/// An array's elements name the array's key.
pub fn key_at_line(rendered: &str, line: usize) -> Option<String> {
    let mut stack: Vec<String> = Vec::new();
    for (i, text) in rendered.lines().enumerate() {
        let t = text.trim();
        let key = t
            .strip_prefix('"')
            .and_then(|rest| rest.split_once("\": "))
            .map(|(k, v)| (k.to_owned(), v));
        let here = match &key {
            Some((k, _)) => Some(stack.iter().cloned().chain([k.clone()]).collect::<Vec<_>>()),
            None if !stack.is_empty() && !t.starts_with('}') && !t.starts_with(']') => {
                Some(stack.clone())
            }
            None => None,
        };
        if i + 1 == line {
            return here.map(|p| {
                p.iter()
                    .filter(|s| !s.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(".")
            });
        }
        match &key {
            // A table or array opens (an empty one, `{}` or `[]`, opens nothing).
            Some((k, v))
                if (v.starts_with('{') || v.starts_with('['))
                    && !["{}", "[]", "{},", "[],"].contains(v) =>
            {
                stack.push(k.clone());
            }
            // An object or array inside an array: its lines name the array's key.
            None if (t.starts_with('{') || t.starts_with('['))
                && !(t.starts_with("{}") || t.starts_with("[]"))
                && i > 0 =>
            {
                // A segment that adds nothing to the path, popped by its closing line.
                stack.push(String::new());
            }
            _ if t.starts_with('}') || t.starts_with(']') => {
                stack.pop();
            }
            _ => {}
        }
    }
    None
}

/// The line numbers LiveKit's config errors name (`line 7: cannot unmarshal ...`, as
/// go-yaml writes them).
pub fn lines_named(message: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in message.split("line ").skip(1) {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse::<usize>()
            && !out.contains(&n)
        {
            out.push(n);
        }
    }
    out
}

/// A copy fit for logs and reports: every value under `keys` becomes `"<redacted>"`.
pub fn redacted(config: &Value) -> Value {
    let mut c = config.clone();
    if let Some(Value::Object(keys)) = c.get_mut("keys") {
        for v in keys.values_mut() {
            *v = Value::String("<redacted>".into());
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_merge_into_nested_defaults_without_dropping_siblings() {
        let over = json!({"rtc": {"tcp_port": 0, "interfaces": {"includes": ["eth0"]}}});
        let c = livekit_config("k", "s", over.as_object().unwrap());
        assert_eq!(c["rtc"]["tcp_port"], 0);
        assert_eq!(c["rtc"]["udp_port"], RTC_UDP_PORT);
        assert_eq!(c["rtc"]["use_external_ip"], false);
        assert_eq!(c["rtc"]["interfaces"]["includes"][0], "eth0");
    }

    #[test]
    fn every_line_of_the_rendered_config_names_its_key() {
        let over = json!({
            "rtc": {"port_range_start": "abc", "interfaces": {"includes": ["eth0", "eth1"]}},
            "turn_servers": [{"host": "turn.example", "port": 3478}],
            "zz_after": 1,
        });
        let c = livekit_config("k", "s", over.as_object().unwrap());
        let text = render(&c);
        let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
        // Each needle's line names the key; an object inside an array names the array,
        // and the key after it is back at the top.
        for (needle, key) in [
            ("port_range_start", "rtc.port_range_start"),
            ("\"eth1\"", "rtc.interfaces.includes"),
            ("auto_create", "room.auto_create"),
            ("\"log_level\"", "log_level"),
            ("turn.example", "turn_servers.host"),
            ("zz_after", "zz_after"),
        ] {
            assert_eq!(
                key_at_line(&text, line_of(needle)).as_deref(),
                Some(key),
                "{needle}"
            );
        }
        // After a nested table closes, the next key is back at the top.
        assert_eq!(key_at_line(&text, 1), None);
        assert_eq!(key_at_line(&text, 10_000), None);
        // The rendering is what LiveKit reads: valid JSON, the same value.
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), c);
    }

    #[test]
    fn the_lines_a_go_yaml_error_names() {
        let msg = "could not parse config: yaml: unmarshal errors:\n  line 7: cannot unmarshal !!str `abc` into uint32\n  line 12: field x not found";
        assert_eq!(lines_named(msg), vec![7, 12]);
        assert!(lines_named("could not parse keys").is_empty());
    }

    #[test]
    fn redacted_hides_every_secret() {
        let c = livekit_config("APIabc", "a-very-secret-value-of-32-chars!!", &Map::new());
        let shown = redacted(&c).to_string();
        assert!(!shown.contains("a-very-secret"), "{shown}");
        assert!(shown.contains("APIabc"));
    }
}
