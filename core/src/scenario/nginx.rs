//! Reads `[nginx]`: a real nginx (Debian's) in front of the SFU's signal port, and the
//! few settings of it that break real deployments.

use std::time::Duration;

use toml::de::DeTable;

use super::walk::{Cx, at_least, boolean, duration, fields, get, string};
use crate::plan::NginxPlan;

const NGINX_KEYS: &[&str] = &["websocket", "read-timeout", "location", "strip-location"];
/// Shortest `proxy_read_timeout` a scenario may set.
const MIN_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// `[nginx]`; `None` where a value was wrong (reported).
pub(super) fn read(cx: &mut Cx<'_>, t: &DeTable<'_>) -> Option<NginxPlan> {
    let f = fields(cx, t, "`nginx`", NGINX_KEYS);
    let mut plan = NginxPlan::default();
    let mut ok = true;
    if let Some(v) = get(&f, "websocket") {
        match boolean(cx, v, "nginx.websocket") {
            Some(b) => plan.websocket = b,
            None => ok = false,
        }
    }
    if let Some(v) = get(&f, "strip-location") {
        match boolean(cx, v, "nginx.strip-location") {
            Some(b) => plan.strip_location = b,
            None => ok = false,
        }
    }
    if let Some(v) = get(&f, "read-timeout") {
        match duration(cx, v, "nginx.read-timeout")
            .and_then(|d| at_least(cx, d, MIN_READ_TIMEOUT, "nginx.read-timeout"))
        {
            Some(d) => plan.read_timeout = *d.get_ref(),
            None => ok = false,
        }
    }
    if let Some(v) = get(&f, "location") {
        let s = string(cx, v, "nginx.location")?;
        let text = s.get_ref();
        if super::walk::is_url_path(text) {
            plan.location = text.clone();
        } else {
            cx.error(
                s.span(),
                format!(
                    "nginx.location must be \"/\" or a path such as \"/livekit\" (letters, digits, `-`, `_`, `.`, `~`, `/`; no trailing `/`), but is `{text}`"
                ),
            );
            ok = false;
        }
    }
    ok.then_some(plan)
}
