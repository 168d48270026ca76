//! Warden shipped as a service: the Debian package, built by `packaging/build-deb` from the
//! binary this test run built (the release pipeline minus a second compile), inspected
//! (binary stripped with its debug info in warden-dbgsym, unit, conffile, completions),
//! installed and purged with dpkg inside a throwaway root (the maintainer scripts run
//! with DPKG_ROOT: this machine's users and files are untouched), its binary run, its
//! unit checked by `systemd-analyze`; and the configuration file's precedence (flags >
//! environment > file > defaults) through the real binary.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Home;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a command, requiring success; returns stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tool the test needs (scripts/test installs each); its absence fails the test.
fn require(tool: &str, how: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "{tool} is missing: {how} (scripts/test installs it)");
}

fn only(dir: &Path, suffix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("package dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {suffix} in {}: {found:?}",
        dir.display()
    );
    found.into_iter().next().unwrap()
}

/// The ELF build id (`readelf -n`).
fn build_id(file: &Path) -> String {
    let notes = run(Command::new("readelf").arg("-n").arg(file));
    notes
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .unwrap_or_else(|| panic!("no build id in {}: {notes}", file.display()))
        .trim()
        .to_string()
}

fn mode(path: &Path) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

/// The id of `name` in a passwd or group file of the throwaway root.
fn id_in(file: &Path, name: &str) -> u32 {
    let text = std::fs::read_to_string(file).expect("passwd/group");
    text.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name)).then(|| f[2].parse().expect("numeric id"))
        })
        .unwrap_or_else(|| panic!("no {name} in {}:\n{text}", file.display()))
}

