//! `pg_dump`, `pg_restore` and `psql` as child processes: a dump streamed
//! through the age encryptor into storage, an archive streamed out of the
//! decryptor into `pg_restore` (to list it, or to restore it in one
//! transaction), and whether a database holds anything yet.

use std::io::{self, BufRead as _, BufWriter, Read, Write};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

use rollway_secrets::{Identity, Recipient};

use super::storage::Object;
use super::{BackupError, Stored};

/// The PostgreSQL client programs, by name (overridable for tests of a
/// missing program: the path of each).
#[derive(Debug, Clone)]
pub struct Tool {
    pub pg_dump: String,
    pub pg_restore: String,
    pub psql: String,
}

impl Default for Tool {
    fn default() -> Self {
        Self {
            pg_dump: "pg_dump".into(),
            pg_restore: "pg_restore".into(),
            psql: "psql".into(),
        }
    }
}

/// The URL without its password, and the password (for `PGPASSWORD`).
fn split_password(url: &str) -> Result<(String, Option<String>), BackupError> {
    let mut u = url::Url::parse(url).map_err(|e| BackupError::Url(e.to_string()))?;
    if !matches!(u.scheme(), "postgres" | "postgresql") {
        return Err(BackupError::Url(format!(
            "its scheme is '{}', not postgres or postgresql",
            u.scheme()
        )));
    }
    let password = u.password().map(|p| {
        url::form_urlencoded::parse(format!("p={p}").as_bytes())
            .next()
            .map_or_else(|| p.to_owned(), |(_, v)| v.into_owned())
    });
    u.set_password(None)
        .map_err(|()| BackupError::Url("its password cannot be taken out".into()))?;
    Ok((u.to_string(), password))
}

fn command(program: &str, url: &str) -> Result<Command, BackupError> {
    let (bare, password) = split_password(url)?;
    let mut c = Command::new(program);
    c.arg("--dbname").arg(bare);
    if let Some(p) = password {
        c.env("PGPASSWORD", p);
    }
    Ok(c)
}

/// Reads a child's stderr to its end on a thread (so a chatty child never
/// blocks on a full pipe); keeps the last 4 KiB.
fn drain(stderr: Option<ChildStderr>) -> Option<JoinHandle<String>> {
    let mut s = stderr?;
    Some(std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        let start = all.len().saturating_sub(4096);
        String::from_utf8_lossy(&all[start..]).trim().to_owned()
    }))
}

fn finish(
    program: &'static str,
    mut child: Child,
    stderr: Option<JoinHandle<String>>,
) -> Result<(ExitStatus, String), BackupError> {
    let status = child.wait().map_err(|source| BackupError::Spawn { program, source })?;
    let text = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    Ok((status, text))
}

fn spawn(program: &'static str, mut c: Command) -> Result<Child, BackupError> {
    c.spawn().map_err(|source| BackupError::Spawn { program, source })
}

/// `pg_dump -Fc` of `url`, encrypted to `recipients` and hashed on its way
/// into `object`, which appears only when everything succeeded.
pub fn dump_database(tool: &Tool, url: &str, object: &Object, recipients: &[Recipient]) -> Result<Stored, BackupError> {
    // The object is created first (a storage that cannot be written fails
    // before pg_dump starts), then filled from pg_dump's stdout.
    super::store_stream(object, recipients, |w| {
        dump_to(tool, url, w, |e| object.error("write the backup to", e))
    })
}

