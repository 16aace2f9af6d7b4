"""Unpack one collection from a wheel of PyPI's `ansible` package into a collections directory:
unpack_collection.py WHEEL NAMESPACE/NAME DEST (DEST/ansible_collections/NAMESPACE/NAME)."""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path


def main(wheel: str, collection: str, dest: str) -> None:
    prefix = "ansible_collections/%s/" % collection.strip("/")
    target = Path(dest) / prefix
    shutil.rmtree(target, ignore_errors=True)  # no file of an older release stays behind
    with zipfile.ZipFile(wheel) as archive:
        members = [name for name in archive.namelist() if name.startswith(prefix)]
        if not members:
            sys.exit("%s holds no %s" % (wheel, prefix))
        archive.extractall(dest, members)
    print("unpacked %s (%d files) from %s" % (collection, len(members), Path(wheel).name))


if __name__ == "__main__":
    main(*sys.argv[1:])
