//! Cross-field checks over a [`Draft`]: things no single value can be wrong about.
//!
//! Only values that passed their own checks are in the draft, so a problem is reported
//! once, where it is, and not again as a consequence elsewhere.

use std::time::Duration;

use super::diagnostic::hint;
use super::walk::{Cx, Draft, GroupDraft, show};
use crate::fault::{FaultKind, TargetKind};

pub(super) fn check(cx: &mut Cx<'_>, d: &Draft) {
    unique_names(cx, d);
    unique_identities(cx, d);
    if let Some(duration) = &d.duration {
        joins_within_run(cx, d, *duration.get_ref());
        faults_within_run(cx, d, *duration.get_ref());
        phases_within_run(cx, d, *duration.get_ref());
    }
    bot_targets(cx, d);
    site_targets(cx, d);
    expected_failures(cx, d);
    nodes_exist(cx, d);
    rooms_and_capacity(cx, d);
    if let Some(duration) = &d.duration {
        stages_within_run(cx, d, *duration.get_ref());
    }
}

/// A group's stages end by the end of the run; a searched group has no stages.
fn stages_within_run(cx: &mut Cx<'_>, d: &Draft, duration: Duration) {
    let Some(end) = run_end(d, duration) else {
        return;
    };
    for g in d.groups.as_deref().unwrap_or_default() {
        let Some(stages) = &g.stages else { continue };
        if d.capacity
            .as_ref()
            .and_then(|c| c.add.as_ref())
            .zip(g.name.as_ref())
            .is_some_and(|(a, n)| a.get_ref() == n.get_ref())
        {
            cx.error(
                stages.span(),
                format!(
                    "stages of {} cannot be used with [capacity], which adds its bots step by step",
                    g.label()
                ),
            );
            continue;
        }
        let at = g.join_at.as_ref().map_or(Duration::ZERO, |j| *j.get_ref());
        let last = at + super::stages::length(stages.get_ref());
        if last > end {
            cx.error(
                stages.span(),
                format!(
                    "stages of {} end at {} (join-at + their durations), after the run ends at {} (first join + duration)",
                    g.label(),
                    show(last),
                    show(end)
                ),
            );
        }
    }
}

/// `room-spacing` needs rooms; `[capacity]` adds rooms the scenario has, or bots of one
/// of its groups in one room; its steps fit in the run; its steps are the run's phases.
fn rooms_and_capacity(cx: &mut Cx<'_>, d: &Draft) {
    let rooms = d.rooms.as_ref().map(|r| *r.get_ref());
    if let Some(sp) = &d.room_spacing
        && rooms.is_none_or(|r| r < 2)
    {
        cx.error(
            sp.span(),
            "room-spacing spaces the joins of several rooms, but the scenario has one room; add rooms = N",
        );
    }
    let Some(c) = &d.capacity else { return };
    if let Some(p) = d.phases.first() {
        let span = p.name.as_ref().map_or(c.span.clone(), |n| n.span());
        cx.error(
            span,
            "[[phases]] cannot be used with [capacity]: the search's steps are the run's phases (step-1, step-2, ...)",
        );
    }
    let Some(add) = &c.add else { return };
    let max = if add.get_ref() == super::capacity::ADD_ROOMS {
        match &d.rooms {
            Some(r) => Some(*r.get_ref()),
            None => {
                cx.error(
                    add.span(),
                    "add of [capacity] is \"rooms\", which adds rooms up to the scenario's rooms; add, for example, rooms = 8 at the top level",
                );
                None
            }
        }
    } else {
        let groups = d.groups.as_deref().unwrap_or_default();
        match groups.iter().find(|g| {
            g.name
                .as_ref()
                .is_some_and(|n| n.get_ref() == add.get_ref())
        }) {
            Some(g) => {
                if let Some(r) = d.rooms.as_ref().filter(|r| *r.get_ref() > 1) {
                    cx.error(
                        r.span(),
                        format!(
                            "[capacity] adds bots of group `{}` to one room, but rooms is {}; with several rooms, use add = \"rooms\"",
                            add.get_ref(),
                            r.get_ref()
                        ),
                    );
                }
                g.count.as_ref().map(|n| *n.get_ref())
            }
            None => {
                let names: Vec<&str> = groups
                    .iter()
                    .filter_map(|g| g.name.as_ref().map(|n| n.get_ref().as_str()))
                    .collect();
                cx.error(
                    add.span(),
                    format!(
                        "add of [capacity] must be \"rooms\" or a group's name ({}), but is `{}`{}",
                        names.join(", "),
                        add.get_ref(),
                        hint(add.get_ref(), names.iter().copied().chain(["rooms"]))
                    ),
                );
                None
            }
        }
    };
    let (Some(max), Some(step), Some(every)) = (max, &c.step, &c.step_every) else {
        return;
    };
    if let Some(start) = c.start.as_ref().filter(|s| *s.get_ref() > max) {
        cx.error(
            start.span(),
            format!(
                "start of [capacity] is {}, more than the {max} the search can reach (the {})",
                start.get_ref(),
                if add.get_ref() == super::capacity::ADD_ROOMS {
                    "scenario's rooms".to_owned()
                } else {
                    format!("count of group `{}`", add.get_ref())
                }
            ),
        );
        return;
    }
    let start = c
        .start
        .as_ref()
        .map_or(*step.get_ref(), |s| *s.get_ref())
        .min(max);
    let steps = 1 + (max - start).div_ceil((*step.get_ref()).max(1));
    let needed = every.get_ref().saturating_mul(steps);
    if let Some(duration) = &d.duration
        && *duration.get_ref() < needed
    {
        cx.error(
            duration.span(),
            format!(
                "duration is {}, but [capacity] needs {steps} steps of {} = {} to reach {max}; lengthen duration or raise step",
                show(*duration.get_ref()),
                show(*every.get_ref()),
                show(needed)
            ),
        );
    }
}

