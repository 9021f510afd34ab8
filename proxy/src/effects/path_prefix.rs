//! `path-prefix`: the reverse-proxy location mistake. LiveKit serves signal on `/rtc`; a
//! deployment that publishes it under `https://host/livekit` needs the proxy to strip
//! `/livekit`. When it does not, LiveKit answers `/livekit/rtc` with 404 and clients see a
//! failed upgrade whose cause is far from the SFU.
//!
//! Rewriting applies to the request head only, when a connection is opened; connections
//! already open keep the path they were opened with.

use std::borrow::Cow;

use crate::ProxyError;

pub(crate) fn validate(prefix: &str) -> Result<(), ProxyError> {
    let invalid = |rule| {
        Err(ProxyError::InvalidPrefix {
            prefix: prefix.to_owned(),
            rule,
        })
    };
    if !prefix.starts_with('/') {
        return invalid("start with '/'");
    }
    if prefix.len() == 1 {
        return invalid("name at least one path segment");
    }
    if prefix.ends_with('/') {
        return invalid("not end with '/'");
    }
    if prefix
        .chars()
        .any(|c| matches!(c, '?' | '#') || c.is_whitespace() || c.is_control())
    {
        return invalid("hold no '?', '#', whitespace or control characters");
    }
    Ok(())
}

/// What to do with paths under one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PrefixRule {
    pub prefix: String,
    pub strip: bool,
}

/// Sets the rule for `prefix`, replacing an earlier one (the latest applied wins).
pub(crate) fn set_rule(rules: &mut Vec<PrefixRule>, prefix: &str, strip: bool) {
    match rules.iter_mut().find(|r| r.prefix == prefix) {
        Some(rule) => rule.strip = strip,
        None => rules.push(PrefixRule {
            prefix: prefix.to_owned(),
            strip,
        }),
    }
}

/// The path to forward for `path` (no query): the longest matching prefix's rule decides.
pub(crate) fn rewrite<'a>(rules: &[PrefixRule], path: &'a str) -> Cow<'a, str> {
    let best = rules
        .iter()
        .filter(|r| under(&r.prefix, path))
        .max_by_key(|r| r.prefix.len());
    match best {
        Some(rule) if rule.strip => match &path[rule.prefix.len()..] {
            "" => Cow::Borrowed("/"),
            rest => Cow::Borrowed(rest),
        },
        _ => Cow::Borrowed(path),
    }
}

/// Whether `path` is `prefix` or below it, on a segment boundary.
fn under(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_by_the_longest_matching_rule() {
        let mut rules = Vec::new();
        set_rule(&mut rules, "/livekit", true);
        set_rule(&mut rules, "/livekit/raw", false);
        let cases = [
            ("/livekit/rtc", "/rtc"),
            ("/livekit", "/"),
            ("/livekit/", "/"),
            ("/livekitx/rtc", "/livekitx/rtc"),
            ("/livekit/raw/rtc", "/livekit/raw/rtc"),
            ("/rtc", "/rtc"),
        ];
        for (path, forwarded) in cases {
            assert_eq!(rewrite(&rules, path), forwarded, "{path}");
        }
    }

    #[test]
    fn the_latest_rule_for_a_prefix_wins() {
        let mut rules = Vec::new();
        set_rule(&mut rules, "/livekit", true);
        set_rule(&mut rules, "/livekit", false);
        assert_eq!(rules.len(), 1);
        assert_eq!(rewrite(&rules, "/livekit/rtc"), "/livekit/rtc");
        assert_eq!(rewrite(&[], "/livekit/rtc"), "/livekit/rtc");
    }
}
