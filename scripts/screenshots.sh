#!/usr/bin/env bash
# Screenshots of the real Tincture window, as a user sees it.
#
#   scripts/screenshots.sh [FILM]
#
# Builds the `tincture` binary, starts it on an archival film in a real X
# window under Xvfb (wgpu renders on the CPU: Mesa's lavapipe Vulkan, no GPU
# needed), waits for the film to open and its first frame to be coloured,
# saves screenshots/xvfb-opened.png, scrubs with the keyboard (Shift+Right)
# to a frame a third of the way in, waits for that frame to be coloured, and
# saves screenshots/xvfb-scrubbed.png. Then it takes the brush, shows the
# picker (painting-picker.png), paints a hint on the ground and steps on
# through the shot, recording 10 s of the screen with ffmpeg's x11grab
# (painting-hint.mp4, and painting-hint.png once the stroke is coloured).
# Last, it steps through the first 60 frames so that the timeline's flicker
# graph fills, and saves flicker-graph.png.
#
# FILM defaults to the first b01*.mp4 in ../shared/data/video/bw; without
# that folder (and no FILM) it skips with a message. Needs Xvfb, xdotool,
# ImageMagick (import) and ffprobe; missing Debian packages are installed
# when run as root (or with sudo). Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[screenshots] %s\n' "$*"; }

FILM="${1:-}"
if [ -z "$FILM" ]; then
    films=../shared/data/video/bw
    if [ ! -d "$films" ]; then
        say "skipped: $films is absent (the shared archival films are not on this machine);"
        say "pass a film instead: scripts/screenshots.sh reel.mp4"
        exit 0
    fi
    FILM="$(find "$films" -maxdepth 1 -name 'b01*.mp4' | sort | head -n 1)"
    if [ -z "$FILM" ]; then
        FILM="$(find "$films" -maxdepth 1 -name '*.mp4' | sort | head -n 1)"
    fi
    if [ -z "$FILM" ]; then
        say "skipped: no .mp4 film in $films"
        exit 0
    fi
fi
if [ ! -f "$FILM" ]; then
    say "error: $FILM is not a file; pass a film: scripts/screenshots.sh reel.mp4"
    exit 2
fi
FILM="$(cd "$(dirname "$FILM")" && pwd)/$(basename "$FILM")"

# Tools, and the Debian packages that hold them.
missing=()
for pair in Xvfb:xvfb xdotool:xdotool import:imagemagick ffprobe:ffmpeg; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
# The software Vulkan driver wgpu falls back to.
dpkg-query -W -f='${Status}' mesa-vulkan-drivers 2>/dev/null | grep -q "install ok installed" \
    || missing+=(mesa-vulkan-drivers libvulkan1)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null 2>&1; then sudo=(sudo);
    else say "error: need root to install ${missing[*]}"; exit 1; fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

say "building the tincture binary"
cargo build -q -p tincture-app --bin tincture
BIN="${CARGO_TARGET_DIR:-target}/debug/tincture"

# A free display number.
display=99
while [ -e "/tmp/.X11-unix/X$display" ] || [ -e "/tmp/.X$display-lock" ]; do
    display=$((display + 1))
