//! Certificate serial numbers: 20 random bytes, positive, never zero-led.

/// A certificate serial number (big-endian, unsigned).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Serial(Vec<u8>);

impl std::fmt::Debug for Serial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Serial({})", self.to_hex())
    }
}

impl Serial {
    /// 159 random bits in 20 bytes: the top bit is cleared (so the DER
    /// INTEGER is positive without a padding byte) and the first byte is
    /// never zero (so the length is always 20).
    pub fn random() -> Self {
        let mut b = [0u8; 20];
        // SystemRandom failing means the OS has no entropy source: nothing
        // can be issued safely, so this is a fatal condition.
        aws_lc_rs::rand::fill(&mut b).unwrap_or_else(|_| panic!("no OS randomness available"));
        b[0] &= 0x7f;
        if b[0] == 0 {
            b[0] = 0x01;
        }
        Serial(b.to_vec())
    }

    /// From big-endian bytes (leading zeros stripped).
    pub fn from_bytes(b: &[u8]) -> Self {
        let start = b
            .iter()
            .position(|&x| x != 0)
            .unwrap_or(b.len().saturating_sub(1));
        Serial(b[start..].to_vec())
    }

    /// Parses decimal text (CFSSL's form), e.g. from a revoke request.
    pub fn from_decimal(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() || s.len() > 60 || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        // bytes = bytes * 10 + digit, in base 256
        let mut out: Vec<u8> = vec![0];
        for d in s.bytes().map(|c| c - b'0') {
            let mut carry = d as u32;
            for byte in out.iter_mut().rev() {
                let v = (*byte as u32) * 10 + carry;
                *byte = (v & 0xff) as u8;
                carry = v >> 8;
            }
            while carry > 0 {
                out.insert(0, (carry & 0xff) as u8);
                carry >>= 8;
            }
        }
        Some(Serial::from_bytes(&out))
    }

    /// Parses hex text (with or without `0x`, colons allowed).
    pub fn from_hex(s: &str) -> Option<Self> {
        let s: String = s
            .trim()
            .trim_start_matches("0x")
            .chars()
            .filter(|c| *c != ':')
            .collect();
        let s = if s.len() % 2 == 1 { format!("0{s}") } else { s };
        hex::decode(s)
            .ok()
            .filter(|b| !b.is_empty())
            .map(|b| Serial::from_bytes(&b))
    }

    /// Big-endian bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// Decimal text, as CFSSL's cert DB stores it.
    pub fn to_decimal(&self) -> String {
        let mut digits = Vec::new();
        let mut n: Vec<u8> = self.0.clone();
        while n.iter().any(|&b| b != 0) {
            let mut rem = 0u32;
            for byte in n.iter_mut() {
                let v = (rem << 8) | *byte as u32;
                *byte = (v / 10) as u8;
                rem = v % 10;
            }
            digits.push(b'0' + rem as u8);
        }
        if digits.is_empty() {
            return "0".into();
        }
        digits.reverse();
        String::from_utf8(digits).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_round_trip() {
        for _ in 0..200 {
            let s = Serial::random();
            assert_eq!(s.as_bytes().len(), 20);
            assert!(s.as_bytes()[0] < 0x80 && s.as_bytes()[0] > 0);
            let d = s.to_decimal();
            assert_eq!(Serial::from_decimal(&d).unwrap(), s);
        }
        assert_eq!(Serial::from_bytes(&[1, 0]).to_decimal(), "256");
        assert_eq!(Serial::from_decimal("256").unwrap().to_hex(), "0100");
        assert_eq!(Serial::from_hex("0x0100").unwrap().to_decimal(), "256");
        assert!(Serial::from_decimal("12a").is_none());
    }
}
