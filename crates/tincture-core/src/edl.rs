//! CMX3600 edit decision lists: a film's shots written for DaVinci Resolve
//! and other conform tools, and read back from them.
//!
//! [`write_cmx3600`] writes one cut event per shot, in the standard columns:
//!
//! ```text
//! TITLE: reel1.mkv
//! FCM: NON-DROP FRAME
//! * TINCTURE SOURCE START: 00:00:00:00
//!
//! 001  AX       V     C        00:00:00:00 00:00:02:00 01:00:00:00 01:00:02:00
//! * FROM CLIP NAME: reel1.mkv
//! ```
//!
//! Out points are exclusive (the first frame after the event), as CMX has
//! them. [`read_cmx3600`] reads any CMX3600 list: video events, with their
//! line numbers; comments, `M2` speed changes, audio-only events, black
//! (`BL`) and zero-length events (the outgoing half of a dissolve) are
//! passed over. [`Edl::shots`] turns the events into frame ranges of the
//! source, refusing events that overlap or run backwards.

use crate::shots::Shot;
use crate::timecode::TimecodeBase;

/// The comment in which [`write_cmx3600`] records the source's start
/// timecode, so [`parse_cmx3600`] can read its own lists back exactly.
const SOURCE_START_COMMENT: &str = "* TINCTURE SOURCE START:";

/// The record timecode of the first event.
const RECORD_START: &str = "01:00:00:00";

/// What is wrong with an edit decision list; every message names the line.
#[derive(Debug, thiserror::Error)]
pub enum EdlError {
    /// A line that cannot be read.
    #[error("line {line}: {reason}: `{text}`")]
    Syntax {
        /// Line number, from 1.
        line: usize,
        /// The line as written.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An event that overlaps the one before it or lies before it in the
    /// source; the message names both events, their lines and timecodes.
    #[error(
        "line {line}: {message}; the events must follow the film in order without overlapping: one event per shot"
    )]
    Order {
        /// Line of the offending event.
        line: usize,
        /// Which events and how they collide.
        message: String,
    },
    /// An event that starts before the source's first frame.
    #[error(
        "line {line}: event {event} starts at source timecode {source_in}, before the film's first frame \
         ({start}); the list was made for a copy with another start timecode, or for another film"
    )]
    BeforeStart {
        /// Line of the event.
        line: usize,
        /// Its event number.
        event: String,
        /// Its source in timecode.
        source_in: String,
        /// The source's start timecode.
        start: String,
    },
    /// A list without a single video event.
    #[error(
        "the list holds no video events (lines such as `001  AX  V  C  00:00:00:00 00:00:01:00 01:00:00:00 01:00:01:00`)"
    )]
    NoEvents,
}

impl EdlError {
    /// The line the error is about, if it is about one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Syntax { line, .. }
            | Self::Order { line, .. }
            | Self::BeforeStart { line, .. } => Some(*line),
            Self::NoEvents => None,
        }
    }
}

/// One video event of a list. Timecodes are frame counts from 00:00:00:00
/// at the list's rate (drop-frame labels already resolved).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdlEvent {
    /// Line number of the event, from 1.
    pub line: usize,
    /// Event number as written (`001`).
    pub number: String,
    /// Reel (source tape or clip) name.
    pub reel: String,
    /// The clip name of a `* FROM CLIP NAME:` comment after the event, if any.
    pub clip_name: Option<String>,
    /// Source in, as written.
    pub source_in_text: String,
    /// Source out (exclusive), as written.
    pub source_out_text: String,
    /// Source in.
    pub source_in: u64,
    /// Source out, exclusive.
    pub source_out: u64,
    /// Record in.
    pub record_in: u64,
    /// Record out, exclusive.
    pub record_out: u64,
}

/// What [`read_cmx3600`] found in a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edl {
    /// The `TITLE:`, if any.
    pub title: Option<String>,
    /// Whether the (first) `FCM:` line says drop frame.
    pub drop_frame: bool,
    /// The source start that Tincture recorded in a comment, as a frame count.
    pub source_start: Option<u64>,
    /// The video events of non-zero length, in the list's order.
    pub events: Vec<EdlEvent>,
}