/// A group's `node` is one the `[sfu]` starts; a server switch needs a second node.
fn nodes_exist(cx: &mut Cx<'_>, d: &Draft) {
    for f in &d.faults {
        if let Some(e) = &f.effect
            && *e.get_ref() == crate::fault::FaultKind::ServerSwitch
            && d.sfu.nodes < 2
        {
            cx.error(
                e.span(),
                format!(
                    "{} is server-switch, which needs sfu.nodes of 2 or more, but the sfu has 1 node",
                    f.label()
                ),
            );
        }
    }
    for f in &d.faults {
        if let Some(n) = &f.node
            && *n.get_ref() > d.sfu.nodes
        {
            cx.error(
                n.span(),
                format!(
                    "node of {} is {}, but the sfu has {} node{} (sfu.nodes)",
                    f.label(),
                    n.get_ref(),
                    d.sfu.nodes,
                    if d.sfu.nodes == 1 { "" } else { "s" }
                ),
            );
        }
    }
    for g in d.groups.as_deref().unwrap_or_default() {
        let Some(n) = &g.node else { continue };
        if *n.get_ref() > d.sfu.nodes {
            cx.error(
                n.span(),
                format!(
                    "node of {} is {}, but the sfu has {} node{} (sfu.nodes)",
                    g.label(),
                    n.get_ref(),
                    d.sfu.nodes,
                    if d.sfu.nodes == 1 { "" } else { "s" }
                ),
            );
        }
    }
}

fn unique_names(cx: &mut Cx<'_>, d: &Draft) {
    let groups = d.groups.as_deref().unwrap_or_default();
    for (i, g) in groups.iter().enumerate() {
        let Some(name) = &g.name else { continue };
        if let Some(first) = groups[..i]
            .iter()
            .find(|o| o.name.as_ref().map(|n| n.get_ref()) == Some(name.get_ref()))
        {
            cx.error(
                name.span(),
                format!(
                    "name of group #{} is `{}`, which group #{} already uses; group names must be unique",
                    g.number,
                    name.get_ref(),
                    first.number
                ),
            );
        }
    }
}

/// Identities are `<prefix>-<n>`; since `n` has no `-`, two groups can only produce the
/// same identity when their prefixes are equal.
fn unique_identities(cx: &mut Cx<'_>, d: &Draft) {
    let groups = d.groups.as_deref().unwrap_or_default();
    let prefix = |g: &GroupDraft| g.identity_prefix.clone().or_else(|| g.name.clone());
    for (i, g) in groups.iter().enumerate() {
        let Some(p) = prefix(g) else { continue };
        let Some(first) = groups[..i]
            .iter()
            .find(|o| prefix(o).as_ref().map(|q| q.get_ref()) == Some(p.get_ref()))
        else {
            continue;
        };
        if g.identity_prefix.is_none() && first.identity_prefix.is_none() {
            continue; // same names: already reported by unique_names
        }
        cx.error(
            p.span(),
            format!(
                "identity prefix `{}` of {} is already used by {}; bot identities must be unique across groups",
                p.get_ref(),
                g.label(),
                first.label()
            ),
        );
    }
}

