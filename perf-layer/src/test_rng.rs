//! A small deterministic random number generator for the unit tests
//! (xorshift64): reproducible cases without a dependency.

pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next value; the seed must not be zero.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value below `n` (below 1 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