impl Edl {
    /// The events as shots of the source whose first frame has timecode
    /// `source_start` (a frame count, see [`TimecodeBase::parse`]); shot `i`
    /// is event `i`.
    ///
    /// # Errors
    /// [`EdlError::NoEvents`] for a list without events,
    /// [`EdlError::BeforeStart`] for an event before `source_start`, and
    /// [`EdlError::Order`] for an event that overlaps the one before it or
    /// lies before it in the source.
    pub fn shots(&self, source_start: u64, rate: f64) -> Result<Vec<Shot>, EdlError> {
        if self.events.is_empty() {
            return Err(EdlError::NoEvents);
        }
        let mut shots: Vec<Shot> = Vec::with_capacity(self.events.len());
        for (i, e) in self.events.iter().enumerate() {
            let start =
                e.source_in
                    .checked_sub(source_start)
                    .ok_or_else(|| EdlError::BeforeStart {
                        line: e.line,
                        event: e.number.clone(),
                        source_in: e.source_in_text.clone(),
                        start: TimecodeBase::for_rate(rate, self.drop_frame).format(source_start),
                    })?;
            let shot = Shot {
                start,
                end: e.source_out - 1 - source_start,
            };
            if let (Some(last), Some(p)) = (shots.last(), i.checked_sub(1).map(|k| &self.events[k]))
                && shot.start <= last.end
            {
                let problem = if shot.start < last.start {
                    "comes before"
                } else {
                    "overlaps"
                };
                return Err(EdlError::Order {
                    line: e.line,
                    message: format!(
                        "event {} (source {}-{}) {problem} event {} (line {}, source {}-{})",
                        e.number,
                        e.source_in_text,
                        e.source_out_text,
                        p.number,
                        p.line,
                        p.source_in_text,
                        p.source_out_text
                    ),
                });
            }
            shots.push(shot);
        }
        Ok(shots)
    }
}

/// `text` without line breaks and other control characters.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// A CMX reel name: letters, digits and `_`, at most 8; `AX` if none is left.
fn reel_name(reel: &str) -> String {
    let name: String = reel
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(8)
        .collect();
    if name.is_empty() { "AX".into() } else { name }
}

/// A CMX3600 list with one cut event per shot.
///
/// - `title`: the list's `TITLE:` and the `* FROM CLIP NAME:` of every event;
///   give the source file's name, by which Resolve finds the clip.
/// - `reel`: the reel name (letters, digits and `_` are kept, at most 8;
///   `AX` if none).
/// - `shots`: frame ranges of the source, in order.
/// - `rate`, `drop_frame`: the timecode base; drop-frame is honoured at
///   29.97 and 59.94 only, where it also writes `FCM: DROP FRAME` and `;`.
/// - `start_timecode`: the source's own start timecode (the timecode of
///   frame 0); 00:00:00:00 when `None` or unreadable at this rate.
///
/// Source timecodes are `start_timecode` plus the shot's frames, out points
/// exclusive; record timecodes run on without gaps from 01:00:00:00. Event
/// numbers have three digits up to 999, more after.
pub fn write_cmx3600(
    title: &str,
    reel: &str,
    shots: &[Shot],
    rate: f64,
    drop_frame: bool,
    start_timecode: Option<&str>,
) -> String {
    let base = TimecodeBase::for_rate(rate, drop_frame);
    let source_start = start_timecode.and_then(|s| base.parse(s)).unwrap_or(0);
    let mut record = base.parse(RECORD_START).unwrap_or(0);
    let title = one_line(title);
    let reel = reel_name(reel);
    let mut out = String::new();
    out.push_str(&format!("TITLE: {title}\n"));
    out.push_str(if base.drop {
        "FCM: DROP FRAME\n"
    } else {
        "FCM: NON-DROP FRAME\n"
    });
    out.push_str(&format!(
        "{SOURCE_START_COMMENT} {}\n",
        base.format(source_start)
    ));
    for (i, shot) in shots.iter().enumerate() {
        let length = shot.frames();
        // Saturating: shots come from Tincture, but a list is no place to panic.
        let source_in = source_start.saturating_add(shot.start);
        out.push_str(&format!(
            "\n{:03}  {reel:<8} {:<5} {:<4} {:>3} {} {} {} {}\n",
            i + 1,
            "V",
            "C",
            "",
            base.format(source_in),
            base.format(source_in.saturating_add(length)),
            base.format(record),
            base.format(record.saturating_add(length)),
        ));
        if !title.is_empty() {
            out.push_str(&format!("* FROM CLIP NAME: {title}\n"));
        }
        record = record.saturating_add(length);
    }
    out
}

