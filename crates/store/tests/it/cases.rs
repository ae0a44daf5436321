//! The cases, each given a fresh store.

use std::time::Duration;

use store::*;

use crate::support::Db;

fn sys() -> Actor {
    Actor::System
}

async fn account(s: &dyn Store, name: &str) -> Account {
    s.create_account(
        &sys(),
        NewAccount {
            name: name.into(),
            ca_limit: None,
        },
    )
    .await
    .expect("create account")
}

fn new_ca(name: &str) -> NewCa {
    NewCa {
        name: name.into(),
        pem: format!("-----BEGIN CERTIFICATE-----\n{name}\n-----END CERTIFICATE-----\n"),
        subject: format!("CN={name}"),
        not_after: 4_000_000_000,
        crl_pem: None,
    }
}

fn new_host(name: &str, cas: Vec<CaId>) -> NewHostname {
    NewHostname {
        name: name.into(),
        cert_pem: "-----BEGIN CERTIFICATE-----\nleaf\n-----END CERTIFICATE-----\n".into(),
        key_pem: Secret::from(
            "-----BEGIN PRIVATE KEY-----\nsecret-key-bytes\n-----END PRIVATE KEY-----\n",
        ),
        origin: "http://127.0.0.1:9".into(),
        mode: if cas.is_empty() {
            MtlsMode::Off
        } else {
            MtlsMode::Report
        },
        ca_ids: cas,
        ..NewHostname::default()
    }
}

pub async fn accounts_crud_and_audit(db: &Db) {
    let s = db.store.as_ref();
    let a = account(s, "acme").await;
    assert_eq!(s.get_account(a.id).await.expect("get").name, "acme");
    let dup = s
        .create_account(
            &sys(),
            NewAccount {
                name: "acme".into(),
                ca_limit: None,
            },
        )
        .await;
    assert!(
        matches!(
            dup,
            Err(StoreError::Conflict {
                kind: "account",
                ..
            })
        ),
        "{dup:?}"
    );
    let empty = s.create_account(&sys(), NewAccount::default()).await;
    assert!(matches!(empty, Err(StoreError::Invalid(_))), "{empty:?}");
    let b = account(s, "beta").await;
    let up = s
        .update_account(
            &sys(),
            b.id,
            AccountUpdate {
                name: Some("bravo".into()),
                ca_limit: Some(Some(2)),
            },
        )
        .await
        .expect("update");
    assert_eq!((up.name.as_str(), up.ca_limit), ("bravo", Some(2)));
    let list = s.list_accounts(Page::default()).await.expect("list");
    assert_eq!(
        list.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["acme", "bravo"]
    );
    let paged = s
        .list_accounts(Page {
            after_id: Some(a.id),
            limit: Some(1),
        })
        .await
        .expect("page");
    assert_eq!(paged.len(), 1);
    assert_eq!(paged[0].id, b.id);
    s.delete_account(&sys(), b.id).await.expect("delete");
    assert!(matches!(
        s.get_account(b.id).await,
        Err(StoreError::NotFound { kind: "account" })
    ));

    let audit = s.list_audit(AuditQuery::default()).await.expect("audit");
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "account.delete",
            "account.update",
            "account.create",
            "account.create"
        ]
    );
    assert!(audit.iter().all(|e| e.actor == "system" && e.at > 0));
    let only_a = s
        .list_audit(AuditQuery {
            account_id: Some(a.id),
            ..AuditQuery::default()
        })
        .await
        .expect("audit a");
    assert_eq!(only_a.len(), 1);
    assert_eq!(only_a[0].detail["name"], "acme");
}

