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
    let mut config = json!({
        "port": SIGNAL_PORT,
        "prometheus_port": PROMETHEUS_PORT,
        "log_level": "info",
        "rtc": {
            "tcp_port": RTC_TCP_PORT,
            "udp_port": RTC_UDP_PORT,
            "use_external_ip": false,
            "stun_servers": ["127.0.0.1:3478"],
        },
        "room": { "auto_create": true },
        "keys": { api_key: api_secret },
    });
    merge(&mut config, &Value::Object(overrides.clone()));
    config
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
    fn redacted_hides_every_secret() {
        let c = livekit_config("APIabc", "a-very-secret-value-of-32-chars!!", &Map::new());
        let shown = redacted(&c).to_string();
        assert!(!shown.contains("a-very-secret"), "{shown}");
        assert!(shown.contains("APIabc"));
    }
}
