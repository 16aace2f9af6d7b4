"""The sample app (app.py) plus a ledger of the POSTs it received, for the POST benchmark.

A POST carrying an ``X-Request-Id`` header appends that id, one a line, to
``$APP_RECORD_DIR/<hostname>.ids`` *before* it is answered: as an application would
commit a side effect, then reply. The line is written with one ``write()`` on an
O_APPEND descriptor, so it is in the kernel's page cache when the answer leaves: a
SIGKILL afterwards does not lose it (the directory is a host directory the benchmark
bind-mounts). Every other request is answered exactly as app.py answers it.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import app  # noqa: E402  (the sample app next to this file)

RECORD_DIR = os.environ.get("APP_RECORD_DIR", "/records")


class RecordingHandler(app.Handler):
    ledger_fd = None  # opened once in main(); os.write on O_APPEND is safe from every handler thread

    def do_POST(self):
        request_id = self.headers.get("X-Request-Id")
        if request_id:
            line = request_id.strip().replace("\n", " ") + "\n"
            os.write(self.ledger_fd, line.encode("utf-8", "replace"))
        self._handle()


def main():
    os.makedirs(RECORD_DIR, exist_ok=True)
    path = os.path.join(RECORD_DIR, "%s.ids" % app.HOSTNAME)
    RecordingHandler.ledger_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    app.log("recording POST ids in %s" % path)
    app.Handler = RecordingHandler  # app.main() serves app.Handler
    app.main()


if __name__ == "__main__":
    main()