pub async fn tokens_hashed_scoped_and_expiring(db: &Db) {
    let s = db.store.as_ref();
    assert_eq!(s.count_admin_tokens().await.expect("count"), 0);
    let (admin, secret) = s
        .create_token(
            &sys(),
            NewToken {
                account_id: None,
                name: "bootstrap".into(),
                scopes: vec![Scope::Admin],
                ..NewToken::default()
            },
        )
        .await
        .expect("admin token");
    assert_eq!(s.count_admin_tokens().await.expect("count"), 1);
    assert!(secret.expose().starts_with(&admin.prefix));
    assert!(secret.expose().len() >= 64);
    assert!(!format!("{secret:?}{admin:?}").contains(&secret.expose()[12..]));
    let who = s
        .authenticate(secret.expose())
        .await
        .expect("auth")
        .expect("known");
    assert_eq!(who.id, admin.id);
    assert!(who.has(Scope::Write));
    assert!(s.authenticate("pcs_nope").await.expect("auth").is_none());

    let a = account(s, "acme").await;
    let bad = s
        .create_token(
            &admin.actor(),
            NewToken {
                account_id: Some(a.id),
                name: "x".into(),
                scopes: vec![Scope::Admin],
                ..NewToken::default()
            },
        )
        .await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
    let bad = s
        .create_token(
            &admin.actor(),
            NewToken {
                account_id: None,
                name: "x".into(),
                scopes: vec![Scope::Read],
                ..NewToken::default()
            },
        )
        .await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");

    let (ro, ro_secret) = s
        .create_token(
            &admin.actor(),
            NewToken {
                account_id: Some(a.id),
                name: "reader".into(),
                scopes: vec![Scope::Read, Scope::Read],
                ..NewToken::default()
            },
        )
        .await
        .expect("reader");
    assert_eq!(ro.scopes, [Scope::Read]);
    let who = s
        .authenticate(ro_secret.expose())
        .await
        .expect("auth")
        .expect("known");
    assert_eq!(who.account_id, Some(a.id));
    assert!(who.has(Scope::Read) && !who.has(Scope::Write) && !who.has(Scope::Admin));

    // Expired tokens do not authenticate.
    let (_, old) = s
        .create_token(
            &admin.actor(),
            NewToken {
                account_id: Some(a.id),
                name: "old".into(),
                scopes: vec![Scope::Write],
                expires_at: Some(1),
                ..NewToken::default()
            },
        )
        .await
        .expect("expired token");
    assert!(s.authenticate(old.expose()).await.expect("auth").is_none());

    // A given secret (bootstrap from the environment).
    let given = "pcs_given_secret_from_the_environment_0123456789";
    s.create_token(
        &sys(),
        NewToken {
            account_id: None,
            name: "env".into(),
            scopes: vec![Scope::Admin],
            secret: Some(given.into()),
            ..NewToken::default()
        },
    )
    .await
    .expect("given secret");
    assert!(s.authenticate(given).await.expect("auth").is_some());
    let short = s
        .create_token(
            &sys(),
            NewToken {
                account_id: None,
                name: "env2".into(),
                scopes: vec![Scope::Admin],
                secret: Some("short".into()),
                ..NewToken::default()
            },
        )
        .await;
    assert!(matches!(short, Err(StoreError::Invalid(_))));

    assert_eq!(s.list_tokens(Some(a.id)).await.expect("list").len(), 2);
    // Deleting through another account is "not found"; through the owner works.
    let other = account(s, "other").await;
    assert!(matches!(
        s.delete_token(&admin.actor(), Some(other.id), ro.id).await,
        Err(StoreError::NotFound { .. })
    ));
    s.delete_token(&admin.actor(), Some(a.id), ro.id)
        .await
        .expect("delete");
    assert!(s
        .authenticate(ro_secret.expose())
        .await
        .expect("auth")
        .is_none());
    let audit = s.list_audit(AuditQuery::default()).await.expect("audit");
    assert!(audit
        .iter()
        .any(|e| e.action == "token.delete"
            && e.actor == format!("token:{}:{}", admin.id, admin.prefix)));
    // Secrets never reach the audit log.
    for e in &audit {
        assert!(!e.detail.to_string().contains(&ro_secret.expose()[12..]));
    }
}

