"""``python -m authserver.cli``: the ``authserver`` command (``authserver demo`` starts its
child servers this way, with the same interpreter)."""

from __future__ import annotations

from authserver.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
