//! `authgate import authjs`: brings an existing Auth.js database over into
//! authgate's store without signing anyone out.
//!
//! The source is read as one of Auth.js's standard adapter schemas
//! ([`schema::detect`]: Prisma, Drizzle's default PostgreSQL schema,
//! `@auth/pg-adapter`), on PostgreSQL or SQLite ([`source::Source`]). Then,
//! row by row, with one insert-if-absent statement each, a batch of rows
//! per transaction ([`authgate_store::ImportStore`]):
//!
//! * users keep their ids, so the cookies Auth.js already issued (`sub` =
//!   the user id) name the same user;
//! * accounts at a provider configured in `[[providers]]` (the Auth.js
//!   `provider` is authgate's provider id, `providerAccountId` the
//!   subject) keep their id when the schema has one, and their tokens and
//!   expiry, encrypted on arrival; other accounts are skipped and counted;
//! * database sessions that have not expired become authgate
//!   database-session records keyed by the SHA-256 of the Auth.js
//!   `sessionToken`, so the browser's existing cookie is accepted as is.
//!   A session is tied to the user's account when the user has exactly one
//!   imported account (its tokens then reach the upstream).
//!
//! A second run writes nothing and says so; an interrupted run can simply
//! be repeated. `--dry-run` only looks. Token values are never printed or
//! logged.

pub mod schema;
pub mod source;

use authgate_config::Config;
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;
use authgate_store::{
    AccountId, ImportStore, Imported, ImportedAccount, ImportedSession, StoreError, User, UserId,
    session_token_hash,
};
use schema::{Detected, SchemaError};
use source::{Backend, Source, SourceAccount, SourceError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// What to import and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Auth.js database: `postgres://…` (a `search_path` option picks
    /// the schema) or `sqlite:…`.
    pub from: String,
    /// Only report what an import would do; write nothing.
    pub dry_run: bool,
}

/// Why an import stopped. No variant carries token material.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The source could not be opened or read.
    #[error("--from {url}: {source}")]
    Source {
        /// The source URL without its password.
        url: String,
        /// What failed.
        source: SourceError,
    },
    /// The source is not one of the schemas the importer reads.
    #[error("--from {url}: {source}")]
    Schema {
        /// The source URL without its password.
        url: String,
        /// What was expected.
        source: SchemaError,
    },
    /// The store's encryption keys could not be derived.
    #[error("store.encryption_keys: {0}")]
    Keys(String),
    /// The store failed.
    #[error("store.url: {0}")]
    Store(#[from] StoreError),
    /// A dry run found no authgate tables in the store.
    #[error(
        "store.url: {0} (a dry run writes nothing, not even authgate's tables: run `authgate migrate` first)"
    )]
    StoreNotMigrated(StoreError),
}

/// How many rows of one kind were created, already there, or skipped (by
/// reason).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Written by this run (or, in a dry run, that would be).
    pub created: u64,
    /// Already in the store; left as they are.
    pub present: u64,
    /// Not imported, by reason.
    pub skipped: BTreeMap<String, u64>,
}

impl Counts {
    fn skip(&mut self, reason: impl Into<String>) {
        *self.skipped.entry(reason.into()).or_default() += 1;
    }

    fn count(&mut self, outcome: Imported) {
        match outcome {
            Imported::Created => self.created += 1,
            Imported::AlreadyPresent => self.present += 1,
            Imported::Conflict(why) => self.skip(why),
        }
    }

    /// How many rows were skipped, for every reason.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Clone)]
pub struct Report {
    /// The schema and backend of the source, and its URL without password.
    pub source: String,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Users.
    pub users: Counts,
    /// Accounts.
    pub accounts: Counts,
    /// Database sessions.
    pub sessions: Counts,
    /// Lines for standard error: skipped rows and why.
    pub warnings: Vec<String>,
}

impl Report {
    /// Rows created (or to create), all kinds together.
    pub fn created(&self) -> u64 {
        self.users.created + self.accounts.created + self.sessions.created
    }

    /// Rows skipped, all kinds together.
    pub fn skipped(&self) -> u64 {
        self.users.skipped_total() + self.accounts.skipped_total() + self.sessions.skipped_total()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "source: {}", self.source)?;
        let verb = if self.dry_run { "to create" } else { "created" };
        for (kind, counts) in [
            ("users", &self.users),
            ("accounts", &self.accounts),
            ("sessions", &self.sessions),
        ] {
            writeln!(
                f,
                "{kind}: {} {verb}, {} already present, {} skipped",
                counts.created,
                counts.present,
                counts.skipped_total()
            )?;
            for (reason, n) in &counts.skipped {
                writeln!(f, "  {n} skipped: {reason}")?;
            }
        }
        match (self.dry_run, self.created()) {
            (true, 0) => writeln!(f, "dry run: nothing written; nothing to do"),
            (true, n) => writeln!(
                f,
                "dry run: nothing written; an import would create {n} rows"
            ),
            (false, 0) => match self.skipped() {
                0 => writeln!(f, "nothing to do: everything was already imported"),
                n => writeln!(
                    f,
                    "nothing to do: everything was already imported ({n} rows skipped, as listed)"
                ),
            },
            (false, n) => writeln!(f, "imported: {n} rows created"),
        }
    }
}