/// Reads the shots of a CMX3600 list: every video event, as frames of the
/// source, whose start timecode is the one [`write_cmx3600`] recorded in
/// the list, or 00:00:00:00 for a list from another tool (see
/// [`read_cmx3600`] and [`Edl::shots`] to give another).
///
/// # Errors
/// An [`EdlError`] naming the line: a malformed event or timecode, events
/// that overlap or run backwards, or no video event at all.
pub fn parse_cmx3600(text: &str, rate: f64) -> Result<Vec<Shot>, EdlError> {
    let edl = read_cmx3600(text, rate)?;
    edl.shots(edl.source_start.unwrap_or(0), rate)
}

/// Whether a channel field names video (`V`, `B` for both, `A/V`, `AA/V`...).
fn is_video(channel: &str) -> bool {
    channel.contains('V') || channel == "B"
}

/// Whether `token` looks like a timecode (digits and separators, 4 fields).
fn looks_like_timecode(token: &str) -> bool {
    token.split([':', ';', '.']).count() == 4
        && token
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ':' | ';' | '.'))
}

/// Reads a CMX3600 list at `rate`: title, drop-frame, Tincture's source
/// start and the video events, in order. Comments, `M2` and other
/// non-event lines, audio-only events, black (`BL`) events and zero-length
/// events (the outgoing half of a dissolve or wipe) are passed over.
///
/// # Errors
/// [`EdlError::Syntax`] naming the line, for an event line that cannot be
/// read (fields missing, a timecode that does not exist at this rate, an
/// out point before its in point).
pub fn read_cmx3600(text: &str, rate: f64) -> Result<Edl, EdlError> {
    let mut edl = Edl {
        title: None,
        drop_frame: false,
        source_start: None,
        events: Vec::new(),
    };
    let mut fcm_seen = false;
    let mut drop = false;
    // Whether the clip-name comments that follow belong to the last kept event.
    let mut in_kept_event = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim_start_matches('\u{feff}').trim();
        let syntax = |reason: String| EdlError::Syntax {
            line,
            text: trimmed.to_owned(),
            reason,
        };
        let upper = trimmed.to_ascii_uppercase();
        if let Some(title) = trimmed.strip_prefix("TITLE:") {
            edl.title = Some(title.trim().to_owned());
            continue;
        }
        if let Some(fcm) = upper.strip_prefix("FCM:") {
            drop = match fcm.trim() {
                "DROP FRAME" => true,
                "NON-DROP FRAME" | "NON DROP FRAME" => false,
                other => {
                    return Err(syntax(format!(
                        "`{other}` is not a frame code mode; expected DROP FRAME or NON-DROP FRAME"
                    )));
                }
            };
            if !fcm_seen {
                edl.drop_frame = drop;
                fcm_seen = true;
            }
            continue;
        }
        if let Some(start) = trimmed.strip_prefix(SOURCE_START_COMMENT) {
            let start = start.trim();
            let base = TimecodeBase::for_rate(rate, drop || start.contains(';'));
            edl.source_start =
                Some(base.parse(start).ok_or_else(|| {
                    syntax(format!("`{start}` is not a timecode at {rate:.3} fps"))
                })?);
            continue;
        }
        if let Some(name) = upper
            .starts_with("* FROM CLIP NAME:")
            .then(|| trimmed["* FROM CLIP NAME:".len()..].trim())
        {
            if in_kept_event && let Some(e) = edl.events.last_mut() {
                e.clip_name.get_or_insert_with(|| name.to_owned());
            }
            continue;
        }
        let tokens: Vec<&str> = trimmed.split_whitespace().collect();
        let Some(first) = tokens.first() else {
            continue;
        };
        let numbered = first.chars().all(|c| c.is_ascii_digit());
        let event_like = tokens.len() >= 8
            && tokens[tokens.len() - 4..]
                .iter()
                .all(|t| looks_like_timecode(t));
        if !numbered {
            if event_like && !trimmed.starts_with('*') && !upper.starts_with("M2") {
                return Err(syntax(format!(
                    "this looks like an event, but `{first}` is not an event number"
                )));
            }
            // A comment, an M2 speed change, a split or another note.
            continue;
        }
        in_kept_event = false;
        let event = parse_event(&tokens, line, rate, drop).map_err(syntax)?;
        if let Some(event) = event {
            edl.events.push(event);
            in_kept_event = true;
        }
    }
    Ok(edl)
}

