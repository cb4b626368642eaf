//! `tincture-cli batch QUEUE.json`: runs a batch queue (the same file the
//! window's queue saves) item after item, or adds films to it.

use std::path::PathBuf;

use tincture_engine::lock::FileLock;
use tincture_engine::queue::{Queue, QueueEvent, Ran, Status, run_next};

use crate::{Failure, ModelArgs};

/// Exit code when the queue ran to its end but some items failed.
pub const SOME_FAILED: u8 = 8;

/// Arguments of `batch`.
#[derive(clap::Args)]
pub struct BatchArgs {
    /// The queue file (JSON), as the window's queue saves it; --add makes it if it does not exist.
    queue: PathBuf,
    /// Add these films, or every film in these folders, to the queue instead of running it. Each
    /// gets a new project of the default settings, saved in a `projects` folder beside the queue
    /// (never beside the film), unless --project is given.
    #[arg(long, num_args = 1.., value_name = "FILM|FOLDER")]
    add: Vec<PathBuf>,
    /// With --add and one film: colour it by this project.
    #[arg(long, requires = "add", value_name = "P.json")]
    project: Option<PathBuf>,
    /// With --add: the folder the outputs go to (NAME-colour.EXT).
    #[arg(long, requires = "add", value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// With --add: ffv1 (MKV), prores (MOV), h264 (MP4), png or tiff sequence.
    #[arg(long, default_value = "ffv1", value_parser = ["ffv1", "prores", "h264", "png", "tiff"])]
    format: String,
    /// Print the queue's items and their state, and exit.
    #[arg(long, conflicts_with = "add")]
    list: bool,
    /// Make the failed items pending again before running.
    #[arg(long, conflicts_with_all = ["add", "list"])]
    retry_failed: bool,
    #[command(flatten)]
    model: ModelArgs,
}

fn failure(code: u8, e: impl std::fmt::Display) -> Failure {
    Failure {
        code,
        message: e.to_string(),
    }
}

/// Runs `batch`; the exit code.
pub fn batch_cmd(args: BatchArgs) -> Result<u8, Failure> {
    let path = args.queue.clone();
    // One runner or editor at a time per queue file.
    let _lock = FileLock::acquire(&path, &format!("the queue {}", path.display()))
        .map_err(|e| failure(4, e))?;
    if !args.add.is_empty() {
        return add(&args).map(|()| 0);
    }
    if !path.exists() {
        return Err(failure(
            3,
            format!(
                "{}: no such queue; make one with `tincture-cli batch {} --add FILM... --out-dir DIR`",
                path.display(),
                path.display()
            ),
        ));
    }
    let mut queue = Queue::load(&path).map_err(|e| failure(3, e))?;
    if args.list {
        list(&queue);
        return Ok(0);
    }
    if args.retry_failed {
        let failed: Vec<u64> = queue
            .items
            .iter()
            .filter(|i| i.status == Status::Failed)
            .map(|i| i.id)
            .collect();
        for id in failed {
            queue.retry(id);
        }
        queue.save(&path).map_err(|e| failure(4, e))?;
    }
    let cancel = crate::stop_on_ctrl_c(
        "stopping the queue after this step (Ctrl-C again to stop at once); run it again to resume",
    );
    let model = args.model.choice();
    let mut bar: Option<indicatif::ProgressBar> = None;
    loop {
        let before = Queue::load(&path).map_err(|e| failure(3, e))?;
        let (left, ..) = before.counts();
        if let Some(item) = before.next_pending() {
            eprintln!(
                "[{} left] item {}: {} -> {}",
                left,
                item.id,
                item.film.display(),
                item.output.display()
            );
        }
        let mut on_event = |event: QueueEvent| match event {
            QueueEvent::Started { start, .. } => {
                if let tincture_engine::render::Start::Resumed { from, kept } = start {
                    eprintln!(
                        "  resuming from frame {from} ({kept} frames kept from the partial file)"
                    );
                }
            }
            QueueEvent::Progress { progress, .. } => {
                let b = bar.get_or_insert_with(|| crate::metrics::progress(progress.total));
                b.set_position(progress.done);
            }
        };
        let ran = run_next(&path, &model, &cancel, &mut on_event).map_err(|e| failure(4, e))?;
        if let Some(b) = bar.take() {
            b.finish_and_clear();
        }
        match ran {
            Ran::Nothing => break,
            Ran::Done(id) => eprintln!("  item {id}: done"),
            Ran::Failed(id, message) => eprintln!("  item {id}: failed: {message}"),
            Ran::Stopped(id) => {
                eprintln!(
                    "  item {id}: stopped; its partial file is kept. Run `tincture-cli batch {}` to resume",
                    path.display()
                );
                return Ok(130);
            }
        }
    }
    let queue = Queue::load(&path).map_err(|e| failure(3, e))?;
    let (_, done, failed, paused) = queue.counts();
    eprintln!(
        "queue {}: {done} done, {failed} failed, {paused} paused",
        path.display()
    );
    Ok(if failed > 0 { SOME_FAILED } else { 0 })
}

fn add(args: &BatchArgs) -> Result<(), Failure> {
    let path = &args.queue;
    let mut queue = Queue::load(path).map_err(|e| failure(3, e))?;
    let Some(out_dir) = &args.out_dir else {
        return Err(failure(
            2,
            "--add needs --out-dir DIR, the folder the outputs go to",
        ));
    };
    std::fs::create_dir_all(out_dir)
        .map_err(|e| failure(4, format!("cannot create {}: {e}", out_dir.display())))?;
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| std::path::Path::new("."));
    let projects = folder.join("projects");
    if args.project.is_some() && args.add.len() != 1 {
        return Err(failure(
            2,
            "--project goes with one film; add the others apart",
        ));
    }
    let mut added = Vec::new();
    for film in &args.add {
        if film.is_dir() {
            added.extend(
                queue
                    .add_folder(film, &projects, out_dir, &args.format)
                    .map_err(|e| failure(3, e))?,
            );
            continue;
        }
        match queue
            .add_film(
                film,
                args.project.as_deref(),
                &projects,
                out_dir,
                &args.format,
            )
            .map_err(|e| failure(3, e))?
        {
            Some(id) => added.push(id),
            None => eprintln!("{}: already in the queue", film.display()),
        }
    }
    queue.save(path).map_err(|e| failure(4, e))?;
    eprintln!(
        "queue {}: added {} item(s), {} in all",
        path.display(),
        added.len(),
        queue.items.len()
    );
    Ok(())
}

fn list(queue: &Queue) {
    for item in &queue.items {
        let progress = if item.frames_total > 0 {
            format!(" {}/{} frames", item.frames_done, item.frames_total)
        } else {
            String::new()
        };
        println!(
            "{:>4}  {:<8} {} -> {}{progress}{}",
            item.id,
            format!("{:?}", item.status).to_lowercase(),
            item.film.display(),
            item.output.display(),
            item.message
                .as_deref()
                .map_or_else(String::new, |m| format!("  ({m})"))
        );
    }
}
