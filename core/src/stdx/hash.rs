//! Hashes every layer uses (LANGUAGE.md §7.5): FNV-1a 64 and 128, the split
//! bucket of a profile, the message id of a send.
//!
//! Promise: these are part of the output's contract — a change here changes
//! split assignments and message ids of every replay. The tests pin them.

/// FNV-1a, 64 bits (LANGUAGE.md §7.5).
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    fnv64(FNV64_OFFSET, bytes)
}

/// FNV-1a 64's starting value: `fnv64(FNV64_OFFSET, b) == fnv1a_64(b)`.
pub const FNV64_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a 64, continued from `hash` over `bytes` (a digest of a stream read
/// in pieces).
pub fn fnv64(hash: u64, bytes: &[u8]) -> u64 {
    let mut h = hash;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

const FNV128_OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;

/// FNV-1a 128, continued from `hash` over `bytes`.
fn fnv128(hash: u128, bytes: &[u8]) -> u128 {
    let mut h = hash;
    for b in bytes {
        h ^= u128::from(*b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    h
}

/// `n` in decimal, written into `buf`.
fn decimal(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = n;
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[at..]
}

/// The experiment bucket 0–99 of a profile in a journey's split: FNV-1a 64 of
/// `journey/split_index/profile`, modulo 100.
pub fn split_bucket(journey: &str, split_index: u32, profile: &str) -> u64 {
    let mut buf = [0; 20];
    let mut h = fnv64(FNV64_OFFSET, journey.as_bytes());
    h = fnv64(h, b"/");
    h = fnv64(h, decimal(u64::from(split_index), &mut buf));
    h = fnv64(h, b"/");
    fnv64(h, profile.as_bytes()) % 100
}

/// FNV-1a, 128 bits.
pub fn fnv1a_128(text: &str) -> u128 {
    fnv128(FNV128_OFFSET, text.as_bytes())
}

/// A deterministic id for a send: FNV-1a 128 over profile, journey, instance and
/// step (separated by U+001F), so a replay produces the same ids and a sender can
/// deduplicate. FNV alone changes few bits for similar keys; a final mix
/// (murmur3's) spreads them.
pub fn message_id(profile: &str, journey: &str, instance: u32, step: usize) -> String {
    let mut buf = [0; 20];
    let mut h = fnv128(FNV128_OFFSET, profile.as_bytes());
    h = fnv128(h, b"\x1f");
    h = fnv128(h, journey.as_bytes());
    h = fnv128(h, b"\x1f");
    h = fnv128(h, decimal(u64::from(instance), &mut buf));
    h = fnv128(h, b"\x1f");
    h = fnv128(h, decimal(step as u64, &mut buf));
    let (hi, lo) = ((h >> 64) as u64, h as u64);
    let lo = fmix64(lo ^ hi.rotate_left(29));
    let hi = fmix64(hi ^ lo);
    let digits = u128::from(hi) << 64 | u128::from(lo);
    let mut hex = [0u8; 32];
    for (i, b) in hex.iter_mut().enumerate() {
        let digit = (digits >> (4 * (31 - i))) as usize & 0xf;
        *b = b"0123456789abcdef".get(digit).copied().unwrap_or(b'0');
    }
    String::from(std::str::from_utf8(&hex).unwrap_or_default())
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_reference_vectors() {
        assert_eq!(fnv1a_64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x85944171f73967e8);
    }

    /// The streamed hashes are the hashes of the joined text (§7.5).
    #[test]
    fn split_and_message_ids_hash_the_joined_text() {
        for (journey, index, profile) in
            [("j", 0, "u1"), ("winback", 12, "cust-0000042"), ("", 7, "")]
        {
            let joined = format!("{journey}/{index}/{profile}");
            assert_eq!(
                split_bucket(journey, index, profile),
                fnv1a_64(joined.as_bytes()) % 100
            );
        }
        let h = fnv1a_128("u1\u{1f}j\u{1f}1\u{1f}2");
        let (hi, lo) = ((h >> 64) as u64, h as u64);
        let lo = fmix64(lo ^ hi.rotate_left(29));
        let hi = fmix64(hi ^ lo);
        assert_eq!(message_id("u1", "j", 1, 2), format!("{hi:016x}{lo:016x}"));
        let mut buf = [0; 20];
        assert_eq!(decimal(0, &mut buf), b"0");
        assert_eq!(decimal(u64::MAX, &mut buf), b"18446744073709551615");
    }
}
