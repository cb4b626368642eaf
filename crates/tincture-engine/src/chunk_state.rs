//! Chunk state: what the chunks of one render (`--frames A-B` on a render
//! farm) leave for each other, so that none replays the stretch before it.
//!
//! Propagation carries colour forward from the keyframe before a frame and
//! backward from the keyframe after it. A chunk that starts inside a long
//! stretch between keyframes would have to walk the whole stretch again:
//! forward from the keyframe before it, backward from the keyframe after
//! it. Split into N chunks, a shot would cost O(N²) frames. Instead, in a
//! state folder shared by the chunks:
//!
//! - a chunk that ends at frame B leaves the forward state after B
//!   (`fwd-B-WxH.state`), and the chunk that begins at B+1 continues from
//!   it instead of replaying;
//! - a chunk that begins at frame A before keyframe K leaves the colour
//!   carried back from K to A (`bwd-K-A-WxH.state`), and the chunk before
//!   it starts its backward walk there instead of at K.
//!
//! So chunks run in order cost nothing to replay forward, and chunks run in
//! reverse order nothing backward. Each file names the plan it belongs to
//! (a digest of the plan, the model's settings and Tincture's version) and
//! ends with the sha256 of what precedes it. A file of another plan, of
//! another size, or damaged is ignored with a warning, and the chunk
//! replays as it would have without it. The colour is the same to the bit
//! either way, because the state is exactly what the forward or backward
//! pass held at that frame.
//!
//! Sizes: a forward state is 40 bytes a pixel (83 MB at 1920x1080), a
//! backward one 12 bytes a pixel.

use std::path::{Path, PathBuf};

use sha2::Digest as _;
use tincture_core::frame::{ChromaField, LumaImage};
use tincture_core::motion::Confident;
use tincture_core::propagate::ForwardState;

/// The first bytes of a state file; the digit is the format's version.
const MAGIC: &[u8; 8] = b"TNCSTAT1";
const FORWARD: u64 = 0;
const BACKWARD: u64 = 1;
/// No picture side above this is taken from a file.
const MAX_SIDE: u64 = 1 << 15;

/// The state folder of one render's chunks, for one plan.
#[derive(Clone, Debug)]
pub struct ChunkState {
    dir: PathBuf,
    digest: String,
}

