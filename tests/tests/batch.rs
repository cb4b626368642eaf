//! `tincture-cli batch`: a queue of films rendered one after another, that
//! goes on past a failed item, survives being killed mid-item (the item
//! resumes from its partial file, no frame lost or written twice), and
//! refuses a second runner.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tincture_engine::queue::{Queue, Status};
use tincture_tests::{
    assert_luma_identical, cli, cli_path, decode_all, make_video, s, scene, stderr,
};

/// A gray FFV1 film of the moving test scene. The queue gives each film a
/// new project of the default settings: the built-in model colours it.
fn film(dir: &Path, name: &str, size: &str, frames: u32) -> std::path::PathBuf {
    make_video(
        &dir.join(name),
        &scene(size, "24"),
        frames,
        &["-pix_fmt", "gray", "-c:v", "ffv1"],
    )
}

#[test]
fn a_queue_renders_its_films_in_order_and_goes_on_past_a_failed_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let films = d.join("films");
    std::fs::create_dir_all(&films).expect("films folder");
    let a = film(&films, "a.mkv", "160x120", 12);
    let b = film(&films, "b.mkv", "96x64", 10);
    let queue = d.join("night.queue.json");
    let out = d.join("out");
    let added = cli(&[
        "batch",
        s(&queue),
        "--add",
        s(&films),
        "--out-dir",
        s(&out),
        "--format",
        "ffv1",
    ]);
    assert!(added.status.success(), "{}", stderr(&added));
    let mut q = Queue::load(&queue).expect("the queue");
    assert_eq!(q.items.len(), 2);
    assert!(q.items.iter().all(|i| i.status == Status::Pending));
    for item in &q.items {
        assert!(
            item.project.starts_with(d.join("projects")),
            "the new project is beside the queue, not the film: {}",
            item.project.display()
        );
    }
    // The films folder holds only the films: nothing was written there.
    assert_eq!(std::fs::read_dir(&films).expect("read").count(), 2);
    // A third item whose film is damaged (its bytes cut short), between them.
    let broken = d.join("broken.mkv");
    let bytes = std::fs::read(&b).expect("read");
    std::fs::write(&broken, &bytes[..bytes.len() / 3]).expect("write");
    let mut bad = q.items[1].clone();
    bad.film = broken.clone();
    bad.output = out.join("broken-colour.mkv");
    q.push(bad).expect("added");
    q.move_by(3, -1);
    q.save(&queue).expect("saved");

    let run = cli(&["batch", s(&queue)]);
    assert_eq!(run.status.code(), Some(8), "{}", stderr(&run));
    let q = Queue::load(&queue).expect("the queue");
    let states: Vec<(u64, Status)> = q.items.iter().map(|i| (i.id, i.status)).collect();
    assert_eq!(
        states,
        [(1, Status::Done), (3, Status::Failed), (2, Status::Done)],
        "{}",
        stderr(&run)
    );
    let message = q.items[1].message.clone().expect("why it failed");
    assert!(message.contains("broken.mkv"), "names the film: {message}");
    assert_luma_identical(&a, &out.join("a-colour.mkv"));
    assert_luma_identical(&b, &out.join("b-colour.mkv"));
    assert_eq!(q.items[0].frames_done, 12);

    // Run again: nothing is rendered again (the failed item waits for a
    // retry), and the exit code still says an item failed.
    let again = cli(&["batch", s(&queue)]);
    assert_eq!(again.status.code(), Some(8), "{}", stderr(&again));
    assert!(!stderr(&again).contains("item 1:"), "{}", stderr(&again));
    let listed = cli(&["batch", s(&queue), "--list"]);
    let text = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(text.contains("done") && text.contains("failed"), "{text}");
    let retried = cli(&["batch", s(&queue), "--retry-failed"]);
    assert_eq!(retried.status.code(), Some(8), "{}", stderr(&retried));
}

/// The queue's runner killed (SIGKILL) mid-item: the queue file is whole,
/// and the next run resumes the item from its partial file; the output has
/// every frame once, its luma the film's. A second runner meanwhile is
/// refused.
#[test]
fn a_killed_queue_resumes_its_item_from_the_partial_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let frames = 72;
    let reel = film(d, "reel.mkv", "320x240", frames);
    let queue = d.join("q.json");
    let out = d.join("out");
    let added = cli(&["batch", s(&queue), "--add", s(&reel), "--out-dir", s(&out)]);
    assert!(added.status.success(), "{}", stderr(&added));
    let output = out.join("reel-colour.mkv");
    let partial = tincture_engine::render::partial_path(&output);
    let mut child = Command::new(cli_path())
        .args(["batch", s(&queue)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the batch starts");
    // Kill it once some frames are in the partial file.
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no partial file appeared"
        );
        if std::fs::metadata(&partial).is_ok_and(|m| m.len() > 100_000) {
            break;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the batch ended too soon"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = cli(&["batch", s(&queue)]);
    assert_eq!(second.status.code(), Some(4), "{}", stderr(&second));
    assert!(stderr(&second).contains("in use"), "{}", stderr(&second));
    child.kill().expect("kill");
    let _ = child.wait();
    assert!(!output.exists(), "no complete-looking output");
    let q = Queue::load(&queue).expect("the queue file is whole after the kill");
    assert_eq!(
        q.items[0].status,
        Status::Pending,
        "interrupted: pending again"
    );

    let resumed = cli(&["batch", s(&queue)]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    assert!(
        stderr(&resumed).contains("resuming from frame"),
        "it resumed: {}",
        stderr(&resumed)
    );
    assert_eq!(
        decode_all(&output).len(),
        frames as usize,
        "every frame once"
    );
    assert_luma_identical(&reel, &output);
    let q = Queue::load(&queue).expect("the queue");
    assert_eq!(q.items[0].status, Status::Done);
}
