//! Helpers shared by the end-to-end tests: fixture generation with the ffmpeg tool.
