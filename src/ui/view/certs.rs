//! The certificate pane: each chain drawn as a path from the leaf to its trust anchor, every link
//! marked with the verdict of the check that judged the chain, then every field of the selected
//! certificate.
//!
//! The verdicts are rustls's (`server_chain`, `client_chain` checks); the drawing only groups the
//! certificates by where they were seen and links each to the one whose subject is its issuer.

use super::fit;
use crate::trace::{CertInfo, EventKind, Side, Trace};
use crate::ui::app::{AppState, Pane};
use crate::ui::narrate;
use crate::ui::steps::Step;
use crate::ui::theme::Styles;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Block;

/// Certificates grouped into chains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub title: String,
    /// The check that judges this chain, e.g. `server_chain`.
    pub check: Option<&'static str>,
    /// Indices into `trace.certificates`, leaf first.
    pub chain: Vec<usize>,
    /// The trust anchor the chain leads to, if one with the right subject is known.
    pub anchor: Option<usize>,
    /// The issuer name the chain's last certificate points to.
    pub wanted_issuer: Option<String>,
}

fn chain_indices(trace: &Trace, side: Side) -> Vec<usize> {
    let prefix = format!("{} chain[", side.name());
    let mut v: Vec<(usize, usize)> = trace
        .certificates
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let rest = c.role.strip_prefix(&prefix)?;
            Some((rest.split(']').next()?.parse().ok()?, i))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, i)| i).collect()
}

/// The chains of a trace: the broker's, the device's, then any other certificates.
pub fn groups(trace: &Trace) -> Vec<Group> {
    let mut used = vec![false; trace.certificates.len()];
    let mut out = Vec::new();
    for (side, title, check) in [
        (
            Side::Broker,
            "Broker's chain · checked by the device",
            "server_chain",
        ),
        (
            Side::Device,
            "Device's chain · checked by the broker",
            "client_chain",
        ),
    ] {
        let chain = chain_indices(trace, side);
        if chain.is_empty() {
            continue;
        }
        for &i in &chain {
            used[i] = true;
        }
        let last = &trace.certificates[*chain.last().unwrap_or(&0)];
        let (anchor, wanted) = if last.self_signed {
            (None, None)
        } else {
            let candidates = |want_anchor: bool| {
                trace.certificates.iter().enumerate().find(|(i, c)| {
                    !chain.contains(i)
                        && c.subject == last.issuer
                        && (!want_anchor || c.role.contains("anchor") || c.role.contains("root"))
                })
            };
            let a = candidates(true)
                .or_else(|| candidates(false))
                .map(|(i, _)| i);
            (a, Some(last.issuer.clone()))
        };
        if let Some(a) = anchor {
            used[a] = true;
        }
        out.push(Group {
            title: title.to_string(),
            check: Some(check),
            chain,
            anchor,
            wanted_issuer: wanted,
        });
    }
    let rest: Vec<usize> = (0..trace.certificates.len())
        .filter(|i| !used[*i])
        .collect();
    if !rest.is_empty() {
        out.push(Group {
            title: "Other certificates".into(),
            check: None,
            chain: rest,
            anchor: None,
            wanted_issuer: None,
        });
    }
    out
}

/// Certificates in the order the pane lists them (selection moves along this).
pub fn order(trace: &Trace) -> Vec<usize> {
    groups(trace)
        .into_iter()
        .flat_map(|g| g.chain.into_iter().chain(g.anchor))
        .collect()
}

/// The certificate a step is about (a Certificate message, a chain check), as a position in
/// [`order`].
pub fn cert_for_step(trace: &Trace, step: Option<&Step>) -> Option<usize> {
    let e = step?.event(trace)?;
    let side = match &e.kind {
        EventKind::Handshake { msg, .. } if msg == "Certificate" => e.side,
        EventKind::Check { check, .. } => match check.as_str() {
            "server_chain" | "server_name" | "server_kx_signature" => Side::Broker,
            "client_chain" | "certificate_verify" | "registry" => Side::Device,
            _ => return None,
        },
        _ => return None,
    };
    let leaf = *chain_indices(trace, side).first()?;
    order(trace).iter().position(|&i| i == leaf)
}

