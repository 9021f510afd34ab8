//! `[sites.NAME]`: settings of a network site (the namespace a group's bots live in, named
//! by the groups' `site`). A site needs no table; one is only for what differs:
//! `extra-interfaces`, VPN-like addresses on the site that the SFU cannot reach.

use toml::Spanned;
use toml::de::DeValue;

use super::walk::{Cx, describe, fields, get, integer, spanned};

const KEYS: &[&str] = &["extra-interfaces"];
/// Most extra interfaces a site may have.
pub(super) const MAX_EXTRA_INTERFACES: i64 = 2;

/// A `[sites.NAME]` table of a valid scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteSpec {
    pub name: Spanned<String>,
    /// VPN-like interfaces besides the site's link, each with an address of a run
    /// network nothing is attached to: candidates on them never connect.
    pub extra_interfaces: u8,
}

/// The top-level `sites` value: a table of tables, one per site name.
pub(super) fn read(cx: &mut Cx<'_>, v: &Spanned<DeValue<'_>>) -> Vec<SiteSpec> {
    let DeValue::Table(t) = v.get_ref() else {
        let found = describe(v.get_ref());
        cx.error(
            v.span(),
            format!("sites must be a table of sites ([sites.NAME]), but is {found}"),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, body) in t.iter() {
        let label = format!("sites.{}", name.get_ref());
        let DeValue::Table(body) = body.get_ref() else {
            let found = describe(body.get_ref());
            cx.error(
                body.span(),
                format!("{label} must be a table, but is {found}"),
            );
            continue;
        };
        let f = fields(cx, body, &label, KEYS);
        let mut site = SiteSpec {
            name: spanned(name.span(), name.get_ref().to_string()),
            extra_interfaces: 0,
        };
        if let Some(n) = get(&f, "extra-interfaces")
            .and_then(|v| integer(cx, v, &format!("extra-interfaces of {label}")))
        {
            if (0..=MAX_EXTRA_INTERFACES).contains(n.get_ref()) {
                site.extra_interfaces = *n.get_ref() as u8;
            } else {
                let written = cx.source[n.span()].to_owned();
                cx.error(
                    n.span(),
                    format!(
                        "extra-interfaces of {label} must be from 0 to {MAX_EXTRA_INTERFACES}, but is {written}"
                    ),
                );
            }
        }
        out.push(site);
    }
    out
}
