//! API token secrets, their hashes, and when their use is written.

use super::passwords::random_string;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A new API token secret: `gc_` and 40 random characters (about 234 bits).
pub fn new_token_secret() -> String {
    format!("gc_{}", random_string(40))
}

/// A new trigger token: `gct_` and 32 random bytes in hex (256 bits; URL-safe as it is, and
/// told apart from an API token by its prefix).
pub fn new_trigger_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("gct_{}", hex::encode(bytes))
}

/// Tokens are long random strings, so one SHA-256 is enough to store them safely.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub const TOKEN_PREFIX_LEN: usize = 8;

/// Which tokens had their `last_used_at` written recently: the database keeps
/// it to the minute, so a token used again within the minute (a fleet of
/// subscribers reconnecting with one token) costs no write.
#[derive(Default)]
pub struct TokenUse {
    touched: Mutex<HashMap<i64, Instant>>,
}

const TOKEN_USE_EVERY: Duration = Duration::from_secs(60);

impl TokenUse {
    /// Whether `last_used_at` of token `id` should be written now.
    pub fn due(&self, id: i64) -> bool {
        let mut touched = self.touched.lock().expect("token use lock");
        let now = Instant::now();
        if touched
            .get(&id)
            .is_some_and(|at| now.duration_since(*at) < TOKEN_USE_EVERY)
        {
            return false;
        }
        if touched.len() > 10_000 {
            touched.retain(|_, at| now.duration_since(*at) < TOKEN_USE_EVERY);
        }
        touched.insert(id, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_use_is_written_once_a_minute_per_token() {
        let uses = TokenUse::default();
        assert!(uses.due(1), "the first use is written");
        assert!(!uses.due(1), "a second use within the minute is not");
        assert!(uses.due(2), "another token is");
        uses.touched
            .lock()
            .unwrap()
            .insert(1, Instant::now() - TOKEN_USE_EVERY);
        assert!(uses.due(1), "a minute later it is written again");
    }

    #[test]
    fn token_secrets_are_random_and_hashed() {
        let a = new_token_secret();
        let b = new_token_secret();
        assert_ne!(a, b);
        assert!(a.starts_with("gc_") && a.len() == 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
        let t = new_trigger_secret();
        assert!(t.starts_with("gct_") && t.len() == 68, "{t}");
        assert_ne!(t, new_trigger_secret());
    }
}