impl ChunkState {
    /// The folder `dir` (created when a state is first left there), for
    /// the plan whose digest is `digest`.
    pub fn new(dir: PathBuf, digest: String) -> Self {
        Self { dir, digest }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn forward_path(&self, frame: u64, w: usize, h: usize) -> PathBuf {
        self.dir.join(format!("fwd-{frame}-{w}x{h}.state"))
    }

    fn backward_path(&self, key: u64, frame: u64, w: usize, h: usize) -> PathBuf {
        self.dir.join(format!("bwd-{key}-{frame}-{w}x{h}.state"))
    }

    /// Leaves the forward state after frame `frame`, of `w` x `h` pictures.
    ///
    /// # Errors
    /// A state whose planes are not `w` x `h`, or a failed write.
    pub fn save_forward(
        &self,
        frame: u64,
        w: usize,
        h: usize,
        state: &ForwardState,
    ) -> Result<PathBuf, String> {
        let n = w * h;
        let mut out = self.header(FORWARD, 0, frame, w, h);
        let confident = state.forward.as_ref().map(confident_planes);
        let stabilised = state
            .stabilised
            .as_ref()
            .map(|(l, c)| vec![&l.data[..], &c.cb[..], &c.cr[..]]);
        let steady = state
            .steady_prior
            .as_ref()
            .map(|c| vec![&c.cb[..], &c.cr[..]]);
        let fields: [Option<Vec<&[f32]>>; 5] = [
            confident,
            state.previous.as_ref().map(|l| vec![&l.data[..]]),
            stabilised,
            state.prior_mix.as_ref().map(|m| vec![&m[..]]),
            steady,
        ];
        for field in &fields {
            match field {
                None => put_u64(&mut out, 0),
                Some(planes) => {
                    put_u64(&mut out, 1);
                    for p in planes {
                        if p.len() != n {
                            return Err(format!(
                                "a plane of {} values in the forward state of a {w}x{h} picture",
                                p.len()
                            ));
                        }
                        put_f32s(&mut out, p);
                    }
                }
            }
        }
        let path = self.forward_path(frame, w, h);
        self.write(&path, out)?;
        Ok(path)
    }

    /// The forward state after frame `frame` a chunk left, if there is one
    /// of this plan and size and it is whole.
    pub fn load_forward(&self, frame: u64, w: usize, h: usize) -> Option<ForwardState> {
        let path = self.forward_path(frame, w, h);
        let bytes = std::fs::read(&path).ok()?;
        let parsed = (|| {
            let mut r = self.body(&bytes, FORWARD, 0, frame, w, h)?;
            let n = w * h;
            let luma = |data: Vec<f32>| LumaImage {
                width: w,
                height: h,
                data,
            };
            let chroma = |cb: Vec<f32>, cr: Vec<f32>| ChromaField {
                width: w,
                height: h,
                cb,
                cr,
            };
            let forward = match r.u64()? {
                0 => None,
                _ => {
                    let cb = r.f32s(n)?;
                    let cr = r.f32s(n)?;
                    Some(Confident {
                        chroma: chroma(cb, cr),
                        confidence: r.f32s(n)?,
                    })
                }
            };
            let previous = match r.u64()? {
                0 => None,
                _ => Some(luma(r.f32s(n)?)),
            };
            let stabilised = match r.u64()? {
                0 => None,
                _ => {
                    let l = luma(r.f32s(n)?);
                    let cb = r.f32s(n)?;
                    Some((l, chroma(cb, r.f32s(n)?)))
                }
            };
            let prior_mix = match r.u64()? {
                0 => None,
                _ => Some(r.f32s(n)?),
            };
            let steady_prior = match r.u64()? {
                0 => None,
                _ => {
                    let cb = r.f32s(n)?;
                    Some(chroma(cb, r.f32s(n)?))
                }
            };
            r.done()?;
            Some(ForwardState {
                forward,
                previous,
                stabilised,
                prior_mix,
                steady_prior,
            })
        })();
        if parsed.is_none() {
            tracing::warn!(
                "{}: not a chunk state of this project and film; the chunk replays instead",
                path.display()
            );
        }
        parsed
    }

    /// Leaves the colour carried back from keyframe `key` to frame `frame`.
    ///
    /// # Errors
    /// A colour whose planes are not `w` x `h`, or a failed write.
    pub fn save_backward(
        &self,
        key: u64,
        frame: u64,
        w: usize,
        h: usize,
        colour: &Confident,
    ) -> Result<PathBuf, String> {
        let mut out = self.header(BACKWARD, key, frame, w, h);
        for p in confident_planes(colour) {
            if p.len() != w * h {
                return Err(format!(
                    "a plane of {} values in the carried colour of a {w}x{h} picture",
                    p.len()
                ));
            }
            put_f32s(&mut out, p);
        }
        let path = self.backward_path(key, frame, w, h);
        self.write(&path, out)?;
        Ok(path)
    }

    /// Whether a chunk left the colour carried back from `key` to `frame`.
    pub fn has_backward(&self, key: u64, frame: u64, w: usize, h: usize) -> bool {
        self.backward_path(key, frame, w, h).is_file()
    }

    /// The colour carried back from keyframe `key` to the first frame at or
    /// after `frame` (and before `key`) that a chunk left, with that frame.
    pub fn load_backward(
        &self,
        key: u64,
        frame: u64,
        w: usize,
        h: usize,
    ) -> Option<(u64, Confident)> {
        let prefix = format!("bwd-{key}-");
        let suffix = format!("-{w}x{h}.state");
        let mut frames: Vec<u64> = std::fs::read_dir(&self.dir)
            .ok()?
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_prefix(&prefix)?
                    .strip_suffix(&suffix)?
                    .parse::<u64>()
                    .ok()
            })
            .filter(|f| (frame..key).contains(f))
            .collect();
        frames.sort_unstable();
        // The nearest that reads whole; a damaged one is passed over.
        frames.into_iter().find_map(|f| {
            let path = self.backward_path(key, f, w, h);
            let bytes = std::fs::read(&path).ok()?;
            let parsed = (|| {
                let mut r = self.body(&bytes, BACKWARD, key, f, w, h)?;
                let n = w * h;
                let cb = r.f32s(n)?;
                let cr = r.f32s(n)?;
                let confidence = r.f32s(n)?;
                r.done()?;
                Some(Confident {
                    chroma: ChromaField {
                        width: w,
                        height: h,
                        cb,
                        cr,
                    },
                    confidence,
                })
            })();
            if parsed.is_none() {
                tracing::warn!(
                    "{}: not a chunk state of this project and film; ignored",
                    path.display()
                );
            }
            parsed.map(|c| (f, c))
        })
    }

    fn header(&self, kind: u64, key: u64, frame: u64, w: usize, h: usize) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        put_u64(&mut out, kind);
        put_u64(&mut out, self.digest.len() as u64);
        out.extend_from_slice(self.digest.as_bytes());
        for v in [key, frame, w as u64, h as u64] {
            put_u64(&mut out, v);
        }
        out
    }

    /// A reader past the header of `bytes`, if the header is this plan's
    /// and the checksum holds.
    fn body<'a>(
        &self,
        bytes: &'a [u8],
        kind: u64,
        key: u64,
        frame: u64,
        w: usize,
        h: usize,
    ) -> Option<Reader<'a>> {
        let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
        if sha2::Sha256::digest(body).as_slice() != sum {
            return None;
        }
        let mut r = Reader { bytes: body, at: 0 };
        if r.take(MAGIC.len())? != MAGIC || r.u64()? != kind {
            return None;
        }
        let len = usize::try_from(r.u64()?).ok()?;
        if r.take(len)? != self.digest.as_bytes() {
            return None;
        }
        let (fw, fh) = (w as u64, h as u64);
        if [r.u64()?, r.u64()?, r.u64()?, r.u64()?] != [key, frame, fw, fh]
            || fw > MAX_SIDE
            || fh > MAX_SIDE
        {
            return None;
        }
        Some(r)
    }

    fn write(&self, path: &Path, mut bytes: Vec<u8>) -> Result<(), String> {
        let sum = sha2::Sha256::digest(&bytes);
        bytes.extend_from_slice(&sum);
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        crate::output::write_atomically(path, |partial| {
            std::fs::write(partial, &bytes).map_err(|e| e.to_string())
        })
        .map_err(|e| format!("{}: {e}", path.display()))
    }
}