/// The verdict of a chain check as of the current step: `None` while not yet checked.
fn verdict<'t>(trace: &'t Trace, state: &AppState, check: &str) -> Option<(bool, &'t str)> {
    let upto = state.current().map(|s| s.event).unwrap_or(0);
    trace
        .events
        .iter()
        .take(upto + 1)
        .find_map(|e| match &e.kind {
            EventKind::Check {
                check: c,
                ok,
                reason,
                ..
            } if c == check => Some((*ok, reason.as_str())),
            _ => None,
        })
}

fn mark(v: Option<bool>, styles: &Styles) -> Span<'static> {
    match v {
        Some(true) => Span::styled("✔", styles.ok),
        Some(false) => Span::styled("✘", styles.fail),
        None => Span::styled("·", styles.dim),
    }
}

/// Lines drawing one group; `sel` is the selected certificate index (into `trace.certificates`).
fn group_lines(
    trace: &Trace,
    state: &AppState,
    g: &Group,
    sel: Option<usize>,
    w: usize,
    styles: &Styles,
) -> Vec<Line<'static>> {
    let v = g.check.and_then(|c| verdict(trace, state, c));
    let ok = v.map(|(ok, _)| ok);
    let mut out = Vec::new();
    let mut title = vec![
        Span::styled(fit(&g.title, w.saturating_sub(3)), styles.phase),
        Span::raw(" "),
    ];
    if g.check.is_some() {
        title.push(mark(ok, styles));
    }
    out.push(Line::from(title));
    let name_line = |idx: usize, depth: usize, link: Option<Span<'static>>, tag: &str| {
        let c = &trace.certificates[idx];
        let selected = sel == Some(idx);
        let pointer = if selected { "▸" } else { " " };
        let indent = if depth == 0 {
            String::new()
        } else {
            format!("{}└", " ".repeat(depth * 2 - 1))
        };
        let expired = c.days_left < 0;
        let tag = if expired {
            "expired".to_string()
        } else {
            tag.to_string()
        };
        let room = w.saturating_sub(indent.chars().count() + 3 + tag.chars().count() + 2);
        let name = fit(narrate::cn(&c.subject), room);
        let pad = w.saturating_sub(
            1 + indent.chars().count()
                + link.as_ref().map(|_| 1).unwrap_or(0)
                + 1
                + name.chars().count()
                + tag.chars().count(),
        );
        let row = if selected {
            styles.selected
        } else {
            Style::new()
        };
        let mut spans = vec![
            Span::styled(pointer.to_string(), row),
            Span::styled(indent, row.patch(styles.dim)),
        ];
        if let Some(l) = link {
            spans.push(Span::styled(l.content, row.patch(l.style)));
        }
        spans.push(Span::styled(format!(" {name}"), row.patch(styles.value)));
        spans.push(Span::styled(" ".repeat(pad), row));
        spans.push(Span::styled(
            tag,
            row.patch(if expired { styles.fail } else { styles.dim }),
        ));
        Line::from(spans)
    };
    let link_ok = |depth_is_anchor: bool| match ok {
        Some(false) if g.anchor.is_none() && depth_is_anchor => Some(false),
        Some(false) if g.anchor.is_none() => None,
        other => other,
    };
    for (d, &idx) in g.chain.iter().enumerate() {
        let tag = if d == 0 && g.check.is_some() {
            "leaf"
        } else if trace.certificates[idx].self_signed {
            "⚓ root"
        } else {
            "CA"
        };
        let link = if d == 0 {
            None
        } else {
            Some(mark(link_ok(false), styles))
        };
        out.push(name_line(idx, d, link, tag));
    }
    let depth = g.chain.len();
    match (g.anchor, &g.wanted_issuer) {
        (Some(a), _) => out.push(name_line(
            a,
            depth,
            Some(mark(link_ok(true), styles)),
            "⚓ anchor",
        )),
        (None, Some(wanted)) => {
            let indent = format!(" {}└", " ".repeat(depth * 2 - 1));
            let known = match ok {
                Some(false) => "✘",
                _ => "?",
            };
            let text = fit(
                &format!(
                    "{indent}{known} no trust anchor named {}",
                    narrate::cn(wanted)
                ),
                w,
            );
            out.push(Line::styled(
                text,
                if ok == Some(false) {
                    styles.fail
                } else {
                    styles.dim
                },
            ));
        }
        _ => {}
    }
    if let Some((ok, reason)) = v {
        let text = fit(&format!("  rustls: {reason}"), w);
        out.push(Line::styled(
            text,
            if ok { styles.dim } else { styles.fail },
        ));
    } else if g.check.is_some() {
        out.push(Line::styled(
            fit("  not checked yet at this step", w),
            styles.dim,
        ));
    }
    out
}

