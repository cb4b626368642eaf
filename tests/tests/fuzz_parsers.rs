//! Property-based fuzzing of every parser that reads a file a user may be
//! handed: SMPTE timecodes, CMX3600 edit decision lists, project JSON,
//! colour-hint JSON and model manifests.
//!
//! Each parser gets arbitrary text (or bytes) and mutations of a valid
//! document: random JSON values spliced in at random places, nasty
//! fragments inserted into the text. The property is the same everywhere:
//! no panic, and each case ends in a value or in one clear error (one line,
//! naming the file where there is one). 10,000 cases a test.

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};
use tincture_core::edl::{parse_cmx3600, read_cmx3600, write_cmx3600};
use tincture_core::project::{Keyframe, Project, ShotEntry, SourceRef, Stroke};
use tincture_core::shots::Shot;
use tincture_core::timecode::{TimecodeBase, frame_timecode, offset_timecode};
use tincture_infer::{Hints, Manifest};

const CASES: u32 = 10_000;

fn config() -> ProptestConfig {
    ProptestConfig {
        // Failures are reported with the shrunk case; nothing is written
        // into the source tree.
        failure_persistence: None,
        ..ProptestConfig::with_cases(CASES)
    }
}

/// An error message is one clear line.
fn assert_one_line(msg: &str) {
    assert!(!msg.trim().is_empty(), "an empty error");
    assert!(!msg.contains('\n'), "an error of several lines: {msg}");
}

/// Frame rates real and absurd.
fn rate() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(24.0),
        Just(25.0),
        Just(24000.0 / 1001.0),
        Just(30000.0 / 1001.0),
        Just(60000.0 / 1001.0),
        Just(0.0),
        Just(-1.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(1e300),
        any::<f64>(),
    ]
}

/// Fragments a damaged or hostile text is made of.
fn nasty_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("99999999999999999999".to_owned()),
        Just("18446744073709551615".to_owned()),
        Just("-1".to_owned()),
        Just(":".to_owned()),
        Just(";".to_owned()),
        Just(".".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("\u{feff}".to_owned()),
        Just("é".to_owned()),
        Just("00:00:00:00".to_owned()),
        Just("99:59:59;29".to_owned()),
        Just("001  AX       V     C        ".to_owned()),
        Just("FCM: DROP FRAME\n".to_owned()),
        Just("* TINCTURE SOURCE START: ".to_owned()),
        Just("* FROM CLIP NAME: ".to_owned()),
        Just("M2   AX       025.0                00:00:00:00".to_owned()),
        Just("{".to_owned()),
        Just("]".to_owned()),
        Just("\"".to_owned()),
        Just("1e999".to_owned()),
        Just("null".to_owned()),
        ".{0,6}",
    ]
}

/// `text` with `edits` applied: each inserts or replaces at a position.
fn mutate_text(text: &str, edits: &[(Index, Index, bool, String)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for (at, len, replace, piece) in edits {
        let at = if chars.is_empty() {
            0
        } else {
            at.index(chars.len() + 1)
        };
        let end = if *replace {
            (at + len.index(12)).min(chars.len())
        } else {
            at
        };
        chars.splice(at..end, piece.chars());
    }
    chars.into_iter().collect()
}

fn text_edits() -> impl Strategy<Value = Vec<(Index, Index, bool, String)>> {
    prop::collection::vec(
        (
            any::<Index>(),
            any::<Index>(),
            any::<bool>(),
            nasty_fragment(),
        ),
        1..8,
    )
}

/// Any JSON value, small, with the numbers and strings files get wrong.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON numbers are finite", |f| {
            serde_json::Number::from_f64(f).map(Value::Number)
        }),
        Just(json!(u64::MAX)),
        Just(json!(u32::MAX)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(1e300)),
        Just(json!(-1e300)),
        Just(json!("#ff00ff")),
        Just(json!("../../../etc/m.onnx")),
        Just(json!("/opt/models/m.json")),
        Just(json!("builtin")),
        Just(json!("")),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{0,10}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// The JSON pointers of every value in `doc`.
fn pointers(doc: &Value) -> Vec<String> {
    fn walk(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, format!("{at}/{i}"), out);
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    let key = k.replace('~', "~0").replace('/', "~1");
                    walk(x, format!("{at}/{key}"), out);
                }
            }
            _ => {}
        }
        out.push(at);
    }
    let mut out = Vec::new();
    walk(doc, String::new(), &mut out);
    out
}

/// One change to a JSON document: at a value chosen by index, replace it,
/// or add a key (one the schema knows, or any) to the object around it.
#[derive(Clone, Debug)]
struct Splice {
    at: Index,
    key: Option<String>,
    value: Value,
}

