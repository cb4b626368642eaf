//! Luma is sacred: renders keep the source's Y plane. FFV1 at the source's
//! depth is bit-exact, 16-bit TIFF lets Y be recovered exactly, lossy codecs
//! stay close.

use tincture_core::compose::luma_from_rgb16;
use tincture_tests::{
    assert_luma_identical, decode_all, make_reference, make_video, render_ok as render, scene,
};

/// Renders an FFV1 fixture (`filter` as the lavfi source, `codec_args` its
/// encoding) with a reference to FFV1 and checks every frame's luma; returns
/// the output's probe.
fn ffv1_bit_exact(filter: &str, frames: u32, codec_args: &[&str]) -> tincture_media::MediaInfo {
    let dir = tempfile::tempdir().expect("tmp");
    let src = make_video(&dir.path().join("source.mkv"), filter, frames, codec_args);
    let reference = make_reference(&dir.path().join("ref.png"));
    let out = dir.path().join("out.mkv");
    render(
        &src,
        &out,
        &["--reference", reference.to_str().expect("utf8")],
    );
    assert_luma_identical(&src, &out);
    tincture_media::probe(&out).expect("probe")
}

#[test]
fn ffv1_render_of_8_bit_gray_keeps_luma_bit_exact() {
    let out = ffv1_bit_exact(
        &scene("320x240", "24"),
        24,
        &["-pix_fmt", "gray", "-c:v", "ffv1"],
    );
    assert_eq!(out.video.pixel_format, "yuv444p");
}

#[test]
fn ffv1_render_of_10_bit_yuv_keeps_luma_bit_exact() {
    let out = ffv1_bit_exact(
        &scene("320x240", "25"),
        20,
        &["-vf", "hue=s=0", "-pix_fmt", "yuv422p10le", "-c:v", "ffv1"],
    );
    assert_eq!(out.video.pixel_format, "yuv422p10le");
}

#[test]
fn ffv1_render_of_16_bit_gray_keeps_luma_bit_exact() {
    let out = ffv1_bit_exact(
        &scene("160x120", "24"),
        6,
        &["-pix_fmt", "gray16le", "-c:v", "ffv1"],
    );
    assert_eq!(out.video.pixel_format, "yuv444p16le");
}

#[test]
fn ffv1_handles_odd_dimensions() {
    let out = ffv1_bit_exact(
        "testsrc2=size=854x480:rate=24,scale=853:479",
        5,
        &["-pix_fmt", "gray", "-c:v", "ffv1"],
    );
    assert_eq!((out.video.width, out.video.height), (853, 479));
}

#[test]
fn tiff16_sequence_lets_source_luma_be_recovered_exactly() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = make_video(
        &dir.path().join("gray10.mkv"),
        &scene("160x120", "24"),
        4,
        &["-pix_fmt", "gray10le", "-c:v", "ffv1"],
    );
    let reference = make_reference(&dir.path().join("ref.png"));
    let out = dir.path().join("frames");
    render(
        &src,
        &out,
        &[
            "--reference",
            reference.to_str().expect("utf8"),
            "--format",
            "tiff",
        ],
    );
    let frames = decode_all(&src);
    let reader = tincture_media::VideoReader::open(&src).expect("open");
    let mut coloured = false;
    for (i, f) in frames.iter().enumerate() {
        let img = image::open(out.join(format!("frame_{i:06}.tif")))
            .expect("tiff")
            .into_rgb16();
        for (p, &y) in img.pixels().zip(&f.y.data) {
            let (lo, hi) = (64u16, 940u16);
            coloured |= p.0[0] != p.0[2];
            if (lo..=hi).contains(&y) {
                assert_eq!(
                    luma_from_rgb16(p.0, reader.matrix(), reader.range(), 10),
                    y,
                    "frame {i}"
                );
            }
        }
    }
    assert!(coloured, "the TIFFs carry colour");
}

#[test]
fn lossy_codecs_keep_luma_close() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = make_video(
        &dir.path().join("gray8.mkv"),
        &scene("320x240", "24"),
        12,
        &["-pix_fmt", "gray", "-c:v", "ffv1"],
    );
    let reference = make_reference(&dir.path().join("ref.png"));
    for (name, max_mean_err) in [("out.mov", 0.6), ("out.mp4", 2.5)] {
        let out = dir.path().join(name);
        render(
            &src,
            &out,
            &["--reference", reference.to_str().expect("utf8")],
        );
        let a = decode_all(&src);
        let b = decode_all(&out);
        assert_eq!(a.len(), b.len());
        for (fa, fb) in a.iter().zip(&b) {
            let shift = fb.bit_depth - fa.bit_depth;
            let err: f64 =
                fa.y.data
                    .iter()
                    .zip(&fb.y.data)
                    .map(|(&x, &y)| (f64::from(x) - f64::from(y) / f64::from(1u16 << shift)).abs())
                    .sum::<f64>()
                    / fa.y.data.len() as f64;
            assert!(
                err < max_mean_err,
                "{name}: mean luma error {err:.3} code values"
            );
        }
    }
}