done
export DISPLAY=":$display"
work="$(mktemp -d)"
chmod 700 "$work"
log="$work/tincture.log"
xvfb_pid=""
app_pid=""
cleanup() {
    [ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null || true
    [ -n "$xvfb_pid" ] && kill "$xvfb_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

Xvfb "$DISPLAY" -screen 0 1600x1000x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
xvfb_pid=$!
for _ in $(seq 50); do
    xdotool getmouselocation >/dev/null 2>&1 && break
    sleep 0.1
done
xdotool getmouselocation >/dev/null 2>&1 || { say "error: Xvfb did not start:"; cat "$work/xvfb.log"; exit 1; }

# Shown as archives scan: at HD. A film smaller than 1920x1080 is shown as a
# 1920x1080 10-bit scan of it (pillarboxed, FFV1), made here first.
height="$(ffprobe -v error -select_streams v:0 -show_entries stream=height -of csv=p=0 "$FILM")"
if [ "${height:-0}" -lt 1080 ]; then
    hd="$work/$(basename "${FILM%.*}")-1080p.mkv"
    say "making a 1920x1080 10-bit scan of $(basename "$FILM")"
    ffmpeg -nostdin -hide_banner -loglevel error -y -i "$FILM" \
        -vf "scale=-2:1080:flags=lanczos,pad=1920:1080:(ow-iw)/2:0,format=gray10le" -c:v ffv1 -an "$hd"
    FILM="$hd"
fi
frames="$(ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets \
    -of csv=p=0 "$FILM")"
say "film: $FILM ($frames frames)"

# A private state folder (recent files, recovery: the user's own are left alone) and
# runtime folder (silences winit's Wayland probe); the film and
# colour workers log each frame at trace level, which is how we know when
# a frame is on screen and coloured.
say "starting tincture on $DISPLAY (software rendering)"
TINCTURE_STATE_DIR="$work/state" XDG_RUNTIME_DIR="$work" NO_COLOR=1 RUST_LOG="info,tincture_app=trace,wgpu=warn,naga=warn" \
    "$BIN" "$FILM" >"$log" 2>&1 &
app_pid=$!

# Waits up to $2 seconds for a log line matching the regex $1.
wait_log() {
    local pattern="$1" limit="$2" waited=0
    until grep -Eq "$pattern" "$log"; do
        if ! kill -0 "$app_pid" 2>/dev/null; then
            say "error: tincture exited; its log:"
            cat "$log"
            exit 1
        fi
        if [ "$waited" -ge $((limit * 10)) ]; then return 1; fi
        sleep 0.1
        waited=$((waited + 1))
    done
}

# The window's title becomes "FILE — Tincture" once the film is open.
name="$(basename "$FILM")"
wid=""
for _ in $(seq 600); do
    wid="$(xdotool search --name "$name" 2>/dev/null | head -n 1 || true)"
    [ -n "$wid" ] && break
    kill -0 "$app_pid" 2>/dev/null || { say "error: tincture exited:"; cat "$log"; exit 1; }
    sleep 0.1
done
[ -n "$wid" ] || { say "error: no Tincture window with the film after 60 s; log:"; cat "$log"; exit 1; }
say "window $wid is open on $name"
# The pointer rests on the empty end of the properties panel (no hover, no tooltip).
xdotool mousemove --window "$wid" 1140 520

coloured() {
    if wait_log "index=$1 .*frame coloured|frame coloured.*index=$1( |$)" "$2"; then
        say "frame $1 is on screen and coloured"
    else
        say "warning: frame $1 was not coloured within $2 s (is ONNX Runtime installed? see the status bar)"
    fi
}

# Waits up to $3 seconds until frame $1 has been coloured more than $2 times.
coloured_again() {
    local waited=0
    while [ "$(grep -Ec "index=$1 .*frame coloured|frame coloured.*index=$1( |$)" "$log" || true)" -le "$2" ]; do
        if [ "$waited" -ge $(($3 * 10)) ]; then
            say "warning: frame $1 was not coloured again within $3 s"
            return 0
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    say "frame $1 is coloured with the stroke"
}

mkdir -p screenshots
shoot() {
    # Let the thumbnails, the status bar and a repaint catch up first.
    sleep 3
    import -window "$wid" "screenshots/$1"
    say "wrote screenshots/$1 ($(identify -format '%wx%h' "screenshots/$1"))"
}

wait_log "film opened" 60 || { say "error: the film did not open; log:"; cat "$log"; exit 1; }
coloured 0 180
shoot xvfb-opened.png

# Scrub a third of the way in, ten frames a press, as a user holding Shift+Right.
target=$((frames / 3 / 10 * 10))
presses=$((target / 10))
say "scrubbing to frame $target ($presses presses of Shift+Right)"
# No window manager: give the window the keyboard focus, then type (XTEST, like a keyboard).
xdotool windowfocus --sync "$wid"
xdotool key --delay 40 --repeat "$presses" shift+Right
coloured "$target" 180
shoot xvfb-scrubbed.png
# Painting a hint, recorded. The window sits at the screen's top left (no
# window manager); these points are on the film's picture and on the picker
# in the Paint hints panel, for the default 1280x800 window.
say "painting a hint (brush, picker, stroke) while recording the screen"
xdotool key b
sleep 1
# The picker takes the lightness of the film under the pointer: the ground.
# Below it, the model's likely colours there: the model runs on a thread of
# its own the first time a painting tool is out, then a small move of the
# pointer shows its colours for the pixel under it.
xdotool mousemove --window "$wid" 600 515
sleep 10
xdotool mousemove --window "$wid" 602 516
sleep 1
shoot painting-picker.png
ffmpeg -nostdin -hide_banner -loglevel error -y -f x11grab -video_size 1280x800 -framerate 10 \
    -i "$DISPLAY" -t 10 -c:v libx264 -preset veryfast -pix_fmt yuv420p -crf 28 \
    screenshots/painting-hint.mp4 &
rec_pid=$!
sleep 1
# A warm earth colour on the picker (a* +30, b* +40), then a stroke along the ground.
xdotool mousemove --window "$wid" 1108 213 click 1
sleep 0.5
seen="$(grep -Ec "index=$target .*frame coloured|frame coloured.*index=$target( |$)" "$log" || true)"
xdotool mousemove --window "$wid" 320 512 mousedown 1
for x in $(seq 340 25 880); do
    xdotool mousemove --window "$wid" "$x" $((512 + (x % 50) / 10))
    sleep 0.05
done
xdotool mouseup 1
xdotool mousemove --window "$wid" 1140 700
# Shot once the stroke's colour is on screen: frame $target coloured again.
coloured_again "$target" "$seen" 60
sleep 1
import -window "$wid" screenshots/painting-hint.png
say "wrote screenshots/painting-hint.png"
# Step on through the shot, a frame at a time: the colour follows the ground.
for _ in $(seq 10); do
    xdotool key Right
    sleep 0.5
done
wait "$rec_pid" || say "warning: the screen recording failed"
# The flicker graph fills as the preview steps on: from the start of the
# reel, 60 frames, each coloured (and measured against the one before)
# before the next key press.
say "stepping through frames 0 to 60 to measure their flicker"
xdotool mousemove --window "$wid" 1140 560
xdotool key Home
coloured 0 60 >/dev/null
for i in $(seq 1 60); do
    xdotool key Right
    # Under Xvfb with no window manager a key alone does not always wake the
    # window at once: the pointer stirs a pixel until the frame is coloured.
    for _ in $(seq 600); do
        grep -Eq "index=$i .*frame coloured|frame coloured.*index=$i( |$)" "$log" && break
        xdotool mousemove_relative -- 1 0
        sleep 0.1
        xdotool mousemove_relative -- -1 0
    done
done
shoot flicker-graph.png
say "wrote screenshots/painting-hint.mp4 ($(ffprobe -v error -show_entries format=duration -of csv=p=0 screenshots/painting-hint.mp4) s)"
say "done; the app's log was $(wc -l <"$log") lines"
