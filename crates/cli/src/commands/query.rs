//! `vigil query "SQL"`: read-only SQL over the agent's database, as a table, JSON or CSV.
//!
//! The database is opened read-only (`SQLITE_OPEN_READ_ONLY`, `PRAGMA query_only`) and only a
//! statement SQLite reports as read-only runs; anything else is refused with exit status 2.
//! The schema is documented in `docs/schema.md`.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
};

use vigil_store::{
    StoreError,
    sqlite::{ReadOnlyDb, SqlValue},
};

use super::table;

/// Arguments of `vigil query`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One SQL statement that only reads (SELECT, WITH … SELECT, EXPLAIN, PRAGMA table_info…).
    #[arg(value_name = "SQL")]
    sql: String,
    /// The database. Default: `stores.sqlite.path` of the configuration, else `vigil.db` in the
    /// state directory.
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Print a JSON array of objects (one per row, keys in column order).
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV (RFC 4180) with a header row.
    #[arg(long)]
    csv: bool,
}

/// Runs the command.
pub fn run(args: &Args, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let db = match crate::stores::database_arg(args.db.as_deref(), config) {
        Ok(it) => it,
        Err(code) => return Ok(code),
    };
    let ro = match ReadOnlyDb::open(&db) {
        Ok(it) => it,
        Err(err) => return Ok(crate::stores::report(&err)),
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let result = if args.json {
        json(&ro, &args.sql, &mut out)
    } else if args.csv {
        csv(&ro, &args.sql, &mut out)
    } else {
        human(&ro, &args.sql, &mut out)
    };
    match result.and_then(|()| out.flush().map_err(|it| StoreError::io("<stdout>", it))) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => Ok(crate::stores::report(&err)),
    }
}

fn stdout_err(err: std::io::Error) -> StoreError {
    StoreError::io("<stdout>", err)
}

fn human(ro: &ReadOnlyDb, sql: &str, out: &mut impl Write) -> Result<(), StoreError> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut numeric: Vec<bool> = Vec::new();
    let columns = ro.query(sql, |columns, row| {
        if numeric.is_empty() {
            numeric = vec![true; columns.len()];
        }
        for (is_numeric, value) in numeric.iter_mut().zip(&row) {
            *is_numeric &=
                matches!(value, SqlValue::Integer(_) | SqlValue::Real(_) | SqlValue::Null);
        }
        rows.push(row.iter().map(|it| one_line(&it.to_string())).collect());
        Ok(())
    })?;
    if numeric.is_empty() {
        numeric = vec![false; columns.len()];
    }
    let headers: Vec<&str> = columns.iter().map(String::as_str).collect();
    out.write_all(table::render(&headers, &numeric, &rows).as_bytes()).map_err(stdout_err)?;
    let n = rows.len();
    eprintln!("({n} row{})", if n == 1 { "" } else { "s" });
    Ok(())
}

/// A cell on one line: control characters (newlines in a raw log line) become spaces.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn json(ro: &ReadOnlyDb, sql: &str, out: &mut impl Write) -> Result<(), StoreError> {
    out.write_all(b"[").map_err(stdout_err)?;
    let mut first = true;
    ro.query(sql, |columns, row| {
        let mut text = String::from(if first { "\n  {" } else { ",\n  {" });
        first = false;
        for (index, (column, value)) in columns.iter().zip(&row).enumerate() {
            if index > 0 {
                text.push_str(", ");
            }
            text.push_str(&serde_json::to_string(column)?);
            text.push_str(": ");
            text.push_str(&serde_json::to_string(&value.to_json())?);
        }
        text.push('}');
        out.write_all(text.as_bytes()).map_err(stdout_err)
    })?;
    out.write_all(if first { b"]\n" } else { b"\n]\n" }).map_err(stdout_err)
}

fn csv(ro: &ReadOnlyDb, sql: &str, out: &mut impl Write) -> Result<(), StoreError> {
    let mut header = false;
    let columns = ro.query(sql, |columns, row| {
        if !header {
            header = true;
            write_csv_row(out, columns.iter().map(String::as_str))?;
        }
        let cells: Vec<String> = row.iter().map(ToString::to_string).collect();
        write_csv_row(out, cells.iter().map(String::as_str))
    })?;
    if !header {
        write_csv_row(out, columns.iter().map(String::as_str))?;
    }
    Ok(())
}

fn write_csv_row<'a>(
    out: &mut impl Write,
    cells: impl Iterator<Item = &'a str>,
) -> Result<(), StoreError> {
    let mut line = String::new();
    for (index, cell) in cells.enumerate() {
        if index > 0 {
            line.push(',');
        }
        if cell.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&cell.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(cell);
        }
    }
    line.push_str("\r\n");
    out.write_all(line.as_bytes()).map_err(stdout_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut out = Vec::new();
        write_csv_row(&mut out, ["a", "b,c", "say \"hi\"", "x\ny"].into_iter()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a,\"b,c\",\"say \"\"hi\"\"\",\"x\ny\"\r\n");
        assert_eq!(one_line("a\nb\tc"), "a b c");
    }
}
