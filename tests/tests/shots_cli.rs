//! `tincture-cli shots` on a generated film with known cuts: five lavfi
//! scenes (one of them only 8 frames, one the mirror image of another)
//! cut together, with a one- and a two-frame flash and a fade in and out.
//! The cuts are found at their exact frames, in 8-bit gray and in 10-bit
//! Y'CbCr; the EDL reads back to the same shots; a broken or foreign EDL is
//! refused with the line named.

use std::path::{Path, PathBuf};
use std::process::Output;

use tincture_tests::{cli, ffmpeg, ok, s};

/// First frames of the five scenes; the film has [`FRAMES`] frames.
const CUTS: [u64; 5] = [0, 30, 38, 58, 88];
const FRAMES: u64 = 104;

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The film: 24 fps, 128x96 gray FFV1, start timecode 10:00:00:00.
/// - 0-29 testsrc2 (moving), flashed bright at frame 10 and frames 20-21;
/// - 30-37 mandelbrot (zooming), 8 frames;
/// - 38-57 smptebars;
/// - 58-87 testsrc (moving), fading in from black over 10 frames and out to black over 10;
/// - 88-103 testsrc2 mirrored: the histogram of 0-15, another picture.
fn make_film(dir: &Path) -> PathBuf {
    let size = "size=128x96:rate=24";
    let graph = format!(
        "testsrc2={size},trim=end_frame=30,\
         lutyuv=y='min(255,val*0.4+160)':enable='eq(n,10)+between(n,20,21)',format=gray,setpts=PTS-STARTPTS[a];\
         mandelbrot={size},trim=end_frame=8,format=gray,setpts=PTS-STARTPTS[b];\
         smptebars={size},trim=end_frame=20,format=gray,setpts=PTS-STARTPTS[c];\
         testsrc={size},trim=end_frame=30,fade=in:0:10,fade=out:20:10,format=gray,setpts=PTS-STARTPTS[d];\
         testsrc2={size},trim=end_frame=16,hflip,format=gray,setpts=PTS-STARTPTS[e];\
         [a][b][c][d][e]concat=n=5:v=1:a=0[out]"
    );
    let out = dir.join("film.mkv");
    ffmpeg(&[
        "-filter_complex",
        &graph,
        "-map",
        "[out]",
        "-c:v",
        "ffv1",
        "-pix_fmt",
        "gray",
        "-metadata:s:v:0",
        "timecode=10:00:00:00",
        s(&out),
    ]);
    out
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("the JSON was written");
    serde_json::from_str(&text).expect("valid JSON")
}

/// The `(start, end)` of every shot in a `shots --json` file.
fn shots_of(json: &serde_json::Value) -> Vec<(u64, u64)> {
    json["shots"]
        .as_array()
        .expect("shots is an array")
        .iter()
        .map(|s| {
            (
                s["start"].as_u64().expect("start"),
                s["end"].as_u64().expect("end"),
            )
        })
        .collect()
}

fn expected() -> Vec<(u64, u64)> {
    CUTS.iter()
        .zip(CUTS[1..].iter().chain([&FRAMES]))
        .map(|(&a, &b)| (a, b - 1))
        .collect()
}

