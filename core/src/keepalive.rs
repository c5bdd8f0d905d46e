//! Keepalive: PING on a fixed cadence, `Timeout` when the peer falls silent, and an RTT
//! estimate from the PONGs.
//!
//! A PING is due every `ping_interval` whether or not traffic flows: nine bytes per interval
//! buy an RTT estimate that is never stale. Liveness is judged on *anything* received: once a
//! PING falls due, the peer has `pong_timeout` to send us something (a PONG, or any record)
//! before the connection closes with `Timeout`. A silent peer is therefore dropped at the
//! first PING due after its last record, plus `pong_timeout`.

use alloc::vec::Vec;
use core::time::Duration;

use crate::frame::Frame;
use crate::time::Instant;

/// The peer sent nothing within `pong_timeout` of a PING falling due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimedOut;

pub(crate) struct Keepalive {
    ping_interval: Duration,
    pong_timeout: Duration,
    /// When the next PING falls due.
    next_ping: Instant,
    /// A PING fell due and is not written yet.
    ping_pending: bool,
    /// The earliest instant a PING fell due with nothing received since.
    unanswered_since: Option<Instant>,
    /// The last PING written: its value and when.
    in_flight: Option<(u64, Instant)>,
    pings_sent: u64,
    /// The latest PING value to echo; older unanswered ones are superseded.
    pong_pending: Option<u64>,
    smoothed_rtt: Option<Duration>,
}

impl Keepalive {
    pub(crate) fn new(now: Instant, ping_interval: Duration, pong_timeout: Duration) -> Self {
        Keepalive {
            ping_interval,
            pong_timeout,
            next_ping: now.saturating_add(ping_interval),
            ping_pending: false,
            unanswered_since: None,
            in_flight: None,
            pings_sent: 0,
            pong_pending: None,
            smoothed_rtt: None,
        }
    }

    /// A record arrived: the peer is alive.
    pub(crate) fn handle_received(&mut self) {
        self.unanswered_since = None;
    }

    pub(crate) fn handle_ping(&mut self, value: u64) {
        self.pong_pending = Some(value);
    }

    pub(crate) fn handle_pong(&mut self, now: Instant, value: u64) {
        let Some((sent_value, sent_at)) = self.in_flight else {
            return;
        };
        if sent_value != value {
            return;
        }
        self.in_flight = None;
        let sample = now.saturating_duration_since(sent_at);
        // RFC 6298's smoothing: srtt = 7/8 srtt + 1/8 sample.
        self.smoothed_rtt = Some(match self.smoothed_rtt {
            None => sample,
            Some(srtt) => {
                let weighted = srtt.saturating_mul(7).saturating_add(sample);
                weighted.checked_div(8).unwrap_or(sample)
            }
        });
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Result<(), TimedOut> {
        if let Some(since) = self.unanswered_since
            && now >= since.saturating_add(self.pong_timeout)
        {
            return Err(TimedOut);
        }
        if now >= self.next_ping {
            self.ping_pending = true;
            self.next_ping = now.saturating_add(self.ping_interval);
            self.unanswered_since.get_or_insert(now);
        }
        Ok(())
    }

    pub(crate) fn poll_timeout(&self) -> Instant {
        let silence = self.unanswered_since.map_or(Instant::MAX, |since| {
            since.saturating_add(self.pong_timeout)
        });
        self.next_ping.min(silence)
    }

    pub(crate) fn wants_to_write(&self) -> bool {
        self.ping_pending || self.pong_pending.is_some()
    }

    /// Bytes [`Keepalive::write_frames`] appends now.
    pub(crate) fn frames_len(&self) -> usize {
        /// A PING or PONG: type and 8 bytes.
        const FRAME: usize = 9;
        [self.ping_pending, self.pong_pending.is_some()]
            .into_iter()
            .filter(|&pending| pending)
            .count()
            .saturating_mul(FRAME)
    }

    /// Appends a pending PONG and PING (at most 18 bytes).
    pub(crate) fn write_frames(&mut self, now: Instant, out: &mut Vec<u8>) {
        if let Some(value) = self.pong_pending.take() {
            Frame::Pong(value).encode(out);
        }
        if self.ping_pending {
            self.ping_pending = false;
            let value = self.pings_sent;
            self.pings_sent = self.pings_sent.wrapping_add(1);
            self.in_flight = Some((value, now));
            Frame::Ping(value).encode(out);
        }
    }

    /// The smoothed round-trip time, once a PONG has come back.
    pub(crate) fn rtt(&self) -> Option<Duration> {
        self.smoothed_rtt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(10);
    const TIMEOUT: Duration = Duration::from_secs(5);

    fn at(secs: u64) -> Instant {
        Instant::from_nanos(secs * 1_000_000_000)
    }

    #[test]
    fn a_silent_peer_times_out_one_timeout_after_the_ping_falls_due() {
        let mut keepalive = Keepalive::new(at(0), INTERVAL, TIMEOUT);
        assert_eq!(keepalive.poll_timeout(), at(10));
        keepalive.handle_timeout(at(9)).unwrap();
        assert!(
            !keepalive.wants_to_write(),
            "a spurious wake-up does nothing"
        );
        keepalive.handle_timeout(at(10)).unwrap();
        assert!(keepalive.wants_to_write());
        assert_eq!(keepalive.poll_timeout(), at(15));
        keepalive.handle_timeout(at(14)).unwrap();
        assert_eq!(keepalive.handle_timeout(at(15)), Err(TimedOut));
    }

    #[test]
    fn anything_received_keeps_the_peer_alive_and_pongs_measure_rtt() {
        let mut keepalive = Keepalive::new(at(0), INTERVAL, TIMEOUT);
        let mut out = Vec::new();
        for round in 1..1000u64 {
            let due = keepalive.poll_timeout();
            keepalive.handle_timeout(due).unwrap();
            out.clear();
            keepalive.write_frames(due, &mut out);
            assert_eq!(out.len(), 9);
            let value = u64::from_be_bytes(out[1..9].try_into().unwrap());
            assert_eq!(value, round - 1);
            keepalive.handle_received();
            keepalive.handle_pong(due + Duration::from_millis(40), value);
        }
        assert_eq!(keepalive.rtt(), Some(Duration::from_millis(40)));
    }

    #[test]
    fn only_the_latest_ping_is_echoed() {
        let mut keepalive = Keepalive::new(at(0), INTERVAL, TIMEOUT);
        keepalive.handle_ping(1);
        keepalive.handle_ping(2);
        let mut out = Vec::new();
        keepalive.write_frames(at(1), &mut out);
        assert_eq!(out, [&[0x04][..], &2u64.to_be_bytes()].concat());
        assert!(!keepalive.wants_to_write());
    }
}
