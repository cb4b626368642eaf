//! Background exports (`ExportJob`): progress and ETA over the channel,
//! prompt cancel, resuming a stopped export (the join equals an
//! uninterrupted render: luma bit-exact, frame count, audio neither doubled
//! nor cut), starting over when the settings differ, and a full disk that
//! keeps a valid partial file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tincture_core::project::{Keyframe, KeyframeReference};
use tincture_engine::export::{ExportEvent, ExportJob, ExportSpec, ProjectExport};
use tincture_engine::render::{
    Outcome, OutputFormat, RenderRequest, Start, partial_path, resume_record_path,
};
use tincture_media::{ImageFormat, VideoCodec, VideoReader};
use tincture_tests::{
    SmallDisk, assert_luma_identical, decode_all, ffmpeg, ffprobe, frame_hashes, make_reference, s,
};

/// A gray FFV1 film with PCM audio in Matroska.
fn film(dir: &Path, size: &str, seconds: u32) -> PathBuf {
    let path = dir.join("film.mkv");
    let t = seconds.to_string();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size={size}:rate=25,format=gray"),
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        &t,
        "-c:v",
        "ffv1",
        "-c:a",
        "pcm_s16le",
        s(&path),
    ]);
    path
}

fn request(input: &Path, output: &Path, reference: &Path, format: OutputFormat) -> RenderRequest {
    let matrix = VideoReader::open(input).expect("open").matrix();
    RenderRequest {
        input: input.to_owned(),
        output: output.to_owned(),
        format,
        frames: None,
        colorizer: Some(Box::new(
            tincture_engine::reference::reference_colorizer(reference, matrix).expect("reference"),
        )),
        overwrite: false,
        threads: 2,
        metrics: None,
        also_reads: vec![reference.to_owned()],
    }
}

const FFV1: OutputFormat = OutputFormat::Video(VideoCodec::Ffv1);

/// Events of a job until its last one, cancelling once `cancel_at` frames are done.
fn run(job: &ExportJob, cancel_at: Option<u64>) -> (Vec<ExportEvent>, Option<Duration>) {
    let mut events = Vec::new();
    let mut cancelled_at: Option<Instant> = None;
    loop {
        let event = job
            .events()
            .recv_timeout(Duration::from_secs(300))
            .expect("the export reports within 5 minutes");
        if let (ExportEvent::Progress(p), Some(n)) = (&event, cancel_at)
            && p.done >= n
            && cancelled_at.is_none()
        {
            job.cancel();
            cancelled_at = Some(Instant::now());
        }
        let last = matches!(event, ExportEvent::Finished(_) | ExportEvent::Failed(_));
        events.push(event);
        if last {
            return (events, cancelled_at.map(|t| t.elapsed()));
        }
    }
}