/// Imports (or with `dry_run`, plans the import of) the Auth.js database
/// `options.from` into the store of `config`; `now` decides which sessions
/// have expired.
pub async fn run(config: &Config, options: &Options, now: UnixTime) -> Result<Report, ImportError> {
    let url = source::redacted(&options.from);
    let source_error = |source| ImportError::Source {
        url: url.clone(),
        source,
    };
    let source = Source::open(&options.from).await.map_err(source_error)?;
    let tables = source.tables().await.map_err(source_error)?;
    let detected = schema::detect(&tables).map_err(|source| ImportError::Schema {
        url: url.clone(),
        source,
    })?;
    let users = source.users(detected).await.map_err(source_error)?;
    let accounts = source.accounts(detected).await.map_err(source_error)?;
    let sessions = source.sessions(detected).await.map_err(source_error)?;

    let keys = crate::settings::key_ring(config).map_err(|e| ImportError::Keys(e.to_string()))?;
    let store = authgate_store::connect_for_import(config.store.url.as_str(), keys).await?;
    if options.dry_run {
        store
            .find_user(&UserId::new(""))
            .await
            .map_err(ImportError::StoreNotMigrated)?;
    } else {
        store.migrate().await?;
    }
    let mut import = Importer {
        store: &*store,
        dry_run: options.dry_run,
        report: Report {
            source: describe(detected, source.backend(), &url),
            dry_run: options.dry_run,
            users: Counts::default(),
            accounts: Counts::default(),
            sessions: Counts::default(),
            warnings: Vec::new(),
        },
        users: BTreeSet::new(),
        accounts_of: HashMap::new(),
    };
    let users: Vec<User> = users.into_iter().map(user_of).collect();
    for batch in users.chunks(BATCH) {
        import.users(batch).await?;
    }

    let providers: BTreeSet<&str> = config.providers.iter().map(|p| p.id.as_str()).collect();
    let mut unconfigured: BTreeMap<String, u64> = BTreeMap::new();
    let mut pending = Vec::new();
    for account in accounts {
        if !providers.contains(account.provider.as_str()) {
            *unconfigured.entry(account.provider.clone()).or_default() += 1;
            import.report.accounts.skip(format!(
                "provider \"{}\" is not configured",
                account.provider
            ));
        } else if !import.users.contains(&account.user_id) {
            import.report.accounts.skip("its user was not imported");
        } else {
            pending.push(account_of(account));
        }
    }
    for (provider, n) in unconfigured {
        import.report.warnings.push(format!(
            "{n} account(s) at provider \"{provider}\" skipped: the configuration has no [[providers]] entry with id = \"{provider}\""
        ));
    }
    for batch in pending.chunks(BATCH) {
        import.accounts(batch).await?;
    }

    let mut pending = Vec::new();
    for session in sessions {
        let expires = session
            .expires
            .map(UnixTime::from_secs)
            .filter(|e| *e > now);
        match expires {
            None => import.report.sessions.skip("expired"),
            Some(_) if !import.users.contains(&session.user_id) => {
                import.report.sessions.skip("its user was not imported");
            }
            Some(expires) => {
                let account_id = match import.accounts_of.get(&session.user_id).map(Vec::as_slice) {
                    Some([only]) => Some(only.clone()),
                    _ => None,
                };
                pending.push(ImportedSession {
                    token_hash: session_token_hash(&session.token),
                    user_id: UserId::new(session.user_id),
                    account_id,
                    expires,
                    now,
                });
            }
        }
    }
    for batch in pending.chunks(BATCH) {
        import.sessions(batch).await?;
    }
    Ok(import.report)
}

/// Rows written per transaction.
const BATCH: usize = 500;

fn describe(detected: Detected, backend: Backend, url: &str) -> String {
    let backend = match backend {
        Backend::Postgres => "PostgreSQL",
        Backend::Sqlite => "SQLite",
    };
    format!("{} schema on {backend} ({url})", detected.flavor)
}

fn user_of(user: source::SourceUser) -> User {
    User {
        id: UserId::new(user.id),
        name: user.name,
        email: user.email,
        email_verified: user.email_verified.map(UnixTime::from_secs),
        image: user.image,
    }
}

