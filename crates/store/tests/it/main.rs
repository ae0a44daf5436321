//! One suite, run against both backends: every case in `cases` runs once
//! on a fresh SQLite file and once on a fresh PostgreSQL schema.
//!
//! PostgreSQL comes from `PORTCULLIS_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/test`, what
//! `scripts/install-test-deps.sh` sets up); the tests fail with a clear
//! message when it cannot be reached.

mod cases;
mod support;

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::support::Db::sqlite().await;
                    crate::cases::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::support::Db::postgres().await;
                    crate::cases::$name(&db).await;
                }
            )*
        }
    };
}

both!(
    accounts_crud_and_audit,
    tokens_hashed_scoped_and_expiring,
    ca_limit_names_crl_and_delete,
    hostnames_unique_across_accounts_and_feed,
    tenant_isolation,
    managed_ca_issue_revoke_bumps_version,
    origin_pulls_in_snapshot,
    events_query_counts_and_retention,
    subscribe_sees_committed_versions,
    rejected_change_changes_nothing,
    reopen_keeps_data_and_migrations_are_idempotent,
    keys_are_sealed_at_rest,
    bulk_import_is_one_version_and_all_or_nothing,
    crash_regression_account_and_managed_ca_are_one_write,
);