/// A bot that starts joining after the run ended would measure nothing; the run ends
/// `duration` after the first join.
fn joins_within_run(cx: &mut Cx<'_>, d: &Draft, duration: Duration) {
    let groups = d.groups.as_deref().unwrap_or_default();
    let Some(end) = run_end(d, duration) else {
        return;
    };
    let at = |g: &GroupDraft| g.join_at.as_ref().map_or(Duration::ZERO, |j| *j.get_ref());
    for g in groups {
        let Some(count) = &g.count else { continue };
        let join_at = at(g);
        if join_at >= end {
            let span = g.join_at.as_ref().map_or(g.span.clone(), |j| j.span());
            let message = format!(
                "join-at of {} must be before the end of the run at {} (first join + duration), but is {}",
                g.label(),
                show(end),
                show(join_at)
            );
            cx.error(span, message);
            continue;
        }
        let Some(spacing) = &g.join_spacing else {
            continue;
        };
        let last = spacing
            .get_ref()
            .checked_mul(count.get_ref() - 1)
            .and_then(|s| s.checked_add(join_at));
        if last.is_none_or(|l| l >= end) {
            let when = last.map_or_else(|| "never".to_owned(), show);
            let message = format!(
                "join-spacing of {} makes its last bot start joining at {when}, but the run ends at {} (first join + duration); shorten join-spacing or lengthen duration",
                g.label(),
                show(end)
            );
            cx.error(spacing.span(), message);
        }
    }
}

/// When the run ends: `duration` after the first join.
fn run_end(d: &Draft, duration: Duration) -> Option<Duration> {
    let groups = d.groups.as_deref()?;
    let first = groups
        .iter()
        .map(|g| g.join_at.as_ref().map_or(Duration::ZERO, |j| *j.get_ref()))
        .min()?;
    Some(first + duration)
}

/// A phase must start before the run ends.
fn phases_within_run(cx: &mut Cx<'_>, d: &Draft, duration: Duration) {
    let Some(end) = run_end(d, duration) else {
        return;
    };
    for p in &d.phases {
        let Some(at) = &p.at else { continue };
        if *at.get_ref() >= end {
            cx.error(
                at.span(),
                format!(
                    "at of phases[{}] must be before the end of the run at {} (first join + duration), but is {}",
                    p.number,
                    show(end),
                    show(*at.get_ref())
                ),
            );
        }
    }
}

/// A fault must start before the run ends, and clear by then at the latest.
fn faults_within_run(cx: &mut Cx<'_>, d: &Draft, duration: Duration) {
    let Some(end) = run_end(d, duration) else {
        return;
    };
    for f in &d.faults {
        let Some(at) = &f.at else { continue };
        let label = f.label();
        if *at.get_ref() >= end {
            cx.error(
                at.span(),
                format!(
                    "at of {label} must be before the end of the run at {} (first join + duration), but is {}",
                    show(end),
                    show(*at.get_ref())
                ),
            );
            continue;
        }
        let Some(length) = &f.duration else { continue };
        let clear = *at.get_ref() + *length.get_ref();
        if clear > end {
            cx.error(
                length.span(),
                format!(
                    "for of {label} makes it clear at {}, but the run ends at {} (first join + duration); shorten for, or leave it out to last until the end",
                    show(clear),
                    show(end)
                ),
            );
        }
    }
}