pub async fn ca_limit_names_crl_and_delete(db: &Db) {
    let s = db.store.as_ref();
    let a = account(s, "acme").await;
    for i in 0..DEFAULT_CA_LIMIT {
        s.create_ca(&sys(), a.id, new_ca(&format!("ca{i}")))
            .await
            .expect("ca");
    }
    let over = s.create_ca(&sys(), a.id, new_ca("one-too-many")).await;
    assert!(matches!(over, Err(StoreError::LimitReached(_))), "{over:?}");
    s.update_account(
        &sys(),
        a.id,
        AccountUpdate {
            ca_limit: Some(Some(7)),
            ..Default::default()
        },
    )
    .await
    .expect("raise limit");
    let sixth = s
        .create_ca(&sys(), a.id, new_ca("sixth"))
        .await
        .expect("sixth");
    let dup = s.create_ca(&sys(), a.id, new_ca("sixth")).await;
    assert!(
        matches!(dup, Err(StoreError::Conflict { kind: "ca", .. })),
        "{dup:?}"
    );
    // The same name in another account is fine.
    let b = account(s, "beta").await;
    s.create_ca(&sys(), b.id, new_ca("sixth"))
        .await
        .expect("other account");

    let h = s
        .create_hostname(&sys(), a.id, new_host("api.acme.test", vec![sixth.id]))
        .await
        .expect("hostname");
    let v0 = s.config_version().await.expect("version");
    let with_crl = s
        .set_ca_crl(
            &sys(),
            a.id,
            sixth.id,
            Some("-----BEGIN X509 CRL-----\n".into()),
        )
        .await
        .expect("crl");
    assert!(with_crl.crl_pem.is_some());
    assert_eq!(
        s.changes_since(v0).await.expect("changes"),
        Changes::Hostnames {
            version: v0 + 1,
            names: vec!["api.acme.test".into()]
        }
    );

    let refused = s.delete_ca(&sys(), a.id, sixth.id, false).await;
    match refused {
        Err(StoreError::InUse { users, .. }) => assert_eq!(users, ["api.acme.test"]),
        other => panic!("expected InUse, got {other:?}"),
    }
    assert!(s.get_ca(a.id, sixth.id).await.is_ok());
    s.delete_ca(&sys(), a.id, sixth.id, true)
        .await
        .expect("cascade");
    assert!(s
        .get_hostname(a.id, h.id)
        .await
        .expect("host")
        .ca_ids
        .is_empty());
    assert_eq!(s.list_cas(a.id).await.expect("list").len(), 5);
}

