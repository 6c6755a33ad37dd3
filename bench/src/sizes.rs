//! Bundle sizes (`--scenarios sizes`): each worker's built files, raw and `gzip -9`, beside the
//! JS baselines and the workers-rs ceiling (when built).

use crate::Config;
use std::path::{Path, PathBuf};
use switchboard_bench::report::SizeRow;

fn gzip_len(p: &Path) -> u64 {
    std::process::Command::new("gzip").arg("-9c").arg(p).output().map(|o| o.stdout.len() as u64).unwrap_or(0)
}

fn size_row(worker: &str, root: &Path, p: &Path) -> Option<SizeRow> {
    let raw = std::fs::metadata(p).ok()?.len();
    let shown = p.strip_prefix(root).unwrap_or(p).display().to_string();
    Some(SizeRow { worker: worker.into(), file: shown, raw_bytes: raw, gzip_bytes: gzip_len(p) })
}

pub fn sizes(cfg: &Config, build_src: &Path) -> Vec<SizeRow> {
    let root = &cfg.root;
    let mut out = Vec::new();
    for f in ["index_bg.wasm", "index.js"] {
        // Reported under the path it was built to (the run serves a snapshot of it).
        if let Some(mut r) = size_row("chat", root, &cfg.build.join(f)) {
            r.file = build_src.join(f).strip_prefix(root).unwrap_or(&build_src.join(f)).display().to_string();
            out.push(r);
        }
    }
    let notif = root.join("services/notifications/build");
    if let Ok(rd) = std::fs::read_dir(&notif) {
        let mut files: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm" || x == "js"))
            .collect();
        files.sort();
        out.extend(files.iter().filter_map(|p| size_row("notifications", root, p)));
    }
    if !out.iter().any(|r| r.worker == "notifications") {
        out.push(SizeRow {
            worker: "notifications".into(),
            file: "services/notifications/build (not built)".into(),
            raw_bytes: 0,
            gzip_bytes: 0,
        });
    }
    out.extend(size_row("JS ceiling", root, &root.join("bench/baselines/ceiling.mjs")));
    // The same object written with workers-rs (when built): a Rust worker's size before our code.
    out.extend(size_row("Rust ceiling", root, &root.join("bench/baselines/ceiling-rs/build/index_bg.wasm")));
    out.extend(size_row("JS room", root, &root.join("bench/baselines/room.mjs")));
    out
}
