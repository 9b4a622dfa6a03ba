//! The hook's logging: every decision to stderr and to a log file, each line with the container.
//!
//! podman runs precreate hooks with stderr on /dev/null (it only reports "exit status 1"), so a
//! refused annotation would reach nobody. When our stderr is /dev/null, warnings and errors go to
//! the stderr of the process that ran us (podman's, i.e. the user's terminal) instead.
//!
//! Annotations, image paths and container ids are other people's text, and the log is read by
//! people and parsers that take one line for one event. So every field is escaped on the way
//! out ([`Escaped`]): no value can end a line, start a forged one, or drive a terminal. Values
//! a message echoes are also cut to a readable length ([`clip`]) where they are put into it.

use std::borrow::Cow;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::Subscriber;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{FormatFields, Writer};
use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

pub const DEFAULT_FILE: &str = "/var/log/virtpod-hook.log";

fn is_dev_null(m: &std::fs::Metadata) -> bool {
    m.file_type().is_char_device()
        && nix::sys::stat::major(m.rdev()) == 1
        && nix::sys::stat::minor(m.rdev()) == 3
}

/// Where a user sees what we say: our stderr, or our parent's when ours is discarded.
fn user_stderr() -> (Box<dyn Write + Send>, bool) {
    // fstat of fd 2 itself: reopening /proc/self/fd/2 fails for a socket (journald), which
    // would wrongly send our output to the parent.
    let ours = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .and_then(|f| f.metadata());
    if !ours.is_ok_and(|m| is_dev_null(&m)) {
        return (Box::new(std::io::stderr()), false);
    }
    let parent = format!("/proc/{}/fd/2", std::os::unix::process::parent_id());
    match OpenOptions::new().append(true).open(parent) {
        Ok(f) if !f.metadata().is_ok_and(|m| is_dev_null(&m)) => (Box::new(f), true),
        _ => (Box::new(std::io::stderr()), false),
    }
}

/// Sets up logging for one hook call. A log file that cannot be opened (rootless, read-only
/// /var/log) is said once on stderr and otherwise ignored: logging never fails a container.
pub fn init(level: LevelFilter, file: &Path) {
    let (stderr, borrowed) = user_stderr();
    // Only what needs the user's attention goes to a terminal that is not ours.
    let stderr_level = if borrowed {
        level.min(LevelFilter::WARN)
    } else {
        level
    };
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_writer(BoxMakeWriter::new(Mutex::new(stderr)))
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .fmt_fields(Escaped)
        .with_filter(stderr_level);
    let opened = OpenOptions::new().create(true).append(true).open(file);
    let file_layer = opened.as_ref().ok().map(|f| {
        file_layer(
            Mutex::new(f.try_clone().expect("dup of an open file")),
            level,
        )
    });
    let _ = tracing_subscriber::registry()
        .with(stderr_layer)
        .with(file_layer)
        .try_init();
    if let Err(e) = opened {
        tracing::debug!("not logging to {}: {e}", file.display());
    }
}

/// Logging for a process the hook started that outlives it (`virtpod device watch`): the log
/// file alone, its lines in the hook's own format (one line per event, whoever writes), never
/// a terminal of the hook's parent.
pub fn init_file_only(level: LevelFilter, file: &Path) -> std::io::Result<()> {
    let f = OpenOptions::new().create(true).append(true).open(file)?;
    let _ = tracing_subscriber::registry()
        .with(file_layer(Mutex::new(f), level))
        .try_init();
    Ok(())
}

/// The log file's lines: time, level, the span (container and stage), then the message.
fn file_layer<S, W>(writer: W, level: LevelFilter) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_target(false)
        .fmt_fields(Escaped)
        .with_filter(level)
}

/// Field formatting that escapes every value. tracing-subscriber's own escapes terminal
/// escapes in messages but passes newlines and carriage returns, and `%`-fields not at all.
/// The layout is the default one: the message bare, other fields `name=value`.
pub struct Escaped;

impl<'w> FormatFields<'w> for Escaped {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut v = EscapingVisitor {
            writer,
            sep: "",
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

struct EscapingVisitor<'w> {
    writer: Writer<'w>,
    sep: &'static str,
    result: fmt::Result,
}

impl Visit for EscapingVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        let text = format!("{value:?}");
        self.result = match field.name() {
            "message" => write!(self.writer, "{}{}", self.sep, Escape(&text)),
            name => write!(self.writer, "{}{name}={}", self.sep, Escape(&text)),
        };
        self.sep = " ";
    }
}

/// Text with every character that could end or rewrite a line replaced by a visible escape:
/// C0 and C1 controls (newline, carriage return, ESC …), DEL, the Unicode line and paragraph
/// separators, and the bidirectional overrides that reorder what a terminal shows.
pub struct Escape<'a>(pub &'a str);

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
                | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

impl fmt::Display for Escape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(needs_escape) {
            f.write_str(&rest[..i])?;
            let c = rest[i..].chars().next().expect("found at i");
            write!(f, "{}", c.escape_default())?;
            rest = &rest[i + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// How much of a value a message shows.
pub const CLIP: usize = 200;

/// `text` as a message shows it: whole when short, else its first [`CLIP`] bytes (cut at a
/// character) and its full size, so that a megabyte annotation makes a one-line error.
pub fn clip(text: &str) -> Cow<'_, str> {
    if text.len() <= CLIP {
        return Cow::Borrowed(text);
    }
    let mut end = CLIP;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…({} bytes)", &text[..end], text.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn no_value_can_forge_a_log_line() {
        let buf = Buffer::default();
        let sink = buf.clone();
        let subscriber = tracing_subscriber::registry()
            .with(file_layer(move || sink.clone(), LevelFilter::TRACE));
        let forged =
            "x\n2025-01-01T00:00:00Z  INFO hook{container=0 stage=\"precreate\"}: forged\r\
                      \u{1b}[2K\u{85}\u{2028}\u{202e}";
        tracing::subscriber::with_default(subscriber, || {
            let _span =
                tracing::info_span!("hook", container = %forged, stage = "precreate").entered();
            tracing::error!("virtpod hook refused the container: io.virtpod.device.kvm={forged}");
            tracing::info!(value = %forged, debug = ?forged, "decision");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(
            !out.contains(['\r', '\u{1b}', '\u{85}', '\u{2028}', '\u{202e}']),
            "{out}"
        );
        assert!(lines[0].contains("ERROR hook{container=x\\n2025"), "{out}");
        assert!(
            lines[0].contains("refused the container: io.virtpod.device.kvm=x\\n2025-01-01"),
            "{out}"
        );
        assert!(
            lines[0].contains("forged\\r\\u{1b}[2K\\u{85}\\u{2028}\\u{202e}"),
            "{out}"
        );
        assert!(lines[1].contains(" decision value=x\\n"), "{out}");
    }

    #[test]
    fn long_values_are_clipped_with_their_size() {
        assert_eq!(clip("kvm"), "kvm");
        let long = "é".repeat(1000);
        let c = clip(&long);
        assert!(c.ends_with("…(2000 bytes)"), "{c}");
        assert_eq!(c.chars().filter(|&ch| ch == 'é').count(), CLIP / 2);
        let odd = format!("a{long}");
        assert!(clip(&odd).ends_with("…(2001 bytes)"));
    }
}
