//! Hostile input through every operator command, on every backend: 10 KB
//! strings, control characters, RTL overrides, LIKE wildcards, SQL
//! metacharacters, absurd numbers, non-UTF-8 arguments and stdin. No command
//! may panic, show the driver's text, or change a single row. Also: the
//! bounds on durations, counts and dates, conflicts in words, and database
//! URLs whose secrets never reach the screen.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::process::{Command, Output, Stdio};

use sea_orm::{ConnectionTrait, FromQueryResult, JsonValue, Statement};

use crate::operator::{PASSWORD, create_user, gatehouse, json, text};
use crate::support::{Backend, TestDb};

backend_tests!(run_migrated: hostile_input_changes_nothing, out_of_range_flags_are_usage_errors, duplicates_equal_under_nfkc_are_conflicts_in_words);

/// What an error on stderr must never contain: the database driver's own words.
const DRIVER_TEXT: &[&str] = &[
    "error returned from database",
    "Query Error",
    "Execution Error",
    "SQLSTATE",
    "sqlx",
];

/// Runs `cmd` with `stdin` piped in; a child that exits before reading is fine.
fn run_bytes(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let _ = pipe.write_all(stdin);
    drop(pipe);
    child.wait_with_output().expect("the binary finishes")
}

/// What is wrong with `out`, if anything: a panic, a signal, or driver text.
fn problem(out: &Output) -> Option<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code().is_none() {
        return Some("killed by a signal".into());
    }
    if out.status.code() == Some(101) || stderr.contains("panicked") {
        return Some("panicked".into());
    }
    DRIVER_TEXT
        .iter()
        .find(|needle| stderr.contains(**needle))
        .map(|needle| format!("driver text `{needle}` on stderr"))
}

/// Every table's rows, as sorted JSON text.
async fn snapshot(t: &TestDb) -> BTreeMap<String, Vec<String>> {
    let list = match t.backend {
        Backend::Sqlite => {
            "SELECT name AS t FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        Backend::Postgres => {
            "SELECT table_name::text AS t FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        }
        Backend::MySql => {
            "SELECT CAST(table_name AS CHAR) AS t FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
        }
    };
    let backend = t.db_backend();
    let rows =
        t.db.query_all_raw(Statement::from_string(backend, list))
            .await
            .expect("tables list");
    let mut tables = BTreeMap::new();
    for row in rows {
        let table: String = row.try_get("", "t").expect("table name");
        let quoted = if t.backend == Backend::MySql {
            format!("`{table}`")
        } else {
            format!("\"{table}\"")
        };
        let mut content: Vec<String> = JsonValue::find_by_statement(Statement::from_string(
            backend,
            format!("SELECT * FROM {quoted}"),
        ))
        .all(&t.db)
        .await
        .unwrap_or_else(|e| panic!("reading {table}: {e}"))
        .iter()
        .map(ToString::to_string)
        .collect();
        content.sort();
        tables.insert(table, content);
    }
    tables
}

/// The tables whose rows differ between two snapshots.
fn changed(
    before: &BTreeMap<String, Vec<String>>,
    after: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|name| {
            before.get(*name).map_or(&[][..], Vec::as_slice)
                != after.get(*name).map_or(&[][..], Vec::as_slice)
        })
        .map(|name| {
            format!(
                "{name}: {} row(s) before, {} after",
                before.get(name).map_or(0, Vec::len),
                after.get(name).map_or(0, Vec::len)
            )
        })
        .collect()
}

/// Strings that are never a valid value of any argument they go into.
fn hostile_strings() -> Vec<String> {
    vec![
        "x".repeat(10 * 1024),
        "é".repeat(5 * 1024),
        "ctl\u{1}\u{7}\u{1b}[31m\u{7f}".into(),
        "line\nbreak\r\ttab".into(),
        "admin\u{202e}nimda".into(),
        "\u{200b}\u{feff}\u{2066}bob".into(),
        "%".into(),
        "_%_".into(),
        "' OR '1'='1".into(),
        "x'; DROP TABLE users; --".into(),
        "\"; DELETE FROM roles; --".into(),
        "public\"; DELETE FROM user_roles; --".into(),
        "\\\\'\\\"`$(id)".into(),
        "".into(),
    ]
}

/// Well-formed identifiers that, read as LIKE patterns, would match `alice`.
const LIKE_PATTERNS: &[&str] = &["_lice", "a%", "%", "%@example.com", "a_ice@example.com"];

