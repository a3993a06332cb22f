//! Embeds `../migrations/NNNN_name.sql` in order. A gap or a duplicate
//! number fails the build, so a migration can never be skipped.

use std::{env, fs, path::Path};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<(u32, String)> = fs::read_dir(&dir)
        .expect("migrations/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let number = name
                .split('_')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("migration {name} must start with a number and _"));
            println!("cargo:rerun-if-changed={}", p.display());
            (number, name)
        })
        .collect();
    files.sort();
    for (i, (n, name)) in files.iter().enumerate() {
        assert_eq!(
            *n as usize,
            i + 1,
            "migration {name}: numbers must run 1, 2, 3, ... without gaps"
        );
    }
    let mut out = String::from("pub(crate) static MIGRATIONS: &[(&str, &str)] = &[\n");
    for (_, name) in &files {
        let path = dir.join(name).canonicalize().unwrap();
        out.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    out.push_str("];\n");
    fs::write(
        Path::new(&env::var("OUT_DIR").unwrap()).join("migrations.rs"),
        out,
    )
    .unwrap();
}