fn started(events: &[ExportEvent]) -> Start {
    events
        .iter()
        .find_map(|e| match e {
            ExportEvent::Started(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a Started event")
}

fn outcome(events: &[ExportEvent]) -> Outcome {
    match events.last() {
        Some(ExportEvent::Finished(o)) => o.clone(),
        other => panic!("the export did not finish: {other:?}"),
    }
}

/// The totals of the progress events, and the frames they counted.
fn progress(events: &[ExportEvent]) -> (Vec<u64>, u64) {
    let mut totals = Vec::new();
    let mut done = 0;
    for e in events {
        if let ExportEvent::Progress(p) = e {
            totals.push(p.total);
            done = p.done;
        }
    }
    totals.dedup();
    (totals, done)
}

/// Audio packets (pts, size) of a file's first audio stream.
fn audio_packets(path: &Path) -> Vec<String> {
    ffprobe(&[
        "-select_streams",
        "a:0",
        "-show_entries",
        "packet=pts,size",
        "-of",
        "csv=p=0",
        s(path),
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

#[test]
fn cancel_then_export_again_resumes_and_equals_an_uninterrupted_render() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let src = film(d, "320x240", 4);
    let reference = make_reference(&d.join("ref.png"));
    let out = d.join("out.mkv");

    let t = Instant::now();
    let job = ExportJob::spawn(request(&src, &out, &reference, FFV1)).expect("spawn");
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "spawn must not block"
    );
    let (events, cancel_latency) = run(&job, Some(30));
    assert_eq!(started(&events), Start::Fresh);
    let eta = events.iter().find_map(|e| match e {
        ExportEvent::Progress(p) if p.done >= 5 => Some(p.eta),
        _ => None,
    });
    assert!(matches!(eta, Some(Some(_))), "progress carries an ETA");
    let Outcome::Cancelled {
        partial,
        frames: kept,
        resume_from,
    } = outcome(&events)
    else {
        panic!("cancelled");
    };
    assert!(
        cancel_latency.expect("cancelled") < Duration::from_secs(5),
        "cancel returns promptly: {cancel_latency:?}"
    );
    assert!((30..100).contains(&kept), "{kept}");
    assert_eq!(resume_from, kept);
    assert_eq!(partial, partial_path(&out));
    assert!(resume_record_path(&out).exists());
    assert!(!out.exists());

    // The same settings again: only the remaining frames are rendered.
    let job = ExportJob::spawn(request(&src, &out, &reference, FFV1)).expect("spawn");
    let (events, _) = run(&job, None);
    assert_eq!(started(&events), Start::Resumed { from: kept, kept });
    let (totals, done) = progress(&events);
    assert_eq!(totals, vec![100 - kept], "only the rest is rendered");
    assert_eq!(done, 100 - kept);
    assert_eq!(
        outcome(&events),
        Outcome::Completed {
            path: out.clone(),
            frames: 100
        }
    );
    assert!(!partial.exists() && !resume_record_path(&out).exists());
    assert!(!d.join("out.tincture-resume.mkv").exists());

    // Equal to an uninterrupted render: video frame for frame, audio packet for packet.
    assert_luma_identical(&src, &out);
    let whole = d.join("whole.mkv");
    let job = ExportJob::spawn(request(&src, &whole, &reference, FFV1)).expect("spawn");
    let (events, _) = run(&job, None);
    assert!(matches!(
        outcome(&events),
        Outcome::Completed { frames: 100, .. }
    ));
    assert_eq!(frame_hashes(&out), frame_hashes(&whole));
    let (a, b) = (audio_packets(&out), audio_packets(&whole));
    assert!(!a.is_empty());
    assert_eq!(a, b, "audio survives the join, neither doubled nor cut");
}

#[test]
fn resume_with_other_settings_starts_over() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let src = film(d, "320x240", 3);
    let reference = make_reference(&d.join("ref.png"));
    let out = d.join("out.mkv");
    let job = ExportJob::spawn(request(&src, &out, &reference, FFV1)).expect("spawn");
    let (events, _) = run(&job, Some(10));
    assert!(matches!(outcome(&events), Outcome::Cancelled { .. }));

    // Another reference photo: other colour settings.
    let other = d.join("other.png");
    image::RgbImage::from_fn(200, 150, |x, y| {
        image::Rgb([(x % 256) as u8, 40, (y % 256) as u8])
    })
    .save(&other)
    .expect("png");
    let job = ExportJob::spawn(request(&src, &out, &other, FFV1)).expect("spawn");
    let (events, _) = run(&job, None);
    let Start::StartedOver { reason } = started(&events) else {
        panic!("expected a start over: {:?}", started(&events));
    };
    assert!(reason.contains("colour settings"), "{reason}");
    assert_eq!(progress(&events), (vec![75], 75));
    assert!(matches!(
        outcome(&events),
        Outcome::Completed { frames: 75, .. }
    ));
    assert_luma_identical(&src, &out);
}

/// Regression guard for resuming inside a shot: the film colorizer replays
/// the shot from its start, so the joined export equals a whole one.
#[test]
fn project_export_resumed_mid_shot_equals_a_whole_render() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let src = film(d, "128x96", 2);
    let key = make_reference(&d.join("key.png"));
    let mut project = tincture_engine::project::new_project(&src).expect("project");
    project.defaults.model_prior = false;
    project.keyframes.push(Keyframe {
        reference: Some(KeyframeReference::Image { path: key.clone() }),
        ..Keyframe::new(0)
    });
    let project_path = d.join("p.json");
    let spec = |output: &Path| ExportSpec {
        request: RenderRequest {
            colorizer: None,
            ..request(&src, output, &key, FFV1)
        },
        project: Some(ProjectExport {
            project: project.clone(),
            project_path: project_path.clone(),
            accept_changed: false,
            model: Default::default(),
        }),
        wake: None,
    };
    let out = d.join("out.mkv");
    let (events, _) = run(&ExportJob::spawn(spec(&out)).expect("spawn"), Some(20));
    let Outcome::Cancelled { frames: kept, .. } = outcome(&events) else {
        panic!("cancelled: {events:?}");
    };
    let (events, _) = run(&ExportJob::spawn(spec(&out)).expect("spawn"), None);
    assert_eq!(started(&events), Start::Resumed { from: kept, kept });
    assert!(matches!(
        outcome(&events),
        Outcome::Completed { frames: 50, .. }
    ));
    let whole = d.join("whole.mkv");
    let (events, _) = run(&ExportJob::spawn(spec(&whole)).expect("spawn"), None);
    assert!(matches!(
        outcome(&events),
        Outcome::Completed { frames: 50, .. }
    ));
    assert_eq!(frame_hashes(&out), frame_hashes(&whole));
    assert_luma_identical(&src, &out);
}

#[test]
fn an_image_sequence_resumes_into_its_partial_folder() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let src = film(d, "160x120", 2);
    let reference = make_reference(&d.join("ref.png"));
    let out = d.join("frames");
    let png = OutputFormat::Images(ImageFormat::Png);
    let job = ExportJob::spawn(request(&src, &out, &reference, png)).expect("spawn");
    let (events, _) = run(&job, Some(10));
    let Outcome::Cancelled { frames: kept, .. } = outcome(&events) else {
        panic!("cancelled");
    };
    let job = ExportJob::spawn(request(&src, &out, &reference, png)).expect("spawn");
    let (events, _) = run(&job, None);
    assert_eq!(started(&events), Start::Resumed { from: kept, kept });
    assert!(matches!(
        outcome(&events),
        Outcome::Completed { frames: 50, .. }
    ));
    let pngs = std::fs::read_dir(&out)
        .expect("folder")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "png"))
        })
        .count();
    assert_eq!(pngs, 50);
}

