"""Videos: probe, frames, thumbnails, renditions, concatenation and encoding. MP4/MOV, WebM/MKV and AVI.

A plain library on top of PyAV (FFmpeg's libraries; no ``ffmpeg`` executable): paths or file objects in, values
and files out. It knows nothing of the catalog, HTTP or settings. The code lives in four modules and is imported
from here:

* :mod:`~scenebase.media.video_base` - :class:`VideoInfo`, :class:`VideoDecodeError`, the accepted
  :data:`EXTENSIONS` / :data:`CONTENT_TYPES`, and opening and recognizing files;
* :mod:`~scenebase.media.video_probe` - :func:`probe_video` (one demuxing pass, one decoded frame);
* :mod:`~scenebase.media.video_frames` - :func:`extract_frames` (by 0-based display-order frame number),
  :func:`poster_frame` and :func:`frame_thumbnail`;
* :mod:`~scenebase.media.video_encode` - :func:`encode_video`, :func:`make_rendition` (presets in
  :data:`RENDITION_PRESETS`) and :func:`concatenate_videos`, all writing faststart H.264 MP4.

Pixels are used as stored: a rotation in the stream's display matrix is reported (``VideoInfo.rotation``) but not
applied to frames or thumbnails, so frame numbers, sizes and annotation coordinates all agree.
"""

from __future__ import annotations

from scenebase.media.video_base import (
    CONTENT_TYPES,
    EXTENSIONS,
    MAX_PIXELS,
    VideoDecodeError,
    VideoInfo,
    VideoSource,
)
from scenebase.media.video_encode import (
    REMUX_CODECS,
    RENDITION_PRESETS,
    concatenate_videos,
    encode_video,
    make_rendition,
)
from scenebase.media.video_frames import SEEK_GAP_FRAMES, extract_frames, frame_thumbnail, poster_frame
from scenebase.media.video_probe import probe_video

__all__ = [
    "CONTENT_TYPES",
    "EXTENSIONS",
    "MAX_PIXELS",
    "REMUX_CODECS",
    "RENDITION_PRESETS",
    "SEEK_GAP_FRAMES",
    "VideoDecodeError",
    "VideoInfo",
    "VideoSource",
    "concatenate_videos",
    "encode_video",
    "extract_frames",
    "frame_thumbnail",
    "make_rendition",
    "poster_frame",
    "probe_video",
]
