//! Builds the web UI (`desktop/ui`, React + Vite) and embeds it: the binary
//! serves the UI it was built with, so `flowkeep ui` needs no files beside it.
//!
//! `FLOWKEEP_UI_DIST=<dir>` embeds an already built UI instead (no npm).
//! With the `native` feature it also runs `tauri_build` (the window's
//! config, capabilities and icon).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let ui = manifest.join("ui");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-env-changed=FLOWKEEP_UI_DIST");

    let dist = match std::env::var_os("FLOWKEEP_UI_DIST") {
        Some(dir) => PathBuf::from(dir),
        None => {
            for input in [
                "src",
                "index.html",
                "public",
                "package.json",
                "package-lock.json",
                "vite.config.ts",
                "tsconfig.json",
            ] {
                println!("cargo:rerun-if-changed={}", ui.join(input).display());
            }
            // In the source tree (ignored by git): the native window's
            // `tauri.conf.json` names this directory as its frontend.
            let dist = ui.join("dist");
            build_ui(&ui, &dist);
            dist
        }
    };
    if !dist.join("index.html").is_file() {
        fail(&format!("{} has no index.html", dist.display()));
    }
    let mut files = Vec::new();
    collect(&dist, &dist, &mut files);
    files.sort();
    let mut code = String::from(
        "/// The built web UI: (path, bytes).\npub static ASSETS: &[(&str, &[u8])] = &[\n",
    );
    for (rel, abs) in &files {
        code.push_str(&format!("    ({rel:?}, include_bytes!({abs:?})),\n"));
    }
    code.push_str("];\n");
    std::fs::write(out.join("ui_assets.rs"), code).unwrap();

    #[cfg(feature = "native")]
    {
        if std::env::var_os("FLOWKEEP_UI_DIST").is_some() {
            fail("FLOWKEEP_UI_DIST is for builds without the `native` feature; the window embeds desktop/ui/dist");
        }
        tauri_build::build();
    }
}

fn build_ui(ui: &Path, dist: &Path) {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let has_npm = Command::new(npm)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_npm {
        fail(
            "building the web UI needs Node.js (20 or newer) and npm: install them \
             (Debian/Ubuntu: `apt install nodejs npm`), or set FLOWKEEP_UI_DIST to a \
             directory with an already built UI",
        );
    }
    // `npm ci` only when the lockfile changed since the last install.
    let stamp = ui.join("node_modules/.package-lock.json");
    let lock = ui.join("package-lock.json");
    if modified(&stamp) < modified(&lock) || !stamp.exists() {
        run(
            Command::new(npm)
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(ui),
            "npm ci",
        );
    }
    run(
        Command::new(npm)
            .args([
                "exec",
                "--",
                "vite",
                "build",
                "--emptyOutDir",
                "--logLevel",
                "warn",
                "--outDir",
            ])
            .arg(dist)
            .current_dir(ui),
        "vite build",
    );
}

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn run(cmd: &mut Command, what: &str) {
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!(
            "`{what}` in desktop/ui failed ({s}); see its output above"
        )),
        Err(e) => fail(&format!("could not start `{what}`: {e}")),
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, path.to_string_lossy().into_owned()));
        }
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: flowkeep web UI: {msg}");
    std::process::exit(1);
}
