//! Where the secrets key lives: the OS keychain when one answers (a real
//! Secret Service: gnome-keyring on a private D-Bus session), a private
//! file when none does.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use serde_json::Value;
use support::Flowkeep;

const CONFIG: &str =
    r#"{"fields":[{"key":"api_key","type":"secret"}],"values":{"api_key":"fk-secret-keychain-1"}}"#;

fn json(out: std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn without_a_keychain_the_key_is_a_private_file_in_the_data_dir() {
    let fk = Flowkeep::new();
    let run = |args: &[&str]| {
        Command::new(Flowkeep::bin())
            .arg("--data-dir")
            .arg(fk.data_dir())
            .arg("--json")
            .args(args)
            // No session bus: no Secret Service can answer.
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("XDG_RUNTIME_DIR", fk.data_dir())
            .output()
            .unwrap()
    };
    let id = json(run(&[
        "workflow", "create", "--name", "v", "--config", CONFIG,
    ]))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = json(run(&["secrets", "key"]));
    let file = fk.data_dir().join("secrets.keys");
    assert_eq!(key["kept_in"], file.display().to_string());
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let revealed = json(run(&["config", "get", &id, "--reveal"]));
    assert_eq!(revealed["values"]["api_key"], "fk-secret-keychain-1");
}

#[test]
fn with_a_secret_service_the_key_is_in_the_keychain_and_not_on_disk() {
    if std::env::var_os("FLOWKEEP_SKIP_KEYCHAIN_TEST").is_some() {
        eprintln!("skipped: no gnome-keyring / dbus-run-session on this machine (scripts/deps.sh says so)");
        return;
    }
    let fk = Flowkeep::new();
    let home = tempfile::tempdir().unwrap();
    let bin = Flowkeep::bin();
    // One D-Bus session with an unlocked keyring for every command.
    let script = format!(
        r#"set -e
printf 'test-password' | gnome-keyring-daemon --unlock --components=secrets >/dev/null
fk() {{ "{bin}" --data-dir "{dir}" --json "$@"; }}
id=$(fk workflow create --name v --config '{CONFIG}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
fk secrets key > "{home}/key.json"
fk config get "$id" --reveal > "{home}/revealed.json"
"#,
        bin = bin.display(),
        dir = fk.data_dir().display(),
        home = home.path().display(),
    );
    let out = Command::new("dbus-run-session")
        .args(["--", "sh", "-c", &script])
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_RUNTIME_DIR", home.path())
        .output()
        .expect("dbus-run-session runs (apt-get install dbus gnome-keyring)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(home.path().join(name)).unwrap()).unwrap()
    };
    assert_eq!(read("key.json")["kept_in"], "the OS keychain");
    assert!(
        !fk.data_dir().join("secrets.keys").exists(),
        "no key file when the keychain holds it"
    );
    assert_eq!(
        read("revealed.json")["values"]["api_key"],
        "fk-secret-keychain-1"
    );

    // Later, where the keychain does not answer (a shell without the
    // session bus, say over SSH): a new secret is refused with why, and no
    // key of its own is made beside the keychain's (values sealed with it
    // would open nowhere else, and the keychain's next write would drop it).
    let id = serde_json::from_str::<Value>(
        &String::from_utf8(
            Command::new(&bin)
                .arg("--data-dir")
                .arg(fk.data_dir())
                .args(["--json", "workflow", "list"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap(),
    )
    .unwrap()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = Command::new(&bin)
        .arg("--data-dir")
        .arg(fk.data_dir())
        .args([
            "--json",
            "config",
            "set",
            &id,
            "api_key",
            "fk-secret-keychain-2",
        ])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", home.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in the OS keychain, which does not answer now"),
        "{err}"
    );
    assert!(
        !fk.data_dir().join("secrets.keys").exists(),
        "no key made beside the keychain's"
    );
}