pub async fn hostnames_unique_across_accounts_and_feed(db: &Db) {
    let s = db.store.as_ref();
    let a = account(s, "acme").await;
    let b = account(s, "beta").await;
    let ca = s.create_ca(&sys(), a.id, new_ca("root")).await.expect("ca");
    let v0 = s.config_version().await.expect("v0");
    let h = s
        .create_hostname(&sys(), a.id, new_host("API.Acme.Test", vec![ca.id]))
        .await
        .expect("create");
    assert_eq!(h.name, "api.acme.test");
    assert_eq!(h.ca_ids, [ca.id]);
    assert_eq!(h.block, BlockSettings::default());
    let dup = s
        .create_hostname(&sys(), b.id, new_host("api.acme.test", vec![]))
        .await;
    assert!(
        matches!(
            dup,
            Err(StoreError::Conflict {
                kind: "hostname",
                ..
            })
        ),
        "{dup:?}"
    );

    let v1 = s.config_version().await.expect("v1");
    assert_eq!(v1, v0 + 1);
    let up = s
        .update_hostname(
            &sys(),
            a.id,
            h.id,
            HostnameUpdate {
                mode: Some(MtlsMode::Enforce),
                block: Some(BlockSettings {
                    status: 401,
                    content_type: "text/plain".into(),
                    body: Some("no".into()),
                }),
                headers: Some(HeaderSettings {
                    rename: [("Client-Cert-Status".to_owned(), "X-Cert".to_owned())].into(),
                    ..HeaderSettings::default()
                }),
                ..HostnameUpdate::default()
            },
        )
        .await
        .expect("update");
    assert_eq!(up.mode, MtlsMode::Enforce);
    assert_eq!(up.block.status, 401);
    assert_eq!(up.headers.rename["Client-Cert-Status"], "X-Cert");
    s.create_hostname(&sys(), b.id, new_host("www.beta.test", vec![]))
        .await
        .expect("b host");
    assert_eq!(
        s.changes_since(v1).await.expect("changes"),
        Changes::Hostnames {
            version: v1 + 2,
            names: vec!["api.acme.test".into(), "www.beta.test".into()]
        }
    );
    assert_eq!(
        s.changes_since(v1 + 2).await.expect("none"),
        Changes::UpToDate
    );
    assert_eq!(
        s.changes_since(v1 + 100).await.expect("ahead"),
        Changes::Full { version: v1 + 2 }
    );

    // The gateway's view carries the key and the CA bundle.
    let snap = s.snapshot(None).await.expect("snapshot");
    assert_eq!(snap.version, v1 + 2);
    assert_eq!(snap.hostnames.len(), 2);
    let api = snap
        .hostnames
        .iter()
        .find(|h| h.name == "api.acme.test")
        .expect("api");
    assert!(String::from_utf8_lossy(api.key_pem.expose()).contains("secret-key-bytes"));
    assert_eq!(api.trust, [format!("ca:{}", ca.id)]);
    assert_eq!(snap.cas[&format!("ca:{}", ca.id)].pem, ca.pem);
    let one = s
        .snapshot(Some(vec!["www.beta.test".into(), "gone.test".into()]))
        .await
        .expect("partial");
    assert_eq!(one.hostnames.len(), 1);
    assert!(one.cas.is_empty());

    // Lists and lookups never show the key.
    let listed = s.list_hostnames(a.id, Page::default()).await.expect("list");
    assert!(!format!("{listed:?}").contains("secret-key-bytes"));
    assert_eq!(
        s.find_hostname("API.ACME.TEST")
            .await
            .expect("find")
            .map(|h| h.id),
        Some(h.id)
    );

    s.delete_hostname(&sys(), a.id, h.id).await.expect("delete");
    assert!(s
        .find_hostname("api.acme.test")
        .await
        .expect("find")
        .is_none());
    match s.changes_since(v1 + 2).await.expect("changes") {
        Changes::Hostnames { names, .. } => assert_eq!(names, ["api.acme.test"]),
        other => panic!("{other:?}"),
    }
    // Pruned feed: far-behind callers load everything.
    let cur = s.config_version().await.expect("cur");
    s.prune_changes(1).await.expect("prune");
    assert_eq!(
        s.changes_since(v0).await.expect("full"),
        Changes::Full { version: cur }
    );
    assert!(matches!(
        s.changes_since(cur - 1).await.expect("recent"),
        Changes::Hostnames { .. }
    ));
}