fn confident_planes(c: &Confident) -> Vec<&[f32]> {
    vec![&c.chroma.cb[..], &c.chroma.cr[..], &c.confidence[..]]
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_f32s(out: &mut Vec<u8>, values: &[f32]) {
    out.reserve(values.len() * 4);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Reads a state file's fields; `None` past its end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn f32s(&mut self, n: usize) -> Option<Vec<f32>> {
        let raw = self.take(n.checked_mul(4)?)?;
        Some(
            raw.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        )
    }

    fn done(&self) -> Option<()> {
        (self.at == self.bytes.len()).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| seed + i as f32 * 0.25).collect()
    }

    fn state(w: usize, h: usize) -> ForwardState {
        let n = w * h;
        let chroma = |s| ChromaField {
            width: w,
            height: h,
            cb: plane(n, s),
            cr: plane(n, -s),
        };
        ForwardState {
            forward: Some(Confident {
                chroma: chroma(1.0),
                confidence: plane(n, 0.5),
            }),
            previous: Some(LumaImage {
                width: w,
                height: h,
                data: plane(n, 2.0),
            }),
            stabilised: Some((
                LumaImage {
                    width: w,
                    height: h,
                    data: plane(n, 3.0),
                },
                chroma(4.0),
            )),
            prior_mix: None,
            steady_prior: Some(chroma(5.0)),
        }
    }

    #[test]
    fn a_state_comes_back_as_it_was_left_and_only_for_its_own_plan() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ChunkState::new(dir.path().join("state"), "plan-a".into());
        let s = state(6, 4);
        store.save_forward(9, 6, 4, &s).expect("saved");
        assert_eq!(store.load_forward(9, 6, 4), Some(s.clone()));
        assert_eq!(store.load_forward(8, 6, 4), None, "another frame");
        let other = ChunkState::new(dir.path().join("state"), "plan-b".into());
        assert_eq!(other.load_forward(9, 6, 4), None, "another plan");

        let c = s.forward.clone().expect("forward");
        store.save_backward(30, 12, 6, 4, &c).expect("saved");
        store.save_backward(30, 20, 6, 4, &c).expect("saved");
        assert_eq!(store.load_backward(30, 10, 6, 4).map(|x| x.0), Some(12));
        assert_eq!(store.load_backward(30, 13, 6, 4).map(|x| x.0), Some(20));
        assert_eq!(store.load_backward(30, 21, 6, 4), None);
        assert_eq!(store.load_backward(31, 10, 6, 4), None, "another keyframe");
        assert_eq!(store.load_backward(30, 10, 6, 4).map(|x| x.1), Some(c));
    }

    /// Every truncation and every flipped byte of a state file is refused,
    /// never panics and never comes back as a state.
    #[test]
    fn a_damaged_state_is_ignored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ChunkState::new(dir.path().to_owned(), "plan".into());
        let path = store.save_forward(3, 3, 2, &state(3, 2)).expect("saved");
        let good = std::fs::read(&path).expect("read");
        for cut in (0..good.len()).step_by(7) {
            std::fs::write(&path, &good[..cut]).expect("write");
            assert_eq!(store.load_forward(3, 3, 2), None, "cut at {cut}");
        }
        for i in (0..good.len()).step_by(5) {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            std::fs::write(&path, &bad).expect("write");
            assert_eq!(store.load_forward(3, 3, 2), None, "byte {i} flipped");
        }
        std::fs::write(&path, &good).expect("write");
        assert!(store.load_forward(3, 3, 2).is_some());
    }
}