/// `pg_dump -Fc` of `url` streamed into `out` (the encryptor into storage
/// here, or the host agent's encrypted stream back to the deployer for
/// `run_on = "host"`); `write_failed` names where a failure of `out` is.
/// A failure of `out` kills `pg_dump`; a `pg_dump` that fails (or is
/// killed) is an error, whatever it wrote.
pub fn dump_to(
    tool: &Tool,
    url: &str,
    out: &mut dyn Write,
    write_failed: impl FnOnce(io::Error) -> BackupError,
) -> Result<(), BackupError> {
    let mut c = command(&tool.pg_dump, url)?;
    c.args(["--format=custom", "--no-password"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn("pg_dump", c)?;
    let stderr = drain(child.stderr.take());
    let copied = match child.stdout.take() {
        Some(mut stdout) => io::copy(&mut stdout, out).map(|_| ()).map_err(write_failed),
        None => Err(BackupError::Tool {
            program: "pg_dump",
            status: "no output pipe".into(),
            stderr: String::new(),
        }),
    };
    if copied.is_err() {
        let _ = child.kill();
    }
    let (status, text) = finish("pg_dump", child, stderr)?;
    copied?;
    if !status.success() {
        return Err(BackupError::Tool {
            program: "pg_dump",
            status: status.to_string(),
            stderr: text,
        });
    }
    Ok(())
}

/// Streams the decrypted `object` into a child's stdin; returns the
/// decryption problem, if any (then the child's input is cut short).
fn feed(object: &Object, identities: &[Identity], stdin: impl Write) -> Result<Option<String>, BackupError> {
    let copied = super::decrypted(object, identities, |reader| {
        let mut stdin = BufWriter::with_capacity(1 << 16, stdin);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Some(format!("it is corrupted, cut short or was modified ({e})")),
            };
            // The child may stop reading early (a bad archive): its exit says why.
            if stdin.write_all(&buf[..n]).is_err() {
                return None;
            }
        }
        let _ = stdin.flush();
        None
    })?;
    Ok(copied.unwrap_or_else(Some))
}

/// Decrypts `object` into `pg_restore --list`: `Ok(entries)` when the
/// archive reads through, else what is wrong.
pub fn list_archive(
    tool: &Tool,
    object: &Object,
    identities: &[Identity],
) -> Result<Result<usize, String>, BackupError> {
    let mut c = Command::new(&tool.pg_restore);
    c.arg("--list")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn("pg_restore", c)?;
    let stderr = drain(child.stderr.take());
    let stdout = child.stdout.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut all = String::new();
            let _ = s.read_to_string(&mut all);
            all.lines()
                .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
                .count()
        })
    });
    let problem = match child.stdin.take() {
        Some(stdin) => feed(object, identities, stdin),
        None => Ok(None),
    };
    let (status, text) = finish("pg_restore", child, stderr)?;
    let entries = stdout.and_then(|h| h.join().ok()).unwrap_or(0);
    if let Some(p) = problem? {
        return Ok(Err(p));
    }
    if !status.success() {
        return Ok(Err(format!(
            "pg_restore --list cannot read the archive ({status}): {text}"
        )));
    }
    Ok(Ok(entries))
}

/// Decrypts `object` into `pg_restore` against `url`, in one transaction
/// that stops at the first error (so a failed restore leaves the target
/// as it was); `clean` drops existing objects first (`--force`).
pub fn restore_database(
    tool: &Tool,
    object: &Object,
    identities: &[Identity],
    url: &str,
    clean: bool,
) -> Result<(), BackupError> {
    restore_with(tool, url, clean, |stdin| feed(object, identities, stdin))
}

/// A clear `pg_dump -Fc` archive read from `input` into `pg_restore`
/// against `url`, as [`restore_database`] restores (the host agent's side
/// of a restore of a backup taken with `run_on = "host"`). An input that
/// fails or ends early leaves `pg_restore` a cut archive, which it refuses
/// inside its one transaction.
pub fn restore_from(tool: &Tool, url: &str, clean: bool, input: &mut dyn Read) -> Result<(), BackupError> {
    restore_with(tool, url, clean, |stdin| {
        let mut stdin = BufWriter::with_capacity(1 << 16, stdin);
        match io::copy(input, &mut stdin) {
            Ok(_) => {
                let _ = stdin.flush();
                Ok(None)
            }
            // The child may stop reading early (a bad archive): its exit says why.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(None),
            Err(e) => Ok(Some(format!("the archive could not be read to its end ({e})"))),
        }
    })
}

/// `pg_restore` in one transaction against `url`, its stdin filled by
/// `fill` (which answers why its input was cut short, if it was).
fn restore_with(
    tool: &Tool,
    url: &str,
    clean: bool,
    fill: impl FnOnce(std::process::ChildStdin) -> Result<Option<String>, BackupError>,
) -> Result<(), BackupError> {
    let mut c = command(&tool.pg_restore, url)?;
    c.args(["--single-transaction", "--exit-on-error", "--no-password"]);
    if clean {
        c.args(["--clean", "--if-exists"]);
    }
    c.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = spawn("pg_restore", c)?;
    let stderr = drain(child.stderr.take());
    let problem = match child.stdin.take() {
        Some(stdin) => fill(stdin),
        None => Ok(None),
    };
    let (status, text) = finish("pg_restore", child, stderr)?;
    if let Some(p) = problem? {
        return Err(BackupError::Tool {
            program: "pg_restore",
            status: "its input was cut short".into(),
            stderr: p,
        });
    }
    if !status.success() {
        return Err(BackupError::Tool {
            program: "pg_restore",
            status: status.to_string(),
            stderr: text,
        });
    }
    Ok(())
}

