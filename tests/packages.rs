//! The packaging files agree with each other and with the repository.
//!
//! `scripts/pkg/manifest` says what each package (onions-server,
//! onions-client, onions-hs) installs; `deb/PACKAGE/` holds the Debian
//! control files and maintainer scripts, `rpm/onions.spec` the RPM side.
//! These tests catch the drift that breaks a package build late: a unit,
//! man page or config file that was renamed, a unit in `systemd/` that no
//! package ships, a maintainer script that no longer parses, versions that
//! disagree. They read files only and take milliseconds.
//!
//! Building and installing the packages is slow and needs root and Debian's
//! mirror: run on request (`-- --ignored`), `installs_and_purges_cleanly`
//! builds the amd64 packages (`scripts/pkg/all x86_64`) and runs
//! `scripts/pkg/test-install` (a debootstrap root, the mirror replicating
//! from a Quorum, remove and purge leaving nothing behind).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const PACKAGES: [&str; 3] = ["onions-server", "onions-client", "onions-hs"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// One line of scripts/pkg/manifest.
struct Entry {
    package: String,
    kind: String,
    source: String,
    dest: String,
}

fn manifest() -> Vec<Entry> {
    read("scripts/pkg/manifest")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 4, "scripts/pkg/manifest: not 4 fields: {l}");
            Entry {
                package: f[0].into(),
                kind: f[1].into(),
                source: f[2].into(),
                dest: f[3].into(),
            }
        })
        .collect()
}

/// Where an entry lands in the RPM (units under /usr/lib/systemd/system,
/// docs under /usr/share/doc/PACKAGE).
fn rpm_path(e: &Entry) -> String {
    match e.kind.as_str() {
        "unit" => format!("/usr/lib/systemd/system/{}", e.dest),
        "doc" => format!("/usr/share/doc/{}/{}", e.package, e.dest),
        "zsh" => format!("/usr/share/zsh/site-functions/{}", e.dest),
        _ => e.dest.clone(),
    }
}

#[test]
fn every_manifest_source_exists() {
    let bins: BTreeSet<String> = fs::read_dir(root().join("src/bin"))
        .expect("src/bin")
        .filter_map(|d| d.ok())
        .filter_map(|d| {
            // A program is src/bin/NAME.rs or src/bin/NAME/main.rs.
            let name = d.file_name().to_string_lossy().into_owned();
            match name.strip_suffix(".rs") {
                Some(stem) => Some(stem.to_owned()),
                None => d.path().join("main.rs").is_file().then_some(name),
            }
        })
        .collect();
    let mut missing = Vec::new();
    for e in manifest() {
        assert!(
            PACKAGES.contains(&e.package.as_str()),
            "scripts/pkg/manifest: unknown package {}",
            e.package
        );
        match e.kind.as_str() {
            "bin" => assert!(
                bins.contains(&e.source),
                "no src/bin/{0}.rs or src/bin/{0}/main.rs",
                e.source
            ),
            "link" => {}
            "script" | "man" | "conf" | "unit" | "data" | "doc" | "zsh" => {
                if !root().join(&e.source).is_file() {
                    missing.push(e.source.clone());
                }
            }
            other => panic!("scripts/pkg/manifest: unknown kind {other}"),
        }
    }
    assert!(
        missing.is_empty(),
        "files the packages install are missing: {missing:?}"
    );
}

#[test]
fn every_unit_and_program_is_packaged() {
    let entries = manifest();
    let packaged: BTreeSet<&str> = entries.iter().map(|e| e.source.as_str()).collect();
    for dir in ["systemd"] {
        for d in fs::read_dir(root().join(dir))
            .expect(dir)
            .filter_map(|d| d.ok())
        {
            let rel = format!("{dir}/{}", d.file_name().to_string_lossy());
            assert!(
                packaged.contains(rel.as_str()),
                "{rel} is in no package (scripts/pkg/manifest)"
            );
        }
    }
    for p in PACKAGES {
        for kind in ["bin", "man", "data", "conf"] {
            assert!(
                entries.iter().any(|e| e.package == p && e.kind == kind),
                "{p} ships no {kind} entry"
            );
        }
    }
}

