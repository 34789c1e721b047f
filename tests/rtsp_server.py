"""A real RTSP camera for the tests: GStreamer's RTSP server (Debian's gir1.2-gst-rtsp-server-1.0) serving raw
BGR frames read from stdin as motion JPEG over RTP, optionally behind a user name and password. SIGUSR1 makes
its timestamps start again from 0 (an encoder restart in the middle of a session).

Run by the system's python3 (it has GObject introspection), fed by `rtsp_feed.py` (the project's venv, which
decodes the sample clip at real time): `rtsp_feed.py CLIP | python3 rtsp_server.py --port P --size 768x576`.
"""

from __future__ import annotations

import argparse
import signal

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/cam")
    parser.add_argument("--size", default="768x576")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( fdsrc fd=0 ! rawvideoparse width={width} height={height} format=bgr framerate={args.fps}/1 "
        f"! videoconvert ! video/x-raw,format=I420 ! jpegenc quality=85 ! rtpjpegpay name=pay0 pt=26 )"
    )
    factory.set_shared(True)  # one stdin, however many clients
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "camera-user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)
        factory.add_role_from_structure(
            Gst.Structure.new_from_string("camera-user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true")
        )
    restarts = {"pending": False, "back": 0}  # nanoseconds taken off every timestamp since the last restart

    def shift(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        buffer = info.get_buffer()
        if buffer.pts != Gst.CLOCK_TIME_NONE:
            if restarts["pending"]:
                restarts["pending"], restarts["back"] = False, buffer.pts
            buffer.pts -= restarts["back"]
        return Gst.PadProbeReturn.OK

    def configure(_factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
        pay = media.get_element().get_by_name("pay0")
        pay.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, shift)

    def restart() -> bool:
        """Timestamps into the payloader start again from 0: its RTP timestamps, and a client's PTS, with them."""
        restarts["pending"] = True
        return GLib.SOURCE_CONTINUE

    factory.connect("media-configure", configure)
    server.get_mount_points().add_factory(args.path, factory)
    server.attach(None)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, restart)
    print(f"rtsp://127.0.0.1:{args.port}{args.path}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
