//! Waiting before a reconnect, the same way everywhere: a [`Backoff`] that
//! doubles from a first wait up to a longest one and starts over after a
//! session that worked, and [`jittered`] to spread reconnects of many
//! mirrors over time. The wait itself is
//! [`signals::sleep_unless_stopped`](crate::signals::sleep_unless_stopped),
//! so a stop request is never held up by it.
//!
//! Used by a mirror's upstream thread and by the client daemon's
//! reconnects to Tor.

use std::time::Duration;

/// A doubling wait between attempts: `start`, `2 * start`, … up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    start: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A backoff whose first wait is `start` and longest `max`.
    pub const fn new(start: Duration, max: Duration) -> Backoff {
        Backoff {
            start,
            max,
            next: start,
        }
    }

    /// The next attempt waits `start` again: a session got far enough to
    /// count as working.
    pub fn reset(&mut self) {
        self.next = self.start;
    }

    /// The wait before the next attempt; the one after it is twice as
    /// long, up to `max`.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }
}

/// `base` scaled by a random factor in [0.5, 1.5).
pub fn jittered(base: Duration) -> Duration {
    let mut byte = [0u8; 1];
    sodiumoxide::randombytes::randombytes_into(&mut byte);
    base.mul_f64(0.5 + f64::from(byte[0]) / 256.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_longest_and_start_over_on_reset() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(250), ms(1000));
        let waits: Vec<Duration> = (0..5).map(|_| backoff.next_wait()).collect();
        assert_eq!(waits, [ms(250), ms(500), ms(1000), ms(1000), ms(1000)]);
        backoff.reset();
        assert_eq!(backoff.next_wait(), ms(250));
    }

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half() {
        let base = Duration::from_secs(10);
        for _ in 0..200 {
            let wait = jittered(base);
            assert!(wait >= base / 2 && wait < base * 3 / 2, "{wait:?}");
        }
    }
}
