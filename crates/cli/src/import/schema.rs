//! Which Auth.js adapter schema a database has, judged from its table and
//! column names alone (pure: the caller lists them).
//!
//! The three standard schemas share their column names (camel-case
//! `userId`, `providerAccountId`, `emailVerified`, `sessionToken`; snake-case
//! token columns, as Auth.js's `Account` type spells them) and differ in
//! their table names and in which tables have an `id`:
//!
//! | schema | users | accounts | sessions |
//! |---|---|---|---|
//! | Prisma (`@auth/prisma-adapter`) | `"User"` | `"Account"` (`id` in older versions of the documented schema) | `"Session"` (`id` likewise) |
//! | Drizzle (`@auth/drizzle-adapter`, PostgreSQL default) | `"user"` | `"account"` (no `id`: the key is provider + `providerAccountId`) | `"session"` (key `sessionToken`) |
//! | `@auth/pg-adapter` | `users` (`SERIAL` ids) | `accounts` | `sessions` |

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Tables of a database and their columns, exactly as spelled there.
pub type Tables = BTreeMap<String, BTreeSet<String>>;

/// One of the adapter schemas the importer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `@auth/prisma-adapter`'s documented schema.
    Prisma,
    /// `@auth/drizzle-adapter`'s default PostgreSQL schema.
    Drizzle,
    /// `@auth/pg-adapter`'s documented SQL schema.
    PgAdapter,
}

impl Flavor {
    /// Every flavor, in the order they are tried.
    pub const ALL: [Flavor; 3] = [Flavor::Prisma, Flavor::Drizzle, Flavor::PgAdapter];

    /// The users, accounts and sessions tables, as spelled in this schema.
    pub fn tables(self) -> [&'static str; 3] {
        match self {
            Flavor::Prisma => ["User", "Account", "Session"],
            Flavor::Drizzle => ["user", "account", "session"],
            Flavor::PgAdapter => ["users", "accounts", "sessions"],
        }
    }

    /// The users table.
    pub fn users(self) -> &'static str {
        self.tables()[0]
    }

    /// The accounts table.
    pub fn accounts(self) -> &'static str {
        self.tables()[1]
    }

    /// The sessions table.
    pub fn sessions(self) -> &'static str {
        self.tables()[2]
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::Prisma => "Prisma (@auth/prisma-adapter)",
            Flavor::Drizzle => "Drizzle (@auth/drizzle-adapter)",
            Flavor::PgAdapter => "@auth/pg-adapter",
        })
    }
}

/// The columns the importer reads from the users table.
pub const USER_COLUMNS: [&str; 5] = ["id", "name", "email", "emailVerified", "image"];
/// The columns the importer reads from the accounts table (`id` is read
/// when there is one).
pub const ACCOUNT_COLUMNS: [&str; 11] = [
    "userId",
    "type",
    "provider",
    "providerAccountId",
    "refresh_token",
    "access_token",
    "expires_at",
    "token_type",
    "scope",
    "id_token",
    "session_state",
];
/// The columns the importer reads from the sessions table.
pub const SESSION_COLUMNS: [&str; 3] = ["sessionToken", "userId", "expires"];

/// A recognised schema: its flavor and whether its accounts have an `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detected {
    /// Which adapter schema.
    pub flavor: Flavor,
    /// Whether the accounts table has an `id` column (kept as authgate's
    /// account id).
    pub account_ids: bool,
}

/// Why a database is not one of the schemas the importer reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// No users table of any known schema.
    #[error(
        "no Auth.js users table: expected a table named \"User\" (Prisma), \"user\" (Drizzle) or \"users\" (@auth/pg-adapter)"
    )]
    NoUsersTable,
    /// The database is an authgate store, not an Auth.js database.
    #[error(
        "this database is an authgate store (table \"accounts\" has authgate's column \"version\"), not an Auth.js database"
    )]
    AuthgateStore,
    /// A table the schema needs is missing.
    #[error("{flavor} schema: expected a table named \"{table}\" next to \"{users}\"")]
    MissingTable {
        /// The schema recognised by its users table.
        flavor: Flavor,
        /// The users table found.
        users: &'static str,
        /// The table expected.
        table: &'static str,
    },
    /// A column the importer reads is missing.
    #[error("{flavor} schema: table \"{table}\" has no column \"{column}\"")]
    MissingColumn {
        /// The schema recognised by its users table.
        flavor: Flavor,
        /// The table.
        table: &'static str,
        /// The column expected.
        column: &'static str,
    },
}

