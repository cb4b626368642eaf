//! Render farms: `verify`, `join` and `farm plan|render|join`. A film of two
//! shots with sound is rendered whole and in chunks sharing a chunk-state
//! folder; the joined chunks equal the whole render to the bit, video and
//! audio, and the job bundles run step by step, under `openjd run` and on a
//! one-node Slurm cluster on localhost (`scripts/slurm-local.sh`) when those
//! are installed (`scripts/setup.sh --farm`; CI requires them).

use std::path::{Path, PathBuf};
use std::process::Command;

use tincture_tests::{cli, decode_all, ffmpeg, ok, s, skip_or_fail, stderr};

/// A 48-frame 160x120 gray film of two 24-frame shots (a moving test
/// pattern, then colour bars), with a 440 Hz FLAC sound track (or `audio`)
/// and a start timecode.
fn two_shot_film(dir: &Path, name: &str, audio: &str) -> PathBuf {
    two_shot_film_of(dir, name, audio, "160x120")
}

/// [`two_shot_film`] at `size`.
fn two_shot_film_of(dir: &Path, name: &str, audio: &str, size: &str) -> PathBuf {
    let path = dir.join(name);
    let pattern = format!("testsrc2=size={size}:rate=24:duration=1");
    let bars = format!("smptebars=size={size}:rate=24:duration=1");
    ffmpeg(&[
        "-nostdin",
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        &pattern,
        "-f",
        "lavfi",
        "-i",
        &bars,
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000:duration=2",
        "-filter_complex",
        "[0:v][1:v]concat=n=2:v=1:a=0,format=gray[v]",
        "-map",
        "[v]",
        "-map",
        "2:a",
        "-c:v",
        "ffv1",
        "-c:a",
        audio,
        "-metadata:s:v:0",
        "timecode=01:00:00:00",
        s(&path),
    ]);
    path
}

/// A project for `film` with its shots detected and a painted keyframe in
/// each shot (the model off, so no runtime is needed).
fn project(dir: &Path, film: &Path) -> PathBuf {
    project_on(dir, film, [160.0, 120.0])
}

/// [`project`], its strokes painted on a canvas of `canvas` (the film's size).
fn project_on(dir: &Path, film: &Path, canvas: [f64; 2]) -> PathBuf {
    let path = dir.join("p.json");
    let [cw, ch] = canvas;
    ok(&cli(&["project", "new", s(film), "-o", s(&path)]));
    ok(&cli(&["shots", s(film), "--project", s(&path)]));
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    assert_eq!(
        doc["shots"],
        serde_json::json!([{ "start": 0, "end": 23 }, { "start": 24, "end": 47 }]),
        "two shots found"
    );
    doc["defaults"]["model_prior"] = serde_json::json!(false);
    let stroke = |color: &str, x: f64| serde_json::json!({ "points": [[x * cw, 0.25 * ch], [x * cw, 0.75 * ch]], "color": color, "size": 12.0 * cw / 160.0, "canvas": [cw as u32, ch as u32] });
    doc["keyframes"] = serde_json::json!([
        { "frame": 5, "strokes": [stroke("#d22828", 0.25)] },
        { "frame": 40, "strokes": [stroke("#2840d2", 0.625)] },
    ]);
    std::fs::write(&path, serde_json::to_string_pretty(&doc).expect("json")).expect("write");
    path
}

fn render(film: &Path, project: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "render",
        s(film),
        "--project",
        s(project),
        "-o",
        s(out),
        "--no-metrics",
    ];
    args.extend_from_slice(extra);
    ok(&cli(&args));
}

/// A file's first audio stream, decoded to 16-bit samples.
/// Four chunks of the two-shot film: the first shot in two, the second in two.
const CHUNKS: [&str; 4] = ["0-9", "10-23", "24-35", "36-47"];

/// Renders `film` by `project` in the four [`CHUNKS`] to FFV1 in `dir`, in
/// order through one state folder.
fn render_four_chunks(dir: &Path, film: &Path, project: &Path) -> Vec<PathBuf> {
    let state = dir.join("state");
    CHUNKS
        .iter()
        .map(|r| {
            let out = dir.join(format!("chunk-{r}.mkv"));
            render(
                film,
                project,
                &out,
                &["--frames", r, "--chunk-state", s(&state)],
            );
            out
        })
        .collect()
}

