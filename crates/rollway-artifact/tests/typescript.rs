//! The real-world alias case: a TypeScript project with `paths`
//! `{"@/*": ["src/*"]}`, compiled by the real `tsc` from the npm registry.
//! Plain `tsc` leaves `require("@/…")` in the output, which the scan
//! reports; after `tsc-alias` rewrites the imports, it passes. npm and
//! node are required (CI machines have them): without them this fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::process::Command;

use rollway_artifact::aliases::scan_tree;
use rollway_artifact::{AliasSpec, PackOptions, pack};

fn run(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("npm_config_update_notifier", "false")
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed (node and npm): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tsc_output_fails_the_alias_check_until_tsc_alias_rewrites_it() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path();
    fs::create_dir_all(p.join("src/lib")).unwrap();
    fs::write(
        p.join("package.json"),
        r#"{"name": "alias-demo", "version": "1.0.0", "private": true}"#,
    )
    .unwrap();
    // The tsconfig uses comments, a trailing comma and `extends`, as real
    // projects do.
    fs::write(
        p.join("tsconfig.base.json"),
        "{\n  // shared options\n  \"compilerOptions\": {\n    \"baseUrl\": \".\",\n    \"paths\": { \"@/*\": [\"src/*\"] },\n  },\n}\n",
    )
    .unwrap();
    fs::write(
        p.join("tsconfig.json"),
        "{\n  \"extends\": \"./tsconfig.base.json\",\n  \"compilerOptions\": {\n    \"baseUrl\": \".\",\n    \"paths\": { \"@/*\": [\"src/*\"] },\n    \"module\": \"commonjs\",\n    \"target\": \"es2020\",\n    \"rootDir\": \"src\",\n    \"outDir\": \"dist\",\n    \"strict\": true, /* trailing comma next */\n  },\n  \"include\": [\"src\"],\n}\n",
    )
    .unwrap();
    fs::write(
        p.join("src/lib/greet.ts"),
        "export const greet = (n: string) => `hi ${n}`;\n",
    )
    .unwrap();
    fs::write(
        p.join("src/index.ts"),
        "// import { nope } from '@/commented';\nimport { greet } from '@/lib/greet';\nconsole.log(greet('@/not-an-import'));\n",
    )
    .unwrap();

    run(
        p,
        "npm",
        &[
            "install",
            "--no-audit",
            "--no-fund",
            "--silent",
            "--no-save",
            "typescript@5",
            "tsc-alias@1",
        ],
    );
    run(p, "npx", &["--no-install", "tsc", "-p", "tsconfig.json"]);

    let spec = AliasSpec::discover(p, None).unwrap();
    assert_eq!(spec.patterns(), [rollway_artifact::AliasPattern::Prefix("@/".into())]);
    let dist = p.join("dist");
    let found = scan_tree(&dist, &spec).unwrap();
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines.len(),
        1,
        "{lines:?}\n{}",
        fs::read_to_string(dist.join("index.js")).unwrap()
    );
    assert!(lines[0].starts_with("index.js:"), "{lines:?}");
    assert!(lines[0].ends_with(": unresolved alias '@/lib/greet'"), "{lines:?}");

    let mut o = PackOptions::new(p.join("artifacts"));
    o.sync = false;
    o.aliases = spec.clone();
    let before = pack(&dist, &o).unwrap();
    assert!(!before.aliases_resolved);
    assert_eq!(before.unresolved_alias_lines(), lines);

    run(p, "npx", &["--no-install", "tsc-alias", "-p", "tsconfig.json"]);
    assert!(scan_tree(&dist, &spec).unwrap().is_empty());
    let after = pack(&dist, &o).unwrap();
    assert!(after.aliases_resolved, "{:?}", after.unresolved_alias_lines());
    assert_ne!(after.content_digest, before.content_digest);
    let js = fs::read_to_string(dist.join("index.js")).unwrap();
    assert!(js.contains("./lib/greet"), "{js}");
}