/// Recognises the schema of `tables`: the first flavor whose users table
/// exists decides, and then every table and column the importer reads
/// must be there.
pub fn detect(tables: &Tables) -> Result<Detected, SchemaError> {
    if tables
        .get("accounts")
        .is_some_and(|c| c.contains("version") && c.contains("refresh_lease_owner"))
    {
        return Err(SchemaError::AuthgateStore);
    }
    let flavor = Flavor::ALL
        .into_iter()
        .find(|f| tables.contains_key(f.users()))
        .ok_or(SchemaError::NoUsersTable)?;
    let wanted: [(&'static str, &[&'static str]); 3] = [
        (flavor.users(), &USER_COLUMNS),
        (flavor.accounts(), &ACCOUNT_COLUMNS),
        (flavor.sessions(), &SESSION_COLUMNS),
    ];
    for (table, columns) in wanted {
        let Some(present) = tables.get(table) else {
            return Err(SchemaError::MissingTable {
                flavor,
                users: flavor.users(),
                table,
            });
        };
        if let Some(column) = columns.iter().find(|c| !present.contains(**c)) {
            return Err(SchemaError::MissingColumn {
                flavor,
                table,
                column,
            });
        }
    }
    Ok(Detected {
        flavor,
        account_ids: tables
            .get(flavor.accounts())
            .is_some_and(|c| c.contains("id")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(flavor: Flavor, account_id: bool) -> Tables {
        let mut tables = Tables::new();
        let mut accounts: BTreeSet<String> =
            ACCOUNT_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
        if account_id {
            accounts.insert("id".to_owned());
        }
        tables.insert(
            flavor.users().to_owned(),
            USER_COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
        );
        tables.insert(flavor.accounts().to_owned(), accounts);
        tables.insert(
            flavor.sessions().to_owned(),
            SESSION_COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
        );
        tables
    }

    #[test]
    fn each_standard_schema_is_recognised_by_its_table_names() {
        for flavor in Flavor::ALL {
            for ids in [true, false] {
                assert_eq!(
                    detect(&schema(flavor, ids)),
                    Ok(Detected {
                        flavor,
                        account_ids: ids
                    })
                );
            }
        }
    }

    #[test]
    fn a_missing_column_is_named_with_its_table() {
        let mut tables = schema(Flavor::Prisma, true);
        tables
            .get_mut("Account")
            .unwrap()
            .remove("providerAccountId");
        let error = detect(&tables).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Prisma (@auth/prisma-adapter) schema: table \"Account\" has no column \"providerAccountId\""
        );
    }

    #[test]
    fn a_missing_table_is_named() {
        let mut tables = schema(Flavor::Drizzle, false);
        tables.remove("session");
        assert!(
            detect(&tables)
                .unwrap_err()
                .to_string()
                .contains("expected a table named \"session\" next to \"user\"")
        );
    }

    #[test]
    fn an_unrelated_database_names_the_tables_expected() {
        let mut tables = Tables::new();
        tables.insert("customers".to_owned(), BTreeSet::new());
        assert_eq!(detect(&tables), Err(SchemaError::NoUsersTable));
        assert!(SchemaError::NoUsersTable.to_string().contains("\"User\""));
    }

    #[test]
    fn an_authgate_store_is_not_taken_for_pg_adapter_tables() {
        let mut tables = schema(Flavor::PgAdapter, true);
        let accounts = tables.get_mut("accounts").unwrap();
        accounts.insert("version".to_owned());
        accounts.insert("refresh_lease_owner".to_owned());
        assert_eq!(detect(&tables), Err(SchemaError::AuthgateStore));
    }
}