/// Whether the database at `url` has no relation (table, sequence, view…)
/// outside PostgreSQL's own schemas.
pub fn database_is_empty(tool: &Tool, url: &str) -> Result<bool, BackupError> {
    let n = psql(
        tool,
        url,
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'",
    )?;
    Ok(n == "0")
}

/// What an archive holds, as `pg_restore` writes it back out as a script:
/// its schema (the statements outside the data, without comments, blank
/// lines and sequence positions) and the number of rows of each table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contents {
    pub schema: Vec<String>,
    pub rows: std::collections::BTreeMap<String, u64>,
}

/// Whether a script line is schema as `pg_dump --schema-only` would write
/// it (comments, blank lines, psql's per-run `\restrict` keys and sequence
/// positions are not).
fn is_schema(line: &str) -> bool {
    !(line.trim().is_empty()
        || line.starts_with("--")
        || line.starts_with("\\restrict")
        || line.starts_with("\\unrestrict")
        || line.starts_with("SELECT pg_catalog.setval("))
}

/// Reads a plain-format script: the schema lines and, for each `COPY
/// table (…) FROM stdin;` block, its rows up to `\.`.
fn read_script(script: impl Read) -> io::Result<Contents> {
    let mut contents = Contents::default();
    let mut copying: Option<(String, u64)> = None;
    for line in io::BufReader::with_capacity(1 << 16, script).split(b'\n') {
        let line = line?;
        if let Some((_, rows)) = copying.as_mut() {
            if line.as_slice() == b"\\." {
                if let Some((table, rows)) = copying.take() {
                    contents.rows.insert(table, rows);
                }
            } else {
                *rows += 1;
            }
            continue;
        }
        let line = String::from_utf8_lossy(&line);
        if let Some(rest) = line.strip_prefix("COPY ")
            && line.ends_with("FROM stdin;")
        {
            let table = rest.split(' ').next().unwrap_or_default().to_owned();
            copying = Some((table, 0));
        } else if is_schema(&line) {
            contents.schema.push(line.into_owned());
        }
    }
    Ok(contents)
}

