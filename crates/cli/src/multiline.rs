//! Multi-line records in `vigil run`'s file sources: the `multiline` key of a
//! `[sources.files.<name>]` table plugs vigil-parse's traceback rule into the tailer, and the
//! decoder reads a joined record by its first line.
//!
//! A record's first line goes through the source's parser (time, level, program, action); the
//! lines after it are appended to the parsed message, so the error tracer sees the whole
//! traceback (exception type, file, line), and `raw` holds the record as it was written.

use std::sync::Arc;

use vigil_core::event::Payload;
use vigil_parse::multiline::PythonRecords;
use vigil_tail::{Decoder, JoinerFactory, LineContext, LineJoiner, TailConfig, TailSource};

/// `source` with `decoder`, joining lines as `config`'s `multiline` key says.
pub fn wire(source: TailSource, decoder: Decoder, config: &TailConfig) -> TailSource {
    if config.effective_multiline() != "python" {
        return source.with_decoder(decoder);
    }
    source.with_decoder(record_decoder(decoder)).with_joiner(python())
}

/// The rule of Python tracebacks, one per file.
fn python() -> JoinerFactory {
    Arc::new(|| {
        let mut rule = PythonRecords::new();
        Box::new(move |line: &str, held: bool| rule.continues(line, held)) as Box<dyn LineJoiner>
    })
}

/// Decodes a joined record through `inner` by its first line, then puts the other lines back
/// into the message and the raw text.
fn record_decoder(inner: Decoder) -> Decoder {
    Arc::new(move |ctx: &LineContext<'_>, text: &str| {
        let Some((first, rest)) = text.split_once('\n') else { return inner(ctx, text) };
        let mut payload = inner(ctx, first)?;
        if let Payload::Log(log) = &mut payload {
            log.message.push('\n');
            log.message.push_str(rest);
            log.raw = Some(text.to_owned());
        }
        Some(payload)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::event::LineOrigin;

    #[test]
    fn a_record_is_parsed_by_its_first_line_and_keeps_every_line() {
        let decoder = record_decoder(vigil_tail::generic_decoder());
        let origin = LineOrigin { stream: "s".into(), offset: 0, end: 10 };
        let ctx = LineContext {
            source: "files.app",
            path: std::path::Path::new("/var/log/app.log"),
            origin: &origin,
            truncated: false,
            invalid_utf8: false,
        };
        let text = "ERROR boom\nTraceback (most recent call last):\nValueError: x";
        let Some(Payload::Log(log)) = decoder(&ctx, text) else { panic!("a log event") };
        assert_eq!(log.message, text);
        assert_eq!(log.raw.as_deref(), Some(text));
        let Some(Payload::Log(log)) = decoder(&ctx, "one line") else { panic!("a log event") };
        assert_eq!(log.message, "one line");
    }
}