/// Absurd numbers, durations and dates.
const ABSURD_NUMBERS: &[&str] = &[
    "-1",
    "0",
    "99999999999999999999999",
    "18446744073709551615",
    "9223372036854775807",
    "2147483648",
    "1e309",
    "NaN",
    "99999999999d",
    "1000000000d",
    "36526d",
    "9999999999999w",
];

/// Stdin that is never a valid password, key, token or code.
fn hostile_stdin() -> Vec<Vec<u8>> {
    vec![
        vec![0xff, 0xfe, 0xfd, b'\n'],
        b"\x80abc\xc3\x28\n".to_vec(),
        b"nul\0byte\n".to_vec(),
        [b"y".repeat(10 * 1024), b"\n".to_vec()].concat(),
        b"\x1b[2J\x07\n".to_vec(),
        b"\n".to_vec(),
        Vec::new(),
    ]
}

/// Each item of `values` in `per` of the `slots`, in turn, so that every
/// value and every slot are tried without trying every pair.
fn rotate<'a, T: Clone>(values: &'a [T], slot: usize, per: usize) -> impl Iterator<Item = T> + 'a {
    (0..per.min(values.len())).map(move |n| values[(slot * per + n) % values.len()].clone())
}

type Case = (Vec<OsString>, Vec<u8>);

