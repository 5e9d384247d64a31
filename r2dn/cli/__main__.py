"""``python -m r2dn.cli``: the ``r2dn`` command."""

from r2dn.cli import app

app(prog_name="r2dn")
