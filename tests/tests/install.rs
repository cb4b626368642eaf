//! An installed Tincture (`make install`'s layout: `PREFIX/bin`,
//! `PREFIX/lib/tincture`, `PREFIX/share/tincture/models`) finds its runtime
//! and its built-in model from any folder; a copy of the binary with
//! neither does not pick them up from the folder it is run in.

use std::path::{Path, PathBuf};
use std::process::Command;

use tincture_tests::{cli_path, skip_or_fail};

fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the checkout")
        .to_owned()
}

fn runtime_lib() -> Option<PathBuf> {
    std::fs::read_dir(checkout().join("third_party/onnxruntime"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libonnxruntime.so"))
        })
}

/// The checkout's runtime library, or `None` (skipped, or failed under CI)
/// when setup has not fetched it.
fn runtime_or_skip(test: &str) -> Option<PathBuf> {
    let lib = runtime_lib();
    if lib.is_none() {
        skip_or_fail(
            test,
            "no ONNX Runtime in third_party/ (run scripts/setup.sh)",
        );
    }
    lib
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().expect("a folder")).expect("mkdir");
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
}

/// Runs `bin ARGS` in `cwd` with no runtime or model given by the environment.
fn run(bin: &Path, cwd: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("TINCTURE_BUILTIN_MODELS")
        .env("HOME", cwd)
        .output()
        .expect("the binary runs")
}

#[test]
fn an_installed_tincture_finds_its_runtime_and_model_from_any_folder() {
    let Some(lib) =
        runtime_or_skip("an_installed_tincture_finds_its_runtime_and_model_from_any_folder")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = dir.path().join("prefix");
    let bin = prefix.join("bin/tincture-cli");
    copy(&cli_path(), &bin);
    copy(
        &lib,
        &prefix
            .join("lib/tincture")
            .join(lib.file_name().expect("name")),
    );
    let manifest = tincture_infer::registry::BUILTIN_MANIFEST;
    let graph = manifest.replace(".json", ".onnx");
    for f in [manifest, graph.as_str()] {
        copy(
            &checkout().join("models").join(f),
            &prefix.join("share/tincture/models").join(f),
        );
    }
    let elsewhere = dir.path().join("films");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    let o = run(&bin, &elsewhere, &["runtime"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains(&prefix.join("lib/tincture").display().to_string()),
        "the installed runtime: {out}"
    );
    // The built-in model colours a photo.
    let photo = tincture_tests::make_reference(&elsewhere.join("photo.png"));
    let o = run(
        &bin,
        &elsewhere,
        &["colorize-image", "photo.png", "-o", "photo_colour.png"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(elsewhere.join("photo_colour.png").is_file());
    drop(photo);
}

#[test]
fn the_current_folder_is_not_searched_for_a_runtime() {
    let Some(lib) = runtime_or_skip("the_current_folder_is_not_searched_for_a_runtime") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    // A lone binary, run from a folder (and below one) that holds a runtime.
    let bin = dir.path().join("lone/tincture-cli");
    copy(&cli_path(), &bin);
    let film_folder = dir.path().join("films");
    let planted = film_folder
        .join("third_party/onnxruntime")
        .join(lib.file_name().expect("name"));
    copy(&lib, &planted);
    let inner = film_folder.join("reel-1");
    std::fs::create_dir_all(&inner).expect("mkdir");
    for cwd in [&film_folder, &inner] {
        let o = run(&bin, cwd, &["runtime"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        // Found, it is the checkout's the binary was built from; never the
        // one in the folder it runs in.
        let loaded = text
            .lines()
            .find_map(|l| l.split(" loaded from ").nth(1))
            .unwrap_or_default();
        assert!(
            !loaded.contains(&film_folder.display().to_string()),
            "the runtime in the current folder was loaded: {text}"
        );
        if o.status.success() {
            assert!(
                loaded.starts_with(&checkout().display().to_string()),
                "the checkout's runtime: {text}"
            );
        }
    }
}