/// Every command line to try, each with the stdin to give it.
fn cases(dir: &str) -> Vec<Case> {
    let pass = format!("{PASSWORD}\n").into_bytes();
    let s = |x: &str| x.to_owned();
    // Each slot is one argument of one command, with valid neighbours so that
    // the hostile value decides.
    type Slot = (Vec<&'static str>, Vec<&'static str>, bool);
    let slots: Vec<Slot> = vec![
        (
            vec!["user", "create", "--email"],
            vec!["--username", "carol"],
            true,
        ),
        (
            vec![
                "user",
                "create",
                "--email",
                "carol@example.com",
                "--username",
            ],
            vec![],
            true,
        ),
        (
            vec![
                "user",
                "create",
                "--email",
                "carol@example.com",
                "--username",
                "carol",
                "--role",
            ],
            vec![],
            true,
        ),
        (vec!["user", "lock"], vec![], false),
        (vec!["user", "unlock"], vec![], false),
        (vec!["role", "grant"], vec!["admin"], false),
        (vec!["role", "grant", "alice"], vec![], false),
        (
            vec!["role", "grant", "alice", "admin", "--until"],
            vec![],
            false,
        ),
        (vec!["role", "revoke"], vec!["user"], false),
        (vec!["role", "revoke", "alice"], vec![], false),
        (vec!["role", "list", "--user"], vec![], false),
        (vec!["perm", "check"], vec!["users.read"], false),
        (vec!["perm", "check", "alice"], vec![], false),
        (
            vec!["apikey", "issue"],
            vec!["--name", "k", "--scope", "users.read"],
            false,
        ),
        (
            vec!["apikey", "issue", "alice", "--name"],
            vec!["--scope", "users.read"],
            false,
        ),
        (
            vec!["apikey", "issue", "alice", "--name", "k", "--scope"],
            vec![],
            false,
        ),
        (vec!["apikey", "list"], vec![], false),
        (vec!["apikey", "revoke"], vec![], false),
        (vec!["apikey", "verify", "--scope"], vec![], false),
        (vec!["apikey", "verify", "--ip"], vec![], false),
        (vec!["mfa", "enroll"], vec![], false),
        (vec!["mfa", "enroll", "alice", "--issuer"], vec![], false),
        (vec!["mfa", "verify"], vec![], false),
        (vec!["login"], vec![], true),
        (vec!["login", "alice", "--ip"], vec![], true),
        (vec!["login", "alice", "--user-agent"], vec![], true),
        (vec!["session", "validate", "--ip"], vec![], false),
        (vec!["session", "validate", "--user-agent"], vec![], false),
        (vec!["session", "revoke"], vec![], false),
        (vec!["session", "revoke", "--user"], vec![], false),
        (vec!["metrics", "rollup", "--date"], vec![], false),
        (vec!["migrate", "up", "--dry-run", "--to"], vec![], false),
        (vec!["migrate", "down", "--dry-run", "--to"], vec![], false),
        (vec!["migrate", "mark-applied"], vec![], false),
        (vec!["migrate", "baseline", "--to"], vec![], false),
        (vec!["migrate", "repair"], vec![], false),
        (vec!["migrate", "sql"], vec![], false),
        (vec!["migrate", "create", "--dir", "DIR"], vec![], false),
        (vec!["migrate", "status", "-s"], vec![], false),
        (vec!["doctor", "--format"], vec![], false),
        (vec!["role", "create"], vec!["--level", "5"], false),
        (vec!["role", "create", "auditor", "--level"], vec![], false),
        (
            vec!["role", "create", "auditor", "--level", "5", "--description"],
            vec![],
            false,
        ),
        (vec!["role", "update"], vec!["--level", "5"], false),
        (
            vec!["role", "update", "user", "--description"],
            vec![],
            false,
        ),
        (vec!["role", "delete"], vec![], false),
        (vec!["role", "permission", "add"], vec!["users.read"], false),
        (vec!["role", "permission", "add", "user"], vec![], false),
        (vec!["role", "permission", "remove", "user"], vec![], false),
        (vec!["keys", "rotate"], vec![], false),
        (vec!["keys", "rotate", "hmac", "--reason"], vec![], false),
        (vec!["keys", "rotate", "data", "--reason"], vec![], false),
        (vec!["keys", "list", "--format"], vec![], false),
    ];
    let strings = hostile_strings();
    let mut cases: Vec<Case> = Vec::new();
    let mut add = |args: Vec<String>, stdin: &[u8]| {
        cases.push((
            args.into_iter().map(OsString::from).collect(),
            stdin.to_vec(),
        ));
    };
    // Free text (a key's name, an issuer, a user agent) may hold quotes and
    // percent signs; there only what is never valid text is tried.
    let never_text: Vec<String> = strings
        .iter()
        .filter(|v| {
            v.len() > 1000
                || v.is_empty()
                || v.chars().any(|c| {
                    c.is_control() || ('\u{200b}'..='\u{206f}').contains(&c) || c == '\u{feff}'
                })
        })
        .cloned()
        .collect();
    for (i, (before, after, wants_password)) in slots.iter().enumerate() {
        let free_text = before.last().is_some_and(|flag| {
            [
                "--name",
                "--issuer",
                "--user-agent",
                "--description",
                "--reason",
            ]
            .contains(flag)
        });
        let strings = if free_text { &never_text } else { &strings };
        let stdin: &[u8] = if *wants_password {
            &pass
        } else {
            b"not-a-secret\n"
        };
        // The schema goes into SQL text: every string is tried there.
        let per = if before.contains(&"-s") {
            strings.len()
        } else {
            4
        };
        for value in rotate(strings, i, per) {
            let mut args: Vec<String> = before
                .iter()
                .map(|a| if *a == "DIR" { dir.to_owned() } else { s(a) })
                .collect();
            args.push(value);
            args.extend(after.iter().map(|a| s(a)));
            add(args, stdin);
        }
    }
    // LIKE patterns name no one: nothing may happen to alice.
    for pattern in LIKE_PATTERNS {
        for verb in [
            &["user", "lock"][..],
            &["role", "grant"],
            &["role", "revoke"],
            &["mfa", "enroll"],
            &["session", "revoke", "--user"],
        ] {
            let mut args: Vec<String> = verb.iter().map(|a| s(a)).collect();
            args.push(s(pattern));
            if verb[0] == "role" {
                args.push(s("user"));
            }
            add(args, b"");
        }
        add(vec![s("login"), s(pattern)], &[0xff, b'\n']);
    }
    // Numbers.
    let flags: Vec<(Vec<&str>, &str)> = vec![
        (vec!["user", "list"], "--limit"),
        (vec!["user", "list"], "--offset"),
        (vec!["role", "grant", "alice", "admin"], "--expires-in"),
        (
            vec![
                "apikey",
                "issue",
                "alice",
                "--name",
                "k",
                "--scope",
                "users.read",
            ],
            "--expires-in",
        ),
        (
            vec![
                "apikey",
                "issue",
                "alice",
                "--name",
                "k",
                "--scope",
                "users.read",
            ],
            "--rate-limit",
        ),
        (vec!["audit", "prune"], "--batch-size"),
        (vec!["audit", "prune"], "--failed-login-days"),
        (vec!["audit", "prune"], "--session-audit-days"),
        (vec!["audit", "partitions", "ensure"], "--months-ahead"),
        (vec!["migrate", "status"], "--lock-timeout"),
        (vec!["migrate", "status"], "--statement-timeout"),
        (
            vec![
                "migrate",
                "repair",
                "m20260115_000001_create_initial_schema",
            ],
            "--statements-done",
        ),
        (vec!["migrate", "up", "--dry-run"], "-n"),
        (vec!["migrate", "down", "--dry-run"], "-n"),
    ];
    for (i, (command, flag)) in flags.iter().enumerate() {
        for n in rotate(ABSURD_NUMBERS, i, 5) {
            let mut args: Vec<String> = command.iter().map(|a| s(a)).collect();
            args.push(format!("{flag}={n}"));
            add(args, b"");
        }
    }
    for date in [
        "9999-12-31",
        "0000-01-01",
        "+262143-12-31",
        "1969-12-31",
        "2026-02-30",
        "2999-01-01",
    ] {
        add(vec![s("metrics"), s("rollup"), s("--date"), s(date)], b"");
    }
    for until in [
        "9999-12-31T23:59:59Z",
        "+262143-12-31T23:59:59Z",
        "1970-01-01T00:00:00Z",
        "2999-01-01T00:00:00Z",
    ] {
        add(
            vec![
                s("role"),
                s("grant"),
                s("alice"),
                s("admin"),
                s("--until"),
                s(until),
            ],
            b"",
        );
    }
    // Secrets on stdin.
    let commands: [&[&str]; 6] = [
        &[
            "user",
            "create",
            "--email",
            "carol@example.com",
            "--username",
            "carol",
        ],
        &["login", "alice"],
        &["login", "alice@example.com"],
        &["apikey", "verify"],
        &["session", "validate"],
        &["mfa", "verify", "alice"],
    ];
    let stdins = hostile_stdin();
    for (i, command) in commands.iter().enumerate() {
        for stdin in rotate(&stdins, i, 4) {
            add(command.iter().map(|a| s(a)).collect(), &stdin);
        }
    }
    // Arguments that are not UTF-8 at all.
    let raw = OsString::from_vec(vec![0xff, b'a', 0xfe]);
    for command in [
        &["user", "lock"][..],
        &["login"],
        &["migrate", "mark-applied"],
        &["apikey", "list"],
    ] {
        let mut args: Vec<OsString> = command.iter().map(OsString::from).collect();
        args.push(raw.clone());
        cases.push((args, Vec::new()));
    }
    cases
}