/// dpkg acting on the throwaway root only: its database, its files, and maintainer
/// scripts run with DPKG_ROOT (no chroot: the root holds no shell). Dependencies (libc6)
/// are not installed there, hence --force-depends.
fn dpkg(root: &Path) -> Command {
    let mut cmd = Command::new("dpkg");
    cmd.arg(format!("--root={}", root.display()))
        .arg("--force-script-chrootless")
        .arg("--force-depends")
        .env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

#[test]
fn debian_package_builds_installs_runs_and_purges() {
    require(
        "cargo-deb",
        "cargo install cargo-deb --locked (puts it in ~/.cargo/bin)",
    );
    for (tool, pkg) in [
        ("dpkg-deb", "dpkg"),
        ("dpkg-shlibdeps", "dpkg-dev"),
        ("objcopy", "binutils"),
        ("readelf", "binutils"),
        ("systemd-analyze", "systemd"),
        ("systemd-sysusers", "systemd"),
    ] {
        require(tool, &format!("apt-get install {pkg}"));
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("out");

    // Built as a release is built, from the binary of this test run.
    run(Command::new(repo().join("packaging/build-deb"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_warden"))
        .arg("--target-dir")
        .arg(tmp.path().join("target"))
        .arg("-o")
        .arg(&out)
        .args(["--", "--fast", "--quiet"]));
    let deb = only(&out, ".deb");
    let ddeb = only(&out, ".ddeb");

    // Control: name, dependencies found by dpkg-shlibdeps, the conffile, the scripts.
    let info = run(Command::new("dpkg-deb").arg("-I").arg(&deb));
    for needle in [
        "Package: warden",
        "Depends: libc6",
        "conffiles",
        "postinst",
        "postrm",
    ] {
        assert!(info.contains(needle), "{needle} missing in:\n{info}");
    }
    let name = run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg("Package"));
    assert_eq!(name.trim(), "warden");
    let ctrl = tmp.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&ctrl));
    assert_eq!(
        std::fs::read_to_string(ctrl.join("conffiles"))
            .unwrap()
            .trim(),
        "/etc/warden/warden.toml"
    );

    // Contents, with their modes.
    let listing = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    for (path, perms) in [
        ("./usr/bin/warden", "-rwxr-xr-x"),
        ("./usr/lib/systemd/system/warden.service", "-rw-r--r--"),
        ("./usr/lib/sysusers.d/warden.conf", "-rw-r--r--"),
        ("./etc/warden/warden.toml", "-rw-r-----"),
        (
            "./usr/share/bash-completion/completions/warden",
            "-rw-r--r--",
        ),
        ("./usr/share/zsh/vendor-completions/_warden", "-rw-r--r--"),
        (
            "./usr/share/fish/vendor_completions.d/warden.fish",
            "-rw-r--r--",
        ),
        ("./usr/share/doc/warden/packaging.md", "-rw-r--r--"),
    ] {
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with(perms) && l.ends_with(path)),
            "{perms} {path} missing in:\n{listing}"
        );
    }

    // The shipped binary carries no debug info; warden-dbgsym carries it under the
    // binary's build id, where debuggers and Rust's backtraces look.
    let unpacked = tmp.path().join("unpacked");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked));
    let bin = unpacked.join("usr/bin/warden");
    let sections = run(Command::new("readelf").arg("-S").arg("-W").arg(&bin));
    // (`.debug_gdb_scripts` is not debug info: a two-byte pointer to gdb's pretty printers.)
    for debug in [".debug_info", ".debug_line", ".debug_str", ".symtab"] {
        assert!(
            !sections.contains(debug),
            "the packaged binary has {debug}:\n{sections}"
        );
    }
    assert!(sections.contains(".gnu_debuglink"), "{sections}");
    let file = run(Command::new("file").arg(&bin));
    assert!(
        file.contains(", stripped"),
        "`file` does not call it stripped: {file}"
    );
    let source_size = std::fs::metadata(env!("CARGO_BIN_EXE_warden"))
        .unwrap()
        .len();
    let shipped_size = std::fs::metadata(&bin).unwrap().len();
    assert!(
        shipped_size < source_size,
        "{shipped_size} >= {source_size}"
    );
    let id = build_id(&bin);
    let dbg_listing = run(Command::new("dpkg-deb").arg("-c").arg(&ddeb));
    let debug_file = format!("./usr/lib/debug/.build-id/{}/{}.debug", &id[..2], &id[2..]);
    assert!(
        dbg_listing.lines().any(|l| l.ends_with(&debug_file)),
        "{debug_file} missing in the dbgsym package:\n{dbg_listing}"
    );
    let dbg_unpacked = tmp.path().join("dbg");
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&ddeb)
        .arg(&dbg_unpacked));
    let dbg_sections = run(Command::new("readelf")
        .arg("-S")
        .arg("-W")
        .arg(dbg_unpacked.join(debug_file.trim_start_matches("./"))));
    assert!(dbg_sections.contains(".debug_line"), "{dbg_sections}");

    // Installed into a throwaway root; this machine's users are left alone.
    let root = tmp.path().join("root");
    for dir in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    std::fs::write(root.join("var/lib/dpkg/available"), "").unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    let host_passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    run(dpkg(&root).arg("-i").arg(&deb));
    assert_eq!(
        std::fs::read_to_string("/etc/passwd").unwrap(),
        host_passwd,
        "the install changed this machine's users"
    );
    // postinst: the system user, its state directory, the configuration readable by it.
    let uid = id_in(&root.join("etc/passwd"), "warden");
    let gid = id_in(&root.join("etc/group"), "warden");
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains(":/var/lib/warden:/usr/sbin/nologin"),
        "{passwd}"
    );
    assert_eq!(mode(&root.join("var/lib/warden")), (0o700, uid, gid));
    assert_eq!(mode(&root.join("etc/warden/warden.toml")), (0o640, 0, gid));
    let status = run(dpkg(&root).args(["-s", "warden"]));
    assert!(status.contains("Status: install ok installed"), "{status}");

    // The installed binary names its commit, and prints its completions.
    let installed = root.join("usr/bin/warden");
    let version = run(Command::new(&installed).arg("--version"));
    let commit = version
        .trim()
        .strip_prefix(concat!("warden ", env!("CARGO_PKG_VERSION"), " ("))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("--version: {version}"));
    let hash = commit.trim_end_matches("-dirty");
    assert!(
        hash.len() >= 7 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "no commit in --version: {version}"
    );
    // A commit of this repository (HEAD may have moved on since the build).
    run(Command::new("git").arg("-C").arg(repo()).args([
        "cat-file",
        "-e",
        &format!("{hash}^{{commit}}"),
    ]));
    let bash = run(Command::new(&installed).args(["completions", "bash"]));
    assert!(bash.contains("complete -F _warden"), "{}", &bash[..200]);
    assert_eq!(
        bash,
        std::fs::read_to_string(root.join("usr/share/bash-completion/completions/warden")).unwrap()
    );
    let zsh = run(Command::new(&installed).args(["completions", "zsh"]));
    assert!(zsh.starts_with("#compdef warden"), "{}", &zsh[..100]);
    let fish = run(Command::new(&installed).args(["completions", "fish"]));
    assert!(fish.contains("complete -c warden"), "{}", &fish[..100]);

    // The unit: systemd's own checks (no warnings at all), with its binary at the
    // throwaway root's path, and its hardening as systemd scores it.
    let unit_text =
        std::fs::read_to_string(root.join("usr/lib/systemd/system/warden.service")).unwrap();
    for line in [
        "User=warden",
        "StateDirectory=warden",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectKernelTunables=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "CapabilityBoundingSet=",
        "ReadWritePaths=/var/lib/warden",
        "Environment=WARDEN_DATA_DIR=/var/lib/warden",
        "ExecStartPre=/usr/bin/warden --config /etc/warden/warden.toml init --if-missing",
        "ExecStart=/usr/bin/warden serve --config /etc/warden/warden.toml",
    ] {
        assert!(
            unit_text.lines().any(|l| l == line),
            "{line} missing in the unit"
        );
    }
    let check_dir = tmp.path().join("unit");
    std::fs::create_dir_all(&check_dir).unwrap();
    let unit = check_dir.join("warden.service");
    std::fs::write(
        &unit,
        unit_text.replace("/usr/bin/warden", installed.to_str().unwrap()),
    )
    .unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {:?}\n{said}",
        verify.status.code()
    );
    let security = Command::new("systemd-analyze")
        .arg("security")
        .arg("--offline=yes")
        .arg(format!("--root={}", root.display()))
        .arg("--threshold=20")
        .arg("warden.service")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&security.stdout);
    assert!(
        security.status.success(),
        "systemd-analyze security: exposure above 2.0:\n{text}{}",
        String::from_utf8_lossy(&security.stderr)
    );

    // What the unit runs, with the packaged configuration: the first start initialises,
    // the next ones change nothing.
    let data = tmp.path().join("state");
    let config = root.join("etc/warden/warden.toml");
    let start_pre = |expect: &str| {
        let out = run(Command::new(&installed)
            .env("WARDEN_DATA_DIR", &data)
            .env_remove("WARDEN_DATABASE_URL")
            .env_remove("WARDEN_MASTER_KEY")
            .arg("--config")
            .arg(&config)
            .args(["init", "--if-missing"]));
        assert!(out.contains(expect), "{out}");
    };
    start_pre("initialised operator WARDEN");
    start_pre("already initialised: operator WARDEN");

    // Purged: its files go, the state directory (master key, database) stays.
    run(dpkg(&root).args(["-P", "warden"]));
    for gone in [
        "usr/bin/warden",
        "etc/warden/warden.toml",
        "usr/lib/systemd/system/warden.service",
    ] {
        assert!(!root.join(gone).exists(), "{gone} left after purge");
    }
    assert!(root.join("var/lib/warden").is_dir());
}

