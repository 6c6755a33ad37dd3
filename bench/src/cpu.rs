//! CPU and memory accounting from /proc and getrusage: the generator's own CPU, workerd's, the serve
//! script's, and everything else on the machine (to tell whether the machine was quiet).

use std::time::Instant;

/// Clock ticks per second of /proc times.
fn hz() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// user + system CPU seconds of this process.
pub fn self_cpu_secs() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// user + system CPU seconds of a process (0 when it is gone).
pub fn proc_cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { return 0.0 };
    let f: Vec<&str> = rest.split(' ').collect();
    // fields after ")": state(0) ppid(1) ... utime(11) stime(12)
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / hz()
}

/// Busy CPU seconds of the whole machine (all cores).
pub fn machine_busy_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else { return 0.0 };
    let Some(line) = stat.lines().next() else { return 0.0 };
    let v: Vec<f64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal
    let get = |i: usize| v.get(i).copied().unwrap_or(0.0);
    (get(0) + get(1) + get(2) + get(5) + get(6) + get(7)) / hz()
}

/// Resident set size of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A snapshot of CPU counters.
#[derive(Debug, Clone, Copy)]
pub struct Snap {
    at: Instant,
    me: f64,
    workerd: f64,
    node: f64,
    machine: f64,
}

/// CPU used between two snapshots, in cores (1.0 = one core busy all the time).
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub generator: f64,
    /// The serve script (Node, on the generator's core): it drains workerd's log output.
    pub serve: f64,
    pub workerd: f64,
    pub other: f64,
}

impl Snap {
    pub fn take(workerd: u32, node: u32) -> Snap {
        Snap {
            at: Instant::now(),
            me: self_cpu_secs(),
            workerd: proc_cpu_secs(workerd),
            node: proc_cpu_secs(node),
            machine: machine_busy_secs(),
        }
    }

    pub fn since(&self, earlier: &Snap) -> Usage {
        let dt = self.at.duration_since(earlier.at).as_secs_f64().max(1e-6);
        let me = (self.me - earlier.me).max(0.0);
        let wd = (self.workerd - earlier.workerd).max(0.0);
        let node = (self.node - earlier.node).max(0.0);
        let all = (self.machine - earlier.machine).max(0.0);
        Usage { generator: me / dt, serve: node / dt, workerd: wd / dt, other: ((all - me - wd - node) / dt).max(0.0) }
    }
}

/// Lets this process (and the workerd it starts) hold thousands of sockets.
pub fn raise_fd_limit() {
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max.min(1 << 20);
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}
