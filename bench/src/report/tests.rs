//! The markdown tables and the plot, from a sample of results.

use super::svg::{fmt_tick, log_ticks};
use super::*;

fn a(m: f64) -> Option<Agg> {
    Some(Agg { median: m, min: m * 0.9, max: m * 1.1, runs: 3 })
}

fn sample() -> Results {
    let mut r = Results::default();
    for (server, d, p99) in [(OURS, 28000.0, 9.0), (ROOM, 25000.0, 10.0), (CEILING, 30000.0, 5.0)] {
        for n in [10, 1000] {
            r.fanout.push(FanoutRow {
                server: server.into(),
                mode: "socket".into(),
                n,
                deliveries_per_s: a(d),
                latency: vec![
                    LatencySet {
                        basis: HALF_OWN.into(),
                        rate_msgs_per_s: d / n as f64 / 2.0,
                        p99_ms: a(p99),
                        ..Default::default()
                    },
                    LatencySet { basis: COMMON.into(), rate_msgs_per_s: 12.5, p99_ms: a(p99), ..Default::default() },
                ],
                ..Default::default()
            });
        }
    }
    r.sizes.push(SizeRow {
        worker: "chat".into(),
        file: "build/index_bg.wasm".into(),
        raw_bytes: 1_200_000,
        gzip_bytes: 400_000,
    });
    r.memory.push(MemoryRow { server: OURS.into(), sockets: 1000, kib_per_socket: a(10.0), ..Default::default() });
    r.memory.push(MemoryRow { server: ROOM.into(), sockets: 1000, kib_per_socket: a(10.1), ..Default::default() });
    r
}

#[test]
fn judges_targets() {
    let t = targets(&sample());
    let find = |name: &str| t.iter().find(|t| t.name.starts_with(name)).unwrap().pass;
    // 28000 / 30000 = 0.93 >= 0.9
    assert_eq!(find("deliveries/s at N=1000 vs platform ceiling"), Some(true));
    assert_eq!(find("deliveries/s at N=1000 vs JS room"), Some(true));
    assert_eq!(find("p99 at N=1000, common rate"), Some(true));
    assert_eq!(find("gzipped wasm"), Some(true));
    assert_eq!(find("memory per idle hibernated socket (1000"), Some(true));
    let mut r = sample();
    r.fanout.iter_mut().filter(|f| f.server == OURS).for_each(|f| f.deliveries_per_s = a(20000.0));
    let t = targets(&r);
    assert_eq!(t[0].pass, Some(false));
    assert_eq!(t[1].pass, Some(false));
}

#[test]
fn paired_ratios_take_runs_of_one_round_together() {
    let run = |d: f64| SatRun { deliveries_per_s: d, ..Default::default() };
    let ours = FanoutRow { saturation: vec![run(30.0), run(45.0), run(50.0)], ..Default::default() };
    // The machine got faster over the runs; each round's ratio is still 0.9.
    let ceiling = FanoutRow { saturation: vec![run(33.3333), run(50.0), run(55.5555)], ..Default::default() };
    let p = paired_ratios(&ours, &ceiling).unwrap();
    assert!((p.median - 0.9).abs() < 1e-3 && (p.min - 0.9).abs() < 1e-3 && (p.max - 0.9).abs() < 1e-3, "{p:?}");
    // A stalled run and a round one side lacks are left out.
    let stalled = SatRun { stalled: true, ..run(10.0) };
    let ours = FanoutRow { saturation: vec![stalled, run(45.0), run(50.0)], ..Default::default() };
    let short = FanoutRow { saturation: vec![run(33.3333), run(50.0)], ..Default::default() };
    assert_eq!(paired_ratios(&ours, &short).unwrap().runs, 1);
    assert!(paired_ratios(&FanoutRow::default(), &ceiling).is_none());
}

#[test]
fn unmeasured_targets_are_not_passed() {
    let t = targets(&Results::default());
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].pass, None);
}

#[test]
fn markdown_has_a_row_per_server_and_n() {
    let md = markdown(&sample());
    assert_eq!(md.matches("| ours (Rust/wasm) |").count(), 2 + 2 + 1); // fan-out, common-rate and memory tables
    assert!(md.contains("| 1000 | JS ceiling | 30000 [27000–33000] | 1.00 |"));
    assert!(md.contains("### Bundle size"));
}

#[test]
fn svg_draws_both_panels_for_each_server() {
    let svg = svg(&sample());
    assert!(svg.starts_with("<svg"));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 6);
    assert!(svg.contains("JS room"));
    let empty = super::svg(&Results::default());
    assert_eq!(empty.matches("no data").count(), 2);
}

#[test]
fn ticks() {
    assert_eq!(log_ticks(8.0, 120.0), vec![10.0, 20.0, 50.0, 100.0]);
    assert!(log_ticks(0.0, 10.0).is_empty());
    assert_eq!(fmt_tick(20000.0), "20k");
    assert_eq!(fmt_tick(0.5), "0.5");
}
