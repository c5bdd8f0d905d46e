//! Pausing `accept` when file descriptors run out.
//!
//! On `EMFILE`/`ENFILE` the pending connection stays in the listen backlog and the listener
//! stays readable, so retrying at once would spin. Instead accepting stops for a while and
//! resumes on a timer, when connections that closed in between may have freed descriptors.

use std::time::Duration;

use switchboard::Instant;

/// When accepting may resume.
#[derive(Clone, Copy, Debug)]
pub struct AcceptPause {
    length: Duration,
    until: Option<Instant>,
}

impl AcceptPause {
    /// Pauses of `length`.
    pub fn new(length: Duration) -> Self {
        AcceptPause {
            length,
            until: None,
        }
    }

    /// Stops accepting from `now` for the pause length.
    pub fn pause(&mut self, now: Instant) {
        self.until = Some(now.saturating_add(self.length));
    }

    /// Whether accepting is paused.
    pub fn is_paused(&self) -> bool {
        self.until.is_some()
    }

    /// When accepting resumes, if paused: a deadline for the loop's timeout.
    pub fn deadline(&self) -> Option<Instant> {
        self.until
    }

    /// Ends the pause if it is over by `now`; returns whether it just ended (the caller
    /// then accepts what waited in the backlog, as no new readiness event will say so).
    pub fn resume_if_due(&mut self, now: Instant) -> bool {
        if self.until.is_some_and(|until| until <= now) {
            self.until = None;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn pause_lasts_its_length_then_resumes_once() {
        let mut pause = AcceptPause::new(Duration::from_millis(100));
        assert!(!pause.is_paused());
        assert!(!pause.resume_if_due(Instant::from_nanos(0)));
        pause.pause(Instant::from_nanos(5 * MS));
        assert!(pause.is_paused());
        assert_eq!(pause.deadline(), Some(Instant::from_nanos(105 * MS)));
        assert!(!pause.resume_if_due(Instant::from_nanos(104 * MS)));
        assert!(pause.is_paused());
        assert!(pause.resume_if_due(Instant::from_nanos(105 * MS)));
        assert!(!pause.is_paused());
        assert!(!pause.resume_if_due(Instant::from_nanos(200 * MS)));
    }
}