/// A disk that fills midway (a 3 MB tmpfs, or, where none can be mounted,
/// a 3 MB file-size limit: see [`SmallDisk`]).
#[test]
fn a_full_disk_keeps_a_valid_partial_file_and_says_so() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let small = d.join("small");
    let Some(disk) = SmallDisk::make(
        &small,
        3 << 20,
        "a_full_disk_keeps_a_valid_partial_file_and_says_so",
    ) else {
        return;
    };
    // About 15 MB of FFV1 for a 3 MB disk.
    let src = film(d, "640x480", 4);
    let reference = make_reference(&d.join("ref.png"));
    let out = small.join("out.mkv");
    let full = disk.fill_from_now();
    let job = ExportJob::spawn(request(&src, &out, &reference, FFV1)).expect("spawn");
    let (events, _) = run(&job, None);
    drop(full);
    let Some(ExportEvent::Failed(message)) = events.last() else {
        panic!("a full disk fails the export: {:?}", events.last());
    };
    let partial = partial_path(&out);
    assert!(message.contains(disk.failure_words()), "{message}");
    assert!(message.contains(s(&out)), "names the output: {message}");
    assert!(message.contains(" frame "), "names the frame: {message}");
    assert!(
        message.contains(&format!("the partial file {} with", partial.display())),
        "names the kept partial: {message}"
    );
    assert!(message.contains("resume from frame"), "{message}");
    let frames = VideoReader::open(&partial)
        .unwrap_or_else(|e| panic!("the partial file opens: {e}"))
        .frame_count();
    assert!(frames > 0 && frames < 100, "{frames} frames kept");
    assert!(
        message.contains(&format!("with {frames} frames")),
        "{message}"
    );
    let probed = ffprobe(&[
        "-count_packets",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=nb_read_packets",
        "-of",
        "csv=p=0",
        s(&partial),
    ]);
    assert_eq!(probed.trim(), frames.to_string());
    let decoded = decode_all(&partial);
    assert_eq!(decoded.len() as u64, frames);
    let source = decode_all(&src);
    for (i, f) in decoded.iter().enumerate() {
        assert!(f.y == source[i].y, "frame {i}: luma of the kept frames");
    }
}