fn audio_samples(path: &Path) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-f", "s16le", "-"])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Asserts that two videos' frames are equal, every plane, to the bit.
fn assert_same_frames(a: &Path, b: &Path) {
    let (fa, fb) = (decode_all(a), decode_all(b));
    assert_eq!(
        fa.len(),
        fb.len(),
        "frame count of {} and {}",
        a.display(),
        b.display()
    );
    for (i, (x, y)) in fa.iter().zip(&fb).enumerate() {
        assert_eq!(x.bit_depth, y.bit_depth, "frame {i}: depth");
        assert!(x.y == y.y, "frame {i}: luma differs");
        assert!(x.chroma == y.chroma, "frame {i}: chroma differs");
    }
}

fn ffmpeg_missing(test: &str) -> bool {
    let there = Command::new("ffmpeg").arg("-version").output().is_ok();
    if !there {
        skip_or_fail(test, "the ffmpeg tool is not installed");
    }
    !there
}

#[test]
fn verify_accepts_a_render_and_refuses_a_tampered_one_naming_the_frame() {
    if ffmpeg_missing("verify_accepts_a_render_and_refuses_a_tampered_one_naming_the_frame") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let film = two_shot_film(d, "film.mkv", "flac");
    let p = project(d, &film);
    let out = d.join("out.mkv");
    render(&film, &p, &out, &[]);
    let good = cli(&["verify", s(&out), "--source", s(&film)]);
    ok(&good);
    assert!(
        stderr(&good).contains("luma of all 48 frames (0-47)"),
        "{}",
        stderr(&good)
    );
    // A chunk verifies against its own frames, read from its tags.
    let chunk = d.join("chunk.mkv");
    render(&film, &p, &chunk, &["--frames", "30-39"]);
    ok(&cli(&["verify", s(&chunk), "--source", s(&film)]));

    // A re-encode that lifts frame 20's luma by one code value.
    let tampered = d.join("tampered.mkv");
    ffmpeg(&[
        "-nostdin",
        "-v",
        "error",
        "-i",
        s(&out),
        "-map",
        "0",
        "-vf",
        "lutyuv=y=val+1:enable='eq(n\\,20)'",
        "-c:v",
        "ffv1",
        "-pix_fmt",
        "yuv444p",
        "-c:a",
        "copy",
        s(&tampered),
    ]);
    let bad = cli(&["verify", s(&tampered), "--source", s(&film)]);
    assert_eq!(bad.status.code(), Some(7), "{}", stderr(&bad));
    let message = stderr(&bad);
    assert_eq!(message.lines().count(), 1, "one line: {message}");
    assert!(
        message.contains("tampered.mkv: frame 20: luma differs")
            && message.contains("20 frames before it verified"),
        "{message}"
    );
    // Cut short: the frame the output lacks is named.
    let short = d.join("short.mkv");
    ffmpeg(&[
        "-nostdin",
        "-v",
        "error",
        "-i",
        s(&out),
        "-map",
        "0:v",
        "-frames:v",
        "30",
        "-c",
        "copy",
        s(&short),
    ]);
    let cut = cli(&[
        "verify",
        s(&short),
        "--source",
        s(&film),
        "--frames",
        "0-47",
    ]);
    assert_eq!(cut.status.code(), Some(7));
    assert!(
        stderr(&cut).contains("frame 30: the output ends before it"),
        "{}",
        stderr(&cut)
    );
    // A lossy output is refused with the reason.
    let mov = d.join("bars.mov");
    ffmpeg(&[
        "-nostdin",
        "-v",
        "error",
        "-i",
        s(&film),
        "-map",
        "0:v",
        "-c:v",
        "prores_ks",
        s(&mov),
    ]);
    let lossy = cli(&["verify", s(&mov), "--source", s(&film)]);
    assert_eq!(lossy.status.code(), Some(3));
    assert!(
        stderr(&lossy).contains("a lossy codec"),
        "{}",
        stderr(&lossy)
    );

    // Image sequences: 8-bit PNG (the luma recovered from R'G'B').
    let seq = d.join("frames");
    render(&film, &p, &seq, &["--format", "png", "--frames", "20-27"]);
    ok(&cli(&["verify", s(&seq), "--source", s(&film)]));
    let f = seq.join("frame_000023.png");
    let mut img = image::open(&f).expect("png").into_rgb8();
    for p in img.pixels_mut() {
        p.0 = p.0.map(|v| v.saturating_add(3));
    }
    img.save(&f).expect("write");
    let bad = cli(&["verify", s(&seq), "--source", s(&film)]);
    assert_eq!(bad.status.code(), Some(7));
    assert!(
        stderr(&bad).contains("frame 23: the luma recovered from"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn chunks_joined_without_re_encoding_equal_a_whole_render_video_and_audio() {
    if ffmpeg_missing("chunks_joined_without_re_encoding_equal_a_whole_render_video_and_audio") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let film = two_shot_film(d, "film.mkv", "flac");
    let p = project(d, &film);
    let whole = d.join("whole.mkv");
    render(&film, &p, &whole, &[]);
    let chunks = render_four_chunks(d, &film, &p);
    let joined = d.join("joined.mkv");
    // Given out of order: the join sorts them by the frames they hold.
    let made = cli(&[
        "join",
        s(&chunks[2]),
        s(&chunks[0]),
        s(&chunks[3]),
        s(&chunks[1]),
        "-o",
        s(&joined),
        "--source",
        s(&film),
    ]);
    ok(&made);
    assert_same_frames(&whole, &joined);
    let sound = audio_samples(&joined);
    assert_eq!(sound.len(), 2 * 48_000 * 2, "two seconds of sound, once");
    assert!(
        sound == audio_samples(&whole),
        "the sound is the whole render's"
    );
    assert!(sound == audio_samples(&film), "and the film's");
    let info = tincture_media::probe(&joined).expect("probe");
    assert_eq!(info.video.timecode.as_deref(), Some("01:00:00:00"));
    assert_eq!(info.video.frame_count, 48);
    assert_eq!(
        info.streams.len(),
        1,
        "one sound track beside the video: {:?}",
        info.streams
    );
    ok(&cli(&["verify", s(&joined), "--source", s(&film)]));

    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(d.join("joined.mkv.manifest.json")).expect("the manifest"),
    )
    .expect("json");
    assert_eq!(manifest["frames"], serde_json::json!([0, 47]));
    assert_eq!(manifest["tincture_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["copied_streams"][0]["kind"], "audio");
    let listed = manifest["chunks"].as_array().expect("chunks");
    assert_eq!(listed.len(), 4);
    for (c, r) in listed.iter().zip(CHUNKS) {
        let (a, b) = r.split_once('-').expect("range");
        let a: u64 = a.parse().expect("n");
        let b: u64 = b.parse().expect("n");
        assert_eq!(c["frames"], serde_json::json!([a, b]));
        assert!(c["sha256"].as_str().expect("hash").starts_with("sha256:"));
        assert!(
            c["settings_digest"]
                .as_str()
                .expect("digest")
                .starts_with("sha256:")
        );
        assert_eq!(c["colour_digest"], listed[0]["colour_digest"]);
    }

    // A missing chunk, a short one and one of other settings are refused by name.
    let again = |list: &[&Path]| {
        let mut args = vec!["join"];
        args.extend(list.iter().map(|p| s(p)));
        let out = d.join("again.mkv");
        args.extend(["-o", s(&out), "--source", s(&film), "--overwrite"]);
        let o = cli(&args);
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        assert!(!out.exists(), "nothing is left under the output's name");
        stderr(&o)
    };
    let gap = again(&[&chunks[0], &chunks[2], &chunks[3]]);
    assert!(
        gap.contains("frames 10-23 are missing between") && gap.contains("chunk-24-35.mkv"),
        "{gap}"
    );
    let end = again(&[&chunks[0], &chunks[1], &chunks[2]]);
    assert!(
        end.contains("frames 36-47 are missing after this chunk"),
        "{end}"
    );
    let short = d.join("short.mkv");
    let bytes = std::fs::read(&chunks[3]).expect("read");
    std::fs::write(&short, &bytes[..bytes.len() / 2]).expect("write");
    let cut = again(&[&chunks[0], &chunks[1], &chunks[2], &short]);
    assert!(
        cut.contains("short.mkv: it holds") && cut.contains("cut short"),
        "{cut}"
    );
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
    doc["defaults"]["saturation"] = serde_json::json!(0.5);
    let p2 = d.join("p2.json");
    std::fs::write(&p2, doc.to_string()).expect("write");
    let resat = d.join("resat.mkv");
    render(&film, &p2, &resat, &["--frames", "36-47"]);
    let mixed = again(&[&chunks[0], &chunks[1], &chunks[2], &resat]);
    assert!(
        mixed.contains("resat.mkv: it was rendered with other settings"),
        "{mixed}"
    );
}

#[test]
fn prores_and_sequence_chunks_join_to_the_whole_render() {
    if ffmpeg_missing("prores_and_sequence_chunks_join_to_the_whole_render") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    // PCM sound, which MOV carries.
    let film = two_shot_film(d, "film.mkv", "pcm_s16le");
    let p = project(d, &film);
    let whole = d.join("whole.mov");
    render(&film, &p, &whole, &[]);
    let state = d.join("state");
    let mut args = vec!["join".to_owned()];
    for r in ["0-23", "24-31", "32-47"] {
        let out = d.join(format!("c{r}.mov"));
        render(
            &film,
            &p,
            &out,
            &["--frames", r, "--chunk-state", s(&state)],
        );
        args.push(s(&out).to_owned());
    }
    let joined = d.join("joined.mov");
    args.extend(["-o", s(&joined), "--source", s(&film)].map(str::to_owned));
    ok(&cli(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    assert_same_frames(&whole, &joined);
    // The sound is the film's, all of it, copied once.
    assert!(audio_samples(&joined) == audio_samples(&film));

    let whole_seq = d.join("whole-frames");
    render(&film, &p, &whole_seq, &["--format", "tiff"]);
    let state = d.join("state-seq");
    let mut parts = Vec::new();
    for r in ["0-23", "24-35", "36-47"] {
        let out = d.join(format!("frames-{r}"));
        render(
            &film,
            &p,
            &out,
            &[
                "--format",
                "tiff",
                "--frames",
                r,
                "--chunk-state",
                s(&state),
            ],
        );
        parts.push(out);
    }
    let list = d.join("chunks.txt");
    std::fs::write(
        &list,
        parts
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned() + "\n")
            .collect::<String>(),
    )
    .expect("write");
    let joined_seq = d.join("joined-frames");
    ok(&cli(&[
        "join",
        "--list",
        s(&list),
        "-o",
        s(&joined_seq),
        "--source",
        s(&film),
    ]));
    for i in 0..48 {
        let name = format!("frame_{i:06}.tif");
        assert!(
            std::fs::read(whole_seq.join(&name)).expect("whole")
                == std::fs::read(joined_seq.join(&name)).expect("joined"),
            "{name} is the whole render's"
        );
    }
    ok(&cli(&["verify", s(&joined_seq), "--source", s(&film)]));
    assert!(d.join("joined-frames.manifest.json").exists());
}

/// Runs every step of a bundle as an engine would: each pass's chunks, then the join.
fn run_bundle_steps(bundle: &Path) {
    let template: serde_json::Value = serde_json::from_slice(
        &std::fs::read(bundle.join("job.template.json")).expect("the template"),
    )
    .expect("json");
    for step in template["steps"].as_array().expect("steps") {
        let name = step["name"].as_str().expect("name");
        if !name.starts_with("render-pass-") {
            continue;
        }
        let ids = step["parameterSpace"]["taskParameterDefinitions"][0]["range"]
            .as_array()
            .expect("range");
        for id in ids {
            let id = id.as_u64().expect("int").to_string();
            ok(&cli(&["farm", "render", s(bundle), "--chunk", &id]));
        }
    }
    ok(&cli(&["farm", "join", s(bundle)]));
}

#[test]
fn a_planned_bundle_runs_chunk_by_chunk_to_the_whole_render() {
    if ffmpeg_missing("a_planned_bundle_runs_chunk_by_chunk_to_the_whole_render") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let film = two_shot_film(d, "film.mkv", "flac");
    let p = project(d, &film);
    let whole = d.join("whole.mkv");
    render(&film, &p, &whole, &[]);
    let bundle = d.join("job");
    let planned = cli(&[
        "farm",
        "plan",
        s(&film),
        "--project",
        s(&p),
        "-o",
        s(&bundle),
        "--format",
        "ffv1",
        "--chunks",
        "4",
        "--engine",
        "openjd",
    ]);
    ok(&planned);
    let job: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("job.json")).expect("job"))
            .expect("json");
    let frames: Vec<serde_json::Value> = job["chunks"]
        .as_array()
        .expect("chunks")
        .iter()
        .map(|c| c["frames"].clone())
        .collect();
    // 12 frames a chunk: each 24-frame shot in two pieces that run in order.
    assert_eq!(
        frames,
        vec![
            serde_json::json!([0, 11]),
            serde_json::json!([12, 23]),
            serde_json::json!([24, 35]),
            serde_json::json!([36, 47])
        ]
    );
    assert_eq!(job["chunks"][1]["after"], 0);
    assert_eq!(job["chunks"][3]["after"], 2);
    assert!(bundle.join("project.json").exists());
    let template: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("job.template.json")).expect("template"))
            .expect("json");
    assert_eq!(template["specificationVersion"], "jobtemplate-2023-09");
    let names: Vec<&str> = template["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["render-pass-1", "render-pass-2", "join", "verify"]);
    assert_eq!(
        template["steps"][1]["dependencies"][0]["dependsOn"],
        "render-pass-1"
    );

    run_bundle_steps(&bundle);
    let joined = bundle.join("film.colour.mkv");
    assert_same_frames(&whole, &joined);
    assert!(audio_samples(&joined) == audio_samples(&whole));
    ok(&cli(&["verify", s(&joined), "--source", s(&film)]));
    // Rerunning a chunk that exists and verifies does nothing.
    let before = std::fs::metadata(bundle.join("chunks/chunk-0002.mkv"))
        .and_then(|m| m.modified())
        .expect("chunk 2");
    let rerun = cli(&["farm", "render", s(&bundle), "--chunk", "2"]);
    ok(&rerun);
    assert!(
        stderr(&rerun).contains("already rendered"),
        "{}",
        stderr(&rerun)
    );
    let after = std::fs::metadata(bundle.join("chunks/chunk-0002.mkv"))
        .and_then(|m| m.modified())
        .expect("chunk 2");
    assert_eq!(before, after);

    // Slurm: a job array a pass, each after the one before, and the join after all.
    let slurm = d.join("slurm");
    ok(&cli(&[
        "farm",
        "plan",
        s(&film),
        "--project",
        s(&p),
        "-o",
        s(&slurm),
        "--chunk-frames",
        "12",
        "--engine",
        "slurm",
    ]));
    let submit = std::fs::read_to_string(slurm.join("submit.sh")).expect("submit.sh");
    assert!(submit.contains("--array=0-1 render.sbatch 1"), "{submit}");
    assert!(submit.contains("--dependency=afterok:$after"), "{submit}");
    assert!(
        submit.contains("--dependency=afterok:$all join.sbatch"),
        "{submit}"
    );
    let render_script = std::fs::read_to_string(slurm.join("render.sbatch")).expect("render");
    assert!(render_script.contains("--pass \"$1\" --index \"$SLURM_ARRAY_TASK_ID\""));
}

/// A chunk killed (SIGKILL) in the middle of its render leaves a partial
/// file and no output; run again alone, it resumes from the frames kept,
/// the other chunks are not touched, and the joined film still equals a
/// whole render, video and sound.
#[test]
fn a_killed_chunk_is_rendered_again_alone_and_the_join_is_whole() {
    let test = "a_killed_chunk_is_rendered_again_alone_and_the_join_is_whole";
    if ffmpeg_missing(test) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    // Large enough that a chunk takes seconds, so it can be caught midway.
    let film = two_shot_film_of(d, "film.mkv", "flac", "640x480");
    let p = project_on(d, &film, [640.0, 480.0]);
    let whole = d.join("whole.mkv");
    render(&film, &p, &whole, &[]);
    let bundle = d.join("job");
    ok(&cli(&[
        "farm",
        "plan",
        s(&film),
        "--project",
        s(&p),
        "-o",
        s(&bundle),
        "--format",
        "ffv1",
        "--chunks",
        "2",
        "--engine",
        "openjd",
    ]));
    ok(&cli(&["farm", "render", s(&bundle), "--chunk", "1"]));
    let chunk0 = bundle.join("chunks/chunk-0000.mkv");
    let chunk1 = bundle.join("chunks/chunk-0001.mkv");
    let partial0 = bundle.join("chunks/chunk-0000.tincture-partial.mkv");
    let first_done = std::fs::metadata(&chunk1)
        .and_then(|m| m.modified())
        .expect("chunk 1 rendered");

    // Chunk 0 (the moving pattern), killed once its partial file holds a
    // few frames.
    let mut child = Command::new(tincture_tests::cli_path())
        .args(["farm", "render", s(&bundle), "--chunk", "0"])
        .env("RUST_LOG", "error")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tincture-cli starts");
    let started = std::time::Instant::now();
    loop {
        let size = std::fs::metadata(&partial0).map_or(0, |m| m.len());
        if size > 100_000 {
            break;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "chunk 0 ended before it could be killed (partial {size} bytes)"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "chunk 0 wrote no frames in 120 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(
        !chunk0.exists(),
        "a killed chunk leaves no output, only its partial file"
    );
    assert!(partial0.exists(), "the partial file is kept");

    // The join refuses the job while chunk 0 is missing, naming it.
    let early = cli(&["farm", "join", s(&bundle)]);
    assert!(!early.status.success(), "the join waits for chunk 0");
    assert!(
        stderr(&early).contains("chunk-0000") || stderr(&early).contains("chunk 0"),
        "{}",
        stderr(&early)
    );

    // Run again alone: it resumes from the frames the kill left.
    let again = cli(&["farm", "render", s(&bundle), "--chunk", "0"]);
    ok(&again);
    assert!(
        stderr(&again).contains("resuming from frame"),
        "{}",
        stderr(&again)
    );
    assert!(chunk0.exists() && !partial0.exists());
    assert_eq!(
        std::fs::metadata(&chunk1)
            .and_then(|m| m.modified())
            .expect("chunk 1"),
        first_done,
        "chunk 1 was not touched"
    );
    ok(&cli(&["farm", "join", s(&bundle)]));
    let joined = bundle.join("film.colour.mkv");
    assert_same_frames(&whole, &joined);
    assert!(audio_samples(&joined) == audio_samples(&whole));
}

/// The `openjd` command: beside the checkout (`.venv-openjd`) or on the PATH.
fn openjd() -> Option<PathBuf> {
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-openjd/bin/openjd");
    if local.exists() {
        return Some(local);
    }
    Command::new("openjd")
        .arg("--help")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| PathBuf::from("openjd"))
}

#[test]
fn openjd_runs_a_planned_job_of_two_shots_in_four_chunks() {
    let test = "openjd_runs_a_planned_job_of_two_shots_in_four_chunks";
    if ffmpeg_missing(test) {
        return;
    }
    let Some(openjd) = openjd() else {
        skip_or_fail(test, "openjd (PyPI openjd-cli) is not installed");
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let film = two_shot_film(d, "film.mkv", "flac");
    let p = project(d, &film);
    let whole = d.join("whole.mkv");
    render(&film, &p, &whole, &[]);
    let bundle = d.join("job");
    ok(&cli(&[
        "farm",
        "plan",
        s(&film),
        "--project",
        s(&p),
        "-o",
        s(&bundle),
        "--chunks",
        "4",
        "--engine",
        "openjd",
    ]));
    let template = bundle.join("job.template.json");
    // The verify step with everything it depends on: both render passes
    // (the second after the first), the join, then the verify.
    let run = Command::new(&openjd)
        .arg("run")
        .arg(&template)
        .args(["--step", "verify", "--run-dependencies"])
        .output()
        .expect("openjd run");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "openjd run: {log}");
    assert!(
        log.contains("luma of all 48 frames (0-47)"),
        "verify ran: {log}"
    );
    let joined = bundle.join("film.colour.mkv");
    assert_same_frames(&whole, &joined);
    assert!(audio_samples(&joined) == audio_samples(&whole));
}

/// Where `name` is: on the PATH, or in /usr/sbin or /sbin (slurmctld, slurmd
/// and munged live there, which a user's PATH may lack).
fn installed(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A one-node Slurm cluster on localhost (`scripts/slurm-local.sh`) with
/// everything in one folder; its daemons are stopped when it is dropped,
/// whether the test passed or panicked.
struct LocalSlurm {
    dir: PathBuf,
    script: PathBuf,
}

impl LocalSlurm {
    /// Starts the cluster in `dir` and waits for its node to be idle.
    fn start(dir: &Path) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/slurm-local.sh");
        let cluster = Self {
            dir: dir.to_owned(),
            script,
        };
        let out = Command::new("bash")
            .arg(&cluster.script)
            .arg("start")
            .arg(dir)
            .env("PATH", cluster.path())
            .output()
            .expect("run scripts/slurm-local.sh");
        assert!(
            out.status.success(),
            "scripts/slurm-local.sh start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    /// The PATH with the daemons' folders at its end.
    fn path(&self) -> std::ffi::OsString {
        let mut dirs: Vec<PathBuf> =
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect();
        dirs.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
        std::env::join_paths(dirs).expect("PATH")
    }

    /// `program` as a client of this cluster (`SLURM_CONF`).
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.dir.join("slurm.conf"))
            .env("PATH", self.path());
        c
    }

    /// The final state of each finished job, as the controller logged it
    /// (`JobCompType=jobcomp/filetxt`): one line a job or array task.
    fn finished(&self) -> String {
        std::fs::read_to_string(self.dir.join("log/jobcomp.txt")).unwrap_or_default()
    }

    /// The tail of the controller's log, for a failure's message.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("log/slurmctld.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for LocalSlurm {
    fn drop(&mut self) {
        let stopped = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .env("PATH", self.path())
            .status();
        if !stopped.as_ref().is_ok_and(|s| s.success()) {
            eprintln!(
                "scripts/slurm-local.sh stop {} failed: {stopped:?}",
                self.dir.display()
            );
        }
    }
}

/// Every log file in `dir`, named, for a failure's message.
fn logs_of(dir: &Path) -> String {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .map(|p| {
            format!(
                "--- {}\n{}",
                p.display(),
                std::fs::read_to_string(p).unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn slurm_runs_a_planned_job_of_two_shots_in_four_chunks() {
    let test = "slurm_runs_a_planned_job_of_two_shots_in_four_chunks";
    if ffmpeg_missing(test) {
        return;
    }
    let missing: Vec<&str> = [
        "munged",
        "mungekey",
        "slurmctld",
        "slurmd",
        "sbatch",
        "sinfo",
    ]
    .into_iter()
    .filter(|t| installed(t).is_none())
    .collect();
    if !missing.is_empty() {
        skip_or_fail(
            test,
            format!(
                "{} not installed (Debian's slurm-wlm and munge; scripts/setup.sh --farm)",
                missing.join(", ")
            ),
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let film = two_shot_film(d, "film.mkv", "flac");
    let p = project(d, &film);
    let whole = d.join("whole.mkv");
    render(&film, &p, &whole, &[]);
    // A space in the bundle's path: sbatch once read the rest of an
    // `#SBATCH --output=` line as a second directive and refused the job.
    let bundle = d.join("slurm job");
    ok(&cli(&[
        "farm",
        "plan",
        s(&film),
        "--project",
        s(&p),
        "-o",
        s(&bundle),
        "--format",
        "ffv1",
        "--chunks",
        "4",
        "--engine",
        "slurm",
    ]));
    // Two passes of two chunks: each shot's second half runs after its first.
    let job: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("job.json")).expect("job"))
            .expect("json");
    let passes: Vec<u64> = job["chunks"]
        .as_array()
        .expect("chunks")
        .iter()
        .map(|c| c["pass"].as_u64().expect("pass"))
        .collect();
    assert_eq!(passes, [1, 2, 1, 2]);

    let cluster = LocalSlurm::start(&d.join("slurm"));
    // submit.sh submits a job array a pass and the join after them, and
    // prints the join's job id.
    let submitted = cluster
        .command(bundle.join("submit.sh"))
        .current_dir(d)
        .output()
        .expect("run submit.sh");
    let said = String::from_utf8_lossy(&submitted.stdout).into_owned();
    assert!(
        submitted.status.success(),
        "submit.sh: {said}{}",
        String::from_utf8_lossy(&submitted.stderr)
    );
    let join_id: u64 = said
        .trim()
        .split(';')
        .next()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("submit.sh prints the join's job id: {said:?}"));

    // Wait for the join to finish, whatever its end: a failed chunk cancels
    // it (the cluster runs with kill_invalid_depend).
    let limit = std::time::Duration::from_secs(300);
    let started = std::time::Instant::now();
    let join_line = loop {
        let done = cluster.finished();
        if let Some(line) = done
            .lines()
            .find(|l| l.starts_with(&format!("JobId={join_id} ")))
        {
            break line.to_owned();
        }
        if started.elapsed() > limit {
            let queue = cluster
                .command("squeue")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            panic!(
                "the join (job {join_id}) has not finished after {limit:?}\nsqueue:\n{queue}\nfinished:\n{done}\n{}\nslurmctld.log:\n{}",
                logs_of(&bundle.join("logs")),
                cluster.log_tail()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    let done = cluster.finished();
    let failure = || {
        format!(
            "finished jobs:\n{done}\n{}\nslurmctld.log:\n{}",
            logs_of(&bundle.join("logs")),
            cluster.log_tail()
        )
    };
    assert!(
        join_line.contains("JobState=COMPLETED"),
        "the join: {join_line}\n{}",
        failure()
    );
    // Four render tasks (two arrays of two) and the join, all completed.
    let jobs: Vec<&str> = done.lines().filter(|l| l.starts_with("JobId=")).collect();
    assert_eq!(jobs.len(), 5, "{}", failure());
    assert!(
        jobs.iter().all(|l| l.contains("JobState=COMPLETED")),
        "{}",
        failure()
    );
    assert_eq!(
        jobs.iter()
            .filter(|l| l.contains("Name=tincture-render"))
            .count(),
        4,
        "{}",
        failure()
    );
    let join_log = std::fs::read_to_string(bundle.join(format!("logs/join-{join_id}.log")))
        .unwrap_or_else(|e| panic!("the join's log: {e}\n{}", failure()));
    assert!(
        join_log.contains("luma of all 48 frames (0-47)"),
        "the join step verified the output: {join_log}"
    );
    let joined = bundle.join("film.colour.mkv");
    assert_same_frames(&whole, &joined);
    assert!(audio_samples(&joined) == audio_samples(&whole));
    drop(cluster);
    for pid in ["run/slurmctld.pid", "run/slurmd.pid", "munge/munged.pid"] {
        assert!(!d.join("slurm").join(pid).exists(), "{pid} was stopped");
    }
}

/// With the colour memory on (it needs the model's features), a chunk
/// cannot load the state the chunk before it left, as that holds no memory:
/// it replays from its keyframe, and the chunks still join to the whole
/// render, frame for frame.
#[test]
fn chunks_with_the_colour_memory_join_to_the_whole_render() {
    if ffmpeg_missing("chunks_with_the_colour_memory_join_to_the_whole_render") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let film = two_shot_film(d, "film.mkv", "flac");
    let p = project(d, &film);
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&p).expect("project")).expect("json");
    doc["defaults"]["model_prior"] = serde_json::json!(true);
    doc["defaults"]["colour_memory"] = serde_json::json!(true);
    std::fs::write(&p, doc.to_string()).expect("project written");
    let whole = d.join("whole.mkv");
    render(&film, &p, &whole, &[]);
    let chunks = render_four_chunks(d, &film, &p);
    let joined = d.join("joined.mkv");
    let mut args = vec!["join"];
    args.extend(chunks.iter().map(|c| s(c)));
    args.extend(["-o", s(&joined), "--source", s(&film)]);
    ok(&cli(&args));
    assert_same_frames(&whole, &joined);
}
