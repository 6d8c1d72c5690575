//! Progress of a long admin job on stderr: a bar with rate and ETA when stderr is a terminal,
//! plain lines otherwise (logs, CI, `2> file`), so a script never gets terminal escapes.
//!
//! Plain lines look like `rewrap: 2560/10000 records (25%), 9874 records/s, ETA 1 s` and are
//! written each time another tenth of the job is done, at least every [`LINE_EVERY`] while
//! it runs, and once at the end: few enough for a log, often enough to see it is alive.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The longest a plain-line log stays silent while a job runs.
const LINE_EVERY: Duration = Duration::from_secs(10);

/// How progress is shown.
enum Display {
    Bar(ProgressBar),
    Lines { last_line: Instant, last_tenth: u64 },
}

/// The progress of one job: `done` of `total` units, counting from where it resumed.
pub(crate) struct Progress {
    label: &'static str,
    unit: &'static str,
    total: u64,
    done: u64,
    resumed_at: u64,
    start: Instant,
    display: Display,
}

impl Progress {
    /// Start showing a job of `total` units of which `resumed_at` were done by an earlier run.
    pub(crate) fn start(
        label: &'static str,
        unit: &'static str,
        total: u64,
        resumed_at: u64,
    ) -> Self {
        let display = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let template = format!(
                "{label}: [{{bar:30}}] {{pos}}/{{len}} {unit} ({{percent}}%), {{per_sec}}, ETA {{eta}}"
            );
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style.progress_chars("#>-"));
            }
            bar.set_position(resumed_at);
            bar.reset_eta();
            Display::Bar(bar)
        } else {
            Display::Lines { last_line: Instant::now(), last_tenth: tenth(resumed_at, total) }
        };
        Progress {
            label,
            unit,
            total,
            done: resumed_at,
            resumed_at,
            start: Instant::now(),
            display,
        }
    }

    /// `done` units are now done (the total grows if the job found more than it expected).
    pub(crate) fn set(&mut self, done: u64) {
        self.done = done;
        if done > self.total {
            self.total = done;
        }
        match &mut self.display {
            Display::Bar(bar) => {
                bar.set_length(self.total);
                bar.set_position(done);
            }
            Display::Lines { last_line, last_tenth } => {
                let now_tenth = tenth(done, self.total);
                if now_tenth > *last_tenth || last_line.elapsed() >= LINE_EVERY {
                    *last_tenth = now_tenth;
                    *last_line = Instant::now();
                    if done < self.total {
                        eprintln!("{}", self.line());
                    }
                }
            }
        }
    }

    /// The job ended (finished or stopped by an error): the last line, or the bar left at
    /// its final state.
    pub(crate) fn finish(self) {
        match &self.display {
            Display::Bar(bar) => bar.abandon(),
            Display::Lines { .. } => eprintln!("{}", self.line()),
        }
    }

    /// Units per second since this run started.
    pub(crate) fn rate(&self) -> f64 {
        (self.done - self.resumed_at) as f64 / self.start.elapsed().as_secs_f64().max(1e-3)
    }

    fn line(&self) -> String {
        let (label, unit, done, total) = (self.label, self.unit, self.done, self.total);
        let percent = (done * 100).checked_div(total).unwrap_or(100);
        let rate = self.rate();
        let eta = if done >= total {
            "done".to_string()
        } else if rate > 0.0 {
            format!("ETA {}", human((total - done) as f64 / rate))
        } else {
            "ETA unknown".to_string()
        };
        format!("{label}: {done}/{total} {unit} ({percent}%), {rate:.0} {unit}/s, {eta}")
    }
}

/// Which tenth of the job `done` is in (0..=10).
fn tenth(done: u64, total: u64) -> u64 {
    (done.min(total) * 10).checked_div(total).unwrap_or(10)
}

/// Seconds as `42 s`, `3 min 05 s` or `2 h 07 min`.
fn human(secs: f64) -> String {
    let s = secs.ceil() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenths_and_durations_read_as_a_person_expects() {
        assert_eq!(tenth(0, 10_000), 0);
        assert_eq!(tenth(999, 10_000), 0);
        assert_eq!(tenth(1_000, 10_000), 1);
        assert_eq!(tenth(10_000, 10_000), 10);
        assert_eq!(tenth(0, 0), 10);
        assert_eq!(human(0.2), "1 s");
        assert_eq!(human(59.0), "59 s");
        assert_eq!(human(65.0), "1 min 05 s");
        assert_eq!(human(7_620.0), "2 h 07 min");
    }

    #[test]
    fn a_plain_line_has_count_percent_rate_and_eta() {
        let mut p = Progress {
            label: "rewrap",
            unit: "records",
            total: 10_000,
            done: 0,
            resumed_at: 0,
            start: Instant::now() - Duration::from_secs(2),
            display: Display::Lines { last_line: Instant::now(), last_tenth: 0 },
        };
        p.done = 2_500;
        let line = p.line();
        assert!(line.starts_with("rewrap: 2500/10000 records (25%), "), "{line}");
        assert!(line.contains(" records/s, ETA "), "{line}");
        p.done = 10_000;
        assert!(p.line().ends_with(", done"), "{}", p.line());
    }
}
