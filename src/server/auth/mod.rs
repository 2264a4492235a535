//! Who is calling: passwords, API tokens, sessions, the sign-in throttle and
//! the same-origin rule for cookie-authenticated mutations.
mod actor;
mod browser;
mod client;
mod login;
mod passwords;
mod tokens;

pub use actor::{
    actor_from_parts, bearer_secret, cached_token_actor, session_user, token_actor, Actor,
    TokenCache,
};
pub use browser::{same_origin, security_headers, CONTENT_SECURITY_POLICY, SECURITY_HEADERS};
pub use client::{identify_client, Client};
pub use login::{source_text, Attempt, LoginLimits, LoginThrottle};
pub use passwords::{hash_password, random_password, PasswordChecks};
pub use tokens::{new_token_secret, new_trigger_secret, token_hash, TokenUse, TOKEN_PREFIX_LEN};

/// Session key holding the signed-in user's id.
pub const SESSION_USER_ID: &str = "user_id";
