//! The SVG plot: deliveries/s and p99 against N, ours against both baselines.

use super::*;

fn color(server: &str, i: usize) -> &'static str {
    match server {
        OURS => "#d9480f",
        ROOM => "#1c7ed6",
        CEILING => "#5c940d",
        _ => ["#ae3ec9", "#f59f00", "#0ca678", "#495057"][i % 4],
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Log scale helper: maps [lo, hi] (both > 0) to [a, b].
fn logmap(v: f64, lo: f64, hi: f64, a: f64, b: f64) -> f64 {
    let (v, lo, hi) = (v.max(lo).ln(), lo.ln(), hi.ln());
    if hi <= lo {
        return (a + b) / 2.0;
    }
    a + (v - lo) / (hi - lo) * (b - a)
}

/// Nice log-scale ticks (1, 2, 5 × 10^k) within [lo, hi].
pub(super) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    if !(lo > 0.0 && hi > lo) {
        return out;
    }
    let mut p = 10f64.powf(lo.log10().floor());
    while p <= hi * 1.0001 {
        for m in [1.0, 2.0, 5.0] {
            let v = p * m;
            if v >= lo * 0.9999 && v <= hi * 1.0001 {
                out.push(v);
            }
        }
        p *= 10.0;
    }
    out
}

pub(super) fn fmt_tick(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{}k", v / 1e3)
    } else if v >= 1.0 {
        format!("{v}")
    } else {
        format!("{v:.1}")
    }
}

/// Two panels side by side: deliveries/s vs N and p99 (at half the own max) vs N, log-log, one line
/// per server, median points with min–max bars.
pub fn svg(r: &Results) -> String {
    let (w, h) = (980.0, 420.0);
    let panel_w = 430.0;
    let (top, bottom) = (50.0, 350.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let socket: Vec<&FanoutRow> = r.fanout.iter().filter(|f| f.mode == "socket").collect();
    let mut ns: Vec<usize> = socket.iter().map(|f| f.n).collect();
    ns.sort_unstable();
    ns.dedup();
    type Get = fn(&FanoutRow) -> Option<Agg>;
    let panels: [(&str, f64, Get); 2] = [
        ("deliveries/s at the highest sustainable rate", 60.0, |f| f.deliveries_per_s),
        ("p99 send→delivery (ms) at half of own max rate", 550.0, |f| {
            f.latency_basis(HALF_OWN).and_then(|l| l.p99_ms)
        }),
    ];
    for (title, x0, get) in panels {
        let x1 = x0 + panel_w - 60.0;
        let vals: Vec<f64> =
            socket.iter().filter_map(|f| get(f)).flat_map(|a| [a.min, a.max]).filter(|v| *v > 0.0).collect();
        let _ = writeln!(
            s,
            r#"<text x="{}" y="30" text-anchor="middle" font-weight="bold">{}</text>"#,
            (x0 + x1) / 2.0,
            esc(title)
        );
        let _ = writeln!(
            s,
            r##"<rect x="{x0}" y="{top}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
            x1 - x0,
            bottom - top
        );
        if ns.is_empty() || vals.is_empty() {
            let _ = writeln!(s, r#"<text x="{}" y="200" text-anchor="middle">no data</text>"#, (x0 + x1) / 2.0);
            continue;
        }
        let (nlo, nhi) = (*ns.first().expect("non-empty") as f64, *ns.last().expect("non-empty") as f64);
        let (nlo, nhi) = if nhi > nlo { (nlo / 1.5, nhi * 1.5) } else { (nlo / 2.0, nhi * 2.0) };
        let vlo = vals.iter().copied().fold(f64::INFINITY, f64::min) / 1.5;
        let vhi = vals.iter().copied().fold(0.0, f64::max) * 1.5;
        let x = |n: f64| logmap(n, nlo, nhi, x0, x1);
        let y = |v: f64| logmap(v, vlo, vhi, bottom, top);
        for t in log_ticks(vlo, vhi) {
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" x2="{x1}" y1="{0:.1}" y2="{0:.1}" stroke="#eee"/><text x="{1}" y="{2:.1}" text-anchor="end" fill="#555">{3}</text>"##,
                y(t),
                x0 - 4.0,
                y(t) + 4.0,
                fmt_tick(t)
            );
        }
        for &n in &ns {
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{}" text-anchor="middle" fill="#555">{n}</text>"##,
                x(n as f64),
                bottom + 16.0
            );
        }
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#333">N (sockets on one conversation, log scale)</text>"##,
            (x0 + x1) / 2.0,
            bottom + 34.0
        );
        for (i, server) in servers_in(r).iter().enumerate() {
            let server = server.as_str();
            let pts: Vec<(f64, Agg)> = ns
                .iter()
                .filter_map(|&n| {
                    socket.iter().find(|f| f.server == server && f.n == n).and_then(|f| get(f)).map(|a| (n as f64, a))
                })
                .filter(|(_, a)| a.median > 0.0)
                .collect();
            if pts.is_empty() {
                continue;
            }
            let c = color(server, i);
            let dash = if server.starts_with("ours-") { r#" stroke-dasharray="6 4""# } else { "" };
            let line: Vec<String> = pts.iter().map(|(n, a)| format!("{:.1},{:.1}", x(*n), y(a.median))).collect();
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{c}" stroke-width="2"{dash} points="{}"/>"#,
                line.join(" ")
            );
            for (n, a) in &pts {
                let _ = writeln!(
                    s,
                    r#"<line x1="{0:.1}" x2="{0:.1}" y1="{1:.1}" y2="{2:.1}" stroke="{c}"/>"#,
                    x(*n),
                    y(a.min),
                    y(a.max)
                );
                let _ = writeln!(s, r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{c}"/>"#, x(*n), y(a.median));
            }
        }
    }
    for (i, server) in servers_in(r).iter().enumerate() {
        let lx = 60.0 + i as f64 * 200.0;
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="395" width="14" height="4" fill="{}"/><text x="{}" y="401">{}</text>"#,
            color(server, i),
            lx + 20.0,
            esc(label(server))
        );
    }
    let _ = writeln!(s, "</svg>");
    s
}
