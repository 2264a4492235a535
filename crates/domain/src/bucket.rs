//! Deterministic bucketing of stickiness values into 10,000 buckets (basis points).
//!
//! The hash is part of the wire contract: SDKs in other languages must reproduce it bit for bit,
//! which is why it is MurmurHash3 x86_32 with seed 0 over `salt + ":" + value` and nothing fancier.

/// Number of buckets: one per basis point, so a percentage with two decimals maps exactly.
pub const BUCKETS: u32 = 10_000;

/// MurmurHash3, x86 32-bit variant, as published by Austin Appleby.
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let scramble = |k: u32| k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);

    let mut hash = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        hash ^= scramble(k);
        hash = hash
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let k = tail
            .iter()
            .enumerate()
            .fold(0u32, |k, (i, &byte)| k | u32::from(byte) << (8 * i));
        hash ^= scramble(k);
    }

    // The reference implementation mixes in the length as a 32-bit integer; inputs over 4 GiB
    // wrap exactly as they do there.
    hash ^= data.len() as u32;
    hash ^= hash >> 16;
    hash = hash.wrapping_mul(0x85eb_ca6b);
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(0xc2b2_ae35);
    hash ^= hash >> 16;
    hash
}

/// The bucket (0..10000) of a stickiness `value` for a lane with `salt`.
///
/// A value is inside a lane at percentage `p` exactly when `bucket(salt, value) < p × 100`, so
/// raising the percentage only ever adds values (monotonic growth).
pub fn bucket(salt: &str, value: &str) -> u32 {
    let key = format!("{salt}:{value}");
    murmur3_x86_32(key.as_bytes(), 0) % BUCKETS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lane::LaneRule;
    use crate::selector::Selector;
    use crate::Context;
    use proptest::prelude::*;

    #[test]
    fn murmur3_matches_reference_vectors() {
        assert_eq!(murmur3_x86_32(b"", 0), 0);
        assert_eq!(murmur3_x86_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_x86_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(murmur3_x86_32(b"lane-1:pod-1", 0), 0xd4ad_ce76);
        assert_eq!(
            murmur3_x86_32(b"shop/prod/app.json#7:user-42", 0),
            0x8da9_3894
        );
        // Tails of one, two and three bytes take different paths.
        assert_eq!(murmur3_x86_32(b"a", 0), 0x3c25_69b2);
        assert_eq!(murmur3_x86_32(b"ab", 0), 0x9bbf_d75f);
        assert_eq!(murmur3_x86_32(b"abc", 0), 0xb3dd_93fa);
        assert_eq!(murmur3_x86_32(b"abcd", 0), 0x43ed_676a);
    }

    /// The table SDK authors check against (docs/lanes.md, "Checking an implementation"),
    /// read from that file: every row holds, and the table is not lost.
    #[test]
    fn docs_bucket_table() {
        let doc = include_str!("../../../docs/lanes.md");
        let unquote = |cell: &str| {
            let cell = cell.trim();
            if cell.starts_with("`` ") {
                String::new() // `` (empty)
            } else {
                cell.trim_matches('`').to_string()
            }
        };
        let mut rows = 0;
        for line in doc.lines().filter(|l| l.contains("| `0x")) {
            let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
            let [salt, value, hash, expected] = cells[..] else {
                panic!("a row of four cells: {line}");
            };
            let (salt, value) = (unquote(salt), unquote(value));
            let hash = u32::from_str_radix(unquote(hash).trim_start_matches("0x"), 16).unwrap();
            let expected: u32 = expected.trim().parse().unwrap();
            let key = format!("{salt}:{value}");
            assert_eq!(murmur3_x86_32(key.as_bytes(), 0), hash, "{key}");
            assert_eq!(bucket(&salt, &value), expected, "{key}");
            rows += 1;
        }
        assert_eq!(rows, 12, "the table in docs/lanes.md has its 12 rows");
    }

    #[test]
    fn bucket_matches_reference_vectors() {
        assert_eq!(bucket("lane-1", "pod-1"), 374);
        assert_eq!(bucket("shop/prod/app.json#7", "user-42"), 7524);
    }

    /// Share of 100,000 fixed ids whose bucket is below `threshold_bp`.
    fn share_below(salt: &str, threshold_bp: u32) -> f64 {
        let inside = (0..100_000)
            .filter(|i| bucket(salt, &format!("user-{i}")) < threshold_bp)
            .count();
        inside as f64 / 100_000.0
    }

    #[test]
    fn buckets_are_evenly_spread() {
        for salt in ["lane-1", "shop/prod/app.json#7", "0f3c9a"] {
            for percent in [1.0, 10.0, 50.0] {
                let share = share_below(salt, (percent * 100.0) as u32) * 100.0;
                assert!(
                    (share - percent).abs() <= 0.5,
                    "salt {salt}: {share}% inside a {percent}% lane"
                );
            }
        }
    }

    /// MurmurHash3 x86_32 written as the C reference is (a block loop over
    /// indices, the tail as a fall-through switch), to check the production
    /// code against something it does not share.
    fn reference_murmur3(data: &[u8], seed: u32) -> u32 {
        let (c1, c2) = (0xcc9e_2d51u32, 0x1b87_3593u32);
        let mut h1 = seed;
        let nblocks = data.len() / 4;
        for i in 0..nblocks {
            let b = &data[i * 4..i * 4 + 4];
            let mut k1 = u32::from(b[0])
                | u32::from(b[1]) << 8
                | u32::from(b[2]) << 16
                | u32::from(b[3]) << 24;
            k1 = k1.wrapping_mul(c1);
            k1 = k1.rotate_left(15);
            k1 = k1.wrapping_mul(c2);
            h1 ^= k1;
            h1 = h1.rotate_left(13);
            h1 = h1.wrapping_mul(5).wrapping_add(0xe654_6b64);
        }
        let tail = &data[nblocks * 4..];
        let mut k1 = 0u32;
        if tail.len() >= 3 {
            k1 ^= u32::from(tail[2]) << 16;
        }
        if tail.len() >= 2 {
            k1 ^= u32::from(tail[1]) << 8;
        }
        if !tail.is_empty() {
            k1 ^= u32::from(tail[0]);
            k1 = k1.wrapping_mul(c1);
            k1 = k1.rotate_left(15);
            k1 = k1.wrapping_mul(c2);
            h1 ^= k1;
        }
        h1 ^= data.len() as u32;
        h1 ^= h1 >> 16;
        h1 = h1.wrapping_mul(0x85eb_ca6b);
        h1 ^= h1 >> 13;
        h1 = h1.wrapping_mul(0xc2b2_ae35);
        h1 ^= h1 >> 16;
        h1
    }

    /// A lane letting in `percentage_bp` of everyone, decided by the code the
    /// watch stream and the previews use ([`LaneRule::matches`]).
    fn lane(salt: &str, percentage_bp: u32) -> LaneRule {
        LaneRule {
            id: 1,
            version: 2,
            selector: Selector::parse("").unwrap(),
            targets: Vec::new(),
            percentage: crate::percentage::Percentage::from_bp(percentage_bp).unwrap(),
            stickiness: "client_id".into(),
            salt: salt.into(),
            priority: 0,
        }
    }

    fn subject(value: &str) -> Context {
        Context::from([("client_id".to_string(), value.to_string())])
    }

    proptest! {
        #[test]
        fn murmur3_agrees_with_the_reference(data in proptest::collection::vec(any::<u8>(), 0..64), seed: u32) {
            prop_assert_eq!(murmur3_x86_32(&data, seed), reference_murmur3(&data, seed));
        }

        /// The bucket is the published definition (the hash of `salt:value`
        /// with seed 0, reduced to 0..10000), which SDKs reproduce.
        #[test]
        fn bucket_is_the_published_definition(salt in ".*", value in ".*") {
            let key = format!("{salt}:{value}");
            let b = bucket(&salt, &value);
            prop_assert!(b < BUCKETS);
            prop_assert_eq!(b, reference_murmur3(key.as_bytes(), 0) % BUCKETS);
        }

        /// A subject inside a lane at p stays inside at every q >= p (and one
        /// outside at q was outside at p).
        #[test]
        fn growth_is_monotonic(
            salt in "[a-z0-9-]{1,16}",
            value in "[A-Za-z0-9._/-]{1,24}",
            p in 0u32..=BUCKETS,
            q in 0u32..=BUCKETS,
        ) {
            let (low, high) = (p.min(q), p.max(q));
            let who = subject(&value);
            if lane(&salt, low).matches(&who) {
                prop_assert!(lane(&salt, high).matches(&who), "inside at {low} bp, outside at {high} bp");
            }
            prop_assert!(lane(&salt, BUCKETS).matches(&who), "100 % lets everyone in");
            prop_assert!(!lane(&salt, 0).matches(&who), "0 % lets no one in");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// For any salt and percentage, the share of 10,000 subjects inside is
        /// the percentage, within 2.5 points (five standard deviations at 50 %).
        #[test]
        fn the_share_inside_is_the_percentage(
            salt in "[a-z0-9-]{1,16}",
            prefix in "[a-z]{1,8}",
            percentage_bp in 0u32..=BUCKETS,
        ) {
            let lane = lane(&salt, percentage_bp);
            let inside = (0..10_000)
                .filter(|i| lane.matches(&subject(&format!("{prefix}-{i}"))))
                .count();
            let share = inside as f64 / 100.0;
            let target = f64::from(percentage_bp) / 100.0;
            prop_assert!((share - target).abs() <= 2.5, "{share} % inside a {target} % lane");
        }
    }
}
