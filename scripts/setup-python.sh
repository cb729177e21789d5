#!/usr/bin/env bash
# Installs numpy, the one package the Python job client (clients/python)
# needs, from PyPI into a fixed directory outside the checkout, and prints
# that directory; scripts/env.sh puts it on PYTHONPATH. Idempotent: a
# second run only prints the directory.
set -euo pipefail
version=2.2.6
dir="${MLPOW_PYTHON_HOME:-$HOME/.cache/mlpow/python-numpy-$version}"
if ! PYTHONPATH="$dir" python3 -c "import numpy" >/dev/null 2>&1; then
	if ! python3 -m pip --version >/dev/null 2>&1; then
		echo "setup-python: python3 with pip is needed (apt-get install python3-pip)" >&2
		exit 1
	fi
	echo "setup-python: installing numpy==$version into $dir" >&2
	python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
		--target "$dir" "numpy==$version" >&2
fi
echo "$dir"
