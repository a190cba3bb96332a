//! Token columns as stored: encrypted at rest, bound to their row and column.

use crate::crypto::KeyRing;
use crate::error::StoreError;
use crate::model::AccountId;
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;

/// Names of the encrypted token columns, used in the AAD.
pub(crate) const ACCESS_TOKEN: &str = "access_token";
pub(crate) const REFRESH_TOKEN: &str = "refresh_token";
pub(crate) const ID_TOKEN: &str = "id_token";

/// Associated data binding an encrypted value to its account row and column.
fn token_aad(account: &AccountId, column: &str) -> Vec<u8> {
    format!("authgate/accounts/{}/{column}", account.as_str()).into_bytes()
}

/// A token set as stored: credentials encrypted, the rest as is.
pub(crate) struct EncryptedTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub expires_at: Option<i64>,
    pub token_type: Option<String>,
    pub scope: Option<String>,
}

fn encrypt_column(
    keys: &KeyRing,
    account: &AccountId,
    column: &'static str,
    value: &Secret,
) -> Result<String, StoreError> {
    keys.encrypt_str(value.expose(), &token_aad(account, column))
        .map_err(StoreError::Encrypt)
}

fn decrypt_column(
    keys: &KeyRing,
    account: &AccountId,
    column: &'static str,
    value: &str,
) -> Result<Secret, StoreError> {
    keys.decrypt_str(value, &token_aad(account, column))
        .map(Secret::new)
        .map_err(|source| StoreError::Decrypt {
            account: account.clone(),
            column,
            source,
        })
}

pub(crate) fn encrypt_tokens(
    keys: &KeyRing,
    account: &AccountId,
    tokens: &TokenSet,
) -> Result<EncryptedTokens, StoreError> {
    Ok(EncryptedTokens {
        access_token: encrypt_column(keys, account, ACCESS_TOKEN, &tokens.access_token)?,
        refresh_token: tokens
            .refresh_token
            .as_ref()
            .map(|t| encrypt_column(keys, account, REFRESH_TOKEN, t))
            .transpose()?,
        id_token: tokens
            .id_token
            .as_ref()
            .map(|t| encrypt_column(keys, account, ID_TOKEN, t))
            .transpose()?,
        expires_at: tokens.expires_at.map(UnixTime::as_secs),
        token_type: tokens.token_type.clone(),
        scope: tokens.scope.clone(),
    })
}

/// The token columns of one account row, as read.
pub(crate) struct StoredTokenColumns {
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub expires_at: Option<i64>,
    pub token_type: Option<String>,
    pub scope: Option<String>,
}

pub(crate) fn decrypt_tokens(
    keys: &KeyRing,
    account: &AccountId,
    columns: StoredTokenColumns,
) -> Result<Option<TokenSet>, StoreError> {
    let Some(access) = columns.access_token else {
        return Ok(None);
    };
    let decrypt_opt = |column, value: Option<String>| {
        value
            .map(|v| decrypt_column(keys, account, column, &v))
            .transpose()
    };
    Ok(Some(TokenSet {
        access_token: decrypt_column(keys, account, ACCESS_TOKEN, &access)?,
        refresh_token: decrypt_opt(REFRESH_TOKEN, columns.refresh_token)?,
        id_token: decrypt_opt(ID_TOKEN, columns.id_token)?,
        expires_at: columns.expires_at.map(UnixTime::from_secs),
        token_type: columns.token_type,
        scope: columns.scope,
    }))
}

/// Re-encrypts one optional column under the newest key when it is not
/// already; `Ok(None)` for a missing value.
pub(crate) fn reencrypt_column(
    keys: &KeyRing,
    account: &AccountId,
    column: &'static str,
    value: Option<String>,
) -> Result<Option<String>, StoreError> {
    match value {
        None => Ok(None),
        Some(v) if !keys.needs_reencryption(&v) => Ok(Some(v)),
        Some(v) => {
            let plain = decrypt_column(keys, account, column, &v)?;
            encrypt_column(keys, account, column, &plain).map(Some)
        }
    }
}