pub async fn tenant_isolation(db: &Db) {
    let s = db.store.as_ref();
    let a = account(s, "acme").await;
    let b = account(s, "beta").await;
    let b_ca = s
        .create_ca(&sys(), b.id, new_ca("b-root"))
        .await
        .expect("b ca");
    let b_host = s
        .create_hostname(&sys(), b.id, new_host("b.test", vec![b_ca.id]))
        .await
        .expect("b host");
    // A cannot see or touch B's objects...
    assert!(matches!(
        s.get_ca(a.id, b_ca.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.get_hostname(a.id, b_host.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.update_hostname(
            &sys(),
            a.id,
            b_host.id,
            HostnameUpdate {
                mode: Some(MtlsMode::Off),
                ..Default::default()
            }
        )
        .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.delete_ca(&sys(), a.id, b_ca.id, true).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.delete_hostname(&sys(), a.id, b_host.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.set_ca_crl(&sys(), a.id, b_ca.id, None).await,
        Err(StoreError::NotFound { .. })
    ));
    // ...nor associate B's CA with its own hostname.
    let stolen = s
        .create_hostname(&sys(), a.id, new_host("a.test", vec![b_ca.id]))
        .await;
    assert!(matches!(stolen, Err(StoreError::Invalid(_))), "{stolen:?}");
    let a_host = s
        .create_hostname(&sys(), a.id, new_host("a.test", vec![]))
        .await
        .expect("a host");
    let stolen = s
        .update_hostname(
            &sys(),
            a.id,
            a_host.id,
            HostnameUpdate {
                ca_ids: Some(vec![b_ca.id]),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(stolen, Err(StoreError::Invalid(_))), "{stolen:?}");
    // Even the same PEM uploaded by A is a different CA of A's.
    let a_copy = s
        .create_ca(
            &sys(),
            a.id,
            NewCa {
                name: "copy".into(),
                ..new_ca("b-root")
            },
        )
        .await
        .expect("copy");
    assert_ne!(a_copy.id, b_ca.id);
    assert!(s
        .list_hostnames(a.id, Page::default())
        .await
        .expect("list")
        .iter()
        .all(|h| h.account_id == a.id));
    assert!(s
        .list_cas(a.id)
        .await
        .expect("list")
        .iter()
        .all(|c| c.account_id == a.id));
    assert!(matches!(
        s.get_managed_ca(a.id).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn managed_ca_issue_revoke_bumps_version(db: &Db) {
    let s = db.store.as_ref();
    let a = account(s, "acme").await;
    let b = account(s, "beta").await;
    let m = s
        .put_managed_ca(
            &sys(),
            a.id,
            "-----BEGIN CERTIFICATE-----\nmanaged\n".into(),
            Secret::from("managed-key"),
        )
        .await
        .expect("managed");
    assert_eq!(m.account_id, a.id);
    assert_eq!(
        s.managed_ca_key(a.id).await.expect("key").expose(),
        b"managed-key"
    );
    assert!(!format!("{m:?}").contains("managed-key"));
    let h = s
        .create_hostname(
            &sys(),
            a.id,
            NewHostname {
                trust_managed_ca: true,
                mode: MtlsMode::Enforce,
                ..new_host("m.test", vec![])
            },
        )
        .await
        .expect("host");
    let snap = s.snapshot(Some(vec![h.name.clone()])).await.expect("snap");
    assert_eq!(snap.hostnames[0].trust, [format!("managed:{}", a.id)]);
    assert!(snap.cas[&format!("managed:{}", a.id)]
        .pem
        .contains("managed"));

    let cert = s
        .record_issued_cert(
            &sys(),
            a.id,
            NewIssuedCert {
                serial: "0A1B".into(),
                fingerprint: "ff".into(),
                subject: "CN=client".into(),
                not_before: 1,
                not_after: 2,
                pem: "pem".into(),
            },
        )
        .await
        .expect("issued");
    assert_eq!(cert.serial, "0a1b");
    assert!(matches!(
        s.get_issued_cert(b.id, "0a1b").await,
        Err(StoreError::NotFound { .. })
    ));
    let v0 = s.config_version().await.expect("v0");
    let r = s
        .revoke_issued_cert(
            &sys(),
            a.id,
            "0A1B",
            "keyCompromise",
            Some("-----BEGIN X509 CRL-----\nnew".into()),
        )
        .await
        .expect("revoke");
    assert!(r.revoked_at.is_some());
    assert_eq!(r.revocation_reason.as_deref(), Some("keyCompromise"));
    assert_eq!(
        s.changes_since(v0).await.expect("changes"),
        Changes::Hostnames {
            version: v0 + 1,
            names: vec!["m.test".into()]
        }
    );
    assert_eq!(s.revoked_serials(a.id).await.expect("revoked").len(), 1);
    let snap = s.snapshot(None).await.expect("snap");
    assert!(snap.cas[&format!("managed:{}", a.id)]
        .crl_pem
        .as_deref()
        .is_some_and(|c| c.contains("new")));
    assert_eq!(
        s.list_issued_certs(a.id, Page::default())
            .await
            .expect("list")
            .len(),
        1
    );
    // Revoking again is idempotent.
    let again = s
        .revoke_issued_cert(&sys(), a.id, "0a1b", "other", None)
        .await
        .expect("again");
    assert_eq!(again.revoked_at, r.revoked_at);
}

pub async fn origin_pulls_in_snapshot(db: &Db) {
    let s = db.store.as_ref();
    let a = account(s, "acme").await;
    let p = s
        .create_origin_pull(
            &sys(),
            a.id,
            NewOriginPull {
                name: "pull".into(),
                cert_pem: "pull-cert".into(),
                key_pem: Secret::from("pull-key"),
                origin_ca_pem: "origin-ca".into(),
            },
        )
        .await
        .expect("pull");
    let h = s
        .create_hostname(
            &sys(),
            a.id,
            NewHostname {
                origin_pull_id: Some(p.id),
                origin: "https://127.0.0.1:9".into(),
                ..new_host("o.test", vec![])
            },
        )
        .await
        .expect("host");
    let snap = s.snapshot(None).await.expect("snap");
    let op = snap.hostnames[0].origin_pull.as_ref().expect("origin pull");
    assert_eq!(op.key_pem.expose(), b"pull-key");
    assert_eq!(op.origin_ca_pem, "origin-ca");
    assert!(matches!(
        s.delete_origin_pull(&sys(), a.id, p.id).await,
        Err(StoreError::InUse { .. })
    ));
    s.update_hostname(
        &sys(),
        a.id,
        h.id,
        HostnameUpdate {
            origin_pull_id: Some(None),
            ..Default::default()
        },
    )
    .await
    .expect("detach");
    s.delete_origin_pull(&sys(), a.id, p.id)
        .await
        .expect("delete");
    assert!(s.list_origin_pulls(a.id).await.expect("list").is_empty());
}

pub async fn events_query_counts_and_retention(db: &Db) {
    let s = db.store.as_ref();
    let a = account(s, "acme").await;
    s.create_hostname(&sys(), a.id, new_host("e.test", vec![]))
        .await
        .expect("host");
    let base = 1_700_000_040; // a minute boundary
    let mut batch = Vec::new();
    for i in 0..10 {
        batch.push(NewEvent {
            hostname: "e.test".into(),
            at: base + i * 20,
            verdict: if i % 2 == 0 { "valid" } else { "invalid" }.into(),
            reason: (i % 2 == 1).then(|| "unknown-issuer".to_owned()),
            ski: Some("ab".into()),
            fingerprint: Some("cd".into()),
            client_ip: Some("127.0.0.1".into()),
            action: "forwarded".into(),
        });
    }
    batch.push(NewEvent {
        hostname: "unknown.test".into(),
        at: base,
        verdict: "none".into(),
        action: "blocked".into(),
        ..NewEvent::default()
    });
    assert_eq!(s.record_events(batch).await.expect("record"), 11);
    let mine = s
        .query_events(EventQuery {
            account_id: Some(a.id),
            ..EventQuery::default()
        })
        .await
        .expect("query");
    assert_eq!(mine.len(), 10);
    assert!(mine.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let invalid = s
        .query_events(EventQuery {
            hostname: Some("E.TEST".into()),
            verdict: Some("invalid".into()),
            from: Some(base + 40),
            until: Some(base + 200),
            limit: Some(2),
            ..EventQuery::default()
        })
        .await
        .expect("filtered");
    assert_eq!(invalid.len(), 2);
    assert!(invalid
        .iter()
        .all(|e| e.verdict == "invalid" && e.at >= base + 40));
    let counts = s
        .event_counts(EventQuery {
            account_id: Some(a.id),
            ..EventQuery::default()
        })
        .await
        .expect("counts");
    let total: u64 = counts.iter().map(|c| c.count).sum();
    assert_eq!(total, 10);
    assert!(counts.iter().all(|c| c.minute % 60 == 0));
    assert_eq!(
        counts[0],
        MinuteCount {
            minute: base,
            verdict: "invalid".into(),
            count: 1
        }
    );
    assert_eq!(
        counts[1],
        MinuteCount {
            minute: base,
            verdict: "valid".into(),
            count: 2
        }
    );
    // Retention: by age, then by count.
    assert_eq!(
        s.prune_events(base + 20, u64::MAX / 4).await.expect("age"),
        2
    );
    assert_eq!(s.prune_events(0, 3).await.expect("count"), 6);
    assert_eq!(
        s.query_events(EventQuery::default())
            .await
            .expect("left")
            .len(),
        3
    );
    // A batch larger than one statement's chunk.
    let many: Vec<NewEvent> = (0..450)
        .map(|i| NewEvent {
            hostname: "E.test".into(),
            at: base + i,
            verdict: "none".into(),
            action: "blocked".into(),
            ..NewEvent::default()
        })
        .collect();
    assert_eq!(s.record_events(many).await.expect("batch"), 450);
    let none = s
        .query_events(EventQuery {
            account_id: Some(a.id),
            verdict: Some("none".into()),
            ..EventQuery::default()
        })
        .await
        .expect("none");
    assert_eq!(none.len(), 450);
}

pub async fn subscribe_sees_committed_versions(db: &Db) {
    let s = db.store.clone();
    let mut rx = s.subscribe();
    let start = *rx.borrow_and_update();
    let a = account(s.as_ref(), "acme").await;
    // Account creation serves nothing new: no version.
    assert_eq!(s.config_version().await.expect("v"), start);
    s.create_hostname(&sys(), a.id, new_host("n.test", vec![]))
        .await
        .expect("host");
    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|v| *v > start))
        .await
        .expect("announced")
        .expect("open");
    // A second store on the same database (another process in a fleet)
    // sees versions committed by the first.
    let other = db
        .reopen(StoreOptions {
            poll_interval: Duration::from_millis(300),
            ..StoreOptions::default()
        })
        .await
        .expect("reopen");
    let mut orx = other.subscribe();
    let seen = *orx.borrow_and_update();
    s.update_hostname(
        &sys(),
        a.id,
        s.find_hostname("n.test").await.expect("f").expect("h").id,
        HostnameUpdate {
            mode: Some(MtlsMode::Off),
            ..Default::default()
        },
    )
    .await
    .expect("update");
    let want = s.config_version().await.expect("v");
    assert!(want > seen);
    if db.backend == Backend::Postgres {
        tokio::time::timeout(Duration::from_secs(10), orx.wait_for(|v| *v >= want))
            .await
            .expect("other store sees the version")
            .expect("open");
    } else {
        // SQLite announces in-process only; a second process polls.
        assert_eq!(other.config_version().await.expect("v"), want);
    }
}

pub async fn rejected_change_changes_nothing(db: &Db) {
    let s = db.store.as_ref();
    let a = account(s, "acme").await;
    let h = s
        .create_hostname(&sys(), a.id, new_host("r.test", vec![]))
        .await
        .expect("host");
    let v = s.config_version().await.expect("v");
    let audit_before = s
        .list_audit(AuditQuery::default())
        .await
        .expect("audit")
        .len();
    // Unknown CA in the association: nothing of the update applies.
    let bad = s
        .update_hostname(
            &sys(),
            a.id,
            h.id,
            HostnameUpdate {
                mode: Some(MtlsMode::Enforce),
                ca_ids: Some(vec![424242]),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))));
    assert_eq!(
        s.get_hostname(a.id, h.id).await.expect("get").mode,
        MtlsMode::Off
    );
    assert_eq!(s.config_version().await.expect("v"), v);
    assert_eq!(
        s.list_audit(AuditQuery::default())
            .await
            .expect("audit")
            .len(),
        audit_before
    );
    assert_eq!(s.changes_since(v).await.expect("c"), Changes::UpToDate);
}

pub async fn reopen_keeps_data_and_migrations_are_idempotent(db: &Db) {
    let s = db.store.as_ref();
    let a = account(s, "acme").await;
    s.create_hostname(&sys(), a.id, new_host("k.test", vec![]))
        .await
        .expect("host");
    let v = s.config_version().await.expect("v");
    let again = db.reopen(StoreOptions::default()).await.expect("reopen");
    assert_eq!(again.config_version().await.expect("v"), v);
    assert_eq!(again.get_account(a.id).await.expect("acc").name, "acme");
    assert_eq!(*again.subscribe().borrow(), v);
}

pub async fn keys_are_sealed_at_rest(db: &Db) {
    let (sealed_db, s) = db.fresh_sealed().await;
    let a = account(s.as_ref(), "acme").await;
    s.create_hostname(&sys(), a.id, new_host("sealed.test", vec![]))
        .await
        .expect("host");
    for raw in sealed_db.raw_keys("hostnames").await {
        assert!(!String::from_utf8_lossy(&raw).contains("secret-key-bytes"));
    }
    let snap = s.snapshot(None).await.expect("snapshot");
    assert!(
        String::from_utf8_lossy(snap.hostnames[0].key_pem.expose()).contains("secret-key-bytes")
    );
    // Without the key (or with another) the sealed keys cannot be opened.
    let keyless = sealed_db
        .reopen(StoreOptions::default())
        .await
        .expect("reopen");
    assert!(matches!(
        keyless.snapshot(None).await,
        Err(StoreError::Sealed(_))
    ));
    let wrong = sealed_db
        .reopen(StoreOptions {
            secret_key: Some([9u8; 32]),
            ..StoreOptions::default()
        })
        .await
        .expect("reopen");
    assert!(matches!(
        wrong.snapshot(None).await,
        Err(StoreError::Sealed(_))
    ));
    // The default store (no key) keeps them readable but marked.
    let plain = db.store.as_ref();
    let b = account(plain, "plain").await;
    plain
        .create_hostname(&sys(), b.id, new_host("plain.test", vec![]))
        .await
        .expect("host");
    assert!(db
        .raw_keys("hostnames")
        .await
        .iter()
        .all(|k| k.starts_with(b"pcs1:plain:")));
}

pub async fn bulk_import_is_one_version_and_all_or_nothing(db: &Db) {
    let s = db.store.as_ref();
    let a = account(s, "saas").await;
    let ca = s.create_ca(&sys(), a.id, new_ca("root")).await.expect("ca");
    let v0 = s.config_version().await.expect("v0");
    let many: Vec<NewHostname> = (0..1000)
        .map(|i| {
            new_host(
                &format!("c{i}.saas.test"),
                if i % 2 == 0 { vec![ca.id] } else { vec![] },
            )
        })
        .collect();
    assert_eq!(
        s.create_hostnames(&sys(), a.id, many)
            .await
            .expect("import"),
        1000
    );
    assert_eq!(s.config_version().await.expect("v"), v0 + 1);
    match s.changes_since(v0).await.expect("changes") {
        Changes::Hostnames { names, .. } => assert_eq!(names.len(), 1000),
        other => panic!("{other:?}"),
    }
    let snap = s.snapshot(None).await.expect("snapshot");
    assert_eq!(snap.hostnames.len(), 1000);
    assert_eq!(
        snap.hostnames
            .iter()
            .filter(|h| !h.trust.is_empty())
            .count(),
        500
    );
    // One taken name fails the whole import.
    let again = vec![
        new_host("new.saas.test", vec![]),
        new_host("c5.saas.test", vec![]),
    ];
    assert!(matches!(
        s.create_hostnames(&sys(), a.id, again).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(s
        .find_hostname("new.saas.test")
        .await
        .expect("find")
        .is_none());
    assert_eq!(s.config_version().await.expect("v"), v0 + 1);
    // Another account's CA is refused.
    let b = account(s, "other").await;
    let b_ca = s.create_ca(&sys(), b.id, new_ca("b")).await.expect("b ca");
    assert!(matches!(
        s.create_hostnames(&sys(), a.id, vec![new_host("x.saas.test", vec![b_ca.id])])
            .await,
        Err(StoreError::Invalid(_))
    ));
}

/// Found by the control-plane crash test (`control_crash`, kill -9 between
/// the two writes): an account and its managed CA were two transactions,
/// so a crash could leave an account without its CA whose name a retry
/// could not take. Now one transaction: a failing CA write leaves no
/// account behind.
pub async fn crash_regression_account_and_managed_ca_are_one_write(db: &Db) {
    let s = db.store.as_ref();
    let new = || NewAccount {
        name: "atomic".into(),
        ca_limit: None,
    };
    // An empty certificate is refused by the CA write, after the account
    // row was inserted in the same transaction.
    let r = s
        .create_account_with_managed_ca(&sys(), new(), String::new(), Secret::from("k"))
        .await;
    assert!(r.is_err(), "an empty CA certificate was accepted");
    let accounts = s.list_accounts(Page::default()).await.expect("list");
    assert!(
        accounts.iter().all(|a| a.name != "atomic"),
        "the account survived its failed CA write: {accounts:?}"
    );
    let (a, m) = s
        .create_account_with_managed_ca(
            &sys(),
            new(),
            "-----BEGIN CERTIFICATE-----\nm\n".into(),
            Secret::from("k"),
        )
        .await
        .expect("account and CA");
    assert_eq!(m.account_id, a.id);
    assert_eq!(s.get_managed_ca(a.id).await.expect("ca").account_id, a.id);
}
