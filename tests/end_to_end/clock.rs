//! The story's phases, timed: each phase's time as it ends, and a table of
//! them all at the end.

use std::time::{Duration, Instant};

/// The phases' names, for the timing table.
pub(crate) struct Clock {
    began: Instant,
    current: Option<(String, Instant)>,
    done: Vec<(String, Duration)>,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            began: Instant::now(),
            current: None,
            done: Vec::new(),
        }
    }

    /// Ends the running phase (printing its time) and begins `name`.
    pub(crate) fn phase(&mut self, name: &str) {
        self.end();
        eprintln!("\n=== phase {name}");
        self.current = Some((name.to_owned(), Instant::now()));
    }

    fn end(&mut self) {
        if let Some((name, at)) = self.current.take() {
            let took = at.elapsed();
            eprintln!("=== phase {name}: {:.1} s", took.as_secs_f64());
            self.done.push((name, took));
        }
    }

    pub(crate) fn report(&mut self) {
        self.end();
        eprintln!("\nend-to-end timings:");
        for (name, took) in &self.done {
            eprintln!("  {:>6.1} s  {name}", took.as_secs_f64());
        }
        eprintln!("  {:>6.1} s  in all", self.began.elapsed().as_secs_f64());
    }
}