fn splices(keys: &'static [&'static str]) -> impl Strategy<Value = Vec<Splice>> {
    let key = prop_oneof![
        3 => Just(None),
        2 => prop::sample::select(keys).prop_map(|k| Some(k.to_owned())),
        1 => "[a-z]{1,6}".prop_map(Some),
    ];
    prop::collection::vec(
        (any::<Index>(), key, json_value()).prop_map(|(at, key, value)| Splice { at, key, value }),
        1..5,
    )
}

fn apply(doc: &mut Value, splices: &[Splice]) {
    for s in splices {
        let all = pointers(doc);
        let at = &all[s.at.index(all.len())];
        let Some(target) = doc.pointer_mut(at) else {
            continue;
        };
        match (&s.key, target) {
            (Some(k), Value::Object(o)) => {
                o.insert(k.clone(), s.value.clone());
            }
            (_, t) => *t = s.value.clone(),
        }
    }
}

// ---------------------------------------------------------------------------
// Timecodes

proptest! {
    #![proptest_config(config())]

    #[test]
    fn timecode_any_text(text in any::<String>(), rate in rate(), drop: bool, offset: u64) {
        let base = TimecodeBase::for_rate(rate, drop);
        if let Some(n) = base.parse(&text) {
            prop_assert_eq!(base.format(n).len(), 11);
        }
        let _ = offset_timecode(&text, offset, rate);
        let _ = frame_timecode(offset, rate, Some(&text));
    }

    #[test]
    fn timecode_shaped_text(
        text in "[0-9]{1,24}[:;.][0-9]{1,24}[:;.][0-9]{1,24}[:;.][0-9]{1,24}",
        rate in rate(),
        drop: bool,
        offset: u64,
    ) {
        let base = TimecodeBase::for_rate(rate, drop);
        let _ = base.parse(&text).map(|n| base.format(n));
        let _ = offset_timecode(&text, offset, rate);
    }

    #[test]
    fn timecode_round_trips_within_a_day(n in 0u64..(24 * 3600 * 24), drop: bool) {
        for rate in [24.0, 25.0, 30000.0 / 1001.0] {
            let base = TimecodeBase::for_rate(rate, drop);
            let day = u64::from(base.fps) * 24 * 3600 - if base.drop { 2 * 9 * 24 * 6 } else { 0 };
            let n = n % day;
            prop_assert_eq!(base.parse(&base.format(n)), Some(n));
        }
    }
}

// ---------------------------------------------------------------------------
// Edit decision lists

fn valid_edl() -> String {
    let shots = [
        Shot { start: 0, end: 47 },
        Shot { start: 48, end: 59 },
        Shot {
            start: 60,
            end: 200,
        },
    ];
    write_cmx3600("reel1.mkv", "AX", &shots, 24.0, false, Some("10:00:00:00"))
}

