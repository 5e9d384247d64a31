#!/usr/bin/env bash
# Build the sdist and wheel, check them with twine, install the wheel into a fresh virtual
# environment and run it from a temporary directory (not the checkout).
set -euo pipefail
PY=${1:-python3}
ROOT=$(pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PY" -m build --outdir "$WORK/dist" "$ROOT"
"$PY" -m twine check --strict "$WORK"/dist/*
# The listing is read whole first: grep -q stops at its match, and with pipefail unzip's
# SIGPIPE would fail the check once the wheel lists more than a pipe holds.
LISTING=$(unzip -l "$WORK"/dist/*.whl)
grep -q "r2dn/data/_embedded/cascaded_tanks.csv" <<<"$LISTING"
grep -q "r2dn/py.typed" <<<"$LISTING"
grep -q "r2dn/export/c.py" <<<"$LISTING"
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet "$WORK"/dist/*.whl
cd "$WORK"
"$WORK/venv/bin/r2dn" --help
"$WORK/venv/bin/python" - "$ROOT/README.md" <<'PYEOF'
import doctest, sys
import r2dn
assert "site-packages" in r2dn.__file__, r2dn.__file__
text = open(sys.argv[1]).read()
example = text.split("## Example", 1)[1].split("```python", 1)[1].split("```", 1)[0]
test = doctest.DocTestParser().get_doctest(example, {}, "README example", None, 0)
result = doctest.DocTestRunner().run(test)
sys.exit(1 if result.failed else 0)
PYEOF
"$WORK/venv/bin/r2dn" fit --data cascaded-tanks --gamma 5 --nx 4 --nv 4 --hidden 8 --epochs 2 \
    --no-progress --out "$WORK/run"
"$WORK/venv/bin/r2dn" evaluate "$WORK/run/model.r2dn"
test -f "$WORK/run/evaluation-cascaded-tanks/metrics.json"
