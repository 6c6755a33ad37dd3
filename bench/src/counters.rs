//! Hardware counters of the served workerd: instructions, cycles and cache misses of its threads
//! (user and kernel) during a measured window, through `perf_event_open`.
//!
//! Why: on a shared VM the host's load moves absolute rates by tens of percent within minutes while
//! the guest sees no steal and no other process. Instructions per delivery do not move with it: they
//! are the work a server does per delivery, so they compare servers even when rates cannot. Cycles
//! per delivery include the stalls (cache misses, a busy sibling hyperthread) and do move; cache
//! misses per delivery tell how much of that is memory.
//!
//! Where the counters cannot be opened (no PMU in the VM, `perf_event_paranoid`, not Linux), every
//! figure is simply absent from the report.

/// Counts over one window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HwCounts {
    pub instructions: u64,
    pub cycles: u64,
    /// `None` where the PMU has no generic cache-miss event.
    pub cache_misses: Option<u64>,
}

/// Counts per delivery.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerDelivery {
    pub instructions: f64,
    pub cycles: f64,
    pub cache_misses: Option<f64>,
}

impl HwCounts {
    /// Per unit of work (`per` deliveries); `None` when nothing was delivered or nothing counted.
    pub fn per(&self, per: u64) -> Option<PerDelivery> {
        if per == 0 || self.instructions == 0 {
            return None;
        }
        let d = per as f64;
        Some(PerDelivery {
            instructions: self.instructions as f64 / d,
            cycles: self.cycles as f64 / d,
            cache_misses: self.cache_misses.map(|m| m as f64 / d),
        })
    }

    fn add(&mut self, other: HwCounts) {
        self.instructions += other.instructions;
        self.cycles += other.cycles;
        self.cache_misses = match (self.cache_misses, other.cache_misses) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use super::HwCounts;
    use perf_event::events::Hardware;
    use perf_event::{Builder, Counter, Group};

    struct Thread {
        group: Group,
        instructions: Counter,
        cycles: Counter,
        cache_misses: Option<Counter>,
    }

    /// One counter group per thread of a process (its threads when `open` ran).
    pub struct ProcessCounters {
        threads: Vec<Thread>,
    }

    fn open_thread(tid: i32, kernel: bool) -> std::io::Result<Thread> {
        let mut gb = Group::builder();
        gb.observe_pid(tid).any_cpu().exclude_kernel(!kernel);
        let mut group = gb.build_group()?;
        let mut b = Builder::new(Hardware::INSTRUCTIONS);
        b.observe_pid(tid).any_cpu().exclude_kernel(!kernel);
        let instructions = group.add(&b)?;
        b.event(Hardware::CPU_CYCLES);
        let cycles = group.add(&b)?;
        b.event(Hardware::CACHE_MISSES);
        let cache_misses = group.add(&b).ok();
        Ok(Thread { group, instructions, cycles, cache_misses })
    }

    impl ProcessCounters {
        /// Counters on every thread of `pid`, user and kernel (user only when the kernel may not be
        /// counted). `None` when no counter can be opened.
        pub fn open(pid: u32) -> Option<ProcessCounters> {
            let tids: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
                .ok()?
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            let mut threads = Vec::new();
            for tid in tids {
                if let Ok(t) = open_thread(tid, true).or_else(|_| open_thread(tid, false)) {
                    threads.push(t);
                }
            }
            (!threads.is_empty()).then_some(ProcessCounters { threads })
        }

        /// Zeroes and starts every counter.
        pub fn start(&mut self) {
            for t in &mut self.threads {
                let _ = t.group.reset();
                let _ = t.group.enable();
            }
        }

        /// Stops every counter and sums them; `None` when none could be read.
        pub fn stop(&mut self) -> Option<HwCounts> {
            for t in &mut self.threads {
                let _ = t.group.disable();
            }
            let mut sum = HwCounts::default();
            let mut any = false;
            for t in &mut self.threads {
                if let Ok(data) = t.group.read() {
                    let get = |c: &Counter| data.get(c).map(|e| e.value()).unwrap_or(0);
                    let cache_misses = t.cache_misses.as_ref().map(get);
                    sum.add(HwCounts { instructions: get(&t.instructions), cycles: get(&t.cycles), cache_misses });
                    any = true;
                }
            }
            (any && sum.instructions > 0).then_some(sum)
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::HwCounts;

    pub struct ProcessCounters;

    impl ProcessCounters {
        pub fn open(_pid: u32) -> Option<ProcessCounters> {
            None
        }
        pub fn start(&mut self) {}
        pub fn stop(&mut self) -> Option<HwCounts> {
            None
        }
    }
}

pub use imp::ProcessCounters;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_delivery() {
        let c = HwCounts { instructions: 9_000_000, cycles: 12_000_000, cache_misses: Some(50_000) };
        assert_eq!(
            c.per(100),
            Some(PerDelivery { instructions: 90_000.0, cycles: 120_000.0, cache_misses: Some(500.0) })
        );
        assert_eq!(c.per(0), None);
        assert_eq!(HwCounts::default().per(10), None);
        let mut s = HwCounts::default();
        s.add(c);
        s.add(c);
        assert_eq!(s.instructions, 18_000_000);
        assert_eq!(s.cache_misses, Some(100_000));
        s.add(HwCounts { cache_misses: None, ..c });
        assert_eq!(s.cache_misses, Some(100_000), "a thread without the event adds nothing");
    }

    /// Counts this very process while it spins: where the machine lets counters open, they count
    /// something, and more work counts more instructions.
    #[test]
    fn counts_a_process_when_the_machine_allows() {
        let Some(mut pc) = ProcessCounters::open(std::process::id()) else {
            eprintln!("hardware counters cannot be opened on this machine: nothing to check");
            return;
        };
        let spin = |n: u64| {
            let mut x = 0u64;
            for i in 0..n {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            x
        };
        pc.start();
        spin(1_000_000);
        let small = pc.stop();
        pc.start();
        spin(20_000_000);
        let big = pc.stop();
        if let (Some(s), Some(b)) = (small, big) {
            assert!(b.instructions > s.instructions * 5, "{s:?} vs {b:?}");
        }
    }
}
