//! Rollway's variables and secrets: dotenv and env-file text, age encryption
//! with identities and recipients that interoperate with the `age` CLI,
//! random generators, the strength bar for hand-set secrets, and validation
//! of an environment's values against the declared variables.

pub mod age_file;
pub mod dotenv;
pub mod error;
pub mod generate;
pub mod lock;
pub mod validate;
pub mod vault;

pub use age_file::{
    Identity, Recipient, decrypt, decrypt_file, decrypt_stream, encrypt_armored, encrypt_stream, identity_path,
    load_identities, read_secrets_file, write_armored_file, write_identity_file, write_secrets_file,
};
pub use dotenv::{
    DotenvError, ParseError, is_valid_key, parse as parse_dotenv, render as render_dotenv, render_env_file,
};
pub use error::Error;
pub use generate::{MAX_SECRET_BYTES, PRESETS, preset, random_alphanumeric, random_bytes, random_secret};
pub use rollway_model::rules::format::{Format, validate_format_spec};
/// The strength bar lives in the model with the other shape rules; the
/// module is re-exported so `rollway_secrets::strength::…` keeps working.
pub use rollway_model::rules::strength;
pub use rollway_model::rules::strength::{MIN_ENTROPY_BITS, MIN_LENGTH, Strength, assess};
pub use validate::{Problem, VariableDecl, check_environment, secret_masker};

pub use vault::{EnvRef, MAX_ENV_ENTRY, SetOptions, Vault, VaultConfig, VaultError, too_large};

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