/// One event line's fields; `None` for an event that holds no video frames.
fn parse_event(
    tokens: &[&str],
    line: usize,
    rate: f64,
    drop: bool,
) -> Result<Option<EdlEvent>, String> {
    if tokens.len() < 8 {
        return Err(format!(
            "an event has an event number, a reel, a channel, a transition and four timecodes \
             (source in, source out, record in, record out); this one has {} fields",
            tokens.len()
        ));
    }
    if tokens.len() > 9 {
        return Err(format!(
            "an event has at most 9 fields (with a transition duration); this one has {}",
            tokens.len()
        ));
    }
    let (reel, channel, transition) = (tokens[1], tokens[2], tokens[3]);
    if !matches!(transition.chars().next(), Some('C' | 'D' | 'W' | 'K')) {
        return Err(format!(
            "`{transition}` is not a transition (C cut, D dissolve, Wnnn wipe, K key)"
        ));
    }
    if tokens.len() == 9 && !tokens[4].chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "`{}` is not a transition duration in frames",
            tokens[4]
        ));
    }
    let tc = |text: &str| -> Result<u64, String> {
        TimecodeBase::for_rate(rate, drop || text.contains(';'))
            .parse(text)
            .ok_or_else(|| {
                format!(
                    "`{text}` is not a timecode at {rate:.3} fps (HH:MM:SS:FF, frames 00-{:02})",
                    rate.round().max(1.0) as u64 - 1
                )
            })
    };
    let t = &tokens[tokens.len() - 4..];
    let (source_in, source_out, record_in, record_out) =
        (tc(t[0])?, tc(t[1])?, tc(t[2])?, tc(t[3])?);
    if source_out < source_in {
        return Err(format!(
            "the source out {} is before the source in {}",
            t[1], t[0]
        ));
    }
    if record_out < record_in {
        return Err(format!(
            "the record out {} is before the record in {}",
            t[3], t[2]
        ));
    }
    if !is_video(channel) || reel.eq_ignore_ascii_case("BL") || source_out == source_in {
        return Ok(None);
    }
    Ok(Some(EdlEvent {
        line,
        number: tokens[0].to_owned(),
        reel: reel.to_owned(),
        clip_name: None,
        source_in_text: t[0].to_owned(),
        source_out_text: t[1].to_owned(),
        source_in,
        source_out,
        record_in,
        record_out,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shots(bounds: &[(u64, u64)]) -> Vec<Shot> {
        bounds
            .iter()
            .map(|&(start, end)| Shot { start, end })
            .collect()
    }

    #[test]
    fn writes_the_standard_columns() {
        let text = write_cmx3600(
            "reel1.mkv",
            "AX",
            &shots(&[(0, 47), (48, 59)]),
            24.0,
            false,
            None,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "TITLE: reel1.mkv");
        assert_eq!(lines[1], "FCM: NON-DROP FRAME");
        assert_eq!(
            lines[4],
            "001  AX       V     C        00:00:00:00 00:00:02:00 01:00:00:00 01:00:02:00"
        );
        assert_eq!(lines[5], "* FROM CLIP NAME: reel1.mkv");
        assert_eq!(
            lines[7],
            "002  AX       V     C        00:00:02:00 00:00:02:12 01:00:02:00 01:00:02:12"
        );
        // Source in at column 30, as CMX3600 has it.
        assert_eq!(lines[4].find("00:00:00:00"), Some(29));
    }

    #[test]
    fn round_trips_at_24_25_and_29_97_drop_frame() {
        let cuts = shots(&[
            (0, 9),
            (10, 1799),
            (1800, 1805),
            (1806, 20_000),
            (20_001, 20_001),
        ]);
        for (rate, drop, start) in [
            (24.0, false, None),
            (24000.0 / 1001.0, false, Some("10:00:00:00")),
            (25.0, false, Some("00:59:58:10")),
            (30000.0 / 1001.0, true, Some("01:00:00;00")),
            (30000.0 / 1001.0, true, None),
        ] {
            let text = write_cmx3600("film.mov", "REEL_0001", &cuts, rate, drop, start);
            assert_eq!(
                text.contains("FCM: DROP FRAME"),
                drop,
                "{rate} {drop}: {text}"
            );
            assert_eq!(text.contains(';'), drop);
            assert_eq!(
                parse_cmx3600(&text, rate).expect("reads back"),
                cuts,
                "{text}"
            );
            let edl = read_cmx3600(&text, rate).expect("reads");
            assert_eq!(edl.events[0].reel, "REEL_000");
            assert_eq!(edl.events[3].clip_name.as_deref(), Some("film.mov"));
            // Record timecodes run on from 01:00:00:00 without gaps.
            let base = TimecodeBase::for_rate(rate, drop);
            assert_eq!(
                edl.events[0].record_in,
                base.parse("01:00:00:00").expect("tc")
            );
            for w in edl.events.windows(2) {
                assert_eq!(w[0].record_out, w[1].record_in);
            }
        }
    }

    #[test]
    fn drop_frame_timecodes_skip_labels() {
        let rate = 30000.0 / 1001.0;
        let text = write_cmx3600(
            "x",
            "AX",
            &shots(&[(0, 1799), (1800, 1900)]),
            rate,
            true,
            None,
        );
        assert!(
            text.contains(
                "001  AX       V     C        00:00:00;00 00:01:00;02 01:00:00;00 01:01:00;02"
            ),
            "{text}"
        );
    }

    #[test]
    fn reads_a_list_from_another_tool() {
        // As an editing system writes it: CRLF, comments, an audio event, a
        // dissolve (two lines, the first of zero length), a speed change,
        // black, and drop-frame timecodes with `;` and with `:`.
        let text = "TITLE: Reel 3 conform\r\n\
FCM: DROP FRAME\r\n\
\r\n\
001  BL       V     C        00:00:00:00 00:00:01:00 01:00:00;00 01:00:01;00\r\n\
002  A003C001 V     C        00:00:10;00 00:00:20;00 01:00:01;00 01:00:11;00\r\n\
* FROM CLIP NAME: A003C001.MOV\r\n\
* COMMENT: hero shot\r\n\
003  A003C001 A     C        00:00:10;00 00:00:20;00 01:00:01;00 01:00:11;00\r\n\
004  A003C001 V     C        00:00:20:00 00:00:20:00 01:00:11;00 01:00:11;00\r\n\
004  A003C001 V     D    015 00:00:20:00 00:00:25:00 01:00:11;00 01:00:16;00\r\n\
EFFECTS NAME IS CROSS DISSOLVE\r\n\
* FROM CLIP NAME: A003C001.MOV\r\n\
005  A003C001 AA/V  C        00:01:00;02 00:01:00;12 01:00:16;00 01:00:16;10\r\n\
M2   A003C001       050.0                00:01:00;02\r\n";
        let rate = 30000.0 / 1001.0;
        let edl = read_cmx3600(text, rate).expect("reads");
        assert_eq!(edl.title.as_deref(), Some("Reel 3 conform"));
        assert!(edl.drop_frame);
        assert_eq!(edl.events.len(), 3);
        assert_eq!(edl.events[0].clip_name.as_deref(), Some("A003C001.MOV"));
        assert_eq!(edl.events[1].line, 10);
        assert_eq!(edl.events[2].number, "005");
        // 10 s, 20 s, 25 s, and 00:01:00;02, the first label after the drop: frame 1800.
        let got = parse_cmx3600(text, rate).expect("shots");
        assert_eq!(got, shots(&[(300, 599), (600, 749), (1800, 1809)]));
        // Given the source's start timecode, the shots count from it.
        assert_eq!(
            edl.shots(300, rate).expect("shots")[0],
            Shot { start: 0, end: 299 }
        );
    }

    #[test]
    fn malformed_lines_are_named() {
        let good = "TITLE: t\nFCM: NON-DROP FRAME\n001  AX V C 00:00:00:00 00:00:01:00 01:00:00:00 01:00:01:00\n";
        assert!(parse_cmx3600(good, 24.0).is_ok());
        let cases = [
            (
                "002  AX V C 00:00:01:00 00:00:02:00 01:00:01:00\n",
                "four timecodes",
            ),
            (
                "002  AX V C 00:00:01:00 00:00:02:30 01:00:01:00 01:00:02:00\n",
                "`00:00:02:30` is not a timecode",
            ),
            (
                "002  AX V X 00:00:01:00 00:00:02:00 01:00:01:00 01:00:02:00\n",
                "not a transition",
            ),
            (
                "002  AX V C 00:00:02:00 00:00:01:00 01:00:01:00 01:00:02:00\n",
                "before the source in",
            ),
            (
                "OO2  AX V C 00:00:01:00 00:00:02:00 01:00:01:00 01:00:02:00\n",
                "not an event number",
            ),
            ("FCM: SOMETIMES DROP\n", "frame code mode"),
        ];
        for (bad, words) in cases {
            let err = parse_cmx3600(&format!("{good}{bad}"), 24.0).expect_err(bad);
            assert_eq!(err.line(), Some(4), "{err}");
            let message = err.to_string();
            assert!(message.starts_with("line 4: "), "{message}");
            assert!(message.contains(words), "{message}");
        }
    }

    #[test]
    fn overlapping_and_out_of_order_events_are_refused() {
        let head = "TITLE: t\nFCM: NON-DROP FRAME\n001  AX V C 00:00:01:00 00:00:02:00 01:00:00:00 01:00:01:00\n";
        let overlap =
            format!("{head}002  AX V C 00:00:01:12 00:00:03:00 01:00:01:00 01:00:02:12\n");
        let err = parse_cmx3600(&overlap, 24.0).expect_err("overlap");
        assert_eq!(err.line(), Some(4));
        assert!(
            err.to_string().contains("overlaps event 001 (line 3"),
            "{err}"
        );
        let backwards =
            format!("{head}002  AX V C 00:00:00:00 00:00:00:12 01:00:01:00 01:00:01:12\n");
        let err = parse_cmx3600(&backwards, 24.0).expect_err("backwards");
        assert!(err.to_string().contains("comes before event 001"), "{err}");
        let edl = read_cmx3600(head, 24.0).expect("reads");
        let err = edl.shots(48, 24.0).expect_err("before start");
        assert!(
            err.to_string()
                .contains("before the film's first frame (00:00:02:00)"),
            "{err}"
        );
        assert!(matches!(
            parse_cmx3600("TITLE: empty\n", 24.0),
            Err(EdlError::NoEvents)
        ));
    }
}