/// Runs every case, a few at a time, and returns what went wrong.
fn run_all(t: &TestDb, cases: &[Case]) -> Vec<String> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let problems = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((args, stdin)) = cases.get(i) else {
                        break;
                    };
                    let out = run_bytes(gatehouse(t).args(args), stdin);
                    if let Some(problem) = problem(&out) {
                        let shown: Vec<String> = args
                            .iter()
                            .map(|a| {
                                let a = a.to_string_lossy();
                                if a.len() > 60 {
                                    format!(
                                        "{}…({} bytes)",
                                        &a[..a.floor_char_boundary(60)],
                                        a.len()
                                    )
                                } else {
                                    a.into_owned()
                                }
                            })
                            .collect();
                        let mut report = text(&out);
                        report.truncate(report.floor_char_boundary(600));
                        problems
                            .lock()
                            .expect("no thread panicked")
                            .push(format!("{problem}: gatehouse {shown:?}\n{report}"));
                    }
                }
            });
        }
    });
    problems.into_inner().expect("no thread panicked")
}

async fn hostile_input_changes_nothing(t: TestDb) {
    create_user(&t, "alice", &["superadmin"]);
    // Record the session and data keys first (the first start of each records
    // its key, which is not what this test looks at).
    let login = run_bytes(
        gatehouse(&t).args(["login", "alice"]),
        format!("{PASSWORD}\n").as_bytes(),
    );
    assert_eq!(login.status.code(), Some(0), "{}", text(&login));
    create_user(&t, "dave", &[]);
    let enroll = run_bytes(gatehouse(&t).args(["mfa", "enroll", "dave"]), b"");
    assert_eq!(enroll.status.code(), Some(0), "{}", text(&enroll));
    let dir = std::env::temp_dir().join(format!("gh_hostile_{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("a migration dir");
    std::fs::write(dir.join("lib.rs"), "").expect("an empty lib.rs");
    let cases = cases(&dir.to_string_lossy());
    let before = snapshot(&t).await;
    let started = std::time::Instant::now();
    let problems = if std::env::var("HOSTILE_TRACE").is_ok() {
        // One at a time, naming each command that changes rows.
        let mut problems = Vec::new();
        let mut last = before.clone();
        for case in &cases {
            problems.extend(run_all(&t, std::slice::from_ref(case)));
            let now = snapshot(&t).await;
            let diff = changed(&last, &now);
            if !diff.is_empty() {
                let shown: Vec<String> = case
                    .0
                    .iter()
                    .map(|a| a.to_string_lossy().chars().take(40).collect())
                    .collect();
                problems.push(format!("{shown:?} changed {diff:?}"));
            }
            last = now;
        }
        problems
    } else {
        run_all(&t, &cases)
    };
    let elapsed = started.elapsed();
    let written: Vec<_> = std::fs::read_dir(&dir)
        .expect("the migration dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "lib.rs")
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        problems.is_empty(),
        "{} problem(s) in {} commands:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n\n")
    );
    let after = snapshot(&t).await;
    let changed = changed(&before, &after);
    assert!(
        changed.is_empty(),
        "hostile input changed rows: {changed:?}"
    );
    assert!(written.is_empty(), "migrate create wrote {written:?}");
    println!("{} hostile commands in {elapsed:?}", cases.len());
}

/// Runs `args` against `t` and asserts a usage error (exit 2) whose message names `flag`.
fn refused(t: &TestDb, args: &[&str], flag: &str) {
    let out = run_bytes(gatehouse(t).args(args), b"");
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(flag),
        "{args:?} does not name {flag}: {}",
        text(&out)
    );
    assert!(!stderr.contains("panicked"), "{}", text(&out));
}