/// Bot faults target a group by name or one bot by identity. Checked only when every
/// group was readable: otherwise the list of identities is not known.
fn bot_targets(cx: &mut Cx<'_>, d: &Draft) {
    let Some(groups) = d.groups.as_deref().filter(|g| g.iter().all(|g| g.ok)) else {
        return;
    };
    let names: Vec<&str> = groups
        .iter()
        .filter_map(|g| g.name.as_ref().map(|n| n.get_ref().as_str()))
        .collect();
    let bots: Vec<(String, &GroupDraft)> = groups
        .iter()
        .flat_map(|g| {
            let prefix = g.identity_prefix.as_ref().or(g.name.as_ref());
            let count = g.count.as_ref().map_or(0, |c| *c.get_ref());
            prefix
                .into_iter()
                .flat_map(move |p| (1..=count).map(move |n| (format!("{}-{n}", p.get_ref()), g)))
        })
        .collect();
    for f in &d.faults {
        let (Some(target), Some(effect)) = (&f.target, &f.effect) else {
            continue;
        };
        let kind = *effect.get_ref();
        if kind.target_kind() != TargetKind::Bots {
            continue;
        }
        let text = target.get_ref().as_str();
        let group = names.contains(&text);
        let bot = bots.iter().find(|(id, _)| id == text);
        match (group, bot) {
            (true, Some((_, owner))) => cx.error(
                target.span(),
                format!(
                    "target `{text}` of {} is ambiguous: it names group `{text}` and a bot of {}; rename one of them",
                    f.label(),
                    owner.label()
                ),
            ),
            (true, None) | (false, Some(_)) => {
                let owner = bot.map(|(_, g)| *g).or_else(|| {
                    groups
                        .iter()
                        .find(|g| g.name.as_ref().is_some_and(|n| n.get_ref() == text))
                });
                if kind != FaultKind::Kill
                    && let Some(g) = owner.filter(|g| g.lean == Some(true))
                {
                    cx.error(
                        target.span(),
                        format!(
                            "target `{text}` of {} is a bot of lean {}, and a lean bot only joins, receives and leaves ({kind} needs the full bot); drop lean = true from the group",
                            f.label(),
                            g.label()
                        ),
                    );
                }
            }
            (false, None) => {
                let shown_bots = if bots.len() <= 10 {
                    let ids: Vec<&str> = bots.iter().map(|(id, _)| id.as_str()).collect();
                    format!("a bot ({})", ids.join(", "))
                } else {
                    format!("a bot by identity, such as `{}`", bots[0].0)
                };
                let hint = hint(
                    text,
                    names
                        .iter()
                        .copied()
                        .chain(bots.iter().map(|(id, _)| id.as_str())),
                );
                cx.error(
                    target.span(),
                    format!(
                        "unknown target `{text}` of {}; {kind} targets a group ({}) or {shown_bots}{hint}",
                        f.label(),
                        names.join(", ")
                    ),
                );
            }
        }
    }
}

/// Network effects target `sfu` (every bot's path) or a site a group lives in; a site's
/// own link (`bandwidth`, `link-down`) only a site.
fn site_targets(cx: &mut Cx<'_>, d: &Draft) {
    let mut sites: Vec<&str> = Vec::new();
    for g in d.groups.as_deref().unwrap_or_default() {
        if let Some(s) = &g.site
            && !sites.contains(&s.get_ref().as_str())
        {
            sites.push(s.get_ref());
        }
    }
    // A `[sites.NAME]` table is settings for a site some group lives in.
    if d.groups.as_deref().is_some_and(|g| g.iter().all(|g| g.ok)) {
        for s in &d.sites {
            let name = s.name.get_ref().as_str();
            if !sites.contains(&name) {
                cx.error(
                    s.name.span(),
                    format!(
                        "sites.{name} is the site of no group; give a group `site = \"{name}\"`, or remove the table{}",
                        hint(name, sites.iter().copied())
                    ),
                );
            }
        }
    }
    for f in &d.faults {
        let (Some(target), Some(effect)) = (&f.target, &f.effect) else {
            continue;
        };
        let kind = *effect.get_ref();
        let sfu_too = match kind.target_kind() {
            TargetKind::Network => true,
            TargetKind::Site => false,
            _ => continue,
        };
        let text = target.get_ref().as_str();
        if sites.contains(&text) || (sfu_too && text == "sfu") {
            continue;
        }
        let what = if sfu_too {
            "`sfu` (every bot's path) or a site"
        } else {
            "a site"
        };
        let known = if sites.is_empty() {
            "no group has a `site`".to_owned()
        } else {
            format!("the sites are {}", sites.join(", "))
        };
        let hint = hint(text, sites.iter().copied());
        cx.error(
            target.span(),
            format!(
                "unknown target `{text}` of {}; {kind} targets {what}, and {known}{hint}",
                f.label()
            ),
        );
    }
}

fn expected_failures(cx: &mut Cx<'_>, d: &Draft) {
    for (i, name) in d.expected_failures.iter().enumerate() {
        let text = name.get_ref();
        if !d.threshold_keys.iter().any(|k| k == text) {
            let hint = hint(text, d.threshold_keys.iter().map(String::as_str));
            cx.error(
                name.span(),
                format!(
                    "expected-failures names `{text}`, which is not a key of [thresholds]{hint}"
                ),
            );
        } else if d.expected_failures[..i].iter().any(|o| o.get_ref() == text) {
            cx.error(
                name.span(),
                format!("expected-failures names `{text}` more than once"),
            );
        }
    }
}
