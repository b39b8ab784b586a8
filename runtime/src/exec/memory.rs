//! How much memory the machine can give, so that a step too large for it is
//! refused with the figures before anything is allocated (an allocation
//! that fails aborts the process, and one the kernel cannot back gets it
//! killed by the out-of-memory killer, both without a word to the user).

use std::fs;

/// Bytes the process can still allocate: the kernel's estimate of memory
/// available without swapping (`MemAvailable` in `/proc/meminfo`), lowered
/// to the room left under the cgroup's limit when one is set (cgroup v2
/// `memory.max` − `memory.current`, or v1 `memory.limit_in_bytes` −
/// `memory.usage_in_bytes`). `None` where neither can be read (not Linux).
pub fn available_bytes() -> Option<u64> {
    let meminfo = fs::read_to_string("/proc/meminfo").ok().and_then(|s| mem_available(&s));
    let cgroup = cgroup_room("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current").or_else(|| {
        cgroup_room(
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        )
    });
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let mut fields = line.split_whitespace().skip(1);
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// The room under a cgroup limit: `limit − usage`, `None` without a limit
/// (`max`, or v1's huge sentinel) or where the files cannot be read.
fn cgroup_room(limit: &str, usage: &str) -> Option<u64> {
    let limit: u64 = fs::read_to_string(limit).ok()?.trim().parse().ok()?;
    if limit >= 1 << 60 {
        return None;
    }
    let usage: u64 = fs::read_to_string(usage).ok()?.trim().parse().ok()?;
    Some(limit.saturating_sub(usage))
}

/// Refuses `needed` bytes for `what` when the machine cannot give them;
/// the message names both figures and what to change.
pub fn check_fits(needed: u64, what: &str) -> Result<(), String> {
    check_fits_in(needed, available_bytes(), what, "a smaller `batch` (or a smaller model) needs less")
}

/// As [`check_fits`], with `hint` (what to change) after the figures.
pub fn check_fits_or(needed: u64, what: &str, hint: &str) -> Result<(), String> {
    check_fits_in(needed, available_bytes(), what, hint)
}

fn check_fits_in(needed: u64, available: Option<u64>, what: &str, hint: &str) -> Result<(), String> {
    match available {
        Some(available) if needed > available => Err(format!(
            "{what} needs {} but only {} of memory are available; {hint}",
            human(needed),
            human(available)
        )),
        _ => Ok(()),
    }
}

/// Bytes in binary units with three significant digits, and the exact count.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.3} {} ({bytes} bytes)", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HINT: &str = "a smaller `batch` (or a smaller model) needs less";

    #[test]
    fn mem_available_is_read_in_bytes() {
        let text = "MemTotal:       24576000 kB\nMemFree:         1000 kB\nMemAvailable:   22233176 kB\n";
        assert_eq!(mem_available(text), Some(22_233_176 * 1024));
        assert_eq!(mem_available("MemTotal: 5 kB\n"), None);
    }

    #[test]
    fn a_step_larger_than_the_memory_is_refused_with_both_figures() {
        let e = check_fits_in(3 << 30, Some(1 << 30), "the training step", HINT).unwrap_err();
        assert_eq!(
            e,
            "the training step needs 3.000 GiB (3221225472 bytes) but only 1.000 GiB (1073741824 bytes) \
             of memory are available; a smaller `batch` (or a smaller model) needs less"
        );
        assert!(check_fits_in(1 << 30, Some(3 << 30), "x", HINT).is_ok());
        assert!(check_fits_in(u64::MAX, None, "x", HINT).is_ok(), "unknown: not refused");
    }

    #[test]
    fn this_machine_reports_its_available_memory() {
        if cfg!(target_os = "linux") {
            let a = available_bytes().expect("Linux has /proc/meminfo");
            assert!(a > 0);
        }
    }
}
