"""Raw BGR frames of a clip on stdout at real time, looped: what `rtsp_server.py` serves as a camera."""

from __future__ import annotations

import sys
import time

import av


def main() -> None:
    clip = sys.argv[1]
    out = sys.stdout.buffer
    start, shown = time.monotonic(), 0.0
    try:
        while True:
            with av.open(clip) as container:
                stream = container.streams.video[0]
                period = 1.0 / float(stream.average_rate or 10)
                for frame in container.decode(stream):
                    delay = start + shown - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    out.write(frame.to_ndarray(format="bgr24").tobytes())
                    shown += period
    except (BrokenPipeError, KeyboardInterrupt):
        pass


if __name__ == "__main__":
    main()
