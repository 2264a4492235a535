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

    /// The table in docs/api.md ("Bucket values"), for SDK authors.
    #[test]
    fn docs_bucket_table() {
        let table: [(&str, &str, u32, u32); 12] = [
            ("lane-1", "pod-1", 0xd4ad_ce76, 374),
            ("shop/prod/app.json#7", "user-42", 0x8da9_3894, 7524),
            ("lane-1", "pod-2", 0x8e96_9c7f, 5135),
            ("lane-1", "pod-3", 0xb82c_ffdc, 6828),
            ("lane-1", "pod-4", 0xba76_6bc7, 3015),
            ("lane-1", "canary-0", 0x0bf7_6640, 2944),
            ("lane-1", "user-42", 0xcbca_8b60, 8800),
            ("9f2c1a7e5b3d4c60", "pod-1", 0x1391_4240, 6784),
            ("9f2c1a7e5b3d4c60", "user-42", 0x0b1c_a3a4, 6276),
            ("lane-1", "", 0xf5c7_be49, 8297),
            ("", "pod-1", 0xe2a5_afbc, 9244),
            ("lane-1", "北京-1", 0x3bf7_3ffd, 9517),
        ];
        for (salt, value, hash, expected) in table {
            let key = format!("{salt}:{value}");
            assert_eq!(murmur3_x86_32(key.as_bytes(), 0), hash, "{key}");
            assert_eq!(bucket(salt, value), expected, "{key}");
        }
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

    proptest! {
        #[test]
        fn bucket_is_below_ten_thousand(salt in ".*", value in ".*") {
            prop_assert!(bucket(&salt, &value) < BUCKETS);
        }

        #[test]
        fn growth_is_monotonic(
            salt in "[a-z0-9-]{1,16}",
            value in "[A-Za-z0-9._/-]{1,24}",
            p in 0u32..=BUCKETS,
            q in 0u32..=BUCKETS,
        ) {
            let (low, high) = (p.min(q), p.max(q));
            let b = bucket(&salt, &value);
            if b < low {
                prop_assert!(b < high);
            }
        }
    }
}
