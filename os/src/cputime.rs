//! CPU time of the calling thread: what a computation costs, whatever else the machine is
//! doing (wall time on a shared 2-core machine says more about the neighbours).

use std::time::Duration;

use rustix::time::{ClockId, clock_gettime};

/// CPU time this thread has used so far.
pub fn thread_cpu_time() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec.max(0) as u64, t.tv_nsec.clamp(0, 999_999_999) as u32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn busy_work_uses_cpu_time_and_sleep_does_not() {
        let start = super::thread_cpu_time();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let slept = super::thread_cpu_time() - start;
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let worked = super::thread_cpu_time() - start - slept;
        assert!(slept < std::time::Duration::from_millis(20), "{slept:?} while sleeping");
        assert!(worked > slept, "{worked:?} of work vs {slept:?} of sleep ({x})");
    }
}
