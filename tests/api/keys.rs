//! Keys fail closed: a server whose master key or pepper is not the one its database was
//! set up with refuses to start (naming the key file) instead of making new keys, key
//! files others can read are refused, and the SQLite database is created owner-only.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use tessera::clock::ManualClock;
use tessera::config::Config;
use tessera::startup::Application;

use crate::helpers::{PASSWORD, TestApp};

/// Builds (but does not run) a server on `config`; the start-up error as text.
async fn start(config: &Config) -> Result<Application, String> {
    let clock = Arc::new(ManualClock::starting_now());
    Application::build_with_clock(config.clone(), clock)
        .await
        .map_err(|e| format!("{e:#}"))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn new_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>()) + "\n"
}

fn write_owner_only(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[tokio::test]
async fn deleted_keys_are_not_replaced_and_the_server_refuses_to_start() {
    let mut app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    app.enable_two_factor(&user).await;
    app.stop().await;
    let dir = app.data_dir.path().to_path_buf();
    let saved: Vec<(String, String)> = ["master.key", "pepper.key"]
        .iter()
        .map(|n| (n.to_string(), std::fs::read_to_string(dir.join(n)).unwrap()))
        .collect();
    for (name, _) in &saved {
        std::fs::remove_file(dir.join(name)).unwrap();
    }

    let err = start(&app.config).await.err().expect("refuses to start");
    assert!(
        err.contains(&dir.join("master.key").display().to_string()) && err.contains("missing"),
        "names the missing key file: {err}"
    );
    assert!(
        !dir.join("master.key").exists() && !dir.join("pepper.key").exists(),
        "no new key was generated"
    );

    // With the files restored from the backup, the server starts and the 2FA user still
    // needs (and can pass) the second factor.
    for (name, text) in &saved {
        write_owner_only(&dir.join(name), text);
    }
    let app = app.restart().await;
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    assert!(!token.is_empty());
}

#[tokio::test]
async fn regenerated_keys_do_not_match_and_the_server_refuses_to_start() {
    let mut app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    app.enable_two_factor(&user).await;
    let dir = app.data_dir.path().to_path_buf();

    // The fingerprints in the database are not the keys.
    let mut conn = app.state.db.read().await.unwrap();
    let recorded = tessera::db::key_fingerprints::all(&mut conn).await.unwrap();
    drop(conn);
    app.stop().await;
    let names: Vec<&str> = recorded.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["master_key", "pepper"],
        "both recorded on first start"
    );
    for (_, fingerprint) in &recorded {
        for file in ["master.key", "pepper.key"] {
            let key = std::fs::read_to_string(dir.join(file)).unwrap();
            assert!(!fingerprint.contains(key.trim()) && !key.contains(fingerprint.as_str()));
        }
    }

    for file in ["master.key", "pepper.key"] {
        let original = std::fs::read_to_string(dir.join(file)).unwrap();
        write_owner_only(&dir.join(file), &new_key());
        let err = start(&app.config).await.err().expect("refuses to start");
        assert!(
            err.contains(&dir.join(file).display().to_string())
                && err.contains("not the key this database was set up with"),
            "{file}: {err}"
        );
        write_owner_only(&dir.join(file), &original);
    }
    // A key given inline is named by its setting.
    let mut inline = app.config.clone();
    inline.master_key = Some(new_key().trim().to_owned().into());
    let err = start(&inline).await.err().expect("refuses to start");
    assert!(err.contains("`master_key` setting"), "{err}");

    start(&app.config).await.expect("the original keys start");
}

#[tokio::test]
async fn a_key_file_others_can_read_is_refused_unless_allowed() {
    let app = TestApp::spawn().await;
    let dir = app.data_dir.path().to_path_buf();
    for file in ["master.key", "pepper.key", "jwt-ed25519.pem"] {
        let path = dir.join(file);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = start(&app.config).await.err().expect("refused");
        assert!(
            err.contains(&path.display().to_string())
                && err.contains("mode 644")
                && err.contains("allow_insecure_key_permissions"),
            "{file}: {err}"
        );
        let mut lenient = app.config.clone();
        lenient.allow_insecure_key_permissions = true;
        start(&lenient).await.expect("starts with only a warning");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // A configured key file is checked as well.
    let elsewhere = tempfile::tempdir().unwrap();
    let pepper = elsewhere.path().join("pepper");
    std::fs::copy(dir.join("pepper.key"), &pepper).unwrap();
    std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o640)).unwrap();
    let mut configured = app.config.clone();
    configured.pepper_file = Some(pepper.clone());
    let err = start(&configured).await.err().expect("refused");
    assert!(err.contains(&pepper.display().to_string()), "{err}");
}

#[tokio::test]
async fn the_sqlite_database_is_owner_only_even_in_an_open_data_dir() {
    let parent = tempfile::tempdir().unwrap();
    let data_dir = parent.path().join("shared");
    std::fs::create_dir(&data_dir).unwrap();
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    // This test is about the SQLite file, whichever database the suite runs on.
    let app = TestApp::spawn_with(|config| {
        config.data_dir = data_dir.clone();
        config.database_url = None;
    })
    .await;
    app.signed_in_user().await;
    assert_eq!(
        mode(&data_dir),
        0o755,
        "the operator's dir is left as it was"
    );
    let db = data_dir.join("tessera.db");
    assert_eq!(mode(&db), 0o600, "tessera.db");
    let wal = data_dir.join("tessera.db-wal");
    assert!(wal.exists(), "WAL mode keeps a -wal file open");
    for file in [wal, data_dir.join("tessera.db-shm")] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}