/// `warden serve` with a configuration file; returns the address it prints it listens on.
fn serve_listen(home: &Home, config: &Path, env: &[(&str, &str)], flags: &[&str]) -> String {
    let mut cmd = home.command();
    cmd.arg("--config")
        .arg(config)
        .arg("serve")
        .args(["--nats", "nats://127.0.0.1:1", "--no-service"])
        .args(flags)
        .env_remove("WARDEN_HTTP_LISTEN")
        .env_remove("WARDEN_NATS_URL")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn warden serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let line = rx
        .recv_timeout(deadline - Instant::now())
        .expect("warden serve printed no line");
    let _ = child.kill();
    let _ = child.wait();
    line.trim()
        .strip_prefix("warden serve: http://")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected line: {line:?}"))
        .to_string()
}

fn free_addr() -> String {
    format!("127.0.0.1:{}", warden_testkit::free_port())
}

#[test]
fn configuration_file_precedence_flags_env_file_defaults() {
    let home = Home::new();
    home.ok(&["init"]);
    let config = home.path().join("warden.toml");

    // serve's listen address: the file over the default, the environment over the file,
    // a flag over both.
    let (in_file, in_env, in_flag) = (free_addr(), free_addr(), free_addr());
    std::fs::write(&config, format!("http = \"{in_file}\"\n")).unwrap();
    assert_eq!(serve_listen(&home, &config, &[], &[]), in_file);
    assert_eq!(
        serve_listen(&home, &config, &[("WARDEN_HTTP_LISTEN", &in_env)], &[]),
        in_env
    );
    assert_eq!(
        serve_listen(
            &home,
            &config,
            &[("WARDEN_HTTP_LISTEN", &in_env)],
            &["--http", &in_flag]
        ),
        in_flag
    );

    // The data directory, through `status`, all four levels (no network needed).
    let from_file = home.path().join("from-file");
    let from_env = home.path().join("from-env");
    let from_flag = home.path().join("from-flag");
    let xdg = home.path().join("xdg");
    let status = |config_text: &str, env: Option<&Path>, flag: Option<&Path>| -> String {
        std::fs::write(&config, config_text).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
        cmd.env_remove("WARDEN_DATABASE_URL")
            .env_remove("WARDEN_DATA_DIR")
            .env_remove("WARDEN_CONFIG")
            .env("XDG_DATA_HOME", &xdg)
            .arg("--config")
            .arg(&config)
            .arg("status");
        if let Some(dir) = env {
            cmd.env("WARDEN_DATA_DIR", dir);
        }
        if let Some(dir) = flag {
            cmd.arg("--data-dir").arg(dir);
        }
        let out: Output = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "no database anywhere: {out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let file_line = format!("data_dir = \"{}\"\n", from_file.display());
    let said = status("", None, None);
    assert!(
        said.contains(&xdg.join("warden").display().to_string()),
        "{said}"
    );
    let said = status(&file_line, None, None);
    assert!(said.contains(&from_file.display().to_string()), "{said}");
    let said = status(&file_line, Some(&from_env), None);
    assert!(said.contains(&from_env.display().to_string()), "{said}");
    let said = status(&file_line, Some(&from_env), Some(&from_flag));
    assert!(said.contains(&from_flag.display().to_string()), "{said}");

    // WARDEN_CONFIG names the file as --config does.
    std::fs::write(&config, format!("http = \"{in_file}\"\n")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    let out = cmd
        .env("WARDEN_CONFIG", home.path().join("missing.toml"))
        .args(["--data-dir", home.data_dir().to_str().unwrap(), "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("missing.toml") && said.contains("WARDEN_CONFIG"),
        "{said}"
    );

    // Mistakes are usage errors naming the key and the file; nothing runs.
    for (text, needle) in [
        ("htpp = \"127.0.0.1:0\"\n", "unknown key `htpp`"),
        ("http = 7480\n", "key `http`"),
        ("http = \n", "not valid TOML"),
    ] {
        std::fs::write(&config, text).unwrap();
        let said = home.fails(
            2,
            &[
                "--config",
                config.to_str().unwrap(),
                "serve",
                "--nats",
                "nats://127.0.0.1:1",
            ],
        );
        assert!(
            said.contains(needle) && said.contains(config.to_str().unwrap()),
            "{text:?}: {said}"
        );
    }
    let said = home.fails(
        2,
        &[
            "--config",
            home.path().join("none.toml").to_str().unwrap(),
            "serve",
        ],
    );
    assert!(
        said.contains("none.toml") && said.contains("not found"),
        "{said}"
    );
}
