"""Worker process of ``catalog.formats.parallel``: parse one slice of a YAML stream.

Reads a pickled (module, function name, arguments) on stdin, calls the function (only functions of
``catalog.formats`` may be named) and writes its pickled result on stdout.
"""

from __future__ import annotations

import gc
import importlib
import pickle
import sys


def main() -> None:
    gc.disable()  # a short-lived process building many small objects: collections would find no garbage
    # The parent process wrote this call itself.
    module_name, function_name, args = pickle.loads(sys.stdin.buffer.read())  # noqa: S301
    if not module_name.startswith("catalog.formats."):
        sys.exit(f"refusing to run {module_name}.{function_name}: only catalog.formats functions parse slices")
    function = getattr(importlib.import_module(module_name), function_name)
    sys.stdout.buffer.write(pickle.dumps(function(*args), protocol=5))


if __name__ == "__main__":
    main()