/// The fields of one certificate.
fn cert_lines(c: &CertInfo, w: usize, styles: &Styles) -> Vec<Line<'static>> {
    let lw = 11;
    let vw = w.saturating_sub(lw);
    let row = |label: &str, value: String, st: Style| {
        Line::from(vec![
            Span::styled(format!("{label:<lw$}"), styles.label),
            Span::styled(fit(&value, vw), st),
        ])
    };
    let join = |v: &[String]| {
        if v.is_empty() {
            "—".to_string()
        } else {
            v.join(", ")
        }
    };
    let days = if c.days_left < 0 {
        (format!("EXPIRED {} days ago", -c.days_left), styles.fail)
    } else if c.days_left < 30 {
        (format!("{} days left", c.days_left), styles.warn)
    } else {
        (format!("{} days left", c.days_left), styles.ok)
    };
    let mut out = vec![
        Line::from(vec![
            Span::styled(
                fit(narrate::cn(&c.subject), w.saturating_sub(c.role.len() + 3)),
                styles.emphasis,
            ),
            Span::styled(format!("  {}", c.role), styles.dim),
        ]),
        row("Subject", c.subject.clone(), styles.value),
        row("Issuer", c.issuer.clone(), styles.value),
        row("Serial", c.serial.clone(), styles.value),
        row("Not before", c.not_before.clone(), styles.value),
        row("Not after", c.not_after.clone(), styles.value),
        row("Days left", days.0, days.1),
        row("Key", c.key.clone(), styles.value),
        row("SAN", join(&c.san), styles.value),
        row("Key usage", join(&c.key_usage), styles.value),
        row("EKU", join(&c.extended_key_usage), styles.value),
        row(
            "Basic",
            c.basic_constraints.clone().unwrap_or("—".into()),
            styles.value,
        ),
        row("Signature", c.signature_algorithm.clone(), styles.value),
    ];
    // The fingerprint in full, over as many lines as it takes.
    let fp = &c.sha256;
    let mut start = 0;
    let mut first = true;
    while start < fp.len() && vw > 0 {
        let end = (start + vw).min(fp.len());
        let label = if first { "SHA-256" } else { "" };
        out.push(row(label, fp[start..end].to_string(), styles.value));
        first = false;
        start = end;
    }
    out
}

pub fn render(buf: &mut Buffer, area: Rect, trace: &Trace, state: &AppState, styles: &Styles) {
    super::chrome::tabbed_block(buf, area, state, state.focus == Pane::Certificates, styles);
    let inner = Block::bordered().inner(area);
    if inner.width < 10 || inner.height < 3 {
        return;
    }
    let w = inner.width as usize;
    if trace.certificates.is_empty() {
        buf.set_string(
            inner.x,
            inner.y,
            fit("No certificates in this trace.", w),
            styles.dim,
        );
        return;
    }
    let order = order(trace);
    let sel = order
        .get(state.cert.min(order.len().saturating_sub(1)))
        .copied();
    let groups = groups(trace);
    let all: Vec<Vec<Line>> = groups
        .iter()
        .map(|g| group_lines(trace, state, g, sel, w, styles))
        .collect();
    let total: usize = all.iter().map(Vec::len).sum();
    let details = sel
        .map(|i| cert_lines(&trace.certificates[i], w, styles))
        .unwrap_or_default();
    // Show every chain when there is room for them and the details; otherwise the selected one.
    let chains: Vec<Line> = if total + details.len() < inner.height as usize {
        all.into_iter().flatten().collect()
    } else {
        let gi = groups
            .iter()
            .position(|g| sel.is_some_and(|s| g.chain.contains(&s) || g.anchor == Some(s)))
            .unwrap_or(0);
        let mut v = all.into_iter().nth(gi).unwrap_or_default();
        if groups.len() > 1 {
            v.push(Line::styled(
                fit("  ↑/↓ other certificates and chains", w),
                styles.dim,
            ));
        }
        v
    };
    let mut y = inner.y;
    for line in chains
        .iter()
        .chain(std::iter::once(&Line::styled("─".repeat(w), styles.border)))
        .chain(details.iter())
    {
        if y >= inner.bottom() {
            break;
        }
        buf.set_line(inner.x, y, line, inner.width);
        y += 1;
    }
}
