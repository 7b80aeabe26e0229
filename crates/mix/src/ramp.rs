//! Linear gain ramps: every change glides over a fixed time, per sample, so there
//! are no clicks or zipper noise and the result does not depend on block size.

/// A gain that moves linearly towards its target at a fixed rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    current: f32,
    target: f32,
    step: f32,
    remaining: u32,
    len: u32,
}

impl Ramp {
    /// A ramp at `value` that takes `len` samples for any change.
    pub fn new(value: f32, len: u32) -> Self {
        Self {
            current: value,
            target: value,
            step: 0.0,
            remaining: 0,
            len: len.max(1),
        }
    }

    /// Starts gliding to `target` from wherever the ramp is now.
    pub fn set(&mut self, target: f32) {
        if target == self.target {
            return;
        }
        self.target = target;
        self.remaining = self.len;
        self.step = (target - self.current) / self.len as f32;
    }

    /// Jumps to `value` at once (for reset).
    pub fn jump(&mut self, value: f32) {
        *self = Self::new(value, self.len);
    }

    /// The value the ramp is heading for.
    pub fn target(&self) -> f32 {
        self.target
    }

    /// True while gliding.
    pub fn is_moving(&self) -> bool {
        self.remaining > 0
    }

    /// The next per-sample value.
    #[inline]
    pub fn next_value(&mut self) -> f32 {
        if self.remaining > 0 {
            self.remaining -= 1;
            self.current = if self.remaining == 0 {
                self.target
            } else {
                self.current + self.step
            };
        }
        self.current
    }

    /// Fills `out` with the next `out.len()` values; returns `Some(value)` when the
    /// ramp holds still over the whole span (so callers can use a constant).
    #[inline]
    pub fn fill(&mut self, out: &mut [f32]) -> Option<f32> {
        if self.remaining == 0 {
            return Some(self.current);
        }
        for o in out.iter_mut() {
            *o = self.next_value();
        }
        None
    }
}