#[test]
fn the_rpm_spec_lists_every_file() {
    let spec = read("rpm/onions.spec");
    // "%files -n PACKAGE" sections, up to the next section.
    for e in manifest() {
        let section = spec
            .split("\n%files -n ")
            .skip(1)
            .find(|s| s.starts_with(&format!("{}\n", e.package)))
            .unwrap_or_else(|| panic!("rpm/onions.spec has no %files -n {}", e.package));
        let section = section.split("\n%changelog").next().unwrap_or(section);
        let path = rpm_path(&e).replace("/usr/lib/systemd/system/", "%{unitdir}/");
        let listed = section.lines().any(|l| {
            let l = l.trim();
            let file = l.rsplit(' ').next().unwrap_or(l);
            file == path
                || file
                    .strip_suffix('*')
                    .is_some_and(|pre| path.starts_with(pre))
                || (e.kind == "doc" || e.kind == "link") && path.starts_with(&format!("{file}/"))
        });
        assert!(
            listed,
            "rpm/onions.spec: %files -n {} does not list {path}",
            e.package
        );
        if e.kind == "conf" {
            assert!(
                section.contains(&format!("%config(noreplace) {path}")),
                "rpm/onions.spec: {path} is not %config(noreplace)"
            );
        }
    }
}

#[test]
fn maintainer_scripts_parse_and_name_their_units() {
    let entries = manifest();
    for p in PACKAGES {
        for script in ["postinst", "prerm", "postrm"] {
            let rel = format!("deb/{p}/{script}");
            let path = root().join(&rel);
            assert!(path.is_file(), "{rel} is missing");
            let status = Command::new("sh")
                .arg("-n")
                .arg(&path)
                .status()
                .expect("sh");
            assert!(status.success(), "{rel} does not parse (sh -n)");
            let text = read(&rel);
            assert!(
                text.starts_with("#!/bin/sh\n"),
                "{rel}: not a /bin/sh script"
            );
            assert!(text.contains("set -e"), "{rel}: no set -e");
            if script != "prerm" {
                for e in entries
                    .iter()
                    .filter(|e| e.package == p && e.kind == "unit")
                {
                    assert!(text.contains(&e.dest), "{rel} does not handle {}", e.dest);
                }
            }
        }
        let control = read(&format!("deb/{p}/control"));
        assert!(
            control.starts_with(&format!("Package: {p}\n")),
            "deb/{p}/control"
        );
        for field in [
            "Version: @VERSION@",
            "Architecture: @ARCH@",
            "Depends: @DEPENDS@",
        ] {
            assert!(control.contains(field), "deb/{p}/control lacks {field}");
        }
    }
}

#[test]
fn versions_agree() {
    let cargo = read("Cargo.toml");
    let version = cargo
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("Cargo.toml version");
    let changelog = read("deb/changelog");
    let first = changelog.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("onions ({version}-")),
        "deb/changelog's latest entry ({first}) is not for {version}"
    );
    let spec = read("rpm/onions.spec");
    let entry = spec
        .split("%changelog\n")
        .nth(1)
        .and_then(|c| c.lines().next())
        .unwrap_or_default();
    assert!(
        entry.ends_with(&format!(" - {version}-1")),
        "rpm/onions.spec's latest %changelog entry ({entry}) is not for {version}-1"
    );
}

/// Builds the amd64 packages and installs, reinstalls, removes and purges
/// them in a debootstrap root. It needs root, Debian's mirror and a few
/// minutes, so it runs on request: `cargo test --test packages -- --ignored`,
/// which `scripts/test` does when ONIONS_PACKAGE_TESTS=1 (as CI sets it).
#[test]
#[ignore = "needs root and Debian's mirror; scripts/test runs it with ONIONS_PACKAGE_TESTS=1"]
fn installs_and_purges_cleanly() {
    let run = |script: &str, args: &[&str]| {
        let status = Command::new(Path::new(&root()).join(script))
            .args(args)
            .status()
            .unwrap_or_else(|e| panic!("{script}: {e}"));
        assert!(status.success(), "{script} {args:?} failed");
    };
    run("scripts/pkg/all", &["x86_64"]);
    run("scripts/pkg/test-install", &[]);
}