fn check_edl(text: &str, rate: f64, start: u64) -> Result<(), TestCaseError> {
    match read_cmx3600(text, rate) {
        Ok(edl) => match edl.shots(start, rate) {
            Ok(shots) => {
                for s in &shots {
                    prop_assert!(s.start <= s.end);
                }
            }
            Err(e) => assert_one_line(&e.to_string()),
        },
        Err(e) => {
            let msg = e.to_string();
            assert_one_line(&msg);
            prop_assert!(msg.starts_with("line "), "{}", msg);
        }
    }
    if let Err(e) = parse_cmx3600(text, rate) {
        assert_one_line(&e.to_string());
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn edl_any_text(text in any::<String>(), rate in rate(), start: u64) {
        check_edl(&text, rate, start)?;
    }

    #[test]
    fn edl_mutated(edits in text_edits(), rate in rate(), start in prop_oneof![Just(0u64), any::<u64>()]) {
        let text = mutate_text(&valid_edl(), &edits);
        check_edl(&text, rate, start)?;
    }
}

// ---------------------------------------------------------------------------
// Project files

fn valid_project() -> Value {
    let mut p = Project::new(SourceRef {
        path: "reel1.mkv".into(),
        size: 1000,
        fingerprint: "ab12".into(),
        frame_count: 300,
        width: 640,
        height: 480,
        rate: [24, 1],
    });
    p.shots = vec![
        ShotEntry {
            start: 0,
            end: 99,
            settings: None,
        },
        ShotEntry {
            start: 100,
            end: 299,
            settings: Some(Default::default()),
        },
    ];
    p.upsert_keyframe(Keyframe {
        frame: 10,
        strokes: vec![Stroke {
            points: vec![[1.0, 2.0], [30.0, 40.0]],
            color: "#a0b0c0".into(),
            size: 8.0,
            canvas: [640, 480],
        }],
        reference: None,
    });
    p.palette.push("#102030".into());
    p.validate().expect("the seed project is valid");
    serde_json::to_value(&p).expect("to JSON")
}

const PROJECT_KEYS: &[&str] = &[
    "version",
    "source",
    "path",
    "fingerprint",
    "frame_count",
    "width",
    "height",
    "rate",
    "shots",
    "start",
    "end",
    "settings",
    "keyframes",
    "frame",
    "strokes",
    "points",
    "color",
    "size",
    "canvas",
    "reference",
    "kind",
    "references",
    "weight",
    "defaults",
    "saturation",
    "model",
    "render_short_side",
    "palette",
];

fn check_project(bytes: &[u8]) {
    let path = Path::new("/nonexistent/fuzzed-reel.json");
    match Project::parse(bytes, path) {
        Ok(p) => {
            // What loads is valid and saves again.
            assert!(p.validate().is_ok());
            assert!(serde_json::to_vec(&p).is_ok());
        }
        Err(e) => {
            let msg = e.to_string();
            assert_one_line(&msg);
            assert!(msg.contains("fuzzed-reel.json"), "names the file: {msg}");
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn project_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_project(&bytes);
    }

    #[test]
    fn project_spliced_json(splices in splices(PROJECT_KEYS)) {
        let mut doc = valid_project();
        apply(&mut doc, &splices);
        check_project(&serde_json::to_vec(&doc).expect("JSON"));
    }

    #[test]
    fn project_mutated_text(edits in text_edits()) {
        let text = serde_json::to_string_pretty(&valid_project()).expect("JSON");
        check_project(mutate_text(&text, &edits).as_bytes());
    }
}

// ---------------------------------------------------------------------------
// Colour hints

fn valid_hints() -> Value {
    json!({"points": [
        {"x": 12, "y": 8, "color": "#b04030", "size": 3},
        {"x": 40.5, "y": 20, "ab": [20.0, -12.5]}
    ]})
}

fn check_hints(text: &str, w: usize, h: usize) {
    match Hints::parse(text, w, h) {
        Ok(hints) => {
            for p in &hints.points {
                assert!(p.x >= 0.0 && (p.x as usize) < w && p.y >= 0.0 && (p.y as usize) < h);
                assert!(p.size.is_finite() && p.ab.iter().all(|v| v.is_finite()));
            }
        }
        Err(e) => assert_one_line(&e),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn hints_any_text(text in any::<String>(), w in 0usize..5000, h in 0usize..5000) {
        check_hints(&text, w, h);
    }

    #[test]
    fn hints_spliced_json(
        splices in splices(&["points", "x", "y", "color", "ab", "size"]),
        w in prop_oneof![Just(64usize), 0usize..100_000],
        h in prop_oneof![Just(48usize), 0usize..100_000],
    ) {
        let mut doc = valid_hints();
        apply(&mut doc, &splices);
        check_hints(&doc.to_string(), w, h);
    }
}

// ---------------------------------------------------------------------------
// Model manifests

fn valid_manifest() -> Value {
    json!({
        "schema": 1, "name": "fuzz", "version": "1", "adapter": "tincture", "file": "m.onnx",
        "inputs": [
            {"name": "l", "shape": [null, 1, null, null]},
            {"name": "ab_hint", "shape": [null, 2, null, null]},
            {"name": "hint_mask", "shape": [null, 1, null, null]}
        ],
        "outputs": [{"name": "ab", "shape": [null, 2, null, null]}],
        "size_multiple": 32, "render_short_side": 256
    })
}

fn check_manifest(text: &str) {
    let path = Path::new("/nonexistent/fuzzed-model.json");
    match Manifest::parse(text, path) {
        Ok(m) => {
            assert!(m.size_multiple.is_none_or(|s| (1..=16_384).contains(&s)));
            assert!(
                m.render_short_side
                    .is_none_or(|s| (1..=16_384).contains(&s))
            );
        }
        Err(e) => {
            let msg = e.to_string();
            assert_one_line(&msg);
            assert!(msg.contains("fuzzed-model.json"), "names the file: {msg}");
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn manifest_any_text(text in any::<String>()) {
        check_manifest(&text);
    }

    #[test]
    fn manifest_spliced_json(splices in splices(&[
        "schema", "name", "adapter", "file", "inputs", "outputs", "shape",
        "size_multiple", "render_short_side", "normalisation", "sha256",
    ])) {
        let mut doc = valid_manifest();
        apply(&mut doc, &splices);
        check_manifest(&doc.to_string());
    }
}

/// The seeds are what the mutations start from: each must be accepted, or
/// the spliced cases would test nothing but the first error.
#[test]
fn the_seeds_are_valid() {
    check_edl(&valid_edl(), 24.0, 0).expect("edl");
    assert_eq!(parse_cmx3600(&valid_edl(), 24.0).expect("edl").len(), 3);
    let project = serde_json::to_vec(&valid_project()).expect("JSON");
    Project::parse(&project, Path::new("seed.json")).expect("project");
    Hints::parse(&valid_hints().to_string(), 64, 48).expect("hints");
    Manifest::parse(&valid_manifest().to_string(), Path::new("m.json")).expect("manifest");
}
