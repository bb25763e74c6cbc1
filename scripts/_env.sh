# Sourced by the scripts: finds uv, installing it from PyPI when the machine lacks it.
if command -v uv >/dev/null 2>&1; then
    UV=(uv)
else
    if ! python3 -m uv --version >/dev/null 2>&1; then
        echo "Installing uv (the project's package manager) from PyPI..." >&2
        python3 -m pip install --quiet --disable-pip-version-check "uv>=0.5"
    fi
    UV=(python3 -m uv)
fi