async fn out_of_range_flags_are_usage_errors(t: TestDb) {
    create_user(&t, "alice", &[]);
    let before = snapshot(&t).await;
    refused(
        &t,
        &[
            "role",
            "grant",
            "alice",
            "admin",
            "--expires-in",
            "99999999999d",
        ],
        "100 years",
    );
    refused(
        &t,
        &["role", "grant", "alice", "admin", "--expires-in", "36526d"],
        "100 years",
    );
    refused(
        &t,
        &[
            "role",
            "grant",
            "alice",
            "admin",
            "--until",
            "9999-12-31T00:00:00Z",
        ],
        "--until",
    );
    refused(
        &t,
        &[
            "role",
            "grant",
            "alice",
            "admin",
            "--until",
            "2000-01-01T00:00:00Z",
        ],
        "--until",
    );
    refused(
        &t,
        &[
            "apikey",
            "issue",
            "alice",
            "--name",
            "k",
            "--scope",
            "users.read",
            "--expires-in",
            "1000000000d",
        ],
        "100 years",
    );
    refused(
        &t,
        &[
            "apikey",
            "issue",
            "alice",
            "--name",
            "k",
            "--scope",
            "users.read",
            "--rate-limit=0",
        ],
        "--rate-limit",
    );
    refused(
        &t,
        &["user", "list", "--offset", "18446744073709551615"],
        "--offset",
    );
    refused(&t, &["user", "list", "--limit", "0"], "--limit");
    refused(&t, &["metrics", "rollup", "--date", "9999-12-31"], "--date");
    refused(&t, &["metrics", "rollup", "--date", "1969-12-31"], "--date");
    refused(
        &t,
        &["audit", "prune", "--batch-size", "99999999999"],
        "--batch-size",
    );
    refused(
        &t,
        &[
            "audit",
            "partitions",
            "ensure",
            "--months-ahead",
            "4294967295",
        ],
        "--months-ahead",
    );
    refused(
        &t,
        &["migrate", "--lock-timeout", "9999999999999999h", "status"],
        "24h",
    );
    refused(
        &t,
        &[
            "migrate",
            "--statement-timeout",
            "18446744073709551615",
            "status",
        ],
        "24h",
    );
    refused(&t, &["login", "alice", "--ip", "' OR 1=1 --"], "--ip");
    assert!(
        changed(&before, &snapshot(&t).await).is_empty(),
        "a refused command changed rows"
    );
    // The bounds themselves are accepted.
    let ok = run_bytes(
        gatehouse(&t).args([
            "role",
            "grant",
            "alice",
            "moderator",
            "--expires-in",
            "36525d",
        ]),
        b"",
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
}

async fn duplicates_equal_under_nfkc_are_conflicts_in_words(t: TestDb) {
    create_user(&t, "bob", &[]);
    let pass = format!("{PASSWORD}\n");
    for (email, username, message) in [
        // Fullwidth letters fold (NFKC) to the same address.
        (
            "ｂｏｂ@example.com",
            "bob2",
            "an account with this email already exists",
        ),
        (
            "BOB@EXAMPLE.COM",
            "bob3",
            "an account with this email already exists",
        ),
        (
            "bob4@example.com",
            "ｂｏｂ",
            "an account with this username already exists",
        ),
    ] {
        let out = run_bytes(
            gatehouse(&t).args(["user", "create", "--email", email, "--username", username]),
            pass.as_bytes(),
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "{email}/{username}: {}",
            text(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(message),
            "{email}/{username}: {}",
            text(&out)
        );
        for needle in DRIVER_TEXT.iter().chain(&[
            "uq-users",
            "duplicate key",
            "Duplicate entry",
            "UNIQUE constraint",
        ]) {
            assert!(
                !stderr.contains(needle),
                "{email}/{username}: driver text {needle}: {}",
                text(&out)
            );
        }
    }
    assert_eq!(t.count("users").await, 1);
    let listed = json(&run_bytes(
        gatehouse(&t).args(["user", "list", "--format", "json"]),
        b"",
    ));
    assert_eq!(listed["users"].as_array().map(Vec::len), Some(1));
}

/// URLs of a server that is not there, each holding the secret `s3cret` in another form.
const SECRET_URLS: &[&str] = &[
    "postgres://u:s3cret@127.0.0.1:1/db",
    "postgresql://u:s3cret@127.0.0.1:1/db?sslmode=disable",
    "mysql://u:s3cret@127.0.0.1:1/db",
    "mysql://u@127.0.0.1:1/db?password=s3cret",
    "mysql://u@127.0.0.1:1/db?PASSWORD=s3cret",
    "postgres://u@127.0.0.1:1/db?sslpassword=s3cret",
    "postgres://u@127.0.0.1:1/db?sslmode=prefer&SslPassword=s3cret",
    "postgres://u@127.0.0.1:1/db?password=s3cret&application_name=x",
    "postgres://u:s3cret@[::1/db",
    "postgres://u:s%33cret@127.0.0.1:1/db",
];

#[test]
fn database_url_secrets_never_printed() {
    let migration_bin =
        std::path::Path::new(env!("CARGO_BIN_EXE_gatehouse")).with_file_name("gatehouse-migration");
    let gatehouse_bin = std::path::Path::new(env!("CARGO_BIN_EXE_gatehouse"));
    // Every connection attempt waits out its timeout, so all run at once.
    let mut children = Vec::new();
    for url in SECRET_URLS {
        let mut runs: Vec<(&str, Command)> = Vec::new();
        for args in [&["user", "list"][..], &["migrate", "status"], &["doctor"]] {
            let mut cmd = Command::new(gatehouse_bin);
            cmd.args(args);
            runs.push(("gatehouse", cmd));
        }
        let mut flag = Command::new(gatehouse_bin);
        flag.args(["session", "cleanup", "--database-url", url]);
        runs.push(("gatehouse --database-url", flag));
        if migration_bin.exists() {
            let mut cmd = Command::new(&migration_bin);
            cmd.arg("up");
            runs.push(("migration", cmd));
        }
        for (name, mut cmd) in runs {
            cmd.current_dir(std::env::temp_dir())
                .env_remove("RUST_LOG")
                .env("DATABASE_URL", url)
                .env("HMAC_KEY", crate::operator::HMAC_KEY)
                .env("DATA_ENCRYPTION_KEY", crate::operator::DATA_KEY)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let child = cmd.spawn().expect("the binary starts");
            children.push((name, *url, child));
        }
    }
    let mut failures = Vec::new();
    for (name, url, child) in children {
        let out = child.wait_with_output().expect("the binary finishes");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if all.contains("s3cret") || all.contains("s%33cret") {
            failures.push(format!("{name} with {url}:\n{}", text(&out)));
        } else if !matches!(out.status.code(), Some(1 | 2)) {
            failures.push(format!(
                "{name} with {url}: unexpected exit\n{}",
                text(&out)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