/// Decrypts `object` through `pg_restore --file -` (owners and grants
/// left out) and reads what the archive holds.
pub fn archive_contents(
    tool: &Tool,
    object: &Object,
    identities: &[Identity],
) -> Result<Result<Contents, String>, BackupError> {
    let mut c = Command::new(&tool.pg_restore);
    c.args(["--no-owner", "--no-privileges", "--file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn("pg_restore", c)?;
    let stderr = drain(child.stderr.take());
    let stdout = child.stdout.take().map(|s| std::thread::spawn(move || read_script(s)));
    let problem = match child.stdin.take() {
        Some(stdin) => feed(object, identities, stdin),
        None => Ok(None),
    };
    let (status, text) = finish("pg_restore", child, stderr)?;
    let contents = stdout.and_then(|h| h.join().ok());
    if let Some(p) = problem? {
        return Ok(Err(p));
    }
    if !status.success() {
        return Ok(Err(format!("pg_restore cannot read the archive ({status}): {text}")));
    }
    match contents {
        Some(Ok(c)) => Ok(Ok(c)),
        Some(Err(e)) => Ok(Err(format!("pg_restore's script could not be read: {e}"))),
        None => Ok(Err("pg_restore's script could not be read".to_owned())),
    }
}

/// What the database at `url` holds, read the same way: `pg_dump
/// --schema-only` (owners and grants left out) and a `count(*)` of every
/// table outside PostgreSQL's own schemas.
pub fn database_contents(tool: &Tool, url: &str) -> Result<Contents, BackupError> {
    let mut c = command(&tool.pg_dump, url)?;
    c.args(["--schema-only", "--no-owner", "--no-privileges", "--no-password"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = c.output().map_err(|source| BackupError::Spawn {
        program: "pg_dump",
        source,
    })?;
    if !out.status.success() {
        return Err(BackupError::Tool {
            program: "pg_dump",
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    let schema = read_script(out.stdout.as_slice())
        .map_err(|e| BackupError::Tool {
            program: "pg_dump",
            status: "its schema could not be read".into(),
            stderr: e.to_string(),
        })?
        .schema;
    let counts = psql(
        tool,
        url,
        "SELECT format('%I.%I', n.nspname, c.relname) || ' ' || \
         (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), \
         false, true, '')))[1]::text \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'",
    )?;
    let rows = counts
        .lines()
        .filter_map(|l| {
            let (table, n) = l.rsplit_once(' ')?;
            Some((table.to_owned(), n.trim().parse().ok()?))
        })
        .collect();
    Ok(Contents { schema, rows })
}

/// One statement through `psql` against `url`: its unaligned output.
pub fn psql(tool: &Tool, url: &str, sql: &str) -> Result<String, BackupError> {
    let mut c = command(&tool.psql, url)?;
    c.args([
        "--no-psqlrc",
        "--no-password",
        "--tuples-only",
        "--no-align",
        "--set",
        "ON_ERROR_STOP=1",
        "--command",
        sql,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let out = c.output().map_err(|source| BackupError::Spawn {
        program: "psql",
        source,
    })?;
    if !out.status.success() {
        return Err(BackupError::Tool {
            program: "psql",
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `url` with its database replaced by `database` (a scratch database on
/// the same server).
pub fn with_database(url: &str, database: &str) -> Result<String, BackupError> {
    let mut u = url::Url::parse(url).map_err(|e| BackupError::Url(e.to_string()))?;
    u.set_path(&format!("/{database}"));
    Ok(u.to_string())
}

/// The differences between what an archive holds and what a database
/// restored from it holds (empty: they are the same).
pub fn differences(archive: &Contents, restored: &Contents) -> Vec<String> {
    let mut out = Vec::new();
    if archive.schema != restored.schema {
        let at = archive
            .schema
            .iter()
            .zip(&restored.schema)
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| archive.schema.len().min(restored.schema.len()));
        out.push(format!(
            "the restored schema differs from the archive's at statement line {}: {:?} against {:?}",
            at + 1,
            archive.schema.get(at).map_or("(end)", String::as_str),
            restored.schema.get(at).map_or("(end)", String::as_str),
        ));
    }
    let tables: std::collections::BTreeSet<&String> = archive.rows.keys().chain(restored.rows.keys()).collect();
    for t in tables {
        let (a, r) = (archive.rows.get(t), restored.rows.get(t));
        if a != r {
            out.push(format!(
                "table {t}: {} rows in the archive, {} restored",
                a.map_or("no".to_owned(), u64::to_string),
                r.map_or("none".to_owned(), u64::to_string)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_gives_its_schema_and_the_rows_of_each_table() {
        let script = "--\n-- PostgreSQL database dump\n--\n\\restrict abc\nSET x = 1;\n\nCREATE TABLE public.t (\n    id integer\n);\n\
COPY public.t (id) FROM stdin;\n1\n2\n\\.\n\nCOPY public.\"Empty\" (id) FROM stdin;\n\\.\n\
SELECT pg_catalog.setval('public.s', 3, true);\nCREATE INDEX i ON public.t (id);\n\\unrestrict abc\n";
        let c = read_script(script.as_bytes()).unwrap_or_default();
        assert_eq!(
            c,
            Contents {
                schema: [
                    "SET x = 1;",
                    "CREATE TABLE public.t (",
                    "    id integer",
                    ");",
                    "CREATE INDEX i ON public.t (id);"
                ]
                .map(String::from)
                .to_vec(),
                rows: [("public.t".to_owned(), 2), ("public.\"Empty\"".to_owned(), 0)].into(),
            }
        );
        let mut restored = c.clone();
        assert!(differences(&c, &restored).is_empty());
        restored.rows.insert("public.t".into(), 1);
        restored.schema.pop();
        assert_eq!(
            differences(&c, &restored),
            [
                "the restored schema differs from the archive's at statement line 5: \"CREATE INDEX i ON public.t (id);\" against \"(end)\"",
                "table public.t: 2 rows in the archive, 1 restored",
            ]
        );
    }
}
