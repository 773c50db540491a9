//! Configuration typos stop the program: an unknown key in the file or an unknown
//! `TESSERA_*` variable is named in the start-up error, while the variables of the test,
//! benchmark and CI tooling are ignored.

use std::process::Stdio;

use tessera::config::{Config, NON_CONFIG_VARIABLES};

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn error_text(err: anyhow::Error) -> String {
    format!("{err:#}")
}

/// The security limits cannot be set where they stop protecting: no lockout, a code window
/// wider than five steps either side, a reuse grace for refresh tokens over five minutes.
/// Each value just past its bound is refused by name, and the bound itself is taken.
#[test]
fn security_limits_out_of_bounds_are_refused_by_name() {
    let refused = [
        (
            "TESSERA_LOCKOUT_THRESHOLD",
            "0",
            "lockout_threshold must be positive",
        ),
        (
            "TESSERA_TOTP_SKEW_STEPS",
            "6",
            "totp_skew_steps must be between 0 and 5",
        ),
        (
            "TESSERA_REFRESH_REUSE_GRACE_SECS",
            "301",
            "refresh_reuse_grace_secs must be between 0 and 300",
        ),
        (
            "TESSERA_TOTP_MAX_DRIFT_STEPS",
            "21",
            "totp_max_drift_steps must be between 0 and 20",
        ),
        (
            "TESSERA_ACCESS_TOKEN_TTL_SECS",
            "0",
            "access_token_ttl_secs must be positive",
        ),
    ];
    for (variable, value, message) in refused {
        let err = Config::load_from(None, env(&[(variable, value)]))
            .expect_err("out of bounds is refused");
        let text = error_text(err);
        assert!(text.contains(message), "{variable}={value}: {text}");
    }
    let taken = [
        ("TESSERA_LOCKOUT_THRESHOLD", "1"),
        ("TESSERA_TOTP_SKEW_STEPS", "5"),
        ("TESSERA_REFRESH_REUSE_GRACE_SECS", "300"),
        ("TESSERA_TOTP_MAX_DRIFT_STEPS", "20"),
    ];
    for (variable, value) in taken {
        if let Err(err) = Config::load_from(None, env(&[(variable, value)])) {
            panic!("{variable}={value} is within bounds: {}", error_text(err));
        }
    }
}

#[test]
fn a_misspelt_environment_variable_is_refused_by_name() {
    let err = Config::load_from(
        None,
        env(&[
            ("TESSERA_ALLOW_REGISTRATON", "false"),
            ("TESSERA_LISTEN", "127.0.0.1:0"),
            ("TESSERA_LOGLEVEL", "debug"),
        ]),
    )
    .expect_err("a typo is refused");
    let text = error_text(err);
    assert!(text.contains("TESSERA_ALLOW_REGISTRATON"), "{text}");
    assert!(
        text.contains("TESSERA_LOGLEVEL"),
        "every unknown one: {text}"
    );
    assert!(
        text.contains("did you mean TESSERA_ALLOW_REGISTRATION?"),
        "{text}"
    );
    assert!(
        !text.contains("TESSERA_LISTEN "),
        "a known one is not named: {text}"
    );
}

#[test]
fn every_key_can_be_set_from_the_environment_and_tooling_variables_are_ignored() {
    let config = Config::load_from(
        None,
        env(&[
            ("TESSERA_ALLOW_REGISTRATION", "false"),
            ("TESSERA_ACCESS_TOKEN_TTL_SECS", "60"),
            (
                "TESSERA_TEST_DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/postgres",
            ),
            ("TESSERA_BENCH_BACKEND", "both"),
            ("TESSERA_CONFIG", "/nonexistent.toml"),
            ("OTHER_VARIABLE", "x"),
        ]),
    )
    .expect("loads");
    assert!(!config.allow_registration);
    assert_eq!(config.access_token_ttl_secs, 60);
    for name in NON_CONFIG_VARIABLES {
        Config::load_from(None, env(&[(name, "anything")]))
            .unwrap_or_else(|e| panic!("{name} is ignored: {e:#}"));
    }
    // The key list comes from the struct: every documented key is known.
    let keys = Config::keys();
    for key in [
        "listen",
        "allow_registration",
        "trusted_proxies",
        "log_level",
    ] {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
    for key in keys {
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains(&format!("`{key}`")),
            "{key} is in README.md's configuration table"
        );
    }
}

#[test]
fn a_misspelt_key_in_the_file_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tessera.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\nallow_registrations = false\n",
    )
    .unwrap();
    let text = error_text(Config::load_from(Some(&file), env(&[])).expect_err("refused"));
    assert!(text.contains("allow_registrations"), "{text}");
    assert!(text.contains(&file.display().to_string()), "{text}");

    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\nallow_registration = false\n",
    )
    .unwrap();
    let config = Config::load_from(Some(&file), env(&[])).expect("a right file loads");
    assert!(!config.allow_registration);
}

/// The real binary: the typo is on stderr and the exit code is not 0; nothing is done
/// (`migrate`, which would otherwise create the database and exit 0).
#[tokio::test]
async fn the_binary_refuses_to_start_with_a_typo() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let file = dir.path().join("tessera.toml");
    std::fs::write(&file, "allow_registrations = false\n").unwrap();
    for (args, var, named) in [
        (
            vec!["migrate"],
            Some(("TESSERA_ALLOW_REGISTRATON", "false")),
            "TESSERA_ALLOW_REGISTRATON",
        ),
        (
            vec!["--config", file.to_str().unwrap(), "migrate"],
            None,
            "allow_registrations",
        ),
    ] {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
        command
            .args(&args)
            .env("TESSERA_LISTEN", "127.0.0.1:0")
            .env("TESSERA_DATA_DIR", &data)
            .stdin(Stdio::null());
        if let Some((name, value)) = var {
            command.env(name, value);
        }
        let out = command.output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: refused");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
        assert!(
            !data.join("tessera.db").exists(),
            "{args:?}: no database was created"
        );
    }
}

#[test]
fn require_second_factor_and_admin_listen_are_read_from_the_environment() {
    use tessera::config::SecondFactorPolicy;
    let defaults = Config::load_from(None, env(&[])).unwrap();
    assert_eq!(defaults.require_second_factor, SecondFactorPolicy::Off);
    assert_eq!(defaults.admin_listen, None);
    let config = Config::load_from(
        None,
        env(&[
            ("TESSERA_REQUIRE_SECOND_FACTOR", "all"),
            ("TESSERA_ADMIN_LISTEN", "127.0.0.1:9090"),
        ]),
    )
    .unwrap();
    assert_eq!(config.require_second_factor, SecondFactorPolicy::All);
    assert_eq!(config.admin_listen.as_deref(), Some("127.0.0.1:9090"));
    let off = Config::load_from(None, env(&[("TESSERA_REQUIRE_SECOND_FACTOR", "off")])).unwrap();
    assert_eq!(off.require_second_factor, SecondFactorPolicy::Off);
    let empty = Config::load_from(None, env(&[("TESSERA_ADMIN_LISTEN", "")])).unwrap();
    assert_eq!(empty.admin_listen, None, "empty means not set");
    let err = Config::load_from(None, env(&[("TESSERA_REQUIRE_SECOND_FACTOR", "sometimes")]))
        .expect_err("only off or all");
    let text = error_text(err);
    assert!(
        text.contains("sometimes") || text.contains("variant"),
        "{text}"
    );
}
