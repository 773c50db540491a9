//! Profiling: memory and CPU use of the server and the machine, read from /proc.

use super::*;

pub(crate) fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// CPU time (user + system) a process has used, in clock ticks (1/100 s on Linux).
pub(crate) fn process_cpu_ticks(pid: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = text.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(11) + get(12)
}

/// Busy and total clock ticks of the whole machine.
pub(crate) fn machine_cpu_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else {
        return (0, 0);
    };
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Where CPU time went during a measurement: the server, this load generator, and
/// everything else on the machine (other builds, and PostgreSQL's own processes).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuShare {
    pub(crate) server: f64,
    pub(crate) client: f64,
    pub(crate) other: f64,
    /// Server CPU time per completed request, in microseconds.
    pub(crate) server_us_per_request: f64,
}

pub(crate) struct CpuProbe {
    pub(crate) server_pid: String,
    pub(crate) server: u64,
    pub(crate) client: u64,
    pub(crate) busy: u64,
}

impl CpuProbe {
    pub(crate) fn start(server_pid: u32) -> Self {
        let (busy, _) = machine_cpu_ticks();
        let server_pid = server_pid.to_string();
        Self {
            server: process_cpu_ticks(&server_pid),
            client: process_cpu_ticks("self"),
            busy,
            server_pid,
        }
    }

    /// Shares in percent of one core (so 200 % is both cores of a 2-core machine).
    pub(crate) fn finish(self, wall: Duration, requests: u64) -> CpuShare {
        let ticks_per_sec = 100.0;
        let (busy, _) = machine_cpu_ticks();
        let server = (process_cpu_ticks(&self.server_pid) - self.server) as f64 / ticks_per_sec;
        let client = (process_cpu_ticks("self") - self.client) as f64 / ticks_per_sec;
        let all = (busy - self.busy) as f64 / ticks_per_sec;
        let wall = wall.as_secs_f64().max(1e-9);
        CpuShare {
            server: 100.0 * server / wall,
            client: 100.0 * client / wall,
            other: (100.0 * (all - server - client) / wall).max(0.0),
            server_us_per_request: if requests > 0 {
                server * 1e6 / requests as f64
            } else {
                0.0
            },
        }
    }
}
