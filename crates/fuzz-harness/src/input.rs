//! A cursor over fuzz bytes for structure-aware targets: small numbers
//! pick choices, length-prefixed runs become strings. Running out of bytes
//! is not an error: every read then yields zeros or empty values, so any
//! input maps to some structured value.

/// Reads choices and strings from fuzz bytes.
#[derive(Debug)]
pub struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    /// Wraps the fuzzer's bytes.
    pub fn new(data: &'a [u8]) -> Self {
        Input { rest: data }
    }

    /// One byte (0 when exhausted).
    pub fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((b, r)) => {
                self.rest = r;
                *b
            }
            None => 0,
        }
    }

    /// A choice in `0..n` (`n > 0`).
    pub fn choose(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    /// A flag.
    pub fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// Up to `max` bytes, the count given by the next byte.
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let want = usize::from(self.byte()).min(max).min(self.rest.len());
        let (a, b) = self.rest.split_at(want);
        self.rest = b;
        a
    }

    /// A string of up to `max` bytes (invalid UTF-8 replaced), or, for
    /// about one read in four, one of `dictionary` so that structure-aware
    /// targets reach past the first check quickly.
    pub fn string(&mut self, max: usize, dictionary: &[&str]) -> String {
        let sel = self.byte();
        if !dictionary.is_empty() && sel & 3 == 0 {
            return dictionary[usize::from(sel / 4) % dictionary.len()].to_owned();
        }
        String::from_utf8_lossy(self.bytes(max)).into_owned()
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// True when every byte was read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}
