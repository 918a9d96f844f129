"""``python -m fontus``: the same as the ``fontus`` command."""

from fontus.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