/// The account as authgate keeps it: the source's id when it has one.
fn account_of(account: SourceAccount) -> ImportedAccount {
    let tokens = tokens_of(&account);
    ImportedAccount {
        id: account
            .id
            .map(AccountId::new)
            .unwrap_or_else(AccountId::generate),
        user_id: UserId::new(account.user_id),
        kind: account.kind,
        provider: account.provider,
        provider_account_id: account.provider_account_id,
        tokens,
        session_state: account.session_state,
    }
}

/// One run's state: the store, the counts, and what later rows depend on.
struct Importer<'s> {
    store: &'s dyn ImportStore,
    dry_run: bool,
    report: Report,
    /// Users that are in the store (created or already there).
    users: BTreeSet<String>,
    /// Each user's accounts in the store (created or already there).
    accounts_of: HashMap<String, Vec<AccountId>>,
}

impl Importer<'_> {
    async fn users(&mut self, batch: &[User]) -> Result<(), ImportError> {
        let outcomes = if self.dry_run {
            let mut planned = Vec::with_capacity(batch.len());
            for user in batch {
                planned.push(if self.store.find_user(&user.id).await?.is_some() {
                    Imported::AlreadyPresent
                } else if let Some(email) = &user.email
                    && self.store.find_user_by_email(email).await?.is_some()
                {
                    Imported::Conflict("another user has this e-mail address")
                } else {
                    Imported::Created
                });
            }
            planned
        } else {
            self.store.import_users(batch).await?
        };
        for (user, outcome) in batch.iter().zip(outcomes) {
            match outcome {
                Imported::Conflict(why) => self
                    .report
                    .warnings
                    .push(format!("user {} skipped: {why}", user.id)),
                _ => {
                    self.users.insert(user.id.as_str().to_owned());
                }
            }
            self.report.users.count(outcome);
        }
        Ok(())
    }

    async fn accounts(&mut self, batch: &[ImportedAccount]) -> Result<(), ImportError> {
        let outcomes = if self.dry_run {
            let mut planned = Vec::with_capacity(batch.len());
            for account in batch {
                let existing = self
                    .store
                    .find_account_by_provider(&account.provider, &account.provider_account_id)
                    .await?;
                planned.push(match existing {
                    Some(a) if a.user_id == account.user_id => (Imported::AlreadyPresent, a.id),
                    Some(a) => (
                        Imported::Conflict("this provider account is linked to another user"),
                        a.id,
                    ),
                    None => match self.store.find_account(&account.id).await? {
                        Some(_) => (
                            Imported::Conflict("another account has this id"),
                            account.id.clone(),
                        ),
                        None => (Imported::Created, account.id.clone()),
                    },
                });
            }
            planned
        } else {
            self.store.import_accounts(batch).await?
        };
        for (account, (outcome, id)) in batch.iter().zip(outcomes) {
            match outcome {
                Imported::Conflict(why) => self.report.warnings.push(format!(
                    "account {} of user {} at provider \"{}\" skipped: {why}",
                    account.id, account.user_id, account.provider
                )),
                _ => self
                    .accounts_of
                    .entry(account.user_id.as_str().to_owned())
                    .or_default()
                    .push(id),
            }
            self.report.accounts.count(outcome);
        }
        Ok(())
    }

    async fn sessions(&mut self, batch: &[ImportedSession]) -> Result<(), ImportError> {
        let outcomes = if self.dry_run {
            let mut planned = Vec::with_capacity(batch.len());
            for session in batch {
                planned.push(
                    if self.store.session_token_exists(&session.token_hash).await? {
                        Imported::AlreadyPresent
                    } else {
                        Imported::Created
                    },
                );
            }
            planned
        } else {
            self.store.import_sessions(batch).await?
        };
        for outcome in outcomes {
            self.report.sessions.count(outcome);
        }
        Ok(())
    }
}

/// The account's tokens as authgate keeps them. An account with a refresh
/// token but no access token gets an empty access token that has already
/// expired, so the first use refreshes it; one with neither has none.
fn tokens_of(account: &SourceAccount) -> Option<TokenSet> {
    let (access_token, expires_at) = match (&account.access_token, &account.refresh_token) {
        (Some(access), _) => (access.clone(), account.expires_at.map(UnixTime::from_secs)),
        (None, Some(_)) => (
            authgate_core::secret::Secret::new(""),
            Some(UnixTime::from_secs(0)),
        ),
        (None, None) => return None,
    };
    Some(TokenSet {
        access_token,
        refresh_token: account.refresh_token.clone(),
        expires_at,
        token_type: account.token_type.clone(),
        scope: account.scope.clone(),
        id_token: account.id_token.clone(),
    })
}