#[test]
fn shots_are_found_written_and_read_back() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let film = make_film(d);
    let edl = d.join("film.edl");
    let json = d.join("film.json");
    let o = cli(&["shots", s(&film), "--edl", s(&edl), "--json", s(&json)]);
    ok(&o);
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(table.contains("5 shots (detected)"), "{table}");
    assert!(
        table.contains("10:00:01:06"),
        "timecodes from the film's: {table}"
    );

    let report = read_json(&json);
    assert_eq!(report["frame_count"], FRAMES);
    assert_eq!(report["rate"].as_f64(), Some(24.0));
    assert_eq!(report["file"], s(&film));
    assert_eq!(shots_of(&report), expected(), "{table}");

    let list = std::fs::read_to_string(&edl).expect("the EDL was written");
    assert!(
        list.starts_with("TITLE: film.mkv\nFCM: NON-DROP FRAME\n"),
        "{list}"
    );
    assert!(
        list.contains(
            "001  AX       V     C        10:00:00:00 10:00:01:06 01:00:00:00 01:00:01:06\n\
             * FROM CLIP NAME: film.mkv\n"
        ),
        "{list}"
    );
    assert!(
        list.contains(
            "005  AX       V     C        10:00:03:16 10:00:04:08 01:00:03:16 01:00:04:08"
        ),
        "{list}"
    );
    assert!(
        std::fs::read_dir(d).expect("list").all(|e| !e
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .contains("partial")),
        "no partial file is left"
    );

    // The EDL, read back, gives the same shots.
    let back = d.join("back.json");
    let o = cli(&["shots", s(&film), "--import", s(&edl), "--json", s(&back)]);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("(imported)"));
    let back = read_json(&back);
    assert_eq!(back["origin"], "imported");
    assert_eq!(shots_of(&back), expected());

    // The same film in 10-bit 4:2:0 gives the same cuts.
    let yuv = d.join("film10.mkv");
    ffmpeg(&[
        "-i",
        s(&film),
        "-c:v",
        "ffv1",
        "-pix_fmt",
        "yuv420p10le",
        s(&yuv),
    ]);
    let json10 = d.join("film10.json");
    ok(&cli(&["shots", s(&yuv), "--json", s(&json10)]));
    assert_eq!(shots_of(&read_json(&json10)), expected());

    // An event past the film's end: exit 3, the file, line and event named.
    let long = list.replace("10:00:04:08 01:00:03:16", "10:00:09:00 01:00:03:16");
    assert_ne!(long, list);
    let bad = d.join("long.edl");
    std::fs::write(&bad, &long).expect("write");
    let o = cli(&["shots", s(&film), "--import", s(&bad)]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let message = text(&o);
    let line = long
        .lines()
        .position(|l| l.starts_with("005 "))
        .expect("event 005")
        + 1;
    for words in [
        s(&bad),
        &format!("line {line}: event 005"),
        "has 104 frames",
        "delete that event",
    ] {
        assert!(message.contains(words), "`{words}` in {message}");
    }

    // A list with gaps (events 1 and 4 only): the gaps become shots, and
    // the project it is stored in loads.
    let gappy: String = list
        .lines()
        .filter(|l| !["002 ", "003 ", "005 "].iter().any(|n| l.starts_with(n)))
        .collect::<Vec<_>>()
        .join("\n");
    let gaps = d.join("gaps.edl");
    std::fs::write(&gaps, gappy).expect("write");
    let project = d.join("film.tincture.json");
    ok(&cli(&["project", "new", s(&film), "-o", s(&project)]));
    let o = cli(&[
        "shots",
        s(&film),
        "--import",
        s(&gaps),
        "--project",
        s(&project),
    ]);
    ok(&o);
    assert!(
        text(&o).contains("2 stretches of the film out"),
        "{}",
        text(&o)
    );
    ok(&cli(&["project", "check", s(&project)]));
    let stored = d.join("stored.json");
    ok(&cli(&[
        "shots",
        s(&film),
        "--project",
        s(&project),
        "--from-project",
        "--json",
        s(&stored),
    ]));
    assert_eq!(
        shots_of(&read_json(&stored)),
        vec![(0, 29), (30, 57), (58, 87), (88, 103)]
    );

    // A malformed line: exit 3, the line named.
    let broken = d.join("broken.edl");
    std::fs::write(
        &broken,
        "TITLE: x\nFCM: NON-DROP FRAME\n\n001  AX  V  C  10:00:00:00 10:00:01:00 01:00:00:00\n",
    )
    .expect("write");
    let o = cli(&["shots", s(&film), "--import", s(&broken)]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("line 4: "), "{}", text(&o));
    assert!(text(&o).contains("four timecodes"), "{}", text(&o));

    // An EDL that cannot be written: exit 4, nothing left behind.
    let nowhere = d.join("missing").join("x.edl");
    let o = cli(&["shots", s(&film), "--import", s(&edl), "--edl", s(&nowhere)]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
}
