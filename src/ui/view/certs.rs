//! The certificate pane: each chain drawn as a path from the leaf to its trust anchor, every link
//! marked with the verdict of the check that judged the chain, then every field of the selected
//! certificate.
//!
//! The verdicts are rustls's (`server_chain`, `client_chain` checks); the drawing only groups the
//! certificates by where they were seen and links each to the one whose subject is its issuer.

use super::fit;
use crate::trace::{CertInfo, CheckId, EventKind, Side, Trace};
use crate::ui::app::{AppState, Pane};
pub use crate::ui::model::{cert_for_step, chain_indices, groups, has_anchor_role, order, Group};
use crate::ui::narrate;
use crate::ui::theme::Styles;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Block;

/// The verdict of a chain check as of the current step: `None` while not yet checked.
fn verdict<'t>(trace: &'t Trace, state: &AppState, check: CheckId) -> Option<(bool, &'t str)> {
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
            } if *c == check && e.side != Side::Iotls => Some((*ok, reason.as_str())),
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
    // A link's mark: the chain verdict. When the chain failed for want of an anchor, the links
    // that exist were not the problem: they stay unmarked and the missing anchor gets the ✘.
    let link = match ok {
        Some(false) if g.missing_issuer.is_some() => None,
        other => other,
    };
    let last = g.path.len().saturating_sub(1);
    for (d, &idx) in g.path.iter().enumerate() {
        let c = &trace.certificates[idx];
        let tag = if d == 0 && g.check.is_some() {
            "leaf"
        } else if d == last && g.anchored && has_anchor_role(c) {
            "trust anchor"
        } else if c.self_signed {
            "root"
        } else {
            "CA"
        };
        let mark = (d > 0).then(|| mark(link, styles));
        out.push(name_line(idx, d, mark, tag));
    }
    if let Some(wanted) = &g.missing_issuer {
        if g.check.is_some() {
            let indent = format!(" {}└", " ".repeat(g.path.len() * 2 - 1));
            let known = if ok == Some(false) { "✘" } else { "?" };
            let text = fit(
                &format!(
                    "{indent}{known} no trusted certificate named {}",
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
    }
    if let Some((ok, reason)) = v {
        let text = fit(&format!("  → {reason}"), w);
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
    let lw = 9;
    let vw = w.saturating_sub(lw);
    let row = |label: &str, spans: Vec<Span<'static>>| {
        let mut v = vec![Span::styled(format!("{label:<lw$}"), styles.label)];
        v.extend(spans);
        Line::from(v)
    };
    let plain =
        |label: &str, value: String| row(label, vec![Span::styled(fit(&value, vw), styles.value)]);
    let join = |v: &[String]| {
        if v.is_empty() {
            "—".to_string()
        } else {
            v.join(", ")
        }
    };
    let (days, days_style) = if c.days_left < 0 {
        (format!("EXPIRED {} days ago", -c.days_left), styles.fail)
    } else if c.days_left < 30 {
        (format!("{} days left", c.days_left), styles.warn)
    } else {
        (format!("{} days left", c.days_left), styles.ok)
    };
    let dates = format!(
        "{} → {} · ",
        short_date(&c.not_before),
        short_date(&c.not_after)
    );
    let dates_w = dates.chars().count();
    let mut usage = c.key_usage.clone();
    if !c.extended_key_usage.is_empty() {
        usage.push(format!("EKU {}", c.extended_key_usage.join(", ")));
    }
    if let Some(b) = &c.basic_constraints {
        usage.push(b.clone());
    }
    let mut out: Vec<Line<'static>> = subject_lines(&c.subject, vw)
        .into_iter()
        .enumerate()
        .map(|(k, l)| plain(if k == 0 { "Subject" } else { "" }, l))
        .collect();
    // Two serials: the subject's serialNumber attribute, which the policy variable reads, and
    // the certificate's serial number, which the CA chose.
    if narrate::rdn(&c.subject, "serialNumber").is_some() {
        out.push(plain("Policy", policy_reads(vw).to_string()));
    }
    out.extend([
        plain("Issuer", c.issuer.clone()),
        plain("Serial", c.serial.clone()),
        row(
            "Valid",
            vec![
                Span::styled(fit(&dates, vw), styles.value),
                Span::styled(fit(&days, vw.saturating_sub(dates_w)), days_style),
            ],
        ),
        plain(
            "Key",
            format!("{} · signed {}", c.key, c.signature_algorithm),
        ),
        plain("SAN", join(&c.san)),
        plain("Usage", join(&usage)),
    ]);
    // The fingerprint in full, over as many lines as it takes.
    let fp = &c.sha256;
    let mut start = 0;
    while start < fp.len() && vw > 0 {
        let end = (start + vw).min(fp.len());
        out.push(plain(
            if start == 0 { "SHA-256" } else { "" },
            fp[start..end].to_string(),
        ));
        start = end;
    }
    out
}

/// The subject in `w` columns without losing `CN=` or `serialNumber=`: the other attributes
/// (`O=`, `OU=`, …) are shortened first; if that is not enough, `serialNumber=` goes on a line
/// of its own.
pub fn subject_lines(subject: &str, w: usize) -> Vec<String> {
    if subject.chars().count() <= w {
        return vec![subject.to_string()];
    }
    let keep = |p: &str| p.starts_with("CN=") || p.starts_with("serialNumber=");
    let cut = |p: &str, k: usize| match p.split_once('=') {
        Some((key, v)) if !keep(p) && v.chars().count() > k => {
            format!("{key}={}…", v.chars().take(k).collect::<String>())
        }
        _ => p.to_string(),
    };
    let shortened = |parts: &[&str]| {
        let longest = parts.iter().map(|p| p.chars().count()).max().unwrap_or(0);
        (1..=longest).rev().find_map(|k| {
            let s = parts
                .iter()
                .map(|p| cut(p, k))
                .collect::<Vec<_>>()
                .join(", ");
            (s.chars().count() <= w).then_some(s)
        })
    };
    let parts: Vec<&str> = subject.split(", ").collect();
    if let Some(s) = shortened(&parts) {
        return vec![s];
    }
    match parts.iter().position(|p| p.starts_with("serialNumber=")) {
        Some(i) => {
            let mut rest = parts.clone();
            let serial = rest.remove(i);
            let first = shortened(&rest).unwrap_or_else(|| fit(&rest.join(", "), w));
            vec![first, fit(serial, w)]
        }
        None => vec![fit(subject, w)],
    }
}

/// The line that tells the two serials apart, as long as `w` allows.
fn policy_reads(w: usize) -> &'static str {
    [
        "${iot:Certificate.Subject.SerialNumber} reads serialNumber=, not Serial",
        "…Subject.SerialNumber reads serialNumber=, not Serial",
        "reads serialNumber=, not Serial",
    ]
    .into_iter()
    .find(|t| t.chars().count() <= w)
    .unwrap_or("reads serialNumber=")
}

/// `Nov 27 18:13:30 2026 +00:00` → `2026-11-27`; anything else unchanged.
pub fn short_date(d: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = d.split_whitespace().collect();
    match parts.as_slice() {
        [mon, day, _time, year, ..] => {
            match (MONTHS.iter().position(|m| m == mon), day.parse::<u8>()) {
                (Some(m), Ok(day)) => format!("{year}-{:02}-{day:02}", m + 1),
                _ => d.to_string(),
            }
        }
        _ => d.to_string(),
    }
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
    let h = inner.height as usize;
    // Every chain when there is room for them and the details; otherwise the selected
    // certificate's chain, without its verdict line if need be (the decisions pane has it).
    let gi = groups
        .iter()
        .position(|g| sel.is_some_and(|s| g.path.contains(&s)))
        .unwrap_or(0);
    let chains: Vec<Line> = if total + 1 + details.len() <= h {
        all.into_iter().flatten().collect()
    } else {
        let mut v = all.into_iter().nth(gi).unwrap_or_default();
        if v.len() + 1 + details.len() > h && v.len() > 2 {
            v.pop();
        }
        v
    };
    let rule = Line::styled("─".repeat(w), styles.border);
    let lines = chains
        .iter()
        .chain(std::iter::once(&rule))
        .chain(details.iter());
    for (y, line) in (inner.y..inner.bottom()).zip(lines) {
        buf.set_line(inner.x, y, line, inner.width);
    }
}
