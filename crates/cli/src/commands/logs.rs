//! Reading log files for the analysis commands (`vigil ip`, `vigil ips`, `vigil errors`): line
//! by line, lossily decoded, each line cut at [`MAX_LINE`] bytes so memory stays bounded.

use std::{
    fs::File,
    io::{self, BufRead, BufReader, Read},
    path::Path,
};

use vigil_parse::{Clock, Format, Parser};

/// Lines longer than this many bytes are cut.
pub const MAX_LINE: usize = 1 << 20;

/// Calls `f` with each line of `path` (`-`: standard input), without its line end.
pub fn for_each_line(path: &Path, mut f: impl FnMut(&str)) -> io::Result<()> {
    let input: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(path)?)
    };
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if n == MAX_LINE {
            skip_line(&mut reader)?;
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        f(&String::from_utf8_lossy(&buf));
    }
}

/// Skips the rest of a line that was cut.
fn skip_line(reader: &mut impl BufRead) -> io::Result<()> {
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        if let Some(at) = memchr::memchr(b'\n', chunk) {
            reader.consume(at + 1);
            return Ok(());
        }
        let len = chunk.len();
        reader.consume(len);
    }
}

/// The auto-detecting parser, completing year-less times against now in the system's zone.
pub fn auto_parser() -> Box<dyn Parser> {
    Format::Auto.parser(Clock::default())
}
